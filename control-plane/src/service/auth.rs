//! Sign-in, sessions, invitations and password resets.
//!
//! Every bearer secret handed out (session cookie, invitation and reset link) has the form
//! `<tenant-id>.<secret>`: the tenant part only says which file to look in; the secret is looked
//! up there by its hash, so a forged tenant part finds nothing.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{self, Origin};
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, Role, Status, User};
use tenant_runtime::{TenantId, email};

use super::{SessionView, TenantView, UserView, policy};
use crate::directory::{Tenant, TenantStatus};
use crate::error::{ApiError, ApiResult};
use crate::mail;
use crate::state::AppState;

pub const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;
pub const RESET_TTL_SECS: i64 = 30 * 60;

/// A bearer secret split into its tenant and its secret part.
pub fn split_bearer(value: &str) -> Option<(TenantId, &str)> {
    let (tenant, secret) = value.split_once('.')?;
    let tenant = TenantId::parse(tenant).ok()?;
    (secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some((tenant, secret))
}

pub fn bearer(tenant: &TenantId, secret: &str) -> String {
    format!("{tenant}.{secret}")
}

/// A signed-in user, as found from their session.
#[derive(Debug, Clone)]
pub struct Signed {
    pub tenant: Tenant,
    pub tenant_id: TenantId,
    pub user: User,
    /// The cookie secret (without the tenant part).
    pub secret: String,
    pub session_id: String,
}

impl Signed {
    pub fn view(&self) -> SessionView {
        SessionView {
            user: UserView::from(&self.user),
            tenant: TenantView::from(&self.tenant),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// The result of a sign-in: the cookie value and what to show.
#[derive(Debug)]
pub struct SignedIn {
    pub cookie: String,
    pub view: SessionView,
}

/// Appends an audit entry in the background (failure paths must not take longer than others).
fn audit_later(
    state: &AppState,
    tenant: TenantId,
    action: &'static str,
    target: String,
    details: serde_json::Value,
) {
    let router = state.tenants.clone();
    let now = state.now();
    tokio::spawn(async move {
        let entry = move |tx: &tenant_runtime::WriteTx<'_>| {
            audit::record(tx, None, action, Some(&target), details, now).map(|_| ())
        };
        if let Err(e) = router.write(&tenant, entry).await {
            tracing::warn!(error = %e, "audit entry not written");
        }
    });
}

/// Routes an email to a tenant that can serve sign-ins (active or suspended).
async fn route(state: &AppState, email: &str) -> ApiResult<Option<(Tenant, TenantId)>> {
    let Some(tenant) = state.directory.route_email(email).await? else {
        return Ok(None);
    };
    if tenant.status == TenantStatus::Provisioning {
        return Ok(None);
    }
    state.check_placement(&tenant)?;
    let id = tenant.tenant_id().map_err(ApiError::internal)?;
    Ok(Some((tenant, id)))
}

async fn find_user(state: &AppState, id: &TenantId, email: &str) -> ApiResult<Option<User>> {
    let email = email.to_owned();
    Ok(state
        .tenants
        .read(id, move |c| users::find_by_email(c, &email))
        .await?)
}

/// Signs in with email and password. Unknown email, wrong password and an invitation not yet
/// accepted give one answer after the same work; blocked and suspended are told only after the
/// password is verified. Each attempt is counted by outcome (`tenantd_logins_total`).
pub async fn login(
    state: &AppState,
    raw_email: &str,
    password: &str,
    origin: Origin,
) -> ApiResult<SignedIn> {
    let result = login_attempt(state, raw_email, password, origin).await;
    state.metrics.login(match &result {
        Ok(_) => crate::metrics::LoginOutcome::Success,
        Err(e) => crate::metrics::LoginOutcome::of_code(e.code),
    });
    result
}

async fn login_attempt(
    state: &AppState,
    raw_email: &str,
    password: &str,
    origin: Origin,
) -> ApiResult<SignedIn> {
    if password.chars().count() > policy::MAX_LEN || raw_email.len() > 320 {
        return Err(ApiError::invalid_credentials());
    }
    let email = email::canonicalize(raw_email);
    let now = state.now();
    state
        .throttles
        .login
        .begin(&email, &origin.ip, now)
        .map_err(|t| ApiError::too_many_requests(t.0))?;
    let routed = match email::parse(&email) {
        Some(_) => route(state, &email).await?,
        None => None,
    };
    let user = match &routed {
        Some((_, id)) => find_user(state, id, &email).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .filter(|u| u.status != Status::Invited)
        .and_then(|u| u.password_hash.clone());
    let share = routed.as_ref().map_or("-", |(_, id)| id.as_str());
    let verified = state
        .hasher
        .verify_for(
            share,
            password,
            hash.as_deref()
                .unwrap_or(tenant_runtime::password::dummy_hash()),
        )
        .await?
        && hash.is_some();
    let (Some((tenant, tenant_id)), Some(user)) = (routed, user) else {
        return Err(ApiError::invalid_credentials());
    };
    if !verified {
        audit_later(
            state,
            tenant_id,
            "login.failed",
            user.id,
            json!({"ip": origin.ip}),
        );
        return Err(ApiError::invalid_credentials());
    }
    state.throttles.login.succeeded(&email, &origin.ip);
    if user.status == Status::Blocked {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "account_blocked",
            "This account is blocked. Ask your company's administrator.",
        ));
    }
    if tenant.status == TenantStatus::Suspended {
        return Err(suspended());
    }
    let rehash = match &hash {
        Some(h) if tenant_runtime::password::needs_rehash(h) => {
            Some(state.hasher.hash(password).await?)
        }
        _ => None,
    };
    let now = state.now();
    let lifetimes = state.server.session_lifetimes();
    let user_id = user.id.clone();
    let secret = state
        .tenants
        .write(&tenant_id, move |tx| {
            // Re-read under the write lock: the user may have been blocked meanwhile.
            match users::get(tx, &user_id)? {
                Some(u) if u.status == Status::Active => {}
                _ => return Ok(None),
            }
            if let Some(h) = &rehash {
                users::set_password_hash(tx, &user_id, h, now)?;
            }
            users::record_login(tx, &user_id, now)?;
            let secret = sessions::create(tx, &user_id, lifetimes, &origin, now)?;
            audit::record(
                tx,
                Some(&user_id),
                "login.succeeded",
                Some(&user_id),
                json!({"ip": origin.ip}),
                now,
            )?;
            Ok(Some(secret))
        })
        .await?
        .ok_or_else(ApiError::invalid_credentials)?;
    Ok(SignedIn {
        cookie: bearer(&tenant_id, &secret),
        view: SessionView {
            user: UserView::from(&user),
            tenant: TenantView::from(&tenant),
        },
    })
}

pub fn suspended() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "tenant_suspended",
        "Your company's account is suspended. Contact the vendor.",
    )
}

