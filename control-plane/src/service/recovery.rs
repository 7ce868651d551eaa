//! Coming back in through a link: password reset requests and resets, and accepting an
//! invitation. Both links are bearer secrets `<tenant-id>.<secret>`, looked up by hash in the
//! tenant's file, single use and expiring.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{self, Amr, Origin};
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, Status, User};
use tenant_runtime::{TenantId, email};

use super::identity::{
    AuthError, AuthResult, EmailRoute, SignedIn, bearer, new_device_cookie, route, split_bearer,
};
use super::policy;
use super::signin::{self, Proof};
use crate::directory::{Tenant, TenantStatus};
use crate::mail;
use crate::state::AppState;
use crate::throttle::Refused;

pub const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;
pub const RESET_TTL_SECS: i64 = 30 * 60;

/// Mails a reset link if the email belongs to an active user. The caller answers 202 at once,
/// whatever happens here, so neither the answer nor its timing tells whether the account exists.
///
/// Throttling: a flood from one address gets 429; past the per-account limit the answer stays
/// the same 202 and simply no mail goes out (AA-05), so one person never sees an error here.
pub async fn forgot(
    state: &AppState,
    raw_email: &str,
    origin: Origin,
    known: Option<EmailRoute>,
) -> AuthResult<()> {
    let key = email::canonicalize(raw_email);
    let now = state.now();
    let throttle = &state.throttles.forgot;
    if let Some(wait) = throttle.address_wait(&origin.ip, now).await? {
        return Err(AuthError::Throttled { retry_after: wait });
    }
    match throttle.begin(&key, None, &origin.ip, now).await {
        Ok(()) => {}
        // Past the per-account limit: the same answer, and no mail.
        Err(Refused::Wait(_)) => return Ok(()),
        Err(other) => return Err(other.into()),
    }
    let Some(email) = email::parse(raw_email) else {
        return Ok(());
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = forgot_now(&state, &email, origin, known.as_ref()).await {
            tracing::warn!(error = %e, "password reset not sent");
        }
    });
    Ok(())
}

/// Mails a reset link to an account of `tenant` in the background (after a sign-in that
/// showed the right password of an account that must choose a new one).
pub(super) fn mail_reset_link(state: &AppState, email: &str, origin: Origin, tenant: Tenant) {
    let (state, email) = (state.clone(), email.to_owned());
    tokio::spawn(async move {
        let known = EmailRoute {
            email: email.clone(),
            tenant: Some(tenant),
        };
        if let Err(e) = forgot_now(&state, &email, origin, Some(&known)).await {
            tracing::warn!(error = %e, "required reset link not sent");
        }
    });
}

async fn forgot_now(
    state: &AppState,
    email: &str,
    origin: Origin,
    known: Option<&EmailRoute>,
) -> AuthResult<()> {
    let Some(tenant) = route(state, email, known).await? else {
        return Ok(());
    };
    let tenant_id = tenant.id.clone();
    if tenant.status != TenantStatus::Active {
        return Ok(());
    }
    let now = state.now();
    let email_owned = email.to_owned();
    let issued = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(user) = users::find_by_email(tx, &email_owned)? else {
                return Ok(None);
            };
            // Blocked users cannot come back through a reset; invited ones use their invitation.
            if user.status != Status::Active {
                return Ok(None);
            }
            let token = tokens::issue(tx, &user.id, Purpose::Reset, RESET_TTL_SECS, now)?;
            audit::record(
                tx,
                None,
                "password.reset_requested",
                Some(&user.id),
                json!({"ip": origin.ip}),
                now,
            )?;
            // Mail goes to the stored address, never to the string that was typed.
            Ok(Some((token, user.email)))
        })
        .await?;
    if let Some((token, to)) = issued {
        let link = state
            .config
            .link(&format!("/reset?token={}", bearer(&tenant_id, &token)));
        let m = mail::templates::password_reset(&state.config.product_name, &to, &link);
        mail::send_later(state.mailer.clone(), m);
    }
    Ok(())
}

/// Tenant and user behind a live invitation or reset token, without using it up.
async fn peek(
    state: &AppState,
    token: &str,
    purpose: Purpose,
) -> AuthResult<(Tenant, TenantId, User)> {
    let (tenant_id, secret) = split_bearer(token).ok_or(AuthError::InvalidToken)?;
    let found = peek_now(state, &tenant_id, secret, purpose).await?;
    found
        .map(|(t, u)| (t, tenant_id, u))
        .ok_or(AuthError::InvalidToken)
}

/// Counts a token redemption attempt against the caller's address; a wrong token is a failure.
pub async fn throttle_token(state: &AppState, token: &str, ip: &str) -> AuthResult<()> {
    let key = hex::encode(tenant_runtime::secret::hash(token));
    Ok(state
        .throttles
        .token
        .begin(&key, None, ip, state.now())
        .await?)
}

/// A token worked: its attempt is not held against the address.
pub async fn token_succeeded(state: &AppState, token: &str, ip: &str) {
    let key = hex::encode(tenant_runtime::secret::hash(token));
    state.throttles.token.succeeded(&key, None, ip).await;
}

