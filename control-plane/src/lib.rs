//! The `tenantd` server as a library: configuration, the directory, the shared login, the
//! company admin API, pages and mail. `main.rs` only parses flags and calls [`startup`].
//!
//! # Layout
//! - [`config`]: settings from flags and `TENANTD_*` variables (shared with `tenantctl`).
//! - [`directory`]: tenants, domains and the email index, on SQLite or PostgreSQL.
//! - [`service`]: what the product does (sign-in, resets, invitations, admin, provisioning).
//! - [`routes`]: the JSON API and the pages, over the services.
//! - [`cluster`]: nodes, placement, forwarding to the node holding a tenant, moves.
//! - [`metrics`]: Prometheus metrics and the request log line.
//! - [`mail`], [`hasher`], [`error`], [`state`], [`startup`], [`telemetry`].

pub mod cluster;
pub mod config;
pub mod directory;
pub mod error;
pub mod failpoint;
pub mod hasher;
pub mod mail;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
