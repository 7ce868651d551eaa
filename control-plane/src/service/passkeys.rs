//! Signing in with a passkey alone, after the email step. The options name no credential
//! (the browser offers the person's discoverable passkeys for this site), and the ticket that
//! carries the ceremony is sealed, so the answer to the email step tells no more than the
//! password step does: not whether the address has an account, a company, or a passkey.

use serde_json::{Value, json};
use tenant_runtime::email;
use tenant_runtime::store::audit;
use tenant_runtime::store::factors;
use tenant_runtime::store::mfa_tokens::{self, Purpose};
use tenant_runtime::store::sessions::{Amr, Origin};
use tenant_runtime::store::users::{self, Status};

use super::factors::passkey;
use super::identity::{AuthError, AuthResult, EmailRoute, SignedIn, route};
use super::signin::{self, Proof};
use crate::directory::TenantStatus;
use crate::error::Fault;
use crate::state::AppState;

/// Starts a passkey sign-in for the address typed at the email step: the browser's options
/// and a `passkey_token` to send back with its answer.
pub async fn options(
    state: &AppState,
    raw_email: &str,
    known: Option<&EmailRoute>,
) -> AuthResult<Value> {
    let email = email::canonicalize(raw_email);
    let routed = match email::parse(&email) {
        Some(_) if raw_email.len() <= 320 => route(state, &email, known).await?,
        _ => None,
    };
    let (mut options, ceremony) = passkey::discoverable_options(state)?;
    let ticket = match routed {
        Some(tenant) => {
            let now = state.now();
            let secret = state
                .tenants
                .write(&tenant.id, move |tx| {
                    let user = users::find_by_email(tx, &email)?;
                    let token = mfa_tokens::issue(
                        tx,
                        Purpose::Passkey,
                        user.as_ref().map(|u| u.id.as_str()),
                        &Amr::default(),
                        "passkey",
                        super::factors::enrolment::CEREMONY_TTL_SECS,
                        now,
                    )?;
                    mfa_tokens::attach(tx, &token, None, Some(&ceremony), now)?;
                    Ok(token)
                })
                .await?;
            passkey::seal_ticket(state, Some(&tenant.id), &secret)?
        }
        // Nowhere to look: a ticket like any other, which nothing will accept.
        None => {
            let s = tenant_runtime::secret::generate().map_err(Fault::from)?;
            passkey::seal_ticket(state, None, &s.token)?
        }
    };
    options["passkey_token"] = json!(ticket);
    Ok(options)
}

/// Signs in with the passkey's answer to a ticket of [`options`]: the passkey must be one of
/// the person who typed the address, verified with user verification; the ticket works once.
pub async fn sign_in(
    state: &AppState,
    ticket: &str,
    credential: &Value,
    origin: Origin,
) -> AuthResult<SignedIn> {
    let Some((Some(tenant_id), secret)) = passkey::open_ticket(state, ticket) else {
        return Err(AuthError::InvalidCredentials);
    };
    let tenant = state
        .tenant(&tenant_id)
        .await
        .map_err(Fault::from)?
        .filter(|t| t.status != TenantStatus::Provisioning)
        .ok_or(AuthError::InvalidCredentials)?;
    state.check_placement(&tenant)?;
    let cred_id = passkey::credential_id(credential).ok_or(AuthError::InvalidCredentials)?;
    let (s, now) = (secret.clone(), state.now());
    let found = state
        .tenants
        .read(&tenant_id, move |c| {
            let Some(p) = mfa_tokens::peek(c, &s, Purpose::Passkey, now)? else {
                return Ok(None);
            };
            let user = match &p.user_id {
                Some(id) => users::get(c, id)?,
                None => None,
            };
            let key = factors::by_credential(c, &cred_id)?;
            Ok(Some((p, user, key)))
        })
        .await?;
    let Some((pending, Some(user), Some(key))) = found else {
        return Err(AuthError::InvalidCredentials);
    };
    state
        .throttles
        .login
        .begin(&user.email, None, &origin.ip, now)
        .await?;
    let used = match (&pending.ceremony, key.factor.user_id == user.id) {
        (Some(ceremony), true) => passkey::check_discoverable(state, ceremony, &key, credential)?,
        _ => None,
    };
    let (s, user_id, ip) = (secret, user.id.clone(), origin.ip.clone());
    let used = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(used) = used else {
                audit::record(
                    tx,
                    None,
                    "login.failed",
                    Some(&user_id),
                    json!({"ip": ip, "via": "passkey"}),
                    now,
                )?;
                return Ok(None);
            };
            if !mfa_tokens::redeem(tx, &s, Purpose::Passkey, now)? {
                return Ok(None);
            }
            factors::use_passkey(tx, &used.factor_id, used.credential.as_deref(), now)?;
            Ok(Some(used.method))
        })
        .await?
        .ok_or(AuthError::InvalidCredentials)?;
    if user.status == Status::Blocked {
        return Err(AuthError::Blocked);
    }
    if user.status != Status::Active {
        return Err(AuthError::InvalidCredentials);
    }
    if tenant.status == TenantStatus::Suspended {
        return Err(AuthError::Suspended);
    }
    state
        .throttles
        .login
        .succeeded(&user.email, None, &origin.ip)
        .await;
    let proof = Proof {
        amr: Amr::new([used]),
        via: "passkey",
        rehash: None,
    };
    let (cookie, view) = signin::finish(state, &tenant, &user, proof, origin)
        .await?
        .signed_in()?;
    Ok(SignedIn {
        cookie,
        view,
        device: None,
    })
}
