#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! The one integration-test binary: each module drives the real `tenantd` over HTTP (or, in a
//! few, the in-process harness). The helpers are the kit's, `tests/src/`.

mod admin;
mod authz;
mod cli;
mod clients;
mod console;
mod console_browser;
mod directory;
mod factors;
mod factors_browser;
mod hardening;
mod login;
mod mail;
mod nodes;
mod observability;
mod oidc;
mod oidc_rp;
mod openapi;
mod operator;
mod pages;
mod policy;
mod replication;
mod resilience;
mod saml;
mod saml_signin;
mod security;
mod sso;
mod sso_browser;
mod sso_mfa;
mod vendor_app;
