//! A connection checked out of its tenant's pool, and the writes run on one: every write
//! under the pool's writer lock, in one `BEGIN IMMEDIATE` transaction, committed durably or
//! lazily; the `on_open` hook of a tenant's first connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::connection::checkpoint_and_close;
use super::{OnOpen, Pool, TenantRouter};
use crate::{Error, Result, WriteTx};

/// Runs `f` in a write transaction on a leased connection, then gives the connection back.
pub(super) fn write_on<T>(
    lease: Lease<'_>,
    f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
) -> Result<T> {
    write_on_with(lease, Commit::Durable, f)
}

/// How a write's commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Synced before the commit returns (every connection's setting).
    Durable,
    /// Synced by a later commit or checkpoint.
    Lazy,
}

pub(super) fn write_on_with<T>(
    mut lease: Lease<'_>,
    commit: Commit,
    f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
) -> Result<T> {
    let out = {
        let pool = lease.pool.clone();
        let _writer = pool.writer.lock();
        // Until the setting is back (even if `f` panics), the connection is not reused.
        lease.broken = commit == Commit::Lazy;
        let conn = lease.conn_mut()?;
        if commit == Commit::Lazy {
            conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        }
        let out = match WriteTx::begin(conn) {
            Ok(tx) => match f(&tx) {
                Ok(v) => tx.commit().map(|()| v),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let restored =
            commit == Commit::Durable || conn.execute_batch("PRAGMA synchronous = FULL").is_ok();
        lease.broken = !restored;
        out
    };
    lease.release();
    out
}

/// Runs the `on_open` hook on the first connection of a tenant (no other connection of this
/// process has the file yet). Its failure, even a panic, leaves the connection usable.
pub(super) fn run_on_open(conn: &mut Connection, pool: &Pool, on_open: &OnOpen, now: i64) {
    let _writer = pool.writer.lock();
    let run = std::panic::AssertUnwindSafe(|| -> Result<()> {
        let tx = WriteTx::begin(conn)?;
        on_open(&tx, now)?;
        tx.commit()
    });
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(tenant_id = %pool.id, error = %e, code = e.code(), "on_open failed");
        }
        Err(_) => tracing::warn!(tenant_id = %pool.id, "on_open panicked"),
    }
}

/// A checked-out connection; goes back to its pool on release (or drop).
pub(super) struct Lease<'a> {
    pub(super) router: &'a TenantRouter,
    pub(super) pool: Arc<Pool>,
    pub(super) conn: Option<Connection>,
    /// Its settings could not be put back: closed instead of reused.
    pub(super) broken: bool,
}

impl Lease<'_> {
    /// The connection. Only `drop` takes it out, so this does not fail; if it ever did, the
    /// caller gets an error instead of a panic.
    pub(super) fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(Self::given_back)
    }

    pub(super) fn conn_mut(&mut self) -> Result<&mut Connection> {
        self.conn.as_mut().ok_or_else(Self::given_back)
    }

    fn given_back() -> Error {
        Error::Unexpected(anyhow::anyhow!(
            "tenant connection used after it went back to its pool"
        ))
    }

    pub(super) fn release(self) {}
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut st = self.pool.state.lock();
            if st.retired || self.broken || !conn.is_autocommit() {
                // Closed under us, left mid-transaction by a panic, or with a setting not put
                // back: do not reuse. Closed under the lock, so `close_blocking` returns only
                // once the file is closed.
                st.total = st.total.saturating_sub(1);
                if st.total == 0 {
                    checkpoint_and_close(conn, self.pool.truncate);
                } else {
                    drop(conn);
                }
                self.router
                    .shared
                    .open_connections
                    .fetch_sub(1, Ordering::SeqCst);
            } else {
                st.idle.push_back(conn);
            }
            self.pool.ready.notify_all();
        }
        self.pool.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}
