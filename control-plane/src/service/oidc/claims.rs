//! What tokens say: ID tokens and userinfo (the person, their company and role), access tokens
//! (RFC 9068) and logout tokens, and the check of an access token presented to the API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};
use sha2::Digest;
use tenant_runtime::TenantId;
use tenant_runtime::store::oidc::{self, LiveGrant};
use tenant_runtime::store::sessions::Amr;

use super::{ID_TOKEN_SECS, issuer, random_id, signing};
use crate::directory::Tenant;
use crate::error::Fault;
use crate::keys::jws::JwsError;
use crate::service::identity::{AuthResult, serving};
use crate::state::AppState;

pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
pub const ID_TOKEN_TYPE: &str = "JWT";
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// `acr` of a session: whether more than one factor was used.
pub const ACR_SINGLE_FACTOR: &str = "urn:tenantd:acr:sfa";
pub const ACR_MULTI_FACTOR: &str = "urn:tenantd:acr:mfa";

pub fn acr(amr: &Amr) -> &'static str {
    if amr.is_multi_factor() {
        ACR_MULTI_FACTOR
    } else {
        ACR_SINGLE_FACTOR
    }
}

/// The claims about the person that ID tokens, userinfo and introspection share.
pub fn person(tenant: &Tenant, grant: &LiveGrant) -> Map<String, Value> {
    let (user, sid, auth_time) = (&grant.user, &grant.sid, grant.auth_time);
    let v = json!({
        "sub": user.id,
        "email": user.email,
        "email_verified": true,
        "name": user.name,
        "org_id": tenant.id.as_str(),
        "org_slug": tenant.slug,
        "org_name": tenant.name,
        "role": user.role.as_str(),
        "sid": sid,
        "auth_time": auth_time,
        "amr": grant.amr.values(),
        "acr": acr(&grant.amr),
    });
    match v {
        Value::Object(mut m) => {
            // An empty claim is left out (OIDC Core 5.3.2).
            if user.name.is_empty() {
                m.remove("name");
            }
            m
        }
        _ => Map::new(),
    }
}

/// Left half of SHA-256 of a token, base64url: `at_hash`.
fn half_hash(token: &str) -> String {
    let d = sha2::Sha256::digest(token.as_bytes());
    B64.encode(&d[..16])
}

/// Tokens minted for one grant.
#[derive(Clone)]
pub struct Minted {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// An access token and an ID token for a live grant. `with_nonce`: the first ID token of a
/// grant carries the authorization's nonce; those of refreshes do not (OIDC Core 12.2).
pub async fn mint(
    state: &AppState,
    tenant: &Tenant,
    grant: &LiveGrant,
    scope: &str,
    with_nonce: bool,
) -> Result<Minted, Fault> {
    let keys = signing::keys(state).await?;
    let (iss, now) = (issuer(state), state.now());
    let life = state.server.access_token_secs;
    let mut at = person(tenant, grant);
    for k in ["email_verified", "amr", "acr", "name"] {
        at.remove(k);
    }
    at.insert("iss".into(), json!(iss));
    at.insert("aud".into(), json!(iss));
    at.insert("client_id".into(), json!(grant.client_id));
    at.insert("scope".into(), json!(scope));
    at.insert("iat".into(), json!(now));
    at.insert("exp".into(), json!(now + life));
    at.insert("jti".into(), json!(random_id()?));
    at.insert("gid".into(), json!(grant.id));
    let access_token = keys
        .signer
        .sign(ACCESS_TOKEN_TYPE, &Value::Object(at))
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("signing: {e}")))?;
    let mut id = person(tenant, grant);
    id.insert("iss".into(), json!(iss));
    id.insert("aud".into(), json!(grant.client_id));
    id.insert("azp".into(), json!(grant.client_id));
    id.insert("iat".into(), json!(now));
    id.insert("exp".into(), json!(now + ID_TOKEN_SECS));
    id.insert("at_hash".into(), json!(half_hash(&access_token)));
    if with_nonce && let Some(n) = &grant.nonce {
        id.insert("nonce".into(), json!(n));
    }
    let id_token = keys
        .signer
        .sign(ID_TOKEN_TYPE, &Value::Object(id))
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("signing: {e}")))?;
    Ok(Minted {
        access_token,
        id_token,
        expires_in: life,
    })
}

