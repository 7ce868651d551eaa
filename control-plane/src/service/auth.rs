//! Signing in and out, and the session behind a cookie. Resets and invitations are in
//! `recovery`, a person's own sessions and password in `account`; all three speak
//! `identity::AuthError`.
//!
//! Every bearer secret handed out (session cookie, invitation and reset link) has the form
//! `<tenant-id>.<secret>`: the tenant part only says which file to look in; the secret is looked
//! up there by its hash, so a forged tenant part finds nothing.

use serde_json::json;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{self, Origin};
use tenant_runtime::store::users::{self, Role, Status, User};
use tenant_runtime::{TenantId, email};

use super::identity::{
    AuthError, AuthResult, EmailRoute, SignedIn, device_of, new_device_cookie, route, serving,
    split_bearer,
};
use super::policy;
use super::signin::{self, Proof};
use super::{SessionView, TenantView, UserView};
use crate::directory::{Tenant, TenantStatus};
use crate::error::Fault;
use crate::metrics::LoginOutcome;
use crate::state::AppState;

/// A signed-in user, as found from their session.
#[derive(Clone)]
pub struct Signed {
    pub tenant: Tenant,
    pub user: User,
    /// The session's key (SHA-256 of its cookie secret).
    pub session_hash: [u8; 32],
    pub session_id: String,
    /// When the person signed in to this session.
    pub auth_time: i64,
    /// The app acting for the user, when the request came with its access token rather than
    /// the session cookie.
    pub client_id: Option<String>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("tenant", &self.tenant.id)
            .field("user", &self.user.id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl Signed {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant.id
    }

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

async fn find_user(state: &AppState, id: &TenantId, email: &str) -> AuthResult<Option<User>> {
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
    known: Option<&EmailRoute>,
    device_cookie: Option<&str>,
) -> AuthResult<SignedIn> {
    let result = login_attempt(state, raw_email, password, origin, known, device_cookie).await;
    state.metrics.login(match &result {
        Ok(_) => LoginOutcome::Success,
        Err(AuthError::InvalidCredentials) => LoginOutcome::Invalid,
        Err(AuthError::Blocked) => LoginOutcome::Blocked,
        Err(AuthError::Suspended) => LoginOutcome::Suspended,
        Err(AuthError::PasswordResetRequired) => LoginOutcome::ResetRequired,
        Err(AuthError::MfaRequired { .. } | AuthError::MfaEnrollmentRequired { .. }) => {
            LoginOutcome::SecondStep
        }
        Err(AuthError::Throttled { .. }) => LoginOutcome::Throttled,
        Err(AuthError::Fault(Fault::HashQueueFull)) => LoginOutcome::Busy,
        Err(_) => LoginOutcome::Error,
    });
    result
}

async fn login_attempt(
    state: &AppState,
    raw_email: &str,
    password: &str,
    origin: Origin,
    known: Option<&EmailRoute>,
    device_cookie: Option<&str>,
) -> AuthResult<SignedIn> {
    if password.chars().count() > policy::MAX_SIGN_IN_LEN || raw_email.len() > 320 {
        return Err(AuthError::InvalidCredentials);
    }
    let email = email::canonicalize(raw_email);
    let now = state.now();
    let device = device_cookie.and_then(|c| device_of(state, c, &email));
    state
        .throttles
        .login
        .begin(&email, device.as_deref(), &origin.ip, now)
        .await?;
    let routed = match email::parse(&email) {
        Some(_) => route(state, &email, known).await?,
        None => None,
    };
    let user = match &routed {
        Some(t) => find_user(state, &t.id, &email).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .filter(|u| u.status != Status::Invited)
        .and_then(|u| u.password_hash.clone());
    // Each tenant has its share of the hashing queue. An email that routes nowhere is a share of
    // its own, as if it were a tenant: flooding other addresses cannot fill it, so a full queue
    // tells nothing about whether this address has an account.
    let share = match &routed {
        Some(t) => t.id.to_string(),
        None => format!("?{email}"),
    };
    let verified = state
        .hasher
        .verify_for(
            &share,
            password,
            hash.as_deref()
                .unwrap_or(tenant_runtime::password::dummy_hash()),
        )
        .await?
        && hash.is_some();
    let (Some(tenant), Some(user)) = (routed, user) else {
        return Err(AuthError::InvalidCredentials);
    };
    let tenant_id = tenant.id.clone();
    if !verified {
        audit_later(
            state,
            tenant_id,
            "login.failed",
            user.id,
            json!({"ip": origin.ip}),
        );
        return Err(AuthError::InvalidCredentials);
    }
    // A blocked person or a suspended company is told so — after the right password only, so
    // the answer reveals nothing to whoever does not know it — and the attempt still counts
    // as a failure: the right password of a blocked account does not reset the throttle.
    if user.status == Status::Blocked {
        return Err(AuthError::Blocked);
    }
    if tenant.status == TenantStatus::Suspended {
        return Err(AuthError::Suspended);
    }
    if super::sso::rules::password_refused(state, &tenant.id, &user).await? {
        return Err(AuthError::SsoRequired);
    }
    if user.password_reset_required {
        super::recovery::mail_reset_link(state, &email, origin, tenant);
        return Err(AuthError::PasswordResetRequired);
    }
    state
        .throttles
        .login
        .succeeded(&email, device.as_deref(), &origin.ip)
        .await;
    let rehash = match &hash {
        Some(h) if tenant_runtime::password::needs_rehash(h) => {
            Some(state.hasher.hash(password).await?)
        }
        _ => None,
    };
    let finished = signin::finish(state, &tenant, &user, Proof::password(rehash), origin).await?;
    let (cookie, view) = finished.signed_in()?;
    Ok(SignedIn {
        cookie,
        view,
        device: match device {
            Some(_) => None,
            None => new_device_cookie(state, &email),
        },
    })
}

/// The signed-in user behind a session cookie value, if the session is live.
pub async fn current(state: &AppState, cookie: &str) -> AuthResult<Option<Signed>> {
    let Some((tenant_id, secret)) = split_bearer(cookie) else {
        return Ok(None);
    };
    let Some(tenant) = serving(state, &tenant_id).await? else {
        return Ok(None);
    };
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
        touch(state, &tenant_id, found.hash, now).await?;
    }
    Ok(Some(Signed {
        tenant,
        user: found.user,
        session_hash: found.hash,
        session_id: found.id,
        auth_time: found.created_at,
        client_id: None,
    }))
}

/// The person an app acts for with an access token, with the same rights as their session
/// cookie would give.
pub async fn current_by_token(state: &AppState, token: &str) -> AuthResult<Option<Signed>> {
    let Some((tenant, grant, _)) = super::oidc::claims::live_grant(state, token).await? else {
        return Ok(None);
    };
    let Ok(hash) = <[u8; 32]>::try_from(grant.session_hash.as_slice()) else {
        return Ok(None);
    };
    let now = state.now();
    if now - grant.last_seen_at >= tenant_runtime::store::sessions::TOUCH_EVERY_SECS {
        touch(state, &tenant.id, hash, now).await?;
    }
    Ok(Some(Signed {
        tenant,
        user: grant.user,
        session_hash: hash,
        session_id: grant.sid,
        auth_time: grant.auth_time,
        client_id: Some(grant.client_id),
    }))
}

/// Records that a session was seen: at most once a minute per session, so checks stay
/// read-only on the hot path; committed lazily (a power cut may only make a session look idle
/// a minute longer), so the first check of a company just opened waits for no disk sync.
pub(super) async fn touch(
    state: &AppState,
    tenant: &TenantId,
    hash: [u8; 32],
    now: i64,
) -> AuthResult<()> {
    state
        .tenants
        .write_lazily(tenant, move |tx| sessions::touch(tx, &hash, now))
        .await?;
    Ok(())
}

/// Ends the caller's own session (signed in by cookie or by an app's access token); every app
/// holding a grant from it is told by back-channel logout.
pub async fn end_session(state: &AppState, signed: &Signed) -> AuthResult<()> {
    let (hash, user_id, now) = (signed.session_hash, signed.user.id.clone(), state.now());
    state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            if sessions::revoke(tx, &hash)? {
                audit::record(tx, Some(&user_id), "logout", Some(&user_id), json!({}), now)?;
            }
            Ok(())
        })
        .await?;
    super::backchannel::kick(state, &signed.tenant.id).await;
    Ok(())
}

/// Ends the session behind a cookie value.
pub async fn logout(state: &AppState, cookie: &str) -> AuthResult<()> {
    let Some((tenant_id, secret)) = split_bearer(cookie) else {
        return Ok(());
    };
    match state.directory.tenant(&tenant_id).await? {
        None => return Ok(()),
        Some(t) => state.check_placement(&t)?,
    }
    let token = secret.to_owned();
    let now = state.now();
    state
        .tenants
        .write(&tenant_id, move |tx| {
            let user = sessions::check(tx, &token, i64::MAX / 4, now)?;
            if sessions::revoke(tx, &tenant_runtime::secret::hash(&token))?
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
    super::backchannel::kick(state, &tenant_id).await;
    Ok(())
}
