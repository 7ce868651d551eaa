//! Second factors (TOTP, passkeys) and recovery codes of a company's people. Secrets arrive
//! here already sealed or hashed: this store never sees a TOTP secret in clear or a recovery
//! code.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{Result, WriteTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Totp,
    Webauthn,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Webauthn => "webauthn",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "webauthn" {
            Self::Webauthn
        } else {
            Self::Totp
        }
    }
}

/// A factor as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Factor {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub kind: Kind,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    #[serde(skip)]
    pub confirmed: bool,
}

/// A factor with what checking it needs.
#[derive(Debug, Clone)]
pub struct Stored {
    pub factor: Factor,
    /// TOTP: the sealed secret.
    pub secret: Option<String>,
    /// WebAuthn: the passkey as webauthn-rs serialises it.
    pub credential: Option<String>,
    pub last_step: Option<i64>,
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let kind: String = r.get(2)?;
    Ok(Stored {
        factor: Factor {
            id: r.get(0)?,
            user_id: r.get(1)?,
            kind: Kind::parse(&kind),
            name: r.get(3)?,
            created_at: r.get(4)?,
            last_used_at: r.get(5)?,
            confirmed: r.get(6)?,
        },
        secret: r.get(7)?,
        credential: r.get(8)?,
        last_step: r.get(9)?,
    })
}

/// A user's confirmed factors, oldest first.
pub fn list(conn: &Connection, user_id: &str) -> Result<Vec<Stored>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, kind, name, created_at, last_used_at, confirmed, secret, credential, last_step
         FROM factors WHERE user_id = ?1 AND confirmed = 1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([user_id], stored)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One factor of this user, confirmed or not; another user's is not found.
pub fn get(conn: &Connection, user_id: &str, id: &str) -> Result<Option<Stored>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, kind, name, created_at, last_used_at, confirmed, secret, credential, last_step
         FROM factors WHERE user_id = ?1 AND id = ?2",
    )?;
    Ok(stmt.query_row(params![user_id, id], stored).optional()?)
}

/// The passkey with this credential id, whoever holds it (passkey-first sign-in).
pub fn by_credential(conn: &Connection, credential_id: &[u8]) -> Result<Option<Stored>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, kind, name, created_at, last_used_at, confirmed, secret, credential, last_step
         FROM factors WHERE credential_id = ?1 AND confirmed = 1",
    )?;
    Ok(stmt.query_row([credential_id], stored).optional()?)
}

/// A new TOTP factor, unconfirmed until [`confirm_totp`]; earlier unconfirmed ones of the user
/// are dropped.
pub fn add_totp(
    tx: &WriteTx<'_>,
    user_id: &str,
    id: &str,
    name: &str,
    sealed_secret: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "DELETE FROM factors WHERE user_id = ?1 AND confirmed = 0",
        [user_id],
    )?;
    tx.execute(
        "INSERT INTO factors (id, user_id, kind, name, secret, created_at)
         VALUES (?1, ?2, 'totp', ?3, ?4, ?5)",
        params![id, user_id, name, sealed_secret, now],
    )?;
    Ok(())
}

/// A confirmed passkey.
pub fn add_passkey(
    tx: &WriteTx<'_>,
    user_id: &str,
    id: &str,
    name: &str,
    credential_id: &[u8],
    credential: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO factors (id, user_id, kind, name, credential, credential_id, confirmed, created_at)
         VALUES (?1, ?2, 'webauthn', ?3, ?4, ?5, 1, ?6)",
        params![id, user_id, name, credential, credential_id, now],
    )?;
    Ok(())
}

/// Records a TOTP code's time step as used, confirming the factor: false when this step (or a
/// later one) was already used, so a code works once.
pub fn use_totp_step(
    tx: &WriteTx<'_>,
    user_id: &str,
    id: &str,
    step: i64,
    now: i64,
) -> Result<bool> {
    let n = tx.execute(
        "UPDATE factors SET last_step = ?3, last_used_at = ?4, confirmed = 1
         WHERE user_id = ?1 AND id = ?2 AND kind = 'totp' AND (last_step IS NULL OR last_step < ?3)",
        params![user_id, id, step, now],
    )?;
    Ok(n == 1)
}

/// Records a passkey's use, with its updated state (signature counter, backup flags).
pub fn use_passkey(tx: &WriteTx<'_>, id: &str, credential: Option<&str>, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE factors SET last_used_at = ?2, credential = COALESCE(?3, credential)
         WHERE id = ?1 AND kind = 'webauthn'",
        params![id, now, credential],
    )?;
    Ok(())
}

pub fn rename(tx: &WriteTx<'_>, user_id: &str, id: &str, name: &str) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE factors SET name = ?3 WHERE user_id = ?1 AND id = ?2 AND confirmed = 1",
        params![user_id, id, name],
    )? == 1)
}

pub fn remove(tx: &WriteTx<'_>, user_id: &str, id: &str) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM factors WHERE user_id = ?1 AND id = ?2",
        params![user_id, id],
    )? == 1)
}

/// Removes every factor and recovery code of a user; the number of factors removed.
pub fn reset(tx: &WriteTx<'_>, user_id: &str) -> Result<usize> {
    let n = tx.execute("DELETE FROM factors WHERE user_id = ?1", [user_id])?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    Ok(n)
}

/// Replaces the user's recovery codes with these hashes.
pub fn set_recovery_codes(
    tx: &WriteTx<'_>,
    user_id: &str,
    hashes: &[[u8; 32]],
    now: i64,
) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO recovery_codes (hash, user_id, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for h in hashes {
        stmt.execute(params![&h[..], user_id, now])?;
    }
    Ok(())
}

/// Uses one recovery code up; false when it is not the user's or already used.
pub fn use_recovery_code(
    tx: &WriteTx<'_>,
    user_id: &str,
    hash: &[u8; 32],
    now: i64,
) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE hash = ?1 AND user_id = ?2 AND used_at IS NULL",
        params![&hash[..], user_id, now],
    )? == 1)
}

/// How many unused recovery codes the user has.
pub fn recovery_codes_left(conn: &Connection, user_id: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )?)
}
