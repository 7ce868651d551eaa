//! The token endpoint (codes and refresh tokens), revocation (RFC 7009), introspection
//! (RFC 7662) and userinfo. Codes and refresh tokens are `<company-id>.<secret>`, so any node
//! knows whose file to look in; each is checked and used in one write transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Digest;
use tenant_runtime::TenantId;
use tenant_runtime::store::{audit, oidc};

use super::claims::{self, Minted};
use super::{OidcError, OidcResult, issuer};
use crate::directory::{ClientRow, Tenant, TenantStatus};
use crate::service::identity::{AuthError, bearer, split_bearer};
use crate::state::AppState;

/// A successful token response.
#[derive(Clone, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What the token endpoint was asked.
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

/// The company of a code or refresh token, if it can still be served here.
async fn company(state: &AppState, id: &TenantId) -> OidcResult<Tenant> {
    let tenant = state
        .fresh_tenant(id)
        .await?
        .ok_or(OidcError::InvalidGrant("the grant is unknown or has ended"))?;
    if tenant.status != TenantStatus::Active {
        return Err(OidcError::InvalidGrant("the company is not active"));
    }
    state.check_placement(&tenant)?;
    Ok(tenant)
}

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    well_formed
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            computed.as_bytes(),
            challenge.as_bytes(),
        ))
}

/// Outcome of checking and using a code or refresh token in the company's file.
enum Used {
    Granted(Box<oidc::LiveGrant>, Option<String>),
    Refused(&'static str),
}

/// Answers the token endpoint for an authenticated client.
pub async fn exchange(
    state: &AppState,
    client: &ClientRow,
    req: TokenRequest,
) -> OidcResult<Tokens> {
    match req.grant_type.as_str() {
        "authorization_code" => redeem_code(state, client, req).await,
        "refresh_token" => refresh(state, client, req).await,
        "client_credentials" => {
            let t = super::machine::client_credentials(state, client, req.scope.as_deref()).await?;
            Ok(Tokens {
                access_token: t.access_token,
                token_type: "Bearer",
                expires_in: t.expires_in,
                id_token: None,
                refresh_token: None,
                scope: t.scope,
            })
        }
        "" => Err(OidcError::InvalidRequest("grant_type is required".into())),
        _ => Err(OidcError::UnsupportedGrantType),
    }
}

async fn redeem_code(
    state: &AppState,
    client: &ClientRow,
    req: TokenRequest,
) -> OidcResult<Tokens> {
    let raw = req
        .code
        .ok_or(OidcError::InvalidRequest("code is required".into()))?;
    let (tenant_id, secret) =
        split_bearer(&raw).ok_or(OidcError::InvalidGrant("the code is unknown or was used"))?;
    let tenant = company(state, &tenant_id).await?;
    let (secret, client_id) = (secret.to_owned(), client.id.clone());
    let redirect_uri = req.redirect_uri.unwrap_or_default();
    let verifier = req.code_verifier.unwrap_or_default();
    let (idle, now) = (state.server.session_idle_secs, state.now());
    let used = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(code) = oidc::code(tx, &secret)? else {
                return Ok(Used::Refused("the code is unknown or was used"));
            };
            // Any failed use burns the code and its grant: a second use means it leaked, and
            // revokes whatever the first use issued.
            let refuse = |why: &'static str, action: Option<&str>| {
                oidc::revoke(tx, &code.grant_id)?;
                if let Some(action) = action {
                    audit::record(
                        tx,
                        None,
                        action,
                        None,
                        json!({"client_id": code.client_id}),
                        now,
                    )?;
                }
                Ok(Used::Refused(why))
            };
            if code.used || !oidc::use_code(tx, &secret, now)? {
                return refuse("the code is unknown or was used", Some("oidc.code_reused"));
            }
            if code.client_id != client_id {
                return refuse("the code was issued to another client", None);
            }
            if code.expires_at <= now {
                return refuse("the code has expired", None);
            }
            if code.redirect_uri != redirect_uri {
                return refuse(
                    "redirect_uri does not match the authorization request",
                    None,
                );
            }
            if !pkce_matches(&verifier, &code.code_challenge) {
                return refuse("code_verifier does not match the code_challenge", None);
            }
            let Some(grant) = oidc::live(tx, &code.grant_id, idle, now)? else {
                return refuse("the session has ended", None);
            };
            let refresh = if grant.scope.split(' ').any(|s| s == "offline_access") {
                Some(oidc::issue_refresh(tx, &grant.id, now)?)
            } else {
                None
            };
            Ok(Used::Granted(Box::new(grant), refresh))
        })
        .await?;
    let (grant, refresh) = match used {
        Used::Granted(g, r) => (g, r),
        Used::Refused(why) => return Err(OidcError::InvalidGrant(why)),
    };
    let scope = grant.scope.clone();
    let minted = claims::mint(state, &tenant, &grant, &scope, true).await?;
    Ok(tokens(
        minted,
        refresh.map(|r| bearer(&tenant_id, &r)),
        scope,
    ))
}

