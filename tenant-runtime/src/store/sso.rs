//! The company's identity-provider connections, the people linked to them (by the provider's
//! `sub`), and sign-ins sent to a provider and not yet back.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::store::users::Role;
use crate::{Result, WriteTx};

/// A connection as stored (the client secret sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct SsoConnection {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub client_secret_last4: String,
    pub scopes: String,
    /// Email domains in ASCII form.
    pub domains: Vec<String>,
    pub jit_enabled: bool,
    pub jit_role: Role,
    pub settings: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for SsoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConnection")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, kind, name, issuer, client_id, client_secret_sealed, client_secret_last4,
                 scopes, domains, jit_enabled, jit_role, settings, created_at, updated_at
             FROM sso_connections ",
            $rest
        )
    };
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<SsoConnection> {
    let domains: String = r.get(8)?;
    let role: String = r.get(10)?;
    let settings: String = r.get(11)?;
    Ok(SsoConnection {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        issuer: r.get(3)?,
        client_id: r.get(4)?,
        client_secret_sealed: r.get(5)?,
        client_secret_last4: r.get(6)?,
        scopes: r.get(7)?,
        domains: serde_json::from_str(&domains).unwrap_or_default(),
        jit_enabled: r.get(9)?,
        jit_role: Role::parse(&role).unwrap_or(Role::Member),
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

pub fn list(conn: &Connection) -> Result<Vec<SsoConnection>> {
    let mut stmt = conn.prepare_cached(select!("ORDER BY created_at, id"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<SsoConnection>> {
    let mut stmt = conn.prepare_cached(select!("WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// Inserts or replaces `c` (by id).
pub fn put(tx: &WriteTx<'_>, c: &SsoConnection) -> Result<()> {
    tx.execute(
        "INSERT INTO sso_connections (id, kind, name, issuer, client_id, client_secret_sealed,
             client_secret_last4, scopes, domains, jit_enabled, jit_role, settings, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, issuer = excluded.issuer,
             client_id = excluded.client_id, client_secret_sealed = excluded.client_secret_sealed,
             client_secret_last4 = excluded.client_secret_last4, scopes = excluded.scopes,
             domains = excluded.domains, jit_enabled = excluded.jit_enabled,
             jit_role = excluded.jit_role, settings = excluded.settings,
             updated_at = excluded.updated_at",
        params![
            c.id,
            c.kind,
            c.name,
            c.issuer,
            c.client_id,
            c.client_secret_sealed,
            c.client_secret_last4,
            c.scopes,
            serde_json::to_string(&c.domains).unwrap_or_else(|_| "[]".into()),
            c.jit_enabled,
            c.jit_role.as_str(),
            c.settings.to_string(),
            c.created_at,
            c.updated_at
        ],
    )?;
    Ok(())
}

pub fn delete(tx: &WriteTx<'_>, id: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM sso_connections WHERE id = ?1", [id])? > 0)
}

/// The user linked to `subject` of connection `connection_id`.
pub fn linked_user(
    conn: &Connection,
    connection_id: &str,
    subject: &str,
) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM sso_links WHERE connection_id = ?1 AND subject = ?2",
    )?;
    Ok(stmt
        .query_row(params![connection_id, subject], |r| r.get(0))
        .optional()?)
}

pub fn link(
    tx: &WriteTx<'_>,
    connection_id: &str,
    subject: &str,
    user_id: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sso_links (connection_id, subject, user_id, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (connection_id, subject) DO NOTHING",
        params![connection_id, subject, user_id, now],
    )?;
    Ok(())
}

/// A sign-in sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub connection_id: String,
    pub browser: [u8; 32],
    pub nonce: String,
    pub verifier: String,
    pub pending: Option<String>,
    pub expires_at: i64,
}

pub fn begin(tx: &WriteTx<'_>, hash: &[u8; 32], a: &Attempt, now: i64) -> Result<()> {
    tx.execute("DELETE FROM sso_attempts WHERE expires_at <= ?1", [now])?;
    tx.execute(
        "INSERT INTO sso_attempts (hash, connection_id, browser, nonce, verifier, pending, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            &hash[..],
            a.connection_id,
            &a.browser[..],
            a.nonce,
            a.verifier,
            a.pending,
            now,
            a.expires_at
        ],
    )?;
    Ok(())
}

/// Takes the attempt of `hash` out (single use), if it has not expired.
pub fn take(tx: &WriteTx<'_>, hash: &[u8; 32], now: i64) -> Result<Option<Attempt>> {
    let found = tx
        .query_row(
            "SELECT connection_id, browser, nonce, verifier, pending, expires_at
             FROM sso_attempts WHERE hash = ?1",
            [&hash[..]],
            |r| {
                let browser: Vec<u8> = r.get(1)?;
                Ok(Attempt {
                    connection_id: r.get(0)?,
                    browser: browser.try_into().unwrap_or([0; 32]),
                    nonce: r.get(2)?,
                    verifier: r.get(3)?,
                    pending: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            },
        )
        .optional()?;
    if found.is_some() {
        tx.execute("DELETE FROM sso_attempts WHERE hash = ?1", [&hash[..]])?;
    }
    Ok(found.filter(|a| a.expires_at > now))
}
