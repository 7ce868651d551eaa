//! The client-credentials grant (RFC 6749 §4.4) for the vendor's back office: a confidential
//! app granted operator scopes (`tenantctl client create … --operator-scope …`) gets a
//! short-lived access token (RFC 9068, no user) that the operator API accepts with those
//! scopes. Its audience is the operator API, so the person-facing API never accepts it.

use serde_json::{Map, Value, json};

use super::claims::ACCESS_TOKEN_TYPE;
use super::{OidcError, OidcResult, issuer, random_id, signing};
use crate::directory::ClientRow;
use crate::error::Fault;
use crate::keys::jws::JwsError;
use crate::service::operator::scope::Scope;
use crate::state::AppState;

/// The audience of client-credentials tokens: the operator API.
pub fn audience(state: &AppState) -> String {
    format!("{}/api/operator", issuer(state))
}

/// A client-credentials access token.
#[derive(Clone)]
pub struct MachineToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

impl std::fmt::Debug for MachineToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineToken")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Issues an access token with the operator scopes asked for (all the client's when none is
/// asked); a scope the client was not granted is refused.
pub async fn client_credentials(
    state: &AppState,
    client: &ClientRow,
    scope: Option<&str>,
) -> OidcResult<MachineToken> {
    if client.secret_hash.is_none() {
        return Err(OidcError::UnauthorizedClient);
    }
    let granted: Vec<Scope> = client
        .operator_scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect();
    if granted.is_empty() {
        return Err(OidcError::UnauthorizedClient);
    }
    let scopes = match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => granted,
        Some(asked) => {
            let mut out = Vec::new();
            for s in asked.split_ascii_whitespace() {
                match Scope::parse(s) {
                    Some(x) if granted.contains(&x) => {
                        if !out.contains(&x) {
                            out.push(x);
                        }
                    }
                    _ => {
                        return Err(OidcError::InvalidScope(
                            "the scope asked for exceeds what the client was granted",
                        ));
                    }
                }
            }
            out.sort();
            out
        }
    };
    let keys = signing::keys(state).await?;
    let (now, life) = (state.now(), state.server.access_token_secs);
    let scope = Scope::join(&scopes);
    let claims = json!({
        "iss": issuer(state),
        "sub": client.id,
        "aud": audience(state),
        "client_id": client.id,
        "scope": scope,
        "iat": now,
        "exp": now + life,
        "jti": random_id()?,
    });
    let access_token = keys
        .signer
        .sign(ACCESS_TOKEN_TYPE, &claims)
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("signing: {e}")))?;
    Ok(MachineToken {
        access_token,
        expires_in: life,
        scope,
    })
}

/// The app and its operator scopes behind a client-credentials token: `None` when the token
/// is not ours, expired, not for the operator API, or the app is gone. Scopes the app no
/// longer has are dropped at once.
pub async fn operator_client(
    state: &AppState,
    token: &str,
) -> Result<Option<(ClientRow, Vec<Scope>)>, Fault> {
    let Some(claims) = verified(state, token).await? else {
        return Ok(None);
    };
    let str_of = |k: &str| claims.get(k).and_then(Value::as_str);
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let aud = audience(state);
    if str_of("iss") != Some(issuer(state).as_str())
        || str_of("aud") != Some(aud.as_str())
        || exp <= state.now()
    {
        return Ok(None);
    }
    let Some(client_id) = str_of("client_id") else {
        return Ok(None);
    };
    let Some(client) = state.directory.client(client_id).await? else {
        return Ok(None);
    };
    let scopes = str_of("scope")
        .unwrap_or("")
        .split_ascii_whitespace()
        .filter_map(Scope::parse)
        .filter(|s| client.operator_scopes.iter().any(|g| g == s.as_str()))
        .collect();
    Ok(Some((client, scopes)))
}

async fn verified(state: &AppState, token: &str) -> Result<Option<Map<String, Value>>, Fault> {
    match signing::keys(state).await?.verify(token, ACCESS_TOKEN_TYPE) {
        Ok(c) => Ok(Some(c)),
        Err(JwsError::UnknownKey) => Ok(signing::fresh_keys(state)
            .await?
            .verify(token, ACCESS_TOKEN_TYPE)
            .ok()),
        Err(_) => Ok(None),
    }
}
