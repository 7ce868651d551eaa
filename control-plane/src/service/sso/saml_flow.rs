//! Signing in through a company's SAML 2.0 identity provider.
//!
//! - `start`: an AuthnRequest (HTTP-Redirect binding) whose `RelayState` is
//!   `<tenant-id>.<secret>`; the secret's hash finds, once, the attempt in the company's file:
//!   the connection, the request's ID and the browser that started it.
//! - `acs`: the IdP's Response, posted by the browser from the IdP's site. A cross-site POST
//!   carries no `SameSite=Lax` cookie, so the browser cannot be checked here: every check of
//!   the response runs (signature, destination, audience, times, issuer, `InResponseTo`), the
//!   assertion's ID enters the replay cache (in the directory: one acceptance across nodes),
//!   and the browser is sent on to `finish` with a sealed, short-lived ticket.
//! - `finish`: a top-level GET that carries the binding cookie: the ticket must come back to
//!   the browser that started the attempt (not for IdP-initiated sign-ins, which have none),
//!   and once; then the person is found as for OpenID Connect connections (by NameID once
//!   linked, the first time by email within the connection's verified domains).

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;
use tenant_runtime::TenantId;
use tenant_runtime::store::sso::{self, Attempt, SsoConnection};

use super::flow::{self, ATTEMPT_SECS, Done, Failed, audit_failure, browser_hash};
use super::saml_settings::{FINISH_PATH, SamlSettings, acs_url, entity_id, reference};
use super::{Failure, connections, random};
use crate::directory::TenantStatus;
use crate::keys::jws;
use crate::service::identity::{bearer, split_bearer};
use crate::service::saml::{self, Asserted, REPLAYED, SamlError, Sp};
use crate::state::AppState;

/// How long the browser has from the ACS to `finish`.
const TICKET_SECS: i64 = 120;
/// The longest an assertion ID is remembered.
const REMEMBER_MAX_SECS: i64 = 86_400;
/// The shortest: longer than samael accepts an old response (5 min issue delay + skew).
const REMEMBER_MIN_SECS: i64 = 900;
const TICKET_PURPOSE: &str = "saml-finish";

fn sp(
    state: &AppState,
    tenant: &TenantId,
    c: &SsoConnection,
    s: &SamlSettings,
) -> Result<Sp, SamlError> {
    let key = connections::open_secret(state, &s.sp_key_sealed)
        .map_err(|e| SamlError::Internal(e.to_string()))?;
    Sp::from_pem(
        entity_id(state, tenant, &c.id),
        acs_url(state, tenant, &c.id),
        &key,
        &s.sp_certificate,
    )
}

/// Parses `<tenant-id>.<connection-id>`.
fn parse_reference(value: &str) -> Option<(TenantId, &str)> {
    let (t, c) = value.split_once('.')?;
    (!c.is_empty() && c.len() <= 64).then_some(())?;
    Some((TenantId::parse(t).ok()?, c))
}

async fn connection(state: &AppState, tenant: &TenantId, id: &str) -> Option<SsoConnection> {
    let id = id.to_owned();
    state
        .tenants
        .read(tenant, move |c| sso::get(c, &id))
        .await
        .ok()
        .flatten()
        .filter(|c| c.kind == "saml")
}

/// Our metadata for the connection `reference`, for the company's IdP; `None` when there is
/// no such SAML connection.
pub async fn sp_metadata(state: &AppState, reference: &str) -> Option<String> {
    let (tenant, id) = parse_reference(reference)?;
    state.tenant(&tenant).await.ok().flatten()?;
    let c = connection(state, &tenant, id).await?;
    let s = SamlSettings::of(&c)?;
    match sp(state, &tenant, &c, &s)
        .and_then(|sp| sp.metadata_xml(&s.idp_metadata_xml, s.sign_requests))
    {
        Ok(xml) => Some(xml),
        Err(e) => {
            tracing::warn!(error = %e, code = e.code(), "SAML metadata of a connection");
            None
        }
    }
}

