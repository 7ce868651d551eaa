//! Signing in through a company's identity provider: where an email goes (`discover`), the way
//! to the provider (`start`: authorization code with PKCE S256, `state` and `nonce` bound in
//! the company's file to the connection and the browser), and back (`callback`: the ID token
//! checked, the person found or created, then `signin::finish` as after a password).
//!
//! The `state` is `<tenant-id>.<secret>`: the tenant part only says which file holds the
//! attempt (and which node: the forwarding layer routes by it); the attempt is found by the
//! secret's hash, used once, expires, and must come back to the browser that started it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use sha2::Digest;
use tenant_runtime::store::audit;
use tenant_runtime::store::sessions::{Amr, Method, Origin};
use tenant_runtime::store::sso::{self, Attempt, SsoConnection};
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, NewUser, Role, Status, User};
use tenant_runtime::{TenantId, email};

use super::{Failure, connections, domains, provider, random};
use crate::directory::{DirectoryError, Tenant, TenantStatus};
use crate::error::Fault;
use crate::service::identity::{AuthError, bearer, split_bearer};
use crate::service::signin::{self, Finished, Proof};
use crate::state::AppState;

/// How long a person has at the provider.
pub const ATTEMPT_SECS: i64 = 600;

/// Where an email signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Password,
    /// To the company's provider, through this path of ours.
    Sso {
        redirect: String,
    },
}

/// The connection of the company that owns `raw_email`'s domain whose domains include it.
/// Nothing here depends on whether the person has an account.
pub async fn discover(
    state: &AppState,
    raw_email: &str,
    pending: Option<&str>,
) -> Result<Discovery, Fault> {
    let canonical = email::canonicalize(raw_email);
    let Some(domain) = email::parse(&canonical)
        .as_deref()
        .and_then(email::domain_of)
        .and_then(|d| domains::normalize(d).ok())
    else {
        return Ok(Discovery::Password);
    };
    let Some(tenant_id) = state.directory.domain_owner(&domain).await? else {
        return Ok(Discovery::Password);
    };
    let connections = state.tenants.read(&tenant_id, sso::list).await?;
    let Some(c) = connections.iter().find(|c| c.domains.contains(&domain)) else {
        return Ok(Discovery::Password);
    };
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.append_pair("connection", &format!("{tenant_id}.{}", c.id));
    url.append_pair("login_hint", raw_email.trim());
    if let Some(p) = pending {
        url.append_pair("pending", p);
    }
    Ok(Discovery::Sso {
        redirect: format!("{}?{}", START_PATH, url.finish()),
    })
}

/// Our path that sends a browser to a company's provider.
pub const START_PATH: &str = "/sso/start";

/// SHA-256 of the browser-binding cookie.
pub fn browser_hash(cookie: &str) -> [u8; 32] {
    sha2::Sha256::digest(cookie.as_bytes()).into()
}

/// A failure, with the company concerned when known (its audit log gets an entry).
#[derive(Debug)]
pub struct Failed {
    pub failure: Failure,
    /// The app's pending request, when the person came from one.
    pub pending: Option<String>,
}

impl From<Failure> for Failed {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            pending: None,
        }
    }
}

/// Records a failed sign-in in the company's audit log.
pub async fn audit_failure(
    state: &AppState,
    tenant: &TenantId,
    failure: Failure,
    details: serde_json::Value,
) {
    let now = state.now();
    let mut details = details;
    details["code"] = json!(failure.code());
    let r = state
        .tenants
        .write(tenant, move |tx| {
            audit::record(tx, None, "sso.failed", None, details, now).map(|_| ())
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "audit entry of a failed sign-in not written");
    }
}

/// Parses `<tenant-id>.<connection-id>`.
fn connection_ref(value: &str) -> Option<(TenantId, &str)> {
    let (t, c) = value.split_once('.')?;
    Some((TenantId::parse(t).ok()?, c))
}

/// The company and connection `<tenant-id>.<connection-id>` names, if people may sign in.
pub(super) async fn to_start(
    state: &AppState,
    connection: &str,
) -> Result<(TenantId, SsoConnection), Failure> {
    let (tenant_id, conn_id) = connection_ref(connection).ok_or(Failure::InvalidState)?;
    let tenant = state
        .tenant(&tenant_id)
        .await
        .map_err(|_| Failure::ProviderUnavailable)?
        .ok_or(Failure::InvalidState)?;
    if tenant.status == TenantStatus::Suspended {
        return Err(Failure::Suspended);
    }
    let id = conn_id.to_owned();
    let conn = state
        .tenants
        .read(&tenant_id, move |c| sso::get(c, &id))
        .await
        .map_err(|_| Failure::ProviderUnavailable)?
        .ok_or(Failure::InvalidState)?;
    Ok((tenant_id, conn))
}