async fn peek_now(
    state: &AppState,
    tenant_id: &TenantId,
    secret: &str,
    purpose: Purpose,
) -> AuthResult<Option<(Tenant, User)>> {
    let Some(tenant) = state
        .directory
        .tenant(tenant_id)
        .await?
        .filter(|t| t.status == TenantStatus::Active)
    else {
        return Ok(None);
    };
    state.check_placement(&tenant)?;
    let now = state.now();
    let secret = secret.to_owned();
    let user = state
        .tenants
        .read(tenant_id, move |c| {
            let Some(user_id) = tokens::peek(c, &secret, purpose, now)? else {
                return Ok(None);
            };
            users::get(c, &user_id)
        })
        .await?;
    Ok(user.map(|u| (tenant, u)))
}

/// Who a reset or invitation link is for (the pages show it); an error if it is not live.
pub async fn token_owner(
    state: &AppState,
    token: &str,
    purpose: Purpose,
) -> AuthResult<(Tenant, User)> {
    let (tenant, _, user) = peek(state, token, purpose).await?;
    Ok((tenant, user))
}

/// Sets a new password through a reset link and ends every session of the user. A password
/// that breaks the rules is refused before the token is used.
pub async fn reset(state: &AppState, token: &str, password: &str) -> AuthResult<()> {
    let (tenant, tenant_id, user) = peek(state, token, Purpose::Reset).await?;
    if user.status != Status::Active {
        return Err(AuthError::InvalidToken);
    }
    if super::sso::rules::password_refused(state, &tenant_id, &user).await? {
        return Err(AuthError::SsoRequired);
    }
    policy::check(password, &user.email, &tenant.name)?;
    super::pwned::check(state, password).await?;
    let hash = state.hasher.hash(password).await?;
    let secret = split_bearer(token)
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let now = state.now();
    let ok = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(user_id) = tokens::redeem(tx, &secret, Purpose::Reset, now)? else {
                return Ok(false);
            };
            match users::get(tx, &user_id)? {
                Some(u) if u.status == Status::Active => {}
                _ => return Ok(false),
            }
            users::set_password_hash(tx, &user_id, &hash, now)?;
            crate::failpoint::crash_point("reset.password_set");
            sessions::revoke_all(tx, &user_id, None)?;
            tokens::revoke(tx, &user_id, Some(Purpose::Reset), now)?;
            audit::record(
                tx,
                Some(&user_id),
                "password.reset",
                Some(&user_id),
                json!({}),
                now,
            )?;
            Ok(true)
        })
        .await?;
    super::backchannel::kick(state, &tenant_id).await;
    if ok {
        // Proven through the mailbox: strangers' failures no longer lock this account.
        state.throttles.login.clear(&user.email).await;
        Ok(())
    } else {
        Err(AuthError::InvalidToken)
    }
}

/// Accepts an invitation: sets the password (and name), activates the user, signs them in.
pub async fn accept_invite(
    state: &AppState,
    token: &str,
    password: &str,
    name: Option<&str>,
    origin: Origin,
) -> AuthResult<SignedIn> {
    let (tenant, tenant_id, user) = peek(state, token, Purpose::Invite).await?;
    if user.status != Status::Invited {
        return Err(AuthError::InvalidToken);
    }
    let origin_for_session = origin.clone();
    // Under SSO, an invitation is accepted by signing in through the provider.
    if super::sso::rules::password_refused(state, &tenant_id, &user).await? {
        return Err(AuthError::SsoRequired);
    }
    policy::check(password, &user.email, &tenant.name)?;
    super::pwned::check(state, password).await?;
    let name = name.map(str::trim).map(str::to_owned);
    let hash = state.hasher.hash(password).await?;
    let secret = split_bearer(token)
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let now = state.now();
    let accepted = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(user_id) = tokens::redeem(tx, &secret, Purpose::Invite, now)? else {
                return Ok(None);
            };
            match users::get(tx, &user_id)? {
                Some(u) if u.status == Status::Invited => {}
                _ => return Ok(None),
            }
            users::set_password_hash(tx, &user_id, &hash, now)?;
            users::set_status(tx, &user_id, Status::Active, now)?;
            if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
                users::set_name(tx, &user_id, n, now)?;
            }
            audit::record(
                tx,
                Some(&user_id),
                "invitation.accepted",
                Some(&user_id),
                json!({"ip": origin.ip}),
                now,
            )?;
            users::get(tx, &user_id)
        })
        .await?;
    let user = accepted.ok_or(AuthError::InvalidToken)?;
    // The person proved who they are through their mailbox: whatever strangers did to the
    // sign-in throttle of this address is forgotten.
    state.throttles.login.clear(&user.email).await;
    // The session starts where every sign-in's does: a company that requires a second factor
    // has the new person enrol one first.
    let proof = Proof {
        amr: Amr::password(),
        via: "invitation",
        rehash: None,
    };
    let (cookie, view) = signin::finish(state, &tenant, &user, proof, origin_for_session)
        .await?
        .signed_in()?;
    Ok(SignedIn {
        cookie,
        view,
        device: new_device_cookie(state, &user.email),
    })
}