/// The IdP URL of a new SP-initiated attempt of `browser` (the binding cookie's value).
pub(super) async fn start(
    state: &AppState,
    tenant: &TenantId,
    c: &SsoConnection,
    pending: Option<&str>,
    browser: &str,
) -> Result<String, Failure> {
    let s = SamlSettings::of(c).ok_or(Failure::InvalidState)?;
    let made = saml::parse_idp_metadata(&s.idp_metadata_xml)
        .and_then(|idp| Ok((idp, sp(state, tenant, c, &s)?)));
    let (idp, sp) = match made {
        Ok(v) => v,
        Err(e) => {
            audit_failure(
                state,
                tenant,
                Failure::ProviderUnavailable,
                json!({"connection": c.id, "reason": e.code()}),
            )
            .await;
            return Err(Failure::ProviderUnavailable);
        }
    };
    // An xs:ID must not start with a digit.
    let request_id = format!("_{}", random().map_err(|_| Failure::ProviderUnavailable)?);
    let relay_state = flow::begin_attempt(
        state,
        tenant,
        Attempt {
            connection_id: c.id.clone(),
            browser: browser_hash(browser),
            nonce: request_id.clone(),
            verifier: String::new(),
            pending: pending.map(str::to_owned),
            expires_at: state.now() + ATTEMPT_SECS,
        },
    )
    .await?;
    sp.authn_request_url(
        &idp,
        &s.idp_metadata_xml,
        &request_id,
        &relay_state,
        s.sign_requests,
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "SAML AuthnRequest");
        Failure::ProviderUnavailable
    })
}

/// What the IdP posted to the ACS.
#[derive(Debug, Default)]
pub struct Posted<'a> {
    pub saml_response: Option<&'a str>,
    pub relay_state: Option<&'a str>,
}

/// What the browser carries from the ACS to `finish`, sealed under the server key.
#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    /// The replay cache's digest of the assertion: the ticket is used once.
    digest: String,
    /// The company, as sealed: the token's readable prefix only routes the request.
    tenant: String,
    connection: String,
    name_id: String,
    email: Option<String>,
    name: Option<String>,
    /// Hex SHA-256 of the binding cookie of the browser that started the attempt; none for an
    /// IdP-initiated sign-in.
    browser: Option<String>,
    pending: Option<String>,
    expires_at: i64,
}

fn digest(tenant: &TenantId, connection_id: &str, assertion_id: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(reference(tenant, connection_id).as_bytes());
    h.update([0]);
    h.update(assertion_id.as_bytes());
    hex::encode(h.finalize())
}

/// Checks a response posted to the ACS of connection `reference`; on success, the path (with
/// its ticket) the browser must go to next.
pub async fn acs(state: &AppState, reference: &str, posted: &Posted<'_>) -> Result<String, Failed> {
    let (tenant_id, conn_id) = parse_reference(reference).ok_or(Failure::InvalidState)?;
    let tenant = match state.tenant(&tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(Failure::InvalidState.into()),
        Err(_) => return Err(Failure::ProviderUnavailable.into()),
    };
    let Some(c) = connection(state, &tenant_id, conn_id).await else {
        return Err(Failure::InvalidState.into());
    };
    if tenant.status == TenantStatus::Suspended {
        return Err(Failure::Suspended.into());
    }
    // The attempt this RelayState names, if it is one of ours.
    let ours = posted
        .relay_state
        .and_then(split_bearer)
        .filter(|(t, _)| *t == tenant_id);
    let attempt = match ours {
        Some((_, secret)) => {
            let (hash, now) = (browser_hash(secret), state.now());
            let found = state
                .tenants
                .write(&tenant_id, move |tx| sso::take(tx, &hash, now))
                .await
                .ok()
                .flatten();
            match found {
                Some(a) if a.connection_id == c.id => Some(a),
                other => {
                    let reason = if other.is_some() {
                        "another connection's attempt"
                    } else {
                        "unknown, used or expired RelayState"
                    };
                    audit_failure(
                        state,
                        &tenant_id,
                        Failure::InvalidState,
                        json!({"connection": c.id, "reason": reason}),
                    )
                    .await;
                    return Err(Failure::InvalidState.into());
                }
            }
        }
        None => None,
    };
    let pending = attempt.as_ref().and_then(|a| a.pending.clone());
    let refuse = |code: &'static str| Failed {
        failure: Failure::Saml(code),
        pending: pending.clone(),
    };
    let asserted = match check(state, &tenant_id, &c, posted, attempt.as_ref()).await {
        Ok(a) => a,
        Err(e) => {
            audit_failure(
                state,
                &tenant_id,
                Failure::Saml(e.code()),
                json!({"connection": c.id, "reason": e.code(), "detail": e.to_string()}),
            )
            .await;
            return Err(refuse(e.code()));
        }
    };
    let now = state.now();
    let digest = digest(&tenant_id, &c.id, &asserted.assertion_id);
    let remember = asserted
        .valid_until
        .clamp(now + REMEMBER_MIN_SECS, now + REMEMBER_MAX_SECS);
    match state
        .directory
        .accept_saml_assertion(&digest, remember)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            audit_failure(
                state,
                &tenant_id,
                Failure::Saml(REPLAYED),
                json!({"connection": c.id, "reason": REPLAYED}),
            )
            .await;
            return Err(refuse(REPLAYED));
        }
        Err(_) => {
            return Err(Failed {
                failure: Failure::ProviderUnavailable,
                pending,
            });
        }
    }
    let ticket = Ticket {
        digest,
        tenant: tenant_id.to_string(),
        connection: c.id.clone(),
        name_id: asserted.name_id,
        email: asserted.email,
        name: asserted.name,
        browser: attempt.as_ref().map(|a| hex::encode(a.browser)),
        pending: pending.clone(),
        expires_at: now + TICKET_SECS,
    };
    let sealed = serde_json::to_vec(&ticket)
        .ok()
        .and_then(|plain| jws::seal(&state.keys.derive(TICKET_PURPOSE), &plain).ok())
        .ok_or(Failed {
            failure: Failure::ProviderUnavailable,
            pending,
        })?;
    Ok(format!(
        "{FINISH_PATH}?token={}",
        bearer(&tenant_id, &sealed)
    ))
}

