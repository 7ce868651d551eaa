// TEMPORARY (tools engineer): runs api/cli.rs alone while api/main.rs does not compile.
#![allow(dead_code, unused_imports)]
#[path = "../api/cli.rs"]
mod cli;
#[path = "../api/helpers.rs"]
mod helpers;
