//! Invitation and password-reset tokens: random, stored as SHA-256, bound to a user and a
//! purpose, expiring and single use.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, WriteTx, secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Invite,
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Reset => "reset",
        }
    }
}

/// Issues a token and revokes the user's earlier unused tokens of the same purpose, so only the
/// newest link works. Returns the secret to put in the link; it is not stored.
pub fn issue(
    tx: &WriteTx<'_>,
    user_id: &str,
    purpose: Purpose,
    ttl_secs: i64,
    now: i64,
) -> Result<String> {
    let s = secret::generate()?;
    issue_hashed(tx, user_id, purpose, &s.hash, ttl_secs, now)?;
    Ok(s.token)
}

/// [`issue`] for a secret made elsewhere, of which only the hash travels here (a tenant file
/// written on another node never sees the link).
pub fn issue_hashed(
    tx: &WriteTx<'_>,
    user_id: &str,
    purpose: Purpose,
    hash: &[u8; 32],
    ttl_secs: i64,
    now: i64,
) -> Result<()> {
    revoke(tx, user_id, Some(purpose), now)?;
    tx.execute(
        "INSERT INTO tokens (hash, user_id, purpose, created_at, expires_at, epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT auth_epoch FROM tenant_meta WHERE id = 1))",
        params![&hash[..], user_id, purpose.as_str(), now, now + ttl_secs],
    )?;
    Ok(())
}

/// The user a live token belongs to, without using it up.
pub fn peek(conn: &Connection, token: &str, purpose: Purpose, now: i64) -> Result<Option<String>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM tokens
         WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)",
    )?;
    Ok(stmt
        .query_row(params![&hash[..], purpose.as_str(), now], |r| r.get(0))
        .optional()?)
}

/// Uses a token up and returns its user. A single `UPDATE … RETURNING` under the tenant's write
/// lock, so of two concurrent redemptions exactly one wins.
pub fn redeem(tx: &WriteTx<'_>, token: &str, purpose: Purpose, now: i64) -> Result<Option<String>> {
    let hash = secret::hash(token);
    let mut stmt = tx.prepare_cached(
        "UPDATE tokens SET used_at = ?3
         WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)
         RETURNING user_id",
    )?;
    Ok(stmt
        .query_row(params![&hash[..], purpose.as_str(), now], |r| r.get(0))
        .optional()?)
}

/// Marks a user's unused tokens as used (all purposes when `purpose` is `None`). Returns how many.
pub fn revoke(
    tx: &WriteTx<'_>,
    user_id: &str,
    purpose: Option<Purpose>,
    now: i64,
) -> Result<usize> {
    Ok(match purpose {
        Some(p) => tx.execute(
            "UPDATE tokens SET used_at = ?3 WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL",
            params![user_id, p.as_str(), now],
        )?,
        None => tx.execute(
            "UPDATE tokens SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
            params![user_id, now],
        )?,
    })
}

/// Whether the user has an unused, unexpired token of this purpose.
pub fn has_live(conn: &Connection, user_id: &str, purpose: Purpose, now: i64) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tokens WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
        params![user_id, purpose.as_str(), now],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Deletes tokens that expired or were used more than `keep_secs` ago.
pub fn purge(tx: &WriteTx<'_>, now: i64, keep_secs: i64) -> Result<usize> {
    Ok(tx.execute(
        "DELETE FROM tokens WHERE expires_at < ?1 OR used_at < ?1",
        [now - keep_secs],
    )?)
}
