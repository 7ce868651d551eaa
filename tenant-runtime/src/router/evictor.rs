//! The background evictor: closes idle tenants before the connection cap is reached, so the
//! checkpoint and fsync of closing a tenant that was written to stay off the request path.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};

use super::{Shared, evict_idle};
use crate::Result;

/// Open connections past which the evictor closes a batch (15/16 of the cap; each batch is
/// about 1/16 of it, see `evict_idle`).
fn high_water(cap: usize) -> usize {
    cap - cap / 16
}

/// Whether `open` connections call for the evictor. Below a cap of 16 it never runs: a tenant
/// is closed only when a request needs its slot.
pub(super) fn should_wake(cap: usize, open: usize) -> bool {
    cap >= 16 && open >= high_water(cap)
}

/// Starts the evictor thread; it ends when the router is dropped (its sender goes with it).
pub(super) fn spawn(shared: Weak<Shared>, wake: Receiver<()>) -> Result<()> {
    std::thread::Builder::new()
        .name("tenant-evictor".into())
        .spawn(move || {
            while wake.recv().is_ok() {
                let Some(s) = shared.upgrade() else { return };
                run(&s);
            }
        })?;
    Ok(())
}

fn run(s: &Arc<Shared>) {
    let high = high_water(s.cfg.max_connections);
    // One batch brings the count back under the mark; more if requests opened meanwhile.
    while s.open_connections.load(Ordering::SeqCst) >= high {
        if evict_idle(s, high) == 0 {
            return; // everything open is in use: requests at the cap evict for themselves
        }
    }
}