/// The signed-in user behind a session cookie value, if the session is live.
pub async fn current(state: &AppState, cookie: &str) -> ApiResult<Option<Signed>> {
    let Some((tenant_id, secret)) = split_bearer(cookie) else {
        return Ok(None);
    };
    let Some(tenant) = state.tenant(tenant_id.as_str()).await? else {
        return Ok(None);
    };
    match tenant.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(suspended()),
        TenantStatus::Provisioning => return Ok(None),
    }
    state.check_placement(&tenant)?;
    let now = state.now();
    let idle = state.server.session_idle_secs;
    let token = secret.to_owned();
    let found = state
        .tenants
        .read(&tenant_id, move |c| sessions::check(c, &token, idle, now))
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.needs_touch {
        // At most once a minute per session: no write on the hot path otherwise.
        let token = secret.to_owned();
        state
            .tenants
            .write(&tenant_id, move |tx| sessions::touch(tx, &token, now))
            .await?;
    }
    Ok(Some(Signed {
        tenant,
        tenant_id,
        user: found.user,
        secret: secret.to_owned(),
        session_id: found.id,
    }))
}

/// Ends the session behind a cookie value.
pub async fn logout(state: &AppState, cookie: &str) -> ApiResult<()> {
    let Some((tenant_id, secret)) = split_bearer(cookie) else {
        return Ok(());
    };
    match state.directory.tenant(tenant_id.as_str()).await? {
        None => return Ok(()),
        Some(t) => state.check_placement(&t)?,
    }
    let token = secret.to_owned();
    let now = state.now();
    state
        .tenants
        .write(&tenant_id, move |tx| {
            let user = sessions::check(tx, &token, i64::MAX / 4, now)?;
            if sessions::revoke(tx, &token)?
                && let Some(u) = user
            {
                audit::record(
                    tx,
                    Some(&u.user.id),
                    "logout",
                    Some(&u.user.id),
                    json!({}),
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Mails a reset link if the email belongs to an active user. The caller answers 202 at once,
/// whatever happens here, so neither the answer nor its timing tells whether the account exists.
///
/// Throttling: a flood from one address gets 429; past the per-account limit the answer stays
/// the same 202 and simply no mail goes out (AA-05), so one person never sees an error here.
pub fn forgot(state: &AppState, raw_email: &str, origin: Origin) -> ApiResult<()> {
    let key = email::canonicalize(raw_email);
    let now = state.now();
    let throttle = &state.throttles.forgot;
    if let Some(wait) = throttle.address_wait(&origin.ip, now) {
        return Err(ApiError::too_many_requests(wait));
    }
    if throttle.begin(&key, &origin.ip, now).is_err() {
        return Ok(());
    }
    let Some(email) = email::parse(raw_email) else {
        return Ok(());
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = forgot_now(&state, &email, origin).await {
            tracing::warn!(error = %e, "password reset not sent");
        }
    });
    Ok(())
}

async fn forgot_now(state: &AppState, email: &str, origin: Origin) -> ApiResult<()> {
    let Some((tenant, tenant_id)) = route(state, email).await? else {
        return Ok(());
    };
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
) -> ApiResult<(Tenant, TenantId, User)> {
    let (tenant_id, secret) = split_bearer(token).ok_or_else(ApiError::invalid_token)?;
    let found = peek_now(state, &tenant_id, secret, purpose).await?;
    found
        .map(|(t, u)| (t, tenant_id, u))
        .ok_or_else(ApiError::invalid_token)
}

/// Counts a token redemption attempt against the caller's address; a wrong token is a failure.
pub fn throttle_token(state: &AppState, token: &str, ip: &str) -> ApiResult<()> {
    let key = hex::encode(tenant_runtime::secret::hash(token));
    state
        .throttles
        .token
        .begin(&key, ip, state.now())
        .map_err(|t| ApiError::too_many_requests(t.0))
}

/// A token worked: its attempt is not held against the address.
pub fn token_succeeded(state: &AppState, token: &str, ip: &str) {
    let key = hex::encode(tenant_runtime::secret::hash(token));
    state.throttles.token.succeeded(&key, ip);
}

async fn peek_now(
    state: &AppState,
    tenant_id: &TenantId,
    secret: &str,
    purpose: Purpose,
) -> ApiResult<Option<(Tenant, User)>> {
    let Some(tenant) = state
        .directory
        .tenant(tenant_id.as_str())
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
) -> ApiResult<(Tenant, User)> {
    let (tenant, _, user) = peek(state, token, purpose).await?;
    Ok((tenant, user))
}

/// Sets a new password through a reset link and ends every session of the user. A password
/// that breaks the rules is refused before the token is used.
pub async fn reset(state: &AppState, token: &str, password: &str) -> ApiResult<()> {
    let (_, tenant_id, user) = peek(state, token, Purpose::Reset).await?;
    if user.status != Status::Active {
        return Err(ApiError::invalid_token());
    }
    policy::check(password, &user.email)?;
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
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_token())
    }
}

/// Accepts an invitation: sets the password (and name), activates the user, signs them in.
pub async fn accept_invite(
    state: &AppState,
    token: &str,
    password: &str,
    name: Option<&str>,
    origin: Origin,
) -> ApiResult<SignedIn> {
    let (tenant, tenant_id, user) = peek(state, token, Purpose::Invite).await?;
    if user.status != Status::Invited {
        return Err(ApiError::invalid_token());
    }
    policy::check(password, &user.email)?;
    let name = name.map(str::trim).map(str::to_owned);
    let hash = state.hasher.hash(password).await?;
    let secret = split_bearer(token)
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let now = state.now();
    let lifetimes = state.server.session_lifetimes();
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
            users::record_login(tx, &user_id, now)?;
            let session = sessions::create(tx, &user_id, lifetimes, &origin, now)?;
            audit::record(
                tx,
                Some(&user_id),
                "invitation.accepted",
                Some(&user_id),
                json!({"ip": origin.ip}),
                now,
            )?;
            let user = users::get(tx, &user_id)?;
            Ok(user.map(|u| (u, session)))
        })
        .await?;
    let (user, session) = accepted.ok_or_else(ApiError::invalid_token)?;
    Ok(SignedIn {
        cookie: bearer(&tenant_id, &session),
        view: SessionView {
            user: UserView::from(&user),
            tenant: TenantView::from(&tenant),
        },
    })
}