fn tokens(minted: Minted, refresh_token: Option<String>, scope: String) -> Tokens {
    Tokens {
        access_token: minted.access_token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        id_token: Some(minted.id_token),
        refresh_token,
        scope,
    }
}

async fn refresh(state: &AppState, client: &ClientRow, req: TokenRequest) -> OidcResult<Tokens> {
    let raw = req.refresh_token.ok_or(OidcError::InvalidRequest(
        "refresh_token is required".into(),
    ))?;
    let (tenant_id, secret) = split_bearer(&raw).ok_or(OidcError::InvalidGrant(
        "the refresh token is unknown or has ended",
    ))?;
    let tenant = company(state, &tenant_id).await?;
    let (secret, client_id) = (secret.to_owned(), client.id.clone());
    let (idle, now) = (state.server.session_idle_secs, state.now());
    let used = state
        .tenants
        .write(&tenant_id, move |tx| {
            let Some(token) = oidc::refresh(tx, &secret)? else {
                return Ok(Used::Refused("the refresh token is unknown or has ended"));
            };
            if token.used || !oidc::use_refresh(tx, &secret, now)? || token.client_id != client_id {
                // Reuse means two parties hold the token: end the whole family.
                let grant = oidc::live(tx, &token.grant_id, i64::MAX / 4, now)?;
                oidc::revoke(tx, &token.grant_id)?;
                let user = grant.as_ref().map(|g| g.user.id.as_str());
                audit::record(
                    tx,
                    user,
                    "oidc.refresh_reused",
                    user,
                    json!({"client_id": token.client_id}),
                    now,
                )?;
                return Ok(Used::Refused(
                    "the refresh token was already used; the grant is revoked",
                ));
            }
            let Some(grant) = oidc::live(tx, &token.grant_id, idle, now)? else {
                oidc::revoke(tx, &token.grant_id)?;
                return Ok(Used::Refused("the session has ended"));
            };
            // An app refreshing is the person being active.
            tenant_runtime::store::sessions::touch(tx, &grant.session_hash, now)?;
            let next = oidc::issue_refresh(tx, &grant.id, now)?;
            Ok(Used::Granted(Box::new(grant), Some(next)))
        })
        .await?;
    let (grant, next) = match used {
        Used::Granted(g, r) => (g, r),
        Used::Refused(why) => return Err(OidcError::InvalidGrant(why)),
    };
    let scope = match req.scope.as_deref() {
        None => grant.scope.clone(),
        Some(asked) => {
            let granted: Vec<&str> = grant.scope.split(' ').collect();
            if asked
                .split_ascii_whitespace()
                .any(|s| !granted.contains(&s))
            {
                return Err(OidcError::InvalidScope(
                    "the scope asked for exceeds the grant",
                ));
            }
            super::authorize::granted_scope(asked)
        }
    };
    let minted = claims::mint(state, &tenant, &grant, &scope, false).await?;
    Ok(tokens(minted, next.map(|r| bearer(&tenant_id, &r)), scope))
}

/// A token presented for revocation or introspection: a refresh token, or an access token.
enum Presented {
    Refresh(TenantId, String),
    Access(String),
}

fn presented(token: &str) -> Presented {
    match split_bearer(token) {
        Some((t, s)) => Presented::Refresh(t, s.to_owned()),
        None => Presented::Access(token.to_owned()),
    }
}

