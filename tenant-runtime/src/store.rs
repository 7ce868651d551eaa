//! The per-tenant store: synchronous functions over one tenant's connection or transaction.
//!
//! Each function touches only the database it is given, so a handle to tenant A can never
//! return tenant B's rows. Reads take a `&Connection`; writes take a [`crate::WriteTx`] (a
//! `BEGIN IMMEDIATE` transaction that only the router hands out), so a write cannot be called
//! from a read closure.

pub mod audit;
pub mod email_changes;
pub mod factors;
pub mod meta;
pub mod mfa_tokens;
pub mod oidc;
pub mod people;
pub mod policy;
pub mod sessions;
pub mod sso;
pub mod tokens;
pub mod users;
