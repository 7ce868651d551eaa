//! What the vendor's apps hold through OpenID Connect: grants (one per authorization, inside one
//! session), their single-use codes and rotating refresh tokens, and the back-channel logouts
//! still to deliver. Secrets are stored as SHA-256 only. Ending a session ends its grants and
//! queues their logouts in the database itself (see the `sessions_end_grants` trigger), so no
//! code path that ends a session can forget them.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::sessions::Amr;
use crate::store::users::{self, User};
use crate::{Result, WriteTx, secret};

/// A new authorization: the grant and the code that redeems it.
#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub code_ttl_secs: i64,
}

/// Starts a grant in the session whose hash is `session_hash`; returns the code secret.
pub fn authorize(
    tx: &WriteTx<'_>,
    session_hash: &[u8],
    new: &NewGrant<'_>,
    now: i64,
) -> Result<String> {
    let grant_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO oidc_grants (id, session_hash, sid, user_id, client_id, scope, nonce, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            grant_id,
            session_hash,
            super::sessions::public_id(session_hash),
            new.user_id,
            new.client_id,
            new.scope,
            new.nonce,
            now
        ],
    )?;
    let code = secret::generate()?;
    tx.execute(
        "INSERT INTO oidc_codes (hash, grant_id, redirect_uri, code_challenge, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &code.hash[..],
            grant_id,
            new.redirect_uri,
            new.code_challenge,
            now + new.code_ttl_secs
        ],
    )?;
    Ok(code.token)
}

/// A code as stored.
#[derive(Debug, Clone)]
pub struct Code {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub used: bool,
}

/// The code behind a secret, used or not.
pub fn code(conn: &Connection, token: &str) -> Result<Option<Code>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(
        "SELECT c.grant_id, g.client_id, c.redirect_uri, c.code_challenge, c.expires_at,
                c.used_at IS NOT NULL
         FROM oidc_codes c JOIN oidc_grants g ON g.id = c.grant_id WHERE c.hash = ?1",
    )?;
    Ok(stmt
        .query_row([&hash[..]], |r| {
            Ok(Code {
                grant_id: r.get(0)?,
                client_id: r.get(1)?,
                redirect_uri: r.get(2)?,
                code_challenge: r.get(3)?,
                expires_at: r.get(4)?,
                used: r.get(5)?,
            })
        })
        .optional()?)
}

/// Marks a code used; false if it already was.
pub fn use_code(tx: &WriteTx<'_>, token: &str, now: i64) -> Result<bool> {
    let hash = secret::hash(token);
    Ok(tx.execute(
        "UPDATE oidc_codes SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
        params![&hash[..], now],
    )? == 1)
}

/// A grant whose session is live and whose user is active, with what tokens say about it.
#[derive(Debug, Clone)]
pub struct LiveGrant {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub sid: String,
    pub session_hash: Vec<u8>,
    /// When the session's user signed in: the `auth_time` claim.
    pub auth_time: i64,
    pub last_seen_at: i64,
    /// How the session's user signed in: the `amr` and `acr` claims.
    pub amr: Amr,
    pub user: User,
}

/// The grant `id`, if its session is live (not expired, not idle, of the current auth epoch)
/// and its user active. One statement, so all of it is read from the same snapshot.
pub fn live(conn: &Connection, id: &str, idle_secs: i64, now: i64) -> Result<Option<LiveGrant>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.id, g.client_id, g.scope, g.nonce, g.sid, g.session_hash, s.created_at,
                s.last_seen_at, s.amr, {}
         FROM oidc_grants g JOIN sessions s ON s.hash = g.session_hash
              JOIN users u ON u.id = g.user_id
         WHERE g.id = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?2 - ?3
           AND s.epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)
           AND u.status = 'active'",
        users::COLUMNS_OF_U
    ))?;
    Ok(stmt
        .query_row(params![id, now, idle_secs], |r| {
            Ok(LiveGrant {
                id: r.get(0)?,
                client_id: r.get(1)?,
                scope: r.get(2)?,
                nonce: r.get(3)?,
                sid: r.get(4)?,
                session_hash: r.get(5)?,
                auth_time: r.get(6)?,
                last_seen_at: r.get(7)?,
                amr: Amr::from_column(&r.get::<_, String>(8)?),
                user: users::from_row_at(r, 9)?,
            })
        })
        .optional()?)
}

