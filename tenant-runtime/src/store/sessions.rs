//! Sessions: the cookie holds a random secret, the database only its SHA-256. Each session has an
//! idle and an absolute expiry, both enforced here on every check.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::store::users::{self, User};
use crate::{Result, WriteTx, secret};

/// Session lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: i64,
    pub absolute: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            idle: 30 * 60,
            absolute: 12 * 3600,
        }
    }
}

/// Seen-at times are written at most this often, so checks stay read-only.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// Where a session came from, shown in the list of active sessions.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub user_agent: String,
    pub ip: String,
}

/// One way a person proved who they are, as RFC 8176 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// A password.
    Pwd,
    /// A one-time code (TOTP, recovery code).
    Otp,
    /// A key bound to hardware (a security key or a device-bound passkey).
    Hwk,
    /// A key held in software (a synced passkey).
    Swk,
    /// An identity provider vouched for the person (the company's own, or a social one).
    Fed,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp => "otp",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
            Self::Fed => "fed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pwd, Self::Otp, Self::Hwk, Self::Swk, Self::Fed]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// How a session's person signed in: the methods used, in a stable order. Two or more make it
/// a multi-factor sign-in (`mfa`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Amr(Vec<Method>);

impl Amr {
    pub fn new(methods: impl IntoIterator<Item = Method>) -> Self {
        let mut v: Vec<Method> = methods.into_iter().collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    pub fn password() -> Self {
        Self::new([Method::Pwd])
    }

    pub fn methods(&self) -> &[Method] {
        &self.0
    }

    pub fn contains(&self, m: Method) -> bool {
        self.0.contains(&m)
    }

    pub fn is_multi_factor(&self) -> bool {
        self.0.len() >= 2
    }

    /// The `amr` claim: each method, plus `mfa` when there are several.
    pub fn values(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.0.iter().map(|m| m.as_str()).collect();
        if self.is_multi_factor() {
            v.push("mfa");
        }
        v
    }

    pub(crate) fn to_column(&self) -> String {
        serde_json::to_string(&self.0.iter().map(|m| m.as_str()).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into())
    }

    pub(crate) fn from_column(s: &str) -> Self {
        let names: Vec<String> = serde_json::from_str(s).unwrap_or_default();
        Self::new(names.iter().filter_map(|n| Method::parse(n)))
    }
}

/// A valid session and its user.
#[derive(Debug, Clone)]
pub struct Current {
    /// Stable, non-secret handle of the session (hex of a second hash of its hash).
    pub id: String,
    /// SHA-256 of the cookie secret: the session's key.
    pub hash: [u8; 32],
    pub user: User,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub amr: Amr,
    /// Whether the caller should record `now` as the last-seen time.
    pub needs_touch: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub ip: String,
}

/// The session's stable, non-secret handle (the `sid` of OpenID Connect).
pub fn public_id(hash: &[u8]) -> String {
    hex::encode(&secret::hash(&hex::encode(hash))[..12])
}

/// Starts a session; returns the secret for the cookie.
pub fn create(
    tx: &WriteTx<'_>,
    user_id: &str,
    lifetimes: Lifetimes,
    origin: &Origin,
    amr: &Amr,
    now: i64,
) -> Result<String> {
    let s = secret::generate()?;
    tx.execute(
        "INSERT INTO sessions (hash, user_id, created_at, last_seen_at, expires_at, epoch, user_agent, ip, amr)
         VALUES (?1, ?2, ?3, ?3, ?4, (SELECT auth_epoch FROM tenant_meta WHERE id = 1), ?5, ?6, ?7)",
        params![
            &s.hash[..],
            user_id,
            now,
            now + lifetimes.absolute,
            truncate(&origin.user_agent, 256),
            truncate(&origin.ip, 64),
            amr.to_column()
        ],
    )?;
    Ok(s.token)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The session behind a cookie secret, if it is live and its user is active. One statement, so
/// the session and the user are read from the same snapshot.
pub fn check(conn: &Connection, token: &str, idle_secs: i64, now: i64) -> Result<Option<Current>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.created_at, s.last_seen_at, s.amr, {} FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?2 - ?3
           AND s.epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)
           AND u.status = 'active'",
        users::COLUMNS_OF_U
    ))?;
    let row = stmt
        .query_row(params![&hash[..], now, idle_secs], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                users::from_row_at(r, 3)?,
            ))
        })
        .optional()?;
    Ok(row.map(|(created_at, last_seen_at, amr, user)| Current {
        id: public_id(&hash),
        hash,
        user,
        created_at,
        last_seen_at,
        amr: Amr::from_column(&amr),
        needs_touch: now - last_seen_at >= TOUCH_EVERY_SECS,
    }))
}

pub fn touch(tx: &WriteTx<'_>, hash: &[u8], now: i64) -> Result<()> {
    tx.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE hash = ?1 AND last_seen_at < ?2",
        params![hash, now],
    )?;
    Ok(())
}

/// Ends one session by its key.
pub fn revoke(tx: &WriteTx<'_>, hash: &[u8]) -> Result<bool> {
    Ok(tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash])? > 0)
}

/// Ends one of a user's sessions by its public id.
pub fn revoke_by_id(tx: &WriteTx<'_>, user_id: &str, id: &str) -> Result<bool> {
    let hashes = hashes_of(tx, user_id)?;
    for h in hashes {
        if public_id(&h) == id {
            return Ok(tx.execute("DELETE FROM sessions WHERE hash = ?1", [&h[..]])? > 0);
        }
    }
    Ok(false)
}

fn hashes_of(conn: &Connection, user_id: &str) -> Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM sessions WHERE user_id = ?1")?;
    let rows = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Ends every session of a user, except optionally one (by its key). Returns how many.
pub fn revoke_all(tx: &WriteTx<'_>, user_id: &str, except: Option<&[u8]>) -> Result<usize> {
    Ok(match except {
        Some(hash) => tx.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND hash <> ?2",
            params![user_id, hash],
        )?,
        None => tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?,
    })
}

/// A user's live sessions, newest first.
pub fn list(conn: &Connection, user_id: &str, idle_secs: i64, now: i64) -> Result<Vec<Summary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, created_at, last_seen_at, expires_at, user_agent, ip FROM sessions
         WHERE user_id = ?1 AND expires_at > ?2 AND last_seen_at > ?2 - ?3
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)
         ORDER BY created_at DESC",
    )?;
    let rows = stmt
        .query_map(params![user_id, now, idle_secs], |r| {
            let hash: Vec<u8> = r.get(0)?;
            Ok(Summary {
                id: public_id(&hash),
                created_at: r.get(1)?,
                last_seen_at: r.get(2)?,
                expires_at: r.get(3)?,
                user_agent: r.get(4)?,
                ip: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Deletes sessions past their absolute or idle expiry.
pub fn purge(tx: &WriteTx<'_>, idle_secs: i64, now: i64) -> Result<usize> {
    Ok(tx.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
        params![now, idle_secs],
    )?)
}