/// The checks of `saml::Sp::check_response`, on the blocking pool (XML signature checking
/// is CPU work).
async fn check(
    state: &AppState,
    tenant: &TenantId,
    c: &SsoConnection,
    posted: &Posted<'_>,
    attempt: Option<&Attempt>,
) -> Result<Asserted, SamlError> {
    let s = SamlSettings::of(c).ok_or_else(|| SamlError::Internal("settings".into()))?;
    let response = posted
        .saml_response
        .filter(|r| !r.is_empty())
        .ok_or(SamlError::Malformed)?
        .to_owned();
    let idp = saml::parse_idp_metadata(&s.idp_metadata_xml)?;
    let sp = sp(state, tenant, c, &s)?;
    let request_id = attempt.map(|a| a.nonce.clone());
    tokio::task::spawn_blocking(move || {
        sp.check_response(
            &idp,
            &s.idp_metadata_xml,
            &response,
            request_id.as_deref(),
            s.idp_initiated,
            &s.attribute_names(),
        )
    })
    .await
    .map_err(|e| SamlError::Internal(e.to_string()))?
}

/// Ends a sign-in whose response the ACS accepted: `token` is the ticket it issued, `browser`
/// the binding cookie's value.
pub async fn finish(
    state: &AppState,
    token: &str,
    browser: Option<&str>,
    origin: tenant_runtime::store::sessions::Origin,
) -> Result<Done, Failed> {
    let (tenant_id, sealed) = token.split_once('.').ok_or(Failure::InvalidState)?;
    let tenant_id = TenantId::parse(tenant_id).map_err(|_| Failure::InvalidState)?;
    let ticket: Ticket = jws::open(&state.keys.derive(TICKET_PURPOSE), sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .filter(|t: &Ticket| t.tenant == tenant_id.as_str())
        .ok_or(Failure::InvalidState)?;
    let fail = |failure: Failure| Failed {
        failure,
        pending: ticket.pending.clone(),
    };
    let (tenant_ref, connection_ref) = (&tenant_id, &ticket.connection);
    let invalid = |reason: &'static str| async move {
        audit_failure(
            state,
            tenant_ref,
            Failure::InvalidState,
            json!({"connection": connection_ref, "reason": reason}),
        )
        .await;
    };
    if ticket.expires_at <= state.now() {
        invalid("the sign-in took too long").await;
        return Err(fail(Failure::InvalidState));
    }
    if let Some(expected) = &ticket.browser {
        let bound = browser.is_some_and(|b| {
            let got = hex::encode(browser_hash(b));
            bool::from(subtle::ConstantTimeEq::ct_eq(
                got.as_bytes(),
                expected.as_bytes(),
            ))
        });
        if !bound {
            invalid("another browser").await;
            return Err(fail(Failure::InvalidState));
        }
    }
    match state.directory.finish_saml_assertion(&ticket.digest).await {
        Ok(true) => {}
        Ok(false) => {
            invalid("the sign-in was ended before").await;
            return Err(fail(Failure::InvalidState));
        }
        Err(_) => return Err(fail(Failure::ProviderUnavailable)),
    }
    let tenant = match state.tenant(&tenant_id).await {
        Ok(Some(t)) => t,
        _ => return Err(fail(Failure::InvalidState)),
    };
    let Some(c) = connection(state, &tenant_id, &ticket.connection).await else {
        return Err(fail(Failure::InvalidState));
    };
    // The IdP is the company's own and answers for its verified domains only (checked in
    // `find_or_create`): an email it asserts is as good as verified.
    let person = super::provider::Person {
        sub: ticket.name_id.clone(),
        email: ticket.email.clone(),
        email_verified: true,
        name: ticket.name.clone(),
    };
    let result = async {
        let user = flow::find_or_create(state, &tenant, &c, &person).await?;
        flow::admit(state, &tenant, user, "saml", origin).await
    }
    .await;
    flow::ended(state, &tenant_id, &c.id, ticket.pending.clone(), result).await
}
