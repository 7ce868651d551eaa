//! The tenant file's identity and auth epoch.

use rusqlite::Connection;

use crate::{Result, WriteTx};

/// Sessions and tokens issued under an older epoch stop working: raised when a backup is
/// restored, so a restore cannot revive revoked access.
pub fn auth_epoch(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT auth_epoch FROM tenant_meta WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn tenant_id(conn: &Connection) -> Result<String> {
    Ok(
        conn.query_row("SELECT tenant_id FROM tenant_meta WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// Sets the epoch to at least `min` (and past the current one), dropping every session and
/// unused token. Returns the new epoch.
pub fn raise_auth_epoch(tx: &WriteTx<'_>, min: i64) -> Result<i64> {
    let current = auth_epoch(tx)?;
    let next = (current + 1).max(min);
    tx.execute(
        "UPDATE tenant_meta SET auth_epoch = ?1 WHERE id = 1",
        [next],
    )?;
    tx.execute("DELETE FROM sessions", [])?;
    tx.execute("DELETE FROM tokens WHERE used_at IS NULL", [])?;
    Ok(next)
}

/// Whether people may only be invited or moved to addresses in the company's own domains.
pub fn email_domains_only(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT email_domains_only FROM tenant_meta WHERE id = 1",
        [],
        |r| r.get(0),
    )?)
}

pub fn set_email_domains_only(tx: &WriteTx<'_>, on: bool) -> Result<()> {
    tx.execute(
        "UPDATE tenant_meta SET email_domains_only = ?1 WHERE id = 1",
        [on],
    )?;
    Ok(())
}