/// A session as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: sessions::Summary,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The caller's live sessions.
pub async fn sessions_of(state: &AppState, signed: &Signed) -> ApiResult<Vec<SessionSummary>> {
    let (user_id, idle, now) = (
        signed.user.id.clone(),
        state.server.session_idle_secs,
        state.now(),
    );
    let list = state
        .tenants
        .read(&signed.tenant_id, move |c| {
            sessions::list(c, &user_id, idle, now)
        })
        .await?;
    Ok(list
        .into_iter()
        .map(|s| SessionSummary {
            current: s.id == signed.session_id,
            session: s,
        })
        .collect())
}

/// Ends one of the caller's own sessions (404 for any other id).
pub async fn end_session(state: &AppState, signed: &Signed, id: &str) -> ApiResult<()> {
    let (user_id, id, now) = (signed.user.id.clone(), id.to_owned(), state.now());
    let ended = state
        .tenants
        .write(&signed.tenant_id, move |tx| {
            let ended = sessions::revoke_by_id(tx, &user_id, &id)?;
            if ended {
                audit::record(
                    tx,
                    Some(&user_id),
                    "session.revoked",
                    Some(&user_id),
                    json!({"session": id}),
                    now,
                )?;
            }
            Ok(ended)
        })
        .await?;
    if ended {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// Signs the caller out everywhere, this session included.
pub async fn end_all_sessions(state: &AppState, signed: &Signed) -> ApiResult<usize> {
    let (user_id, now) = (signed.user.id.clone(), state.now());
    Ok(state
        .tenants
        .write(&signed.tenant_id, move |tx| {
            let n = sessions::revoke_all(tx, &user_id, None)?;
            audit::record(
                tx,
                Some(&user_id),
                "session.revoked_all",
                Some(&user_id),
                json!({"count": n}),
                now,
            )?;
            Ok(n)
        })
        .await?)
}

/// Changes the caller's password: needs the current one, ends every other session.
pub async fn change_password(
    state: &AppState,
    signed: &Signed,
    current: &str,
    new: &str,
    ip: &str,
) -> ApiResult<()> {
    let key = signed.user.email.clone();
    state
        .throttles
        .login
        .begin(&key, ip, state.now())
        .map_err(|t| ApiError::too_many_requests(t.0))?;
    let stored = signed.user.password_hash.clone().unwrap_or_default();
    if current.chars().count() > policy::MAX_LEN || !state.hasher.verify(current, &stored).await? {
        return Err(ApiError::bad_request(
            "wrong_password",
            "Your current password is not correct.",
        ));
    }
    state.throttles.login.succeeded(&key, ip);
    policy::check(new, &signed.user.email)?;
    let hash = state.hasher.hash(new).await?;
    let (user_id, keep, now) = (signed.user.id.clone(), signed.secret.clone(), state.now());
    state
        .tenants
        .write(&signed.tenant_id, move |tx| {
            users::set_password_hash(tx, &user_id, &hash, now)?;
            sessions::revoke_all(tx, &user_id, Some(&keep))?;
            tokens::revoke(tx, &user_id, Some(Purpose::Reset), now)?;
            audit::record(
                tx,
                Some(&user_id),
                "password.changed",
                Some(&user_id),
                json!({}),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(())
}
