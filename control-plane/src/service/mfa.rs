//! The second step of a sign-in. After a right first proof, [`gate`] decides from the
//! person's confirmed factors and the company's policy whether a second step (or enrolling a
//! first factor) must come before a session; [`verify`] checks that step. Between the two
//! travels an MFA token, `<tenant-id>.<secret>`: five minutes, single use, bound to the user
//! and remembering the first proof's methods. Wrong codes count like wrong passwords.

use serde_json::json;
use tenant_runtime::TenantId;
use tenant_runtime::store::factors::{self, Kind};
use tenant_runtime::store::mfa_tokens::{self, Purpose};
use tenant_runtime::store::sessions::{Amr, Method};
use tenant_runtime::store::users::{self, Status, User};
use tenant_runtime::store::{audit, policy as company_policy};

use super::factors::enrolment::{self as account_factors, recovery_hash};
use super::factors::passkey;
use super::factors::totp;
use super::identity::{AuthError, AuthResult, MfaToken, bearer, serving, split_bearer};
use crate::directory::Tenant;
use crate::state::AppState;

/// How long a sign-in may stay halfway through.
pub const TOKEN_TTL_SECS: i64 = account_factors::CEREMONY_TTL_SECS;

/// What must come between a first proof and a session.
#[derive(Debug)]
pub enum Gate {
    /// Nothing: the session may start.
    Pass,
    /// A second step with one of `methods` (`totp`, `webauthn`, `recovery_code`).
    Verify {
        token: MfaToken,
        methods: Vec<&'static str>,
    },
    /// Enrolling a first factor, which the company requires.
    Enrol { token: MfaToken },
}

/// Decides what follows a right first proof (`amr`, by way of `via`).
pub async fn gate(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    amr: &Amr,
    via: &'static str,
) -> AuthResult<Gate> {
    let (user_id, role, amr, now) = (user.id.clone(), user.role, amr.clone(), state.now());
    let gate = state
        .tenants
        .write(tenant, move |tx| {
            let policy = company_policy::get(tx)?;
            // A passkey with user verification is two factors in one; the company's own
            // identity provider counts as one only when the company says so.
            let strong = amr.contains(Method::Hwk) || amr.contains(Method::Swk);
            let trusted_idp = via == "sso" && amr.contains(Method::Fed) && policy.trust_idp_mfa;
            if strong || trusted_idp || amr.is_multi_factor() {
                return Ok(Gate::Pass);
            }
            let mine = factors::list(tx, &user_id)?;
            let mut methods = Vec::new();
            if mine.iter().any(|f| f.factor.kind == Kind::Totp) {
                methods.push("totp");
            }
            if mine.iter().any(|f| f.factor.kind == Kind::Webauthn) {
                methods.push("webauthn");
            }
            if !methods.is_empty() {
                if factors::recovery_codes_left(tx, &user_id)? > 0 {
                    methods.push("recovery_code");
                }
                let token = mfa_tokens::issue(
                    tx,
                    Purpose::Verify,
                    Some(&user_id),
                    &amr,
                    via,
                    TOKEN_TTL_SECS,
                    now,
                )?;
                return Ok(Gate::Verify {
                    token: MfaToken(token),
                    methods,
                });
            }
            if account_factors::required(policy.mfa_required, role) {
                let token = mfa_tokens::issue(
                    tx,
                    Purpose::Enrol,
                    Some(&user_id),
                    &amr,
                    via,
                    TOKEN_TTL_SECS,
                    now,
                )?;
                return Ok(Gate::Enrol {
                    token: MfaToken(token),
                });
            }
            Ok(Gate::Pass)
        })
        .await?;
    Ok(match gate {
        Gate::Verify { token, methods } => Gate::Verify {
            token: MfaToken(bearer(tenant, &token.0)),
            methods,
        },
        Gate::Enrol { token } => Gate::Enrol {
            token: MfaToken(bearer(tenant, &token.0)),
        },
        Gate::Pass => Gate::Pass,
    })
}

/// A second factor as given.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A TOTP code (while enrolling: the code of the factor being enrolled).
    Code(String),
    RecoveryCode(String),
    /// A WebAuthn assertion (the JSON the browser made), for a passkey as second factor.
    Passkey(serde_json::Value),
}

