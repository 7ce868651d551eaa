//! What the router does to a single connection or file: the settings every connection gets
//! (and the check that it has them), the identity check at open, integrity checks, closing
//! with a checkpoint, and the descriptor limit.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::RouterConfig;
use crate::{Error, Result, TenantId};

/// Applies and then asserts the settings every tenant connection must have.
pub(super) fn configure(conn: &Connection, cfg: &RouterConfig) -> Result<()> {
    conn.busy_timeout(cfg.busy_timeout)?;
    // The router checkpoints when it closes a tenant (see `close_connections`); SQLite's own
    // checkpoint at close would also delete the `-wal` and `-shm` files, to be created again
    // at the next open.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};",
        cfg.cache_kib
    ))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    expect("journal_mode", "wal", mode)?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    expect("synchronous", "2", sync.to_string())?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    expect("foreign_keys", "1", fk.to_string())?;
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    if busy < 5000 {
        return Err(Error::PragmaMismatch {
            pragma: "busy_timeout",
            expected: ">= 5000".into(),
            found: busy.to_string(),
        });
    }
    Ok(())
}

fn expect(pragma: &'static str, expected: &str, found: String) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::PragmaMismatch {
            pragma,
            expected: expected.into(),
            found,
        })
    }
}

/// Refuses files that are not this tenant's, or newer than this binary; returns the version.
pub(super) fn verify_identity(conn: &Connection, id: &TenantId) -> Result<u32> {
    let version = tenant_schema::tenant_version(conn)?;
    if version == 0 {
        return Err(Error::NotATenantFile(id.to_string()));
    }
    tenant_schema::check_not_newer(version)?;
    let found: Option<String> = conn
        .query_row("SELECT tenant_id FROM tenant_meta WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(|_| Error::NotATenantFile(id.to_string()))?;
    match found {
        Some(found) if found == id.as_str() => {}
        Some(found) => {
            return Err(Error::ForeignTenantFile {
                expected: id.to_string(),
                found,
            });
        }
        None => return Err(Error::NotATenantFile(id.to_string())),
    }
    Ok(version)
}

/// `PRAGMA integrity_check` of a database file; an empty list means it is sound.
pub fn integrity_check(path: &Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// Closes connections of one tenant. Before the last one closes, the WAL is checkpointed into
/// the database file and truncated to zero bytes, without waiting: if another process is using
/// the file, the WAL stays as it is (still valid) for whoever closes last.
pub(super) fn close_connections(conns: impl IntoIterator<Item = Connection>, truncate: bool) {
    let mut last = None;
    for conn in conns {
        drop(last.replace(conn));
    }
    if let Some(conn) = last {
        checkpoint_and_close(conn, truncate);
    }
}

/// Closes the last connection of a tenant, checkpointing first when `truncate` (off under
/// replication: Litestream checkpoints, and holds a read lock that would refuse ours anyway).
pub(super) fn checkpoint_and_close(conn: Connection, truncate: bool) {
    if truncate && conn.is_autocommit() && conn.busy_timeout(Duration::ZERO).is_ok() {
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => {}
            Ok(_) => tracing::debug!("tenant WAL in use elsewhere; left for a later close"),
            Err(e) => tracing::debug!(error = %e, "checkpoint before close failed"),
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing a tenant connection failed");
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Raises the soft open-file limit to the hard limit (each open tenant costs three
/// descriptors); returns the soft limit now in force, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard {
        if let Err(e) = rlimit::Resource::NOFILE.set(hard, hard) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            return Some(soft);
        }
        return Some(hard);
    }
    Some(soft)
}

/// Descriptors per open connection, counted high: the database file and its `-wal` for each
/// connection, and the tenant's `-shm` (shared by its connections).
pub const DESCRIPTORS_PER_CONNECTION: u64 = 3;

/// The connection cap a process allowed `nofile` descriptors can hold: a quarter of them (at
/// least 1,024) is left for sockets, the directory, logs and backups, the rest goes to tenant
/// connections at three each. At least 8.
pub fn connection_cap(nofile: u64) -> usize {
    let reserve = (nofile / 4).max(1024);
    let cap = nofile.saturating_sub(reserve) / DESCRIPTORS_PER_CONNECTION;
    usize::try_from(cap).unwrap_or(usize::MAX).max(8)
}