/// The URL of the provider's authorization endpoint for a new attempt of `browser` (the value
/// of the binding cookie).
pub(super) async fn start_oidc(
    state: &AppState,
    tenant_id: &TenantId,
    conn: &SsoConnection,
    login_hint: Option<&str>,
    pending: Option<&str>,
    browser: &str,
) -> Result<String, Failure> {
    let meta = match provider::metadata(state, &conn.issuer, false).await {
        Ok(m) => m,
        Err(e) => {
            audit_failure(
                state,
                tenant_id,
                Failure::ProviderUnavailable,
                json!({"connection": conn.id, "reason": e}),
            )
            .await;
            return Err(Failure::ProviderUnavailable);
        }
    };
    let (nonce, verifier) = (
        random().map_err(|_| Failure::ProviderUnavailable)?,
        random().map_err(|_| Failure::ProviderUnavailable)?,
    );
    let state_value = begin_attempt(
        state,
        tenant_id,
        Attempt {
            connection_id: conn.id.clone(),
            browser: browser_hash(browser),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            pending: pending.map(str::to_owned),
            expires_at: state.now() + ATTEMPT_SECS,
        },
    )
    .await?;
    Ok(authorization_url(
        state,
        &meta.authorization_endpoint,
        &conn.client_id,
        &conn.scopes,
        &state_value,
        &nonce,
        &verifier,
        login_hint,
    ))
}

/// Keeps `attempt` in the company's file under a new secret's hash; returns the value that
/// names it on the way back (`<tenant-id>.<secret>`: OIDC's `state`, SAML's `RelayState`).
pub(super) async fn begin_attempt(
    state: &AppState,
    tenant: &TenantId,
    attempt: Attempt,
) -> Result<String, Failure> {
    let secret = random().map_err(|_| Failure::ProviderUnavailable)?;
    let (hash, now) = (browser_hash(&secret), state.now());
    state
        .tenants
        .write(tenant, move |tx| sso::begin(tx, &hash, &attempt, now))
        .await
        .map_err(|_| Failure::ProviderUnavailable)?;
    Ok(bearer(tenant, &secret))
}

/// A `state` secret, a nonce and a PKCE verifier.
pub(super) fn secrets() -> Result<(String, String, String), Fault> {
    Ok((random()?, random()?, random()?))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn authorization_url(
    state: &AppState,
    endpoint: &str,
    client_id: &str,
    scopes: &str,
    state_value: &str,
    nonce: &str,
    verifier: &str,
    login_hint: Option<&str>,
) -> String {
    let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let Ok(mut url) = url::Url::parse(endpoint) else {
        return endpoint.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &connections::callback_url(state))
            .append_pair("scope", scopes)
            .append_pair("state", state_value)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(h) = login_hint.filter(|h| !h.is_empty() && h.len() <= 320) {
            q.append_pair("login_hint", h);
        }
    }
    url.into()
}

/// What the provider sent back to `/sso/callback`.
#[derive(Debug, Default)]
pub struct Answer<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// A sign-in that went through.
#[derive(Debug)]
pub struct Done {
    pub finished: Finished,
    pub pending: Option<String>,
}

/// Ends a sign-in through a company's provider.
pub async fn callback(
    state: &AppState,
    answer: &Answer<'_>,
    browser: Option<&str>,
    origin: Origin,
) -> Result<Done, Failed> {
    let (tenant_id, secret) = answer
        .state
        .and_then(split_bearer)
        .ok_or(Failure::InvalidState)?;
    // A forged company part finds no file to look in.
    if !matches!(state.tenant(&tenant_id).await, Ok(Some(_))) {
        return Err(Failure::InvalidState.into());
    }
    let hash = browser_hash(secret);
    let now = state.now();
    let attempt = state
        .tenants
        .write(&tenant_id, move |tx| sso::take(tx, &hash, now))
        .await
        .ok()
        .flatten();
    let Some(attempt) = attempt else {
        audit_failure(state, &tenant_id, Failure::InvalidState, json!({})).await;
        return Err(Failure::InvalidState.into());
    };
    let fail = |failure: Failure| Failed {
        failure,
        pending: attempt.pending.clone(),
    };
    let bound = browser.is_some_and(|b| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            &browser_hash(b)[..],
            &attempt.browser[..],
        ))
    });
    if !bound {
        audit_failure(
            state,
            &tenant_id,
            Failure::InvalidState,
            json!({"connection": attempt.connection_id, "reason": "another browser"}),
        )
        .await;
        return Err(fail(Failure::InvalidState));
    }
    let result = complete(state, &tenant_id, &attempt, answer, origin).await;
    ended(
        state,
        &tenant_id,
        &attempt.connection_id,
        attempt.pending.clone(),
        result,
    )
    .await
}