/// A back-channel logout token for one app and one session (Back-Channel Logout 1.0 §2.4).
pub async fn logout_token(
    state: &AppState,
    client_id: &str,
    sub: &str,
    sid: &str,
) -> Result<String, Fault> {
    let keys = signing::keys(state).await?;
    let now = state.now();
    let claims = json!({
        "iss": issuer(state),
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": random_id()?,
        "sub": sub,
        "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    });
    keys.signer
        .sign(LOGOUT_TOKEN_TYPE, &claims)
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("signing: {e}")))
}

/// The claims of a token signed by one of our keys, reading the keys again when it names one
/// this node has not seen (another node may have started signing with a new key).
async fn verified(
    state: &AppState,
    token: &str,
    typ: &str,
) -> Result<Option<Map<String, Value>>, Fault> {
    match signing::keys(state).await?.verify(token, typ) {
        Ok(c) => Ok(Some(c)),
        Err(JwsError::UnknownKey) => Ok(signing::fresh_keys(state).await?.verify(token, typ).ok()),
        Err(_) => Ok(None),
    }
}

/// The claims of an access token we signed that has not expired (its grant is not checked).
pub async fn access_claims(
    state: &AppState,
    token: &str,
) -> Result<Option<Map<String, Value>>, Fault> {
    let now = state.now();
    if let Some(c) = state.verified.get(token, now) {
        return Ok(Some((*c).clone()));
    }
    let Some(claims) = verified(state, token, ACCESS_TOKEN_TYPE).await? else {
        return Ok(None);
    };
    let iss = issuer(state);
    let str_of = |k: &str| claims.get(k).and_then(Value::as_str);
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let ok = str_of("iss") == Some(iss.as_str())
        && str_of("aud") == Some(iss.as_str())
        && exp > now
        && str_of("gid").is_some()
        && str_of("sub").is_some()
        && str_of("client_id").is_some();
    if !ok {
        return Ok(None);
    }
    let shared = std::sync::Arc::new(claims.clone());
    state.verified.put(token, shared, exp, now);
    Ok(Some(claims))
}

/// The claims of an ID token we signed, expired or not (an `id_token_hint`).
pub async fn id_token_hint(
    state: &AppState,
    token: &str,
) -> Result<Option<Map<String, Value>>, Fault> {
    let Some(claims) = verified(state, token, ID_TOKEN_TYPE).await? else {
        return Ok(None);
    };
    let iss = issuer(state);
    Ok((claims.get("iss").and_then(Value::as_str) == Some(iss.as_str())).then_some(claims))
}

/// The company and grant of an access token's claims.
fn grant_of(claims: &Map<String, Value>) -> Option<(TenantId, String)> {
    let tenant = TenantId::parse(claims.get("org_id")?.as_str()?).ok()?;
    Some((tenant, claims.get("gid")?.as_str()?.to_owned()))
}

/// The live grant behind an access token, with its company: `None` when the token is
/// invalid, expired, or its grant, session or user has ended.
pub async fn live_grant(
    state: &AppState,
    token: &str,
) -> AuthResult<Option<(Tenant, LiveGrant, Map<String, Value>)>> {
    let Some(claims) = access_claims(state, token).await? else {
        return Ok(None);
    };
    let Some((tenant_id, gid)) = grant_of(&claims) else {
        return Ok(None);
    };
    let Some(tenant) = serving(state, &tenant_id).await? else {
        return Ok(None);
    };
    let (idle, now) = (state.server.session_idle_secs, state.now());
    let found = state
        .tenants
        .read(&tenant_id, move |c| oidc::live(c, &gid, idle, now))
        .await?;
    let Some(grant) = found else {
        return Ok(None);
    };
    let sub = claims.get("sub").and_then(Value::as_str);
    let client = claims.get("client_id").and_then(Value::as_str);
    if sub != Some(grant.user.id.as_str()) || client != Some(grant.client_id.as_str()) {
        return Ok(None);
    }
    Ok(Some((tenant, grant, claims)))
}
