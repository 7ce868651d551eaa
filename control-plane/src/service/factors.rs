//! A person's second factors, managed from their account: TOTP apps, passkeys, recovery
//! codes; and an admin's reset of someone's factors. Checking a factor at sign-in is
//! the second step's job (`mfa`), with the helpers of `enrolment`.

/// What enrolling a factor and checking one share (the sign-in's second step uses it too).
pub mod enrolment;
/// Passkeys and security keys (WebAuthn).
pub mod passkey;
/// TOTP secrets, codes and their QR code.
pub mod totp;

use serde::Serialize;
use serde_json::json;
use tenant_runtime::store::factors::{self, Factor};
use tenant_runtime::store::policy as company_policy;
use tenant_runtime::store::users;
use tenant_runtime::store::{audit, mfa_tokens, sessions};

use super::admin::{AdminError, AdminResult, TenantAdmin};
use super::auth::Signed;
use super::policy;
use crate::error::Fault;
use crate::state::AppState;
use crate::throttle::Refused;

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;
/// Longest name of a factor.
pub const MAX_FACTOR_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    /// None of the caller's factors has this id (another person's included).
    #[error("no such factor")]
    NotFound,
    #[error("the code is not correct")]
    InvalidCode,
    /// The company requires a second factor of this person: the last one stays.
    #[error("the last second factor cannot be removed")]
    LastFactor,
    /// Removing a factor needs the current password or a code of another factor.
    #[error("the password or code is not correct")]
    WrongPassword,
    #[error("a name has 1 to {MAX_FACTOR_NAME} characters and no control characters")]
    InvalidName,
    /// A passkey registration that does not verify.
    #[error("the passkey could not be registered")]
    InvalidPasskey,
    #[error("too many attempts; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(FactorError);

impl From<Refused> for FactorError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Wait(retry_after) => Self::Throttled { retry_after },
            Refused::Unavailable(e) => Self::Fault(e.into()),
        }
    }
}

pub type FactorResult<T> = Result<T, FactorError>;

pub use enrolment::{CEREMONY_TTL_SECS, enrolled, recovery_hash, required};

/// What the account page and `GET /api/account/factors` show.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub factors: Vec<Factor>,
    /// Unused recovery codes left.
    pub recovery_codes_left: i64,
    /// Whether the company requires a second factor of this person.
    pub required: bool,
}

pub async fn list(state: &AppState, signed: &Signed) -> FactorResult<Listing> {
    let (user_id, role) = (signed.user.id.clone(), signed.user.role);
    Ok(state
        .tenants
        .read(&signed.tenant.id, move |c| {
            Ok(Listing {
                factors: factors::list(c, &user_id)?
                    .into_iter()
                    .map(|s| s.factor)
                    .collect(),
                recovery_codes_left: factors::recovery_codes_left(c, &user_id)?,
                required: required(company_policy::get(c)?.mfa_required, role),
            })
        })
        .await?)
}

pub fn parse_name(name: Option<&str>, default: &str) -> FactorResult<String> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(default);
    if name.chars().count() > MAX_FACTOR_NAME || name.chars().any(char::is_control) {
        return Err(FactorError::InvalidName);
    }
    Ok(name.to_owned())
}

/// Starts adding a TOTP factor: it counts once confirmed with a code ([`confirm_totp`]).
pub async fn start_totp(
    state: &AppState,
    signed: &Signed,
    name: Option<&str>,
) -> FactorResult<totp::Enrolment> {
    let name = parse_name(name, "Authenticator app")?;
    Ok(enrolment::pending_totp(
        state,
        &signed.tenant.id,
        &signed.user.id,
        &signed.user.email,
        name,
    )
    .await?)
}

/// Confirms a TOTP factor being added with one right code; it counts from now on.
pub async fn confirm_totp(
    state: &AppState,
    signed: &Signed,
    id: &str,
    code: &str,
    ip: &str,
) -> FactorResult<Factor> {
    throttle(state, signed, ip).await?;
    let (key, user_id, id, code, now) = (
        totp::key(state),
        signed.user.id.clone(),
        id.to_owned(),
        code.to_owned(),
        state.now(),
    );
    let confirmed = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let Some(f) = factors::get(tx, &user_id, &id)? else {
                return Ok(Err(FactorError::NotFound));
            };
            if f.factor.confirmed {
                return Ok(Err(FactorError::NotFound));
            }
            if totp::use_code(tx, &key, &user_id, Some(&id), &code, now)?.is_none() {
                return Ok(Err(FactorError::InvalidCode));
            }
            enrolled(tx, &user_id, &f.factor, now)?;
            Ok(factors::get(tx, &user_id, &id)?
                .map(|s| s.factor)
                .ok_or(FactorError::NotFound))
        })
        .await??;
    succeeded(state, signed, ip).await;
    Ok(confirmed)
}

