//! The operator's social providers (`tenantctl social add|list|remove`): any OpenID Connect
//! provider, one callback URL with the companies' own. A social sign-in finds no company until
//! the provider answers, so its attempt is kept in the directory; its `state` is
//! `social.<secret>`. The provider's verified email must belong to an active or invited person
//! of a company whose policy allows social sign-in: no one signs up this way.

use serde::Serialize;
use serde_json::json;
use tenant_runtime::store::sessions::Origin;
use tenant_runtime::store::users;

use super::flow::{self, Answer, Done, Failed, audit_failure, browser_hash, secrets};
use super::{Failure, connections, provider};
use crate::directory::{Directory, DirectoryError, SocialAttempt, SocialProviderRow};
use crate::error::Fault;
use crate::keys::ServerKey;
use crate::service::oidc::authorize;
use crate::service::sign_in_policy;
use crate::state::AppState;

/// The `state` prefix of social sign-ins.
pub const STATE_PREFIX: &str = "social.";
/// Our path that sends a browser to a social provider: `/sso/social/{name}`.
pub const START_PREFIX: &str = "/sso/social/";

/// A social provider as listed (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SocialProvider {
    pub name: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("a social provider of that name exists")]
    Exists,
    #[error("no such social provider")]
    NotFound,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(SocialError);

fn listed(r: SocialProviderRow) -> SocialProvider {
    SocialProvider {
        name: r.name,
        label: r.label,
        issuer: r.issuer,
        client_id: r.client_id,
    }
}

pub async fn list(directory: &Directory) -> Result<Vec<SocialProvider>, SocialError> {
    Ok(directory
        .social_providers()
        .await?
        .into_iter()
        .map(listed)
        .collect())
}

/// Adds a provider; `label` defaults to the name, capitalised.
pub async fn add(
    directory: &Directory,
    key: &ServerKey,
    name: &str,
    label: Option<&str>,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<SocialProvider, SocialError> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(SocialError::Invalid(
            "name: 1 to 32 lower-case letters, digits or dashes",
        ));
    }
    let issuer = connections::check_issuer(issuer)
        .map_err(|_| SocialError::Invalid("issuer must be an https URL"))?;
    let label = label
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        });
    if label.chars().count() > 50 || client_id.trim().is_empty() || client_secret.is_empty() {
        return Err(SocialError::Invalid(
            "a label of at most 50 characters, a client id and a client secret are needed",
        ));
    }
    let row = SocialProviderRow {
        name,
        label,
        issuer,
        client_id: client_id.trim().to_owned(),
        client_secret_sealed: connections::seal_secret_with(key, client_secret)?,
    };
    match directory.add_social_provider(&row).await {
        Err(DirectoryError::SlugTaken) => return Err(SocialError::Exists),
        other => other?,
    }
    Ok(listed(row))
}

pub async fn remove(directory: &Directory, name: &str) -> Result<(), SocialError> {
    if directory.remove_social_provider(name).await? {
        Ok(())
    } else {
        Err(SocialError::NotFound)
    }
}

fn hex_hash(secret: &str) -> String {
    hex::encode(browser_hash(secret))
}

/// The provider's authorization URL for a new social sign-in.
pub async fn start(
    state: &AppState,
    name: &str,
    pending: Option<&str>,
    browser: &str,
) -> Result<String, Failure> {
    let p = state
        .directory
        .social_providers()
        .await
        .map_err(|_| Failure::ProviderUnavailable)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or(Failure::InvalidState)?;
    let meta = provider::metadata(state, &p.issuer, false)
        .await
        .map_err(|_| Failure::ProviderUnavailable)?;
    let (secret, nonce, verifier) = secrets().map_err(|_| Failure::ProviderUnavailable)?;
    let attempt = SocialAttempt {
        provider: p.name.clone(),
        browser: hex::encode(browser_hash(browser)),
        nonce: nonce.clone(),
        verifier: verifier.clone(),
        pending: pending
            .filter(|v| authorize::unseal(state, v).is_some())
            .map(str::to_owned),
        expires_at: state.now() + flow::ATTEMPT_SECS,
    };
    state
        .directory
        .begin_social(&hex_hash(&secret), &attempt)
        .await
        .map_err(|_| Failure::ProviderUnavailable)?;
    Ok(flow::authorization_url(
        state,
        &meta.authorization_endpoint,
        &p.client_id,
        "openid email profile",
        &format!("{STATE_PREFIX}{secret}"),
        &nonce,
        &verifier,
        None,
    ))
}

