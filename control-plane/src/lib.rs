//! The `tenantd` server as a library: configuration, the directory, the shared login, the
//! company admin API, pages and mail. `main.rs` only parses flags and calls [`startup`].
//!
//! # Layout
//! Modules are in layers; each imports only from layers below it (a test over the `use` lines
//! holds this, see `docs/ARCHITECTURE.md`):
//! 1. [`startup`]: builds the state and the app, serves, runs the background tasks.
//! 2. [`routes`]: HTTP — the JSON API, the pages, forwarding, the node endpoints, the one
//!    mapping of errors to answers, the request log.
//! 3. [`service`]: what the product does (sign-in, resets, invitations, admin, provisioning,
//!    the fleet, moves between nodes); each speaks its own error enum.
//! 4. [`state`]: what every request shares (`AppState`), and the placement check.
//! 5. [`cluster`] (placement, signing, the node client), [`directory`], [`keys`], [`mail`], [`hasher`],
//!    [`throttle`], [`metrics`], [`error`] (the [`error::Fault`]s under every service),
//!    [`config`], [`failpoint`], [`telemetry`].

pub mod cluster;
pub mod config;
pub mod directory;
pub mod error;
pub mod failpoint;
pub mod hasher;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod replica;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;

#[cfg(test)]
mod layering;