/// How a person proves it is them before removing a factor.
#[derive(Debug, Clone)]
pub enum Confirmation {
    Password(String),
    /// A code of one of their TOTP factors.
    Code(String),
}

/// Removes one of the caller's factors, after their password (or a code). Under a policy
/// that requires a factor of them, the last one stays.
pub async fn remove(
    state: &AppState,
    signed: &Signed,
    id: &str,
    confirmation: Confirmation,
    ip: &str,
) -> FactorResult<()> {
    throttle(state, signed, ip).await?;
    let key = totp::key(state);
    let code = match confirmation {
        Confirmation::Password(p) => {
            let stored = signed.user.password_hash.clone().unwrap_or_default();
            if stored.is_empty()
                || p.chars().count() > policy::MAX_SIGN_IN_LEN
                || !state.hasher.verify(&p, &stored).await?
            {
                return Err(FactorError::WrongPassword);
            }
            None
        }
        Confirmation::Code(c) => Some(c),
    };
    let (user_id, role, id, now) = (
        signed.user.id.clone(),
        signed.user.role,
        id.to_owned(),
        state.now(),
    );
    state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let Some(f) = factors::get(tx, &user_id, &id)? else {
                return Ok(Err(FactorError::NotFound));
            };
            if let Some(code) = &code
                && totp::use_code(tx, &key, &user_id, None, code, now)?.is_none()
            {
                return Ok(Err(FactorError::WrongPassword));
            }
            let left = factors::list(tx, &user_id)?
                .iter()
                .filter(|s| s.factor.id != id)
                .count();
            if f.factor.confirmed
                && left == 0
                && required(company_policy::get(tx)?.mfa_required, role)
            {
                return Ok(Err(FactorError::LastFactor));
            }
            factors::remove(tx, &user_id, &id)?;
            if f.factor.confirmed {
                audit::record(
                    tx,
                    Some(&user_id),
                    "factor.removed",
                    Some(&user_id),
                    json!({"factor": f.factor.id, "kind": f.factor.kind, "name": f.factor.name}),
                    now,
                )?;
            }
            Ok(Ok(()))
        })
        .await??;
    succeeded(state, signed, ip).await;
    Ok(())
}

/// Renames one of the caller's factors.
pub async fn rename(state: &AppState, signed: &Signed, id: &str, name: &str) -> FactorResult<()> {
    let name = parse_name(Some(name), "")?;
    if name.is_empty() {
        return Err(FactorError::InvalidName);
    }
    let (user_id, id) = (signed.user.id.clone(), id.to_owned());
    let found = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            factors::rename(tx, &user_id, &id, &name)
        })
        .await?;
    found.then_some(()).ok_or(FactorError::NotFound)
}

/// A new set of recovery codes, shown once; the old set stops working.
pub async fn new_recovery_codes(state: &AppState, signed: &Signed) -> FactorResult<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| Fault::Unexpected(anyhow::anyhow!("rng: {e}")))?;
        let hex = hex::encode(raw);
        let code = format!(
            "{}-{}-{}-{}",
            &hex[..4],
            &hex[4..8],
            &hex[8..12],
            &hex[12..]
        );
        hashes.extend(recovery_hash(&code));
        codes.push(code);
    }
    let (user_id, now) = (signed.user.id.clone(), state.now());
    state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            factors::set_recovery_codes(tx, &user_id, &hashes, now)?;
            audit::record(
                tx,
                Some(&user_id),
                "recovery_codes.generated",
                Some(&user_id),
                json!({"count": hashes.len()}),
                now,
            )
            .map(|_| ())
        })
        .await?;
    Ok(codes)
}