/// Revokes a refresh or access token of this client, and with it the grant it belongs to.
/// Unknown tokens and tokens of other clients are ignored, as RFC 7009 asks.
pub async fn revoke(state: &AppState, client: &ClientRow, token: &str) -> OidcResult<()> {
    let (tenant_id, grant) = match presented(token) {
        Presented::Refresh(tenant_id, secret) => {
            let client_id = client.id.clone();
            let found = state
                .tenants
                .read(&tenant_id, move |c| oidc::refresh(c, &secret))
                .await;
            match found {
                Ok(Some(r)) if r.client_id == client_id => (tenant_id, r.grant_id),
                _ => return Ok(()),
            }
        }
        Presented::Access(jwt) => {
            let Some(claims) = claims::access_claims(state, &jwt).await? else {
                return Ok(());
            };
            let str_of = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(org), Some(gid)) = (str_of("org_id"), str_of("gid")) else {
                return Ok(());
            };
            if str_of("client_id").as_deref() != Some(client.id.as_str()) {
                return Ok(());
            }
            let Ok(tenant_id) = TenantId::parse(&org) else {
                return Ok(());
            };
            (tenant_id, gid)
        }
    };
    match state.tenant(&tenant_id).await? {
        Some(t) => state.check_placement(&t)?,
        None => return Ok(()),
    }
    let now = state.now();
    let client_id = client.id.clone();
    state
        .tenants
        .write(&tenant_id, move |tx| {
            if oidc::revoke(tx, &grant)? {
                audit::record(
                    tx,
                    None,
                    "oidc.revoked",
                    None,
                    json!({"client_id": client_id}),
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// RFC 7662: whether a token of this client is active, and what it says.
pub async fn introspect(state: &AppState, client: &ClientRow, token: &str) -> OidcResult<Value> {
    let inactive = json!({"active": false});
    match presented(token) {
        Presented::Refresh(tenant_id, secret) => {
            let Ok(tenant) = company(state, &tenant_id).await else {
                return Ok(inactive);
            };
            let (idle, now) = (state.server.session_idle_secs, state.now());
            let found = state
                .tenants
                .read(&tenant_id, move |c| {
                    Ok(match oidc::refresh(c, &secret)? {
                        Some(r) if !r.used => oidc::live(c, &r.grant_id, idle, now)?,
                        _ => None,
                    })
                })
                .await?;
            match found {
                Some(g) if g.client_id == client.id => {
                    let mut out = claims::person(&tenant, &g);
                    out.insert("active".into(), json!(true));
                    out.insert("token_type".into(), json!("refresh_token"));
                    out.insert("client_id".into(), json!(g.client_id));
                    out.insert("scope".into(), json!(g.scope));
                    out.insert("iss".into(), json!(issuer(state)));
                    Ok(Value::Object(out))
                }
                _ => Ok(inactive),
            }
        }
        Presented::Access(jwt) => match claims::live_grant(state, &jwt).await {
            Ok(Some((_, g, claims))) if g.client_id == client.id => {
                let mut out: Map<String, Value> = claims;
                out.remove("gid");
                out.insert("active".into(), json!(true));
                out.insert("token_type".into(), json!("Bearer"));
                Ok(Value::Object(out))
            }
            Ok(_) | Err(AuthError::Suspended) => Ok(inactive),
            Err(AuthError::Fault(f)) => Err(f.into()),
            Err(_) => Ok(inactive),
        },
    }
}

/// The userinfo endpoint: the person behind a live access token.
pub async fn userinfo(state: &AppState, token: &str) -> OidcResult<Value> {
    match claims::live_grant(state, token).await {
        Ok(Some((tenant, g, _))) => Ok(Value::Object(claims::person(&tenant, &g))),
        Ok(None) | Err(AuthError::Suspended) => Err(OidcError::InvalidToken),
        Err(AuthError::Fault(f)) => Err(f.into()),
        Err(_) => Err(OidcError::InvalidToken),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_needs_the_exact_verifier_of_the_challenge() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(super::pkce_matches(verifier, challenge));
        assert!(!super::pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!super::pkce_matches("", challenge));
        assert!(!super::pkce_matches(challenge, challenge));
    }
}
