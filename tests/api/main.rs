//! The one integration-test binary: each module drives the real `tenantd` over HTTP.

mod admin;
mod authz;
mod cli;
mod cluster;
mod directory;
mod helpers;
mod inproc;
mod login;
mod mail;
mod nodes;
mod observability;
mod openapi;
mod pages;
mod resilience;
mod security;