/// The end of a sign-in through connection `connection_id`: the session (or the step still
/// owed), or the failure, audited with its reason.
pub(super) async fn ended(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &str,
    pending: Option<String>,
    result: Step<Finished>,
) -> Result<Done, Failed> {
    match result {
        Ok(finished) => Ok(Done { finished, pending }),
        Err((failure, reason)) => {
            audit_failure(
                state,
                tenant,
                failure,
                json!({"connection": connection_id, "reason": reason}),
            )
            .await;
            Err(Failed { failure, pending })
        }
    }
}

pub(super) type Step<T> = Result<T, (Failure, String)>;

async fn complete(
    state: &AppState,
    tenant_id: &TenantId,
    attempt: &Attempt,
    answer: &Answer<'_>,
    origin: Origin,
) -> Step<Finished> {
    if let Some(e) = answer.error {
        return Err((Failure::ProviderError, e.chars().take(100).collect()));
    }
    let unavailable = |e: String| (Failure::ProviderUnavailable, e);
    let code = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or((Failure::ProviderError, "no code".into()))?;
    let tenant = state
        .tenant(tenant_id)
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or((Failure::InvalidState, "no such company".into()))?;
    let id = attempt.connection_id.clone();
    let conn = state
        .tenants
        .read(tenant_id, move |c| sso::get(c, &id))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or((Failure::InvalidState, "connection deleted".into()))?;
    let meta = provider::metadata(state, &conn.issuer, false)
        .await
        .map_err(unavailable)?;
    let secret = connections::open_secret(state, &conn.client_secret_sealed)
        .map_err(|e| unavailable(e.to_string()))?;
    let id_token = provider::exchange(
        &meta,
        &conn.client_id,
        &secret,
        code,
        &attempt.verifier,
        &connections::callback_url(state),
    )
    .await
    .map_err(unavailable)?;
    let person = provider::verify(state, &meta, &conn.client_id, &attempt.nonce, &id_token)
        .await
        .map_err(|e| (Failure::InvalidIdToken, e.to_string()))?;
    let user = find_or_create(state, &tenant, &conn, &person).await?;
    admit(state, &tenant, user, "sso", origin).await
}

/// The person behind `person` in the company of `conn`: linked before, or found by a verified
/// email of one of the connection's verified domains (and linked), or created when the
/// connection creates people.
pub(super) async fn find_or_create(
    state: &AppState,
    tenant: &Tenant,
    conn: &SsoConnection,
    person: &provider::Person,
) -> Step<User> {
    let fault = |e: Fault| (Failure::ProviderUnavailable, e.to_string());
    let (cid, sub) = (conn.id.clone(), person.sub.clone());
    let linked = state
        .tenants
        .read(&tenant.id, move |c| {
            Ok(match sso::linked_user(c, &cid, &sub)? {
                Some(uid) => users::get(c, &uid)?,
                None => None,
            })
        })
        .await
        .map_err(|e| fault(e.into()))?;
    if let Some(u) = linked {
        return Ok(u);
    }
    let email = checked_email(person)?;
    let domain = email::domain_of(&email)
        .and_then(|d| domains::normalize(d).ok())
        .unwrap_or_default();
    let owner = state
        .directory
        .domain_owner(&domain)
        .await
        .map_err(|e| fault(e.into()))?;
    if !conn.domains.contains(&domain) || owner.as_ref() != Some(&tenant.id) {
        return Err((Failure::DomainNotAllowed, format!("domain {domain}")));
    }
    let e = email.clone();
    let found = state
        .tenants
        .read(&tenant.id, move |c| users::find_by_email(c, &e))
        .await
        .map_err(|e| fault(e.into()))?;
    let user = match found {
        Some(u) => u,
        None if conn.jit_enabled => create(state, tenant, &email, person, conn.jit_role).await?,
        None => {
            return Err((
                Failure::NoAccount,
                "no account, no automatic creation".into(),
            ));
        }
    };
    let (cid, sub, uid, now) = (
        conn.id.clone(),
        person.sub.clone(),
        user.id.clone(),
        state.now(),
    );
    state
        .tenants
        .write(&tenant.id, move |tx| {
            sso::link(tx, &cid, &sub, &uid, now)?;
            audit::record(
                tx,
                Some(&uid),
                "sso.linked",
                Some(&uid),
                json!({"connection": cid}),
                now,
            )
            .map(|_| ())
        })
        .await
        .map_err(|e| fault(e.into()))?;
    Ok(user)
}