/// An admin removes every factor and recovery code of one of their people; that person's
/// sessions and pending sign-ins end, and the apps they use are told.
pub async fn admin_reset(state: &AppState, admin: &TenantAdmin, id: &str) -> AdminResult<usize> {
    let signed = admin.signed();
    let (actor, id, now) = (signed.user.id.clone(), id.to_owned(), state.now());
    let removed = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            if users::get(tx, &id)?.is_none() {
                return Ok(None);
            }
            let n = factors::reset(tx, &id)?;
            mfa_tokens::revoke_user(tx, &id)?;
            let ended = sessions::revoke_all(tx, &id, None)?;
            audit::record(
                tx,
                Some(&actor),
                "factors.reset",
                Some(&id),
                json!({"factors": n, "sessions_ended": ended}),
                now,
            )?;
            Ok(Some(n))
        })
        .await?
        .ok_or(AdminError::NotFound)?;
    super::backchannel::kick(state, &signed.tenant.id).await;
    Ok(removed)
}

/// Wrong codes and passwords here count like wrong passwords at sign-in, in the lane of this
/// session.
async fn throttle(state: &AppState, signed: &Signed, ip: &str) -> Result<(), Refused> {
    let lane = format!("session:{}", signed.session_id);
    state
        .throttles
        .login
        .begin(&signed.user.email, Some(&lane), ip, state.now())
        .await
}

async fn succeeded(state: &AppState, signed: &Signed, ip: &str) {
    let lane = format!("session:{}", signed.session_id);
    state
        .throttles
        .login
        .succeeded(&signed.user.email, Some(&lane), ip)
        .await;
}

/// Starts registering a passkey: the browser's options, and a `ceremony` token to send back
/// with its answer (the ceremony's state stays in the tenant file, five minutes).
pub async fn passkey_options(state: &AppState, signed: &Signed) -> FactorResult<serde_json::Value> {
    let (user_id, now) = (signed.user.id.clone(), state.now());
    let mine = state
        .tenants
        .read(&signed.tenant.id, move |c| factors::list(c, &user_id))
        .await?;
    let (options, ceremony) = passkey::registration_options(
        state,
        &signed.user.id,
        &signed.user.email,
        // The name the authenticator shows; a person without one is shown by their address.
        if signed.user.name.is_empty() {
            &signed.user.email
        } else {
            &signed.user.name
        },
        &mine,
    )?;
    let user_id = signed.user.id.clone();
    let token = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let token = mfa_tokens::issue(
                tx,
                mfa_tokens::Purpose::Register,
                Some(&user_id),
                &Default::default(),
                "account",
                CEREMONY_TTL_SECS,
                now,
            )?;
            mfa_tokens::attach(tx, &token, None, Some(&ceremony), now)?;
            Ok(token)
        })
        .await?;
    let mut out = options;
    out["ceremony"] = json!(token);
    Ok(out)
}

/// Registers the passkey the browser made for a ceremony of [`passkey_options`].
pub async fn add_passkey(
    state: &AppState,
    signed: &Signed,
    ceremony: &str,
    credential: &serde_json::Value,
    name: Option<&str>,
) -> FactorResult<Factor> {
    let name = parse_name(name, "Passkey")?;
    let (user_id, token, now) = (signed.user.id.clone(), ceremony.to_owned(), state.now());
    let pending = state
        .tenants
        .read(&signed.tenant.id, move |c| {
            mfa_tokens::peek(c, &token, mfa_tokens::Purpose::Register, now)
        })
        .await?
        .filter(|p| p.user_id.as_deref() == Some(user_id.as_str()))
        .and_then(|p| p.ceremony)
        .ok_or(FactorError::InvalidPasskey)?;
    let registered =
        passkey::register(state, &pending, credential)?.ok_or(FactorError::InvalidPasskey)?;
    let (user_id, token, id) = (
        signed.user.id.clone(),
        ceremony.to_owned(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    let added = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            if !mfa_tokens::redeem(tx, &token, mfa_tokens::Purpose::Register, now)?
                || factors::by_credential(tx, &registered.credential_id)?.is_some()
            {
                return Ok(None);
            }
            factors::add_passkey(
                tx,
                &user_id,
                &id,
                &name,
                &registered.credential_id,
                &registered.credential,
                now,
            )?;
            let f = factors::get(tx, &user_id, &id)?.map(|s| s.factor);
            if let Some(f) = &f {
                enrolled(tx, &user_id, f, now)?;
            }
            Ok(f)
        })
        .await?;
    added.ok_or(FactorError::InvalidPasskey)
}
