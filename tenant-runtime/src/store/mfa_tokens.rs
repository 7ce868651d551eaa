//! Sign-ins halfway through: after a right first proof, a short-lived bearer secret (stored as
//! SHA-256) carries the person to their second step or to enrolling a first factor. It is
//! bound to the user, used up by the step that succeeds, and dead after a restore.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::sessions::Amr;
use crate::{Result, WriteTx, secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A second step with one of the person's factors.
    Verify,
    /// Enrolling a first factor, which the company's policy requires.
    Enrol,
    /// A passkey-first sign-in: the challenge handed out after the email step.
    Passkey,
    /// Registering a passkey from the account page: the challenge handed out.
    Register,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Enrol => "enrol",
            Self::Passkey => "passkey",
            Self::Register => "register",
        }
    }
}

/// What a live token holds.
#[derive(Debug, Clone)]
pub struct Pending {
    pub user_id: Option<String>,
    /// How the person proved who they are so far.
    pub amr: Amr,
    pub via: String,
    /// The TOTP factor being enrolled.
    pub factor_id: Option<String>,
    /// A WebAuthn ceremony's state, sealed.
    pub ceremony: Option<String>,
}

/// A new token; its secret is returned once.
pub fn issue(
    tx: &WriteTx<'_>,
    purpose: Purpose,
    user_id: Option<&str>,
    amr: &Amr,
    via: &str,
    ttl_secs: i64,
    now: i64,
) -> Result<String> {
    let s = secret::generate()?;
    tx.execute("DELETE FROM mfa_tokens WHERE expires_at <= ?1", [now])?;
    tx.execute(
        "INSERT INTO mfa_tokens (hash, user_id, purpose, amr, via, epoch, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT auth_epoch FROM tenant_meta WHERE id = 1), ?6, ?7)",
        params![
            &s.hash[..],
            user_id,
            purpose.as_str(),
            amr.to_column(),
            via,
            now,
            now + ttl_secs
        ],
    )?;
    Ok(s.token)
}

/// The live token of this purpose behind a secret, without using it up.
pub fn peek(conn: &Connection, token: &str, purpose: Purpose, now: i64) -> Result<Option<Pending>> {
    let hash = secret::hash(token);
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, amr, via, factor_id, ceremony FROM mfa_tokens
         WHERE hash = ?1 AND purpose = ?2 AND expires_at > ?3
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)",
    )?;
    Ok(stmt
        .query_row(params![&hash[..], purpose.as_str(), now], |r| {
            let amr: String = r.get(1)?;
            Ok(Pending {
                user_id: r.get(0)?,
                amr: Amr::from_column(&amr),
                via: r.get(2)?,
                factor_id: r.get(3)?,
                ceremony: r.get(4)?,
            })
        })
        .optional()?)
}

/// Remembers the factor being enrolled, or a ceremony's state, with a live token.
pub fn attach(
    tx: &WriteTx<'_>,
    token: &str,
    factor_id: Option<&str>,
    ceremony: Option<&str>,
    now: i64,
) -> Result<bool> {
    let hash = secret::hash(token);
    Ok(tx.execute(
        "UPDATE mfa_tokens SET factor_id = COALESCE(?2, factor_id), ceremony = COALESCE(?3, ceremony)
         WHERE hash = ?1 AND expires_at > ?4",
        params![&hash[..], factor_id, ceremony, now],
    )? == 1)
}

/// Uses a token up; of two concurrent redemptions exactly one wins.
pub fn redeem(tx: &WriteTx<'_>, token: &str, purpose: Purpose, now: i64) -> Result<bool> {
    let hash = secret::hash(token);
    Ok(tx.execute(
        "DELETE FROM mfa_tokens WHERE hash = ?1 AND purpose = ?2 AND expires_at > ?3
           AND epoch = (SELECT auth_epoch FROM tenant_meta WHERE id = 1)",
        params![&hash[..], purpose.as_str(), now],
    )? == 1)
}

/// Ends every pending sign-in of a user (their factors were reset).
pub fn revoke_user(tx: &WriteTx<'_>, user_id: &str) -> Result<()> {
    tx.execute("DELETE FROM mfa_tokens WHERE user_id = ?1", [user_id])?;
    Ok(())
}
