//! The only code that opens tenant database files.
//!
//! Every company (tenant) has one SQLite file, `<data>/tenants/<tenant-id>.db`. [`TenantRouter`]
//! maps a tenant id to a small pool of rusqlite connections, opens a file on first use (migrating
//! it if needed), caps open connections across all tenants and closes the least recently used
//! idle tenants past the cap. The [`store`] functions are synchronous: reads take a connection,
//! writes a [`WriteTx`] that only the router hands out; the router runs them on the blocking
//! pool, never on async worker threads.
//!
//! # Layout
//! - [`router`]: `TenantRouter`, pools, the global connection cap, eviction, backup.
//! - [`ops`]: file-level maintenance for `tenantctl`: versions, migration, trash copies, restores.
//! - [`store`]: users, invitation and reset tokens, sessions, the audit log.
//! - [`WriteTx`]: the write transaction every store write takes.
//! - [`id`], [`email`], [`secret`], [`password`], [`clock`]: the small value types they share.

pub mod clock;
pub mod email;
pub mod error;
pub mod id;
pub mod ops;
pub mod password;
pub mod router;
pub mod secret;
pub mod store;
mod write_tx;

#[allow(
    clippy::disallowed_types,
    reason = "re-exported for the startup code that makes the one real clock"
)]
pub use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use error::{Error, Result};
pub use id::TenantId;
pub use router::{RouterConfig, RouterStats, TenantRouter};
pub use write_tx::WriteTx;
