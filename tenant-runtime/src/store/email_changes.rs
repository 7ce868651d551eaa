//! Pending changes of a user's email address: the link mailed to the new address carries a
//! random secret, stored here as SHA-256, bound to the user and the new address, expiring,
//! single use, and dead after a restore (auth epoch), like the other links.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, WriteTx, secret};

/// A change waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    pub user_id: String,
    pub new_email: String,
    pub expires_at: i64,
}

/// Records a change (replacing the user's earlier pending one) and returns the link's secret.
pub fn issue(
    tx: &WriteTx<'_>,
    user_id: &str,
    new_email: &str,
    requested_by: &str,
    ttl_secs: i64,
    now: i64,
) -> Result<String> {
    cancel(tx, user_id, now)?;
    let s = secret::generate()?;
    tx.execute(
        "INSERT INTO email_changes (hash, user_id, new_email, requested_by, created_at, expires_at, epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT auth_epoch FROM tenant_meta WHERE id = 1))",
        params![&s.hash[..], user_id, new_email, requested_by, now, now + ttl_secs],
    )?;
    Ok(s.token)
}

const LIVE: &str = "used_at IS NULL AND expires_at > ?2
    AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)";

/// The change behind a live secret, without using it up.
pub fn peek(conn: &Connection, token: &str, now: i64) -> Result<Option<Pending>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT user_id, new_email, expires_at FROM email_changes WHERE hash = ?1 AND {LIVE}"
    ))?;
    Ok(stmt
        .query_row(params![&hash[..], now], |r| {
            Ok(Pending {
                user_id: r.get(0)?,
                new_email: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .optional()?)
}

/// Uses a secret up; of two concurrent redemptions exactly one wins.
pub fn redeem(tx: &WriteTx<'_>, token: &str, now: i64) -> Result<Option<Pending>> {
    let hash = secret::hash(token);
    let mut stmt = tx.prepare_cached(&format!(
        "UPDATE email_changes SET used_at = ?2 WHERE hash = ?1 AND {LIVE}
         RETURNING user_id, new_email, expires_at"
    ))?;
    Ok(stmt
        .query_row(params![&hash[..], now], |r| {
            Ok(Pending {
                user_id: r.get(0)?,
                new_email: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .optional()?)
}

/// The user's live pending change, if any.
pub fn pending_for(conn: &Connection, user_id: &str, now: i64) -> Result<Option<Pending>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, new_email, expires_at FROM email_changes
         WHERE user_id = ?1 AND used_at IS NULL AND expires_at > ?2
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)
         ORDER BY created_at DESC LIMIT 1",
    )?;
    Ok(stmt
        .query_row(params![user_id, now], |r| {
            Ok(Pending {
                user_id: r.get(0)?,
                new_email: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .optional()?)
}

/// Ends the user's pending changes; returns how many.
pub fn cancel(tx: &WriteTx<'_>, user_id: &str, now: i64) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE email_changes SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
        params![user_id, now],
    )?)
}

/// Deletes changes that expired or were used more than `keep_secs` ago.
pub fn purge(tx: &WriteTx<'_>, now: i64, keep_secs: i64) -> Result<usize> {
    Ok(tx.execute(
        "DELETE FROM email_changes WHERE expires_at < ?1 OR used_at < ?1",
        [now - keep_secs],
    )?)
}