/// A second step that succeeded: who, and how they proved it in all.
#[derive(Debug)]
pub struct Passed {
    pub tenant: Tenant,
    pub user: User,
    pub amr: Amr,
    pub via: &'static str,
}

/// The ways in a token may remember (its `via` column holds one of them).
fn via_of(s: &str) -> &'static str {
    ["password", "invitation", "sso", "social", "passkey"]
        .into_iter()
        .find(|v| *v == s)
        .unwrap_or("password")
}

/// The live sign-in halfway behind an MFA token, with its company and person.
pub(super) struct Halfway {
    pub tenant: Tenant,
    pub user: User,
    pub secret: String,
    pub purpose: Purpose,
    pub pending: mfa_tokens::Pending,
}

pub(super) async fn halfway(state: &AppState, token: &str) -> AuthResult<Halfway> {
    let (tenant_id, secret) = split_bearer(token).ok_or(AuthError::InvalidMfaToken)?;
    let tenant = serving(state, &tenant_id)
        .await?
        .ok_or(AuthError::InvalidMfaToken)?;
    let (s, now) = (secret.to_owned(), state.now());
    let found = state
        .tenants
        .read(&tenant_id, move |c| {
            for purpose in [Purpose::Verify, Purpose::Enrol] {
                if let Some(p) = mfa_tokens::peek(c, &s, purpose, now)? {
                    let user = match &p.user_id {
                        Some(id) => users::get(c, id)?,
                        None => None,
                    };
                    return Ok(user.map(|u| (purpose, p, u)));
                }
            }
            Ok(None)
        })
        .await?;
    let (purpose, pending, user) = found.ok_or(AuthError::InvalidMfaToken)?;
    if user.status != Status::Active {
        return Err(AuthError::InvalidMfaToken);
    }
    Ok(Halfway {
        tenant,
        user,
        secret: secret.to_owned(),
        purpose,
        pending,
    })
}

/// The account key of the second step's throttle: per person, apart from their password's.
fn throttle_key(tenant: &TenantId, user_id: &str) -> String {
    format!("mfa:{tenant}:{user_id}")
}

/// Checks the second step of the sign-in behind `token`. A wrong answer is audited and
/// counted against the person (back-off, then 429); the token stays live until it expires or
/// a right answer uses it up.
pub async fn verify(state: &AppState, token: &str, answer: Answer, ip: &str) -> AuthResult<Passed> {
    let h = halfway(state, token).await?;
    let key = throttle_key(&h.tenant.id, &h.user.id);
    state
        .throttles
        .login
        .begin(&key, None, ip, state.now())
        .await?;
    // A passkey's assertion is checked against the ceremony handed out with this token.
    let passkey_used = match (&answer, &h.pending.ceremony, h.purpose) {
        (Answer::Passkey(assertion), Some(ceremony), Purpose::Verify) => {
            let user_id = h.user.id.clone();
            let mine = state
                .tenants
                .read(&h.tenant.id, move |c| factors::list(c, &user_id))
                .await?;
            passkey::check_second_factor(state, ceremony, &mine, assertion)?
        }
        _ => None,
    };
    let method = passkey_used.as_ref().map_or(Method::Otp, |u| u.method);
    let (totp_key, user_id, secret, purpose, factor_id, now) = (
        totp::key(state),
        h.user.id.clone(),
        h.secret.clone(),
        h.purpose,
        h.pending.factor_id.clone(),
        state.now(),
    );
    let ip_owned = ip.to_owned();
    let outcome = state
        .tenants
        .write(&h.tenant.id, move |tx| {
            let passkey_used = passkey_used;
            if mfa_tokens::peek(tx, &secret, purpose, now)?.is_none() {
                return Ok(Err(AuthError::InvalidMfaToken));
            }
            let (ok, kind) = match (&answer, purpose) {
                (Answer::Code(code), Purpose::Enrol) => {
                    let Some(id) = factor_id.as_deref() else {
                        return Ok(Err(AuthError::InvalidCode));
                    };
                    let ok = totp::use_code(tx, &totp_key, &user_id, Some(id), code, now)?;
                    if ok.is_some()
                        && let Some(f) = factors::get(tx, &user_id, id)?
                    {
                        account_factors::enrolled(tx, &user_id, &f.factor, now)?;
                    }
                    (ok.is_some(), "totp")
                }
                (Answer::Code(code), _) => (
                    totp::use_code(tx, &totp_key, &user_id, None, code, now)?.is_some(),
                    "totp",
                ),
                (Answer::RecoveryCode(code), Purpose::Verify) => {
                    let ok = match recovery_hash(code) {
                        Some(hash) => factors::use_recovery_code(tx, &user_id, &hash, now)?,
                        None => false,
                    };
                    if ok {
                        audit::record(
                            tx,
                            Some(&user_id),
                            "recovery_code.used",
                            Some(&user_id),
                            json!({"ip": ip_owned, "left": factors::recovery_codes_left(tx, &user_id)?}),
                            now,
                        )?;
                    }
                    (ok, "recovery_code")
                }
                (Answer::Passkey(_), Purpose::Verify) => match &passkey_used {
                    Some(u) => {
                        factors::use_passkey(tx, &u.factor_id, u.credential.as_deref(), now)?;
                        (true, "webauthn")
                    }
                    None => (false, "webauthn"),
                },
                _ => (false, "other"),
            };
            if !ok {
                audit::record(
                    tx,
                    Some(&user_id),
                    "mfa.failed",
                    Some(&user_id),
                    json!({"ip": ip_owned, "method": kind}),
                    now,
                )?;
                return Ok(Err(AuthError::InvalidCode));
            }
            if !mfa_tokens::redeem(tx, &secret, purpose, now)? {
                return Ok(Err(AuthError::InvalidMfaToken));
            }
            Ok(Ok(()))
        })
        .await?;
    outcome?;
    finish(state, h, method, &key, ip).await
}

