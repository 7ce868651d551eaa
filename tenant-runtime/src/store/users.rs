//! Users of one tenant.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::{Error, Result, WriteTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Invited,
    Active,
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: Status,
    /// argon2id PHC string; `None` until an invitation is accepted.
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    /// Must choose a new password (by emailed link) before signing in again.
    pub password_reset_required: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What a new user starts with.
#[derive(Clone)]
pub struct NewUser<'a> {
    /// Canonical email (see [`crate::email::canonicalize`]).
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub status: Status,
    pub password_hash: Option<&'a str>,
}

/// Like [`User`]'s: no password hash (only whether there is one), no email, no name.
impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("role", &self.role)
            .field("status", &self.status)
            .field("password_hash", &self.password_hash.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

pub(crate) const COLUMNS: &str = "id, email, name, role, status, password_hash, created_at, updated_at, last_login_at, password_reset_required";

/// [`COLUMNS`] qualified with the alias `u`, for joins.
pub(crate) const COLUMNS_OF_U: &str = "u.id, u.email, u.name, u.role, u.status, u.password_hash, u.created_at, u.updated_at, u.last_login_at, u.password_reset_required";

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    from_row_at(r, 0)
}

/// A user from a row of [`COLUMNS`], for the other store modules.
pub(crate) fn from_row_pub(r: &Row<'_>) -> rusqlite::Result<User> {
    from_row_at(r, 0)
}

/// A user from the columns of [`COLUMNS`] starting at column `at`.
pub(crate) fn from_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    let role: String = r.get(at + 3)?;
    let status: String = r.get(at + 4)?;
    let bad = |i, v: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, v.into())
    };
    Ok(User {
        id: r.get(at)?,
        email: r.get(at + 1)?,
        name: r.get(at + 2)?,
        role: Role::parse(&role).ok_or_else(|| bad(at + 3, role))?,
        status: Status::parse(&status).ok_or_else(|| bad(at + 4, status))?,
        password_hash: r.get(at + 5)?,
        created_at: r.get(at + 6)?,
        updated_at: r.get(at + 7)?,
        last_login_at: r.get(at + 8)?,
        password_reset_required: r.get(at + 9)?,
    })
}

/// Inserts a user with a fresh random id; [`Error::EmailTaken`] if the email is in use.
pub fn insert(tx: &WriteTx<'_>, new: &NewUser<'_>, now: i64) -> Result<User> {
    insert_with_id(tx, &uuid::Uuid::new_v4().to_string(), new, now)
}

/// Inserts a user with a given id (ids are reserved in the directory before the tenant write).
pub fn insert_with_id(tx: &WriteTx<'_>, id: &str, new: &NewUser<'_>, now: i64) -> Result<User> {
    let r = tx.execute(
        "INSERT INTO users (id, email, name, role, status, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            id,
            new.email,
            new.name,
            new.role.as_str(),
            new.status.as_str(),
            new.password_hash,
            now
        ],
    );
    match r {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, Some(msg)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && msg.contains("users.email") =>
        {
            return Err(Error::EmailTaken);
        }
        Err(e) => return Err(e.into()),
    }
    get(tx, id)?.ok_or_else(|| Error::Unexpected(anyhow::anyhow!("inserted user vanished")))
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// Looks a user up by canonical email.
pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?;
    Ok(stmt.query_row([email], from_row).optional()?)
}

/// One page of users ordered by email, and the total count.
pub fn list(conn: &Connection, offset: u32, limit: u32) -> Result<(Vec<User>, u64)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY email LIMIT ?1 OFFSET ?2"
    ))?;
    let users = stmt
        .query_map(params![limit, offset], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    Ok((users, total as u64))
}

/// Every user, for rebuilding the directory's index.
pub fn all_emails(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT id, email FROM users ORDER BY email")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Admins who can sign in: a tenant must always keep at least one.
pub fn count_active_admins(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'",
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

fn updated(n: usize) -> Result<bool> {
    Ok(n > 0)
}

pub fn set_role(tx: &WriteTx<'_>, id: &str, role: Role, now: i64) -> Result<bool> {
    updated(tx.execute(
        "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, role.as_str(), now],
    )?)
}

pub fn set_status(tx: &WriteTx<'_>, id: &str, status: Status, now: i64) -> Result<bool> {
    updated(tx.execute(
        "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, status.as_str(), now],
    )?)
}

pub fn set_name(tx: &WriteTx<'_>, id: &str, name: &str, now: i64) -> Result<bool> {
    updated(tx.execute(
        "UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, name, now],
    )?)
}

/// Sets a new password hash; a required password reset is then done.
pub fn set_password_hash(tx: &WriteTx<'_>, id: &str, hash: &str, now: i64) -> Result<bool> {
    updated(tx.execute(
        "UPDATE users SET password_hash = ?2, password_reset_required = 0, updated_at = ?3
         WHERE id = ?1",
        params![id, hash, now],
    )?)
}

/// Makes every user with a password choose a new one (by emailed link) before signing in
/// again; returns how many.
pub fn require_password_reset_all(tx: &WriteTx<'_>, now: i64) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE users SET password_reset_required = 1, updated_at = ?1
         WHERE password_hash IS NOT NULL",
        params![now],
    )?)
}

pub fn record_login(tx: &WriteTx<'_>, id: &str, now: i64) -> Result<bool> {
    updated(tx.execute(
        "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
        params![id, now],
    )?)
}

/// Changes a user's address; [`Error::EmailTaken`] if another user of the tenant has it.
pub fn set_email(tx: &WriteTx<'_>, id: &str, email: &str, now: i64) -> Result<bool> {
    let r = tx.execute(
        "UPDATE users SET email = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, email, now],
    );
    match r {
        Ok(n) => updated(n),
        Err(rusqlite::Error::SqliteFailure(e, Some(msg)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && msg.contains("users.email") =>
        {
            Err(Error::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a user with their tokens and sessions (cascade).
pub fn delete(tx: &WriteTx<'_>, id: &str) -> Result<bool> {
    updated(tx.execute("DELETE FROM users WHERE id = ?1", [id])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_password_hash_or_the_email() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let user = User {
            id: "u1".into(),
            email: "pat@acme.test".into(),
            name: "Pat".into(),
            role: Role::Admin,
            status: Status::Active,
            password_hash: Some(hash.into()),
            created_at: 1,
            updated_at: 1,
            last_login_at: None,
            password_reset_required: false,
        };
        let new = NewUser {
            email: "pat@acme.test",
            name: "Pat",
            role: Role::Member,
            status: Status::Active,
            password_hash: Some(hash),
        };
        for shown in [format!("{user:?}"), format!("{new:?}"), format!("{new:#?}")] {
            assert!(
                !shown.contains("argon2") && !shown.contains("aGFzaA"),
                "{shown}"
            );
            assert!(!shown.contains("pat@acme.test"), "{shown}");
        }
        assert!(format!("{new:?}").contains("<redacted>"));
    }
}
