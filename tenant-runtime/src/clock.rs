//! Time as unix seconds, injectable so tests can move it.
//!
//! Code takes the time from an injected `Arc<dyn Clock>`; `clippy.toml` forbids
//! `SystemTime::now` and naming [`SystemClock`] anywhere else, so only startup code (with an
//! `#[allow]` that says why) makes the real clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the unix epoch.
    fn now(&self) -> i64;
}

/// The real clock. Made once at startup and passed down; tests use [`ManualClock`].
#[allow(
    clippy::disallowed_types,
    reason = "the definition of the real clock and its derived impls"
)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the real clock is the one place that reads the system time"
)]
impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// The real clock, as the default of [`crate::RouterConfig::clock`].
#[allow(
    clippy::disallowed_types,
    reason = "the router's default clock, for callers that do not inject one"
)]
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
