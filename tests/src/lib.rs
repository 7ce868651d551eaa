#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! The test kit: every helper the integration tests (`api/`) and the benchmarks (`benches/`)
//! share, each written once.
//!
//! - [`process`]: the real binaries: where they are, a `tenantd` child process, free ports;
//! - [`app`]: [`TestApp`], one `tenantd` with its own SMTP server, companies and people;
//! - [`cluster`]: several `tenantd` nodes sharing a directory;
//! - [`ctl`]: [`Ctl`], the real `tenantctl` pointed at a data directory;
//! - [`http`]: [`Person`] (a client with a cookie jar) and [`Reply`] (an answer read whole);
//! - [`smtp`] and [`mail`]: a real SMTP server and the messages it stored;
//! - [`db`]: a fresh directory database (SQLite or PostgreSQL) per test;
//! - [`sso`]: real identity providers (`oidc-provider`) and DNS (`dnsmasq`), and the dance through them;
//! - [`seed`]: users and old tenant files written straight into tenant stores;
//! - [`inproc`]: the only module that uses the `control-plane` library: the in-process harness
//!   with a manual clock, in-process servers for the benchmarks, and the library items tests
//!   name (re-exported, so a reorganisation of `control-plane` is followed here alone);
//! - [`bench`]: timing, percentiles, load generators and table rows of the benchmarks.

use std::time::{Duration, Instant};

pub mod app;
pub mod bench;
pub mod browser;
pub mod cluster;
pub mod ctl;
pub mod db;
pub mod http;
pub mod inproc;
pub mod mail;
pub mod oidc;
pub mod process;
pub mod saml;
pub mod seed;
pub mod smtp;
pub mod sso;
pub mod tls;

pub use app::{Company, Member, Options, TestApp};
pub use ctl::{Ctl, Out};
pub use http::{Person, Reply};

/// A password that passes the policy; every test person uses it unless a test says otherwise.
pub const PASSWORD: &str = "lantern-orchard-velvet-42";
/// Another valid password (for resets).
pub const NEW_PASSWORD: &str = "quartz-meadow-harbor-77";
/// The `TENANTD_METRICS_TOKEN` of the test servers: `/metrics` on the public listener needs it.
pub const METRICS_TOKEN: &str = "metrics-token-for-the-tests-0123";
/// How long to wait for a mail before failing.
pub const MAIL_WAIT: Duration = Duration::from_secs(20);

/// The system clock in unix seconds, as the stores take it.
pub fn now() -> i64 {
    tenant_runtime::Clock::now(&tenant_runtime::SystemClock)
}

/// How often [`poll`] and [`within`] look again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` until it gives `Ok`; fails once `limit` has passed, saying `what` and the
/// last `Err` (what was seen instead).
pub async fn poll<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}{}{seen}",
                if seen.is_empty() { "" } else { ": " }
            ),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `check` until it holds; fails with `what` once `limit` has passed. Returns how long
/// it took.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    poll(limit, what, || {
        let done = check();
        async move {
            if done.await {
                Ok(())
            } else {
                Err(String::new())
            }
        }
    })
    .await;
    start.elapsed()
}

/// Runs futures concurrently on the current task (no spawning: they may borrow), in order.
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