/// The options for a second step with a passkey: the person's passkeys may answer. The
/// ceremony's state is kept with the token.
pub async fn passkey_options(state: &AppState, token: &str) -> AuthResult<serde_json::Value> {
    let h = halfway(state, token).await?;
    if h.purpose != Purpose::Verify {
        return Err(AuthError::InvalidMfaToken);
    }
    let user_id = h.user.id.clone();
    let mine = state
        .tenants
        .read(&h.tenant.id, move |c| factors::list(c, &user_id))
        .await?;
    if !mine.iter().any(|f| f.factor.kind == Kind::Webauthn) {
        return Err(AuthError::InvalidCode);
    }
    let (options, ceremony) = passkey::second_factor_options(state, &mine)?;
    let (secret, now) = (h.secret.clone(), state.now());
    state
        .tenants
        .write(&h.tenant.id, move |tx| {
            mfa_tokens::attach(tx, &secret, None, Some(&ceremony), now)
        })
        .await?;
    Ok(options)
}

async fn finish(
    state: &AppState,
    h: Halfway,
    method: Method,
    key: &str,
    ip: &str,
) -> AuthResult<Passed> {
    state.throttles.login.succeeded(key, None, ip).await;
    let mut methods = h.pending.amr.methods().to_vec();
    methods.push(method);
    Ok(Passed {
        via: via_of(&h.pending.via),
        tenant: h.tenant,
        user: h.user,
        amr: Amr::new(methods),
    })
}

/// Starts enrolling a TOTP factor during a sign-in the company's policy holds up: the secret
/// to add to an authenticator app; its first code then ends the sign-in ([`verify`]).
pub async fn enrol_totp(state: &AppState, token: &str) -> AuthResult<totp::Enrolment> {
    let h = halfway(state, token).await?;
    if h.purpose != Purpose::Enrol {
        return Err(AuthError::InvalidMfaToken);
    }
    let enrolment = account_factors::pending_totp(
        state,
        &h.tenant.id,
        &h.user.id,
        &h.user.email,
        "Authenticator app".to_owned(),
    )
    .await?;
    let (secret, id, now) = (h.secret.clone(), enrolment.id.clone(), state.now());
    let attached = state
        .tenants
        .write(&h.tenant.id, move |tx| {
            mfa_tokens::attach(tx, &secret, Some(&id), None, now)
        })
        .await?;
    if !attached {
        return Err(AuthError::InvalidMfaToken);
    }
    Ok(enrolment)
}