/// Ends a social sign-in.
pub async fn callback(
    state: &AppState,
    answer: &Answer<'_>,
    browser: Option<&str>,
    origin: Origin,
) -> Result<Done, Failed> {
    let secret = answer
        .state
        .and_then(|s| s.strip_prefix(STATE_PREFIX))
        .filter(|s| s.len() == 43)
        .ok_or(Failure::InvalidState)?;
    let attempt = state
        .directory
        .take_social(&hex_hash(secret))
        .await
        .ok()
        .flatten()
        .ok_or(Failure::InvalidState)?;
    let fail = |failure: Failure| Failed {
        failure,
        pending: attempt.pending.clone(),
    };
    let bound = browser.is_some_and(|b| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            hex::encode(browser_hash(b)).as_bytes(),
            attempt.browser.as_bytes(),
        ))
    });
    if !bound {
        return Err(fail(Failure::InvalidState));
    }
    if answer.error.is_some() {
        return Err(fail(Failure::ProviderError));
    }
    let code = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| fail(Failure::ProviderError))?;
    let p = state
        .directory
        .social_providers()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|p| p.name == attempt.provider))
        .ok_or_else(|| fail(Failure::InvalidState))?;
    let meta = provider::metadata(state, &p.issuer, false)
        .await
        .map_err(|_| fail(Failure::ProviderUnavailable))?;
    let secret = connections::open_secret(state, &p.client_secret_sealed)
        .map_err(|_| fail(Failure::ProviderUnavailable))?;
    let id_token = provider::exchange(
        &meta,
        &p.client_id,
        &secret,
        code,
        &attempt.verifier,
        &connections::callback_url(state),
    )
    .await
    .map_err(|_| fail(Failure::ProviderUnavailable))?;
    let person = provider::verify(state, &meta, &p.client_id, &attempt.nonce, &id_token)
        .await
        .map_err(|_| fail(Failure::InvalidIdToken))?;
    let email = flow::checked_email(&person).map_err(|(f, _)| fail(f))?;
    let Some(tenant) = state
        .directory
        .route_email(&email)
        .await
        .map_err(|_| fail(Failure::ProviderUnavailable))?
    else {
        return Err(fail(Failure::SocialNotAllowed));
    };
    let refuse = async |failure: Failure, reason: &str| {
        audit_failure(
            state,
            &tenant.id,
            failure,
            json!({"provider": p.name, "reason": reason}),
        )
        .await;
        fail(failure)
    };
    let allowed = sign_in_policy::of(state, &tenant.id)
        .await
        .map(|pol| pol.social_login)
        .unwrap_or(false);
    if !allowed {
        return Err(refuse(Failure::SocialNotAllowed, "social sign-in is off").await);
    }
    let e = email.clone();
    let user = state
        .tenants
        .read(&tenant.id, move |c| users::find_by_email(c, &e))
        .await
        .ok()
        .flatten();
    let Some(user) = user else {
        return Err(refuse(Failure::SocialNotAllowed, "no such person").await);
    };
    match flow::admit(state, &tenant, user, "social", origin).await {
        Ok(finished) => Ok(Done {
            finished,
            pending: attempt.pending.clone(),
        }),
        Err((failure, reason)) => Err(refuse(failure, &reason).await),
    }
}
