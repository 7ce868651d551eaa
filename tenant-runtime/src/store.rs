//! The per-tenant store: synchronous functions over one tenant's connection or transaction.
//!
//! Each function touches only the database it is given, so a handle to tenant A can never
//! return tenant B's rows. Writes take a `Transaction` (opened `BEGIN IMMEDIATE` by the router).

pub mod audit;
pub mod meta;
pub mod sessions;
pub mod tokens;
pub mod users;
