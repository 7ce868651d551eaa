//! The company's sign-in policy: one row, read on every sign-in of the company's people.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::{Result, WriteTx};

/// Who must use a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MfaRequired {
    #[default]
    Off,
    Admins,
    All,
}

impl MfaRequired {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Admins => "admins",
            Self::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "admins" => Some(Self::Admins),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Policy {
    /// Password sign-in is refused: people sign in through the company's identity provider.
    pub sso_required: bool,
    /// Break-glass under `sso_required`: admins may still use their password.
    pub sso_required_except_admins: bool,
    /// People may sign in with the operator's social providers.
    pub social_login: bool,
    pub mfa_required: MfaRequired,
    /// A sign-in through the company's identity provider counts as a second factor.
    pub trust_idp_mfa: bool,
}

pub fn get(conn: &Connection) -> Result<Policy> {
    let mut stmt = conn.prepare_cached(
        "SELECT sso_required, sso_required_except_admins, social_login, mfa_required, trust_idp_mfa
         FROM sign_in_policy WHERE id = 1",
    )?;
    Ok(stmt.query_row([], |r| {
        let mfa: String = r.get(3)?;
        Ok(Policy {
            sso_required: r.get(0)?,
            sso_required_except_admins: r.get(1)?,
            social_login: r.get(2)?,
            mfa_required: MfaRequired::parse(&mfa).unwrap_or_default(),
            trust_idp_mfa: r.get(4)?,
        })
    })?)
}

pub fn set(tx: &WriteTx<'_>, p: &Policy, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE sign_in_policy SET sso_required = ?1, sso_required_except_admins = ?2,
             social_login = ?3, mfa_required = ?4, trust_idp_mfa = ?5, updated_at = ?6
         WHERE id = 1",
        params![
            p.sso_required,
            p.sso_required_except_admins,
            p.social_login,
            p.mfa_required.as_str(),
            p.trust_idp_mfa,
            now
        ],
    )?;
    Ok(())
}