/// The provider's email, if it vouches for it.
pub(super) fn checked_email(person: &provider::Person) -> Step<String> {
    let raw = person
        .email
        .as_deref()
        .ok_or((Failure::EmailNotVerified, "no email".into()))?;
    if !person.email_verified {
        return Err((
            Failure::EmailNotVerified,
            "email_verified is not true".into(),
        ));
    }
    email::parse(&email::canonicalize(raw)).ok_or((Failure::EmailNotVerified, "bad email".into()))
}

/// A new active user of `tenant` (indexed in the directory first, as invitations are).
async fn create(
    state: &AppState,
    tenant: &Tenant,
    email: &str,
    person: &provider::Person,
    role: Role,
) -> Step<User> {
    let fault = |e: String| (Failure::ProviderUnavailable, e);
    let mut user_id = uuid::Uuid::new_v4().to_string();
    match state
        .directory
        .reserve_email(email, &tenant.id, &user_id)
        .await
    {
        Ok(Some(existing)) => user_id = existing.user_id,
        Ok(None) => {}
        Err(DirectoryError::EmailTaken) => {
            return Err((Failure::DomainNotAllowed, "email of another company".into()));
        }
        Err(e) => return Err(fault(e.to_string())),
    }
    let name: String = person
        .name
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let (e, uid, now) = (email.to_owned(), user_id.clone(), state.now());
    let user = state
        .tenants
        .write(&tenant.id, move |tx| {
            let new = NewUser {
                email: &e,
                name: &name,
                role,
                status: Status::Active,
                password_hash: None,
            };
            let user = users::insert_with_id(tx, &uid, &new, now)?;
            audit::record(
                tx,
                None,
                "user.created",
                Some(&user.id),
                json!({"email": user.email, "role": role.as_str(), "via": "sso"}),
                now,
            )?;
            Ok(user)
        })
        .await
        .map_err(|e| fault(e.to_string()))?;
    state
        .directory
        .confirm_email(email, &tenant.id, &user.id)
        .await
        .map_err(|e| fault(e.to_string()))?;
    Ok(user)
}

/// Lets `user` in: refused when blocked or the company suspended; an invited person accepts
/// the invitation now. Ends in `signin::finish`.
pub(super) async fn admit(
    state: &AppState,
    tenant: &Tenant,
    user: User,
    via: &'static str,
    origin: Origin,
) -> Step<Finished> {
    if tenant.status == TenantStatus::Suspended {
        return Err((Failure::Suspended, String::new()));
    }
    let user = match user.status {
        Status::Blocked => return Err((Failure::Blocked, user.id)),
        Status::Active => user,
        Status::Invited => accept_invitation(state, &tenant.id, &user, via).await?,
    };
    let proof = Proof {
        amr: Amr::new([Method::Fed]),
        via,
        rehash: None,
    };
    match signin::finish(state, tenant, &user, proof, origin).await {
        Ok(f) => Ok(f),
        Err(AuthError::InvalidCredentials) => Err((Failure::Blocked, user.id)),
        Err(e) => Err((Failure::ProviderUnavailable, e.to_string())),
    }
}

async fn accept_invitation(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    via: &'static str,
) -> Step<User> {
    let (uid, now) = (user.id.clone(), state.now());
    let accepted = state
        .tenants
        .write(tenant, move |tx| {
            match users::get(tx, &uid)? {
                Some(u) if u.status == Status::Invited => {}
                other => return Ok(other),
            }
            users::set_status(tx, &uid, Status::Active, now)?;
            tokens::revoke(tx, &uid, Some(Purpose::Invite), now)?;
            audit::record(
                tx,
                Some(&uid),
                "invitation.accepted",
                Some(&uid),
                json!({"via": via}),
                now,
            )?;
            users::get(tx, &uid)
        })
        .await
        .map_err(|e| (Failure::ProviderUnavailable, e.to_string()))?;
    accepted.ok_or((Failure::NoAccount, "user gone".into()))
}