/// Ends a grant: its codes and refresh tokens go with it, and its app gets a back-channel
/// logout unless another grant of the same session still holds it.
pub fn revoke(tx: &WriteTx<'_>, grant_id: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM oidc_grants WHERE id = ?1", [grant_id])? > 0)
}

/// Issues a refresh token in a grant; returns the secret.
pub fn issue_refresh(tx: &WriteTx<'_>, grant_id: &str, now: i64) -> Result<String> {
    let s = secret::generate()?;
    tx.execute(
        "INSERT INTO oidc_refresh_tokens (hash, grant_id, created_at) VALUES (?1, ?2, ?3)",
        params![&s.hash[..], grant_id, now],
    )?;
    Ok(s.token)
}

/// A refresh token as stored: its grant, its app, and whether it was used.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub grant_id: String,
    pub client_id: String,
    pub used: bool,
}

pub fn refresh(conn: &Connection, token: &str) -> Result<Option<Refresh>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(
        "SELECT t.grant_id, g.client_id, t.used_at IS NOT NULL
         FROM oidc_refresh_tokens t JOIN oidc_grants g ON g.id = t.grant_id WHERE t.hash = ?1",
    )?;
    Ok(stmt
        .query_row([&hash[..]], |r| {
            Ok(Refresh {
                grant_id: r.get(0)?,
                client_id: r.get(1)?,
                used: r.get(2)?,
            })
        })
        .optional()?)
}

/// Marks a refresh token used; false if it already was.
pub fn use_refresh(tx: &WriteTx<'_>, token: &str, now: i64) -> Result<bool> {
    let hash = secret::hash(token);
    Ok(tx.execute(
        "UPDATE oidc_refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
        params![&hash[..], now],
    )? == 1)
}

/// Ends every grant of the company (suspended, or its sessions made invalid by a restore) and
/// queues a logout for each app that held one. Returns how many grants ended.
pub fn end_all(tx: &WriteTx<'_>, now: i64) -> Result<usize> {
    tx.execute(
        "INSERT OR IGNORE INTO logout_outbox (client_id, sub, sid, created_at)
         SELECT DISTINCT client_id, user_id, sid, ?1 FROM oidc_grants",
        [now],
    )?;
    Ok(tx.execute("DELETE FROM oidc_grants", [])?)
}

/// The grants of a file (another copy of the company, about to be replaced): `(client, sub,
/// sid)` of each, to queue their logouts in the copy that replaces it.
pub fn holders(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    let mut stmt =
        conn.prepare("SELECT DISTINCT client_id, user_id, sid FROM oidc_grants ORDER BY sid")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Queues logouts for grants that lived in another copy of the company.
pub fn queue_logouts(
    tx: &WriteTx<'_>,
    holders: &[(String, String, String)],
    now: i64,
) -> Result<()> {
    for (client, sub, sid) in holders {
        tx.execute(
            "INSERT OR IGNORE INTO logout_outbox (client_id, sub, sid, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![client, sub, sid, now],
        )?;
    }
    Ok(())
}

/// A back-channel logout to deliver.
#[derive(Debug, Clone)]
pub struct Logout {
    pub id: i64,
    pub client_id: String,
    pub sub: String,
    pub sid: String,
    pub created_at: i64,
    pub attempts: i64,
}

/// Logouts due at `now`, oldest first.
pub fn due_logouts(conn: &Connection, now: i64, limit: u32) -> Result<Vec<Logout>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, client_id, sub, sid, created_at, attempts FROM logout_outbox
         WHERE next_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![now, limit], |r| {
            Ok(Logout {
                id: r.get(0)?,
                client_id: r.get(1)?,
                sub: r.get(2)?,
                sid: r.get(3)?,
                created_at: r.get(4)?,
                attempts: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// How many logouts wait, and when the next is due.
pub fn pending_logouts(conn: &Connection) -> Result<(i64, Option<i64>)> {
    Ok(conn.query_row(
        "SELECT count(*), min(next_at) FROM logout_outbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// A logout delivered (or given up): it leaves the queue.
pub fn logout_done(tx: &WriteTx<'_>, id: i64) -> Result<()> {
    tx.execute("DELETE FROM logout_outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// A delivery failed: try again at `next_at`.
pub fn logout_retry(tx: &WriteTx<'_>, id: i64, next_at: i64) -> Result<()> {
    tx.execute(
        "UPDATE logout_outbox SET attempts = attempts + 1, next_at = ?2 WHERE id = ?1",
        params![id, next_at],
    )?;
    Ok(())
}
