//! The authorization endpoint: an app sends the person here; they sign in on the shared login
//! page if needed, and go back to the app with a single-use code (or an error). Requests that
//! cannot be answered safely to the app — unknown client, unregistered redirect URI — get an
//! error page, never a redirect. A request waiting for a sign-in travels through the login page
//! signed with a key derived from the server key, so any node can resume it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_runtime::store::{audit, oidc};

use super::{CODE_SECS, SCOPES, issuer};
use crate::directory::ClientRow;
use crate::error::Fault;
use crate::keys::DerivedKey;
use crate::service::auth::Signed;
use crate::service::identity::{AuthError, AuthResult, bearer};
use crate::state::AppState;

/// How long a request may wait for the person to sign in.
const PENDING_SECS: i64 = 3600;

/// An authorization request, as the app sent it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: String,
    #[serde(default)]
    pub response_mode: Option<String>,
    pub scope: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub max_age: Option<String>,
    #[serde(default)]
    pub login_hint: Option<String>,
    /// When tenantd first saw it: a sign-in at or after this time is fresh for it.
    #[serde(default)]
    pub started_at: i64,
    /// `request`, `request_uri` or `registration` were sent (not supported).
    #[serde(skip)]
    pub unsupported: Option<&'static str>,
    /// A parameter was sent twice.
    #[serde(skip)]
    pub repeated: Option<String>,
    /// Back from the login page: a sign-in since `started_at` satisfies it.
    #[serde(skip)]
    pub resumed: bool,
}

impl AuthRequest {
    /// From the query parameters of `/oauth2/authorize`.
    pub fn from_query(pairs: &[(String, String)], now: i64) -> Self {
        let mut r = Self {
            started_at: now,
            ..Self::default()
        };
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k.as_str()) {
                r.repeated = Some(k.clone());
            }
            let v = v.clone();
            match k.as_str() {
                "client_id" => r.client_id = v,
                "redirect_uri" => r.redirect_uri = v,
                "response_type" => r.response_type = v,
                "response_mode" => r.response_mode = Some(v),
                "scope" => r.scope = v,
                "state" => r.state = Some(v),
                "nonce" => r.nonce = Some(v),
                "code_challenge" => r.code_challenge = Some(v),
                "code_challenge_method" => r.code_challenge_method = Some(v),
                "prompt" => r.prompt = Some(v),
                "max_age" => r.max_age = Some(v),
                "login_hint" => r.login_hint = Some(v),
                "request" => r.unsupported = Some("request_not_supported"),
                "request_uri" => r.unsupported = Some("request_uri_not_supported"),
                "registration" => r.unsupported = Some("registration_not_supported"),
                _ => {}
            }
        }
        r
    }

    fn prompts(&self) -> impl Iterator<Item = &str> {
        self.prompt
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
    }

    /// The e-mail to pre-fill on the login page.
    pub fn login_hint(&self) -> Option<&str> {
        self.login_hint.as_deref().filter(|h| h.len() <= 320)
    }
}

/// Why a request gets an error page instead of going back to the app.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the app is not registered with this server (unknown client_id)")]
    UnknownClient,
    #[error("the redirect_uri is not one this app registered")]
    BadRedirectUri,
    #[error("the sign-in request has expired or was changed; start again from the app")]
    BadPending,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(AuthorizeError);

/// Where the browser goes next.
#[derive(Debug)]
pub enum Authorized {
    /// Back to the app: with a code, or with an error for the app.
    Redirect(String),
    /// To the login page, carrying the signed request.
    SignIn {
        pending: String,
        login_hint: Option<String>,
    },
}

fn pending_key(state: &AppState) -> DerivedKey {
    state.keys.derive("authorization-request")
}

/// The request signed, to travel through the login page.
pub fn seal(state: &AppState, req: &AuthRequest) -> String {
    let body = B64.encode(serde_json::to_vec(req).unwrap_or_default());
    let tag = pending_key(state).sign(body.as_bytes());
    format!("{body}.{}", B64.encode(&tag[..16]))
}

/// A request signed by [`seal`] on any node, if genuine and not too old.
pub fn unseal(state: &AppState, pending: &str) -> Option<AuthRequest> {
    let (body, tag) = pending.split_once('.')?;
    let tag = B64.decode(tag).ok()?;
    if !pending_key(state).verify(body.as_bytes(), &tag) {
        return None;
    }
    let mut req: AuthRequest = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
    req.resumed = true;
    (req.started_at + PENDING_SECS > state.now()).then_some(req)
}

/// The app's redirect URI with `params` added, and `iss` (RFC 9207).
fn back_to_app(state: &AppState, req: &AuthRequest, params: &[(&str, &str)]) -> String {
    let Ok(mut url) = url::Url::parse(&req.redirect_uri) else {
        return req.redirect_uri.clone();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = &req.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &issuer(state));
    }
    url.into()
}

fn app_error(state: &AppState, req: &AuthRequest, code: &str, description: &str) -> Authorized {
    Authorized::Redirect(back_to_app(
        state,
        req,
        &[("error", code), ("error_description", description)],
    ))
}

/// The client and redirect URI, checked before anything is sent back to the app.
async fn client_of(state: &AppState, req: &AuthRequest) -> Result<ClientRow, AuthorizeError> {
    let client = match req.client_id.as_str() {
        "" => None,
        id => state.directory.client(id).await?,
    };
    let client = client.ok_or(AuthorizeError::UnknownClient)?;
    if !client.redirect_uris.contains(&req.redirect_uri) {
        return Err(AuthorizeError::BadRedirectUri);
    }
    Ok(client)
}

/// What is wrong with a request, as an error for the app.
fn invalid(req: &AuthRequest) -> Option<(&'static str, String)> {
    let bad = |d: &str| Some(("invalid_request", d.to_owned()));
    if let Some(code) = req.unsupported {
        return Some((
            code,
            "request objects and registration are not supported".into(),
        ));
    }
    if let Some(k) = &req.repeated {
        return bad(&format!("the parameter {k} was sent more than once"));
    }
    if req.response_type != "code" {
        return Some((
            "unsupported_response_type",
            "only response_type=code is supported".into(),
        ));
    }
    if req.response_mode.as_deref().is_some_and(|m| m != "query") {
        return bad("only response_mode=query is supported");
    }
    if !req.scope.split_ascii_whitespace().any(|s| s == "openid") {
        return Some(("invalid_scope", "the scope must include openid".into()));
    }
    match req.code_challenge_method.as_deref() {
        Some("S256") => {}
        None => {
            return bad("PKCE is required: send code_challenge with code_challenge_method=S256");
        }
        Some(_) => return bad("only code_challenge_method=S256 is supported"),
    }
    let challenge = req.code_challenge.as_deref().unwrap_or("");
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("code_challenge must be the base64url SHA-256 of the verifier (43 characters)");
    }
    if req.nonce.as_deref().is_some_and(|n| n.len() > 512)
        || req.state.as_deref().is_some_and(|s| s.len() > 2048)
    {
        return bad("nonce or state is too long");
    }
    let prompts: Vec<&str> = req.prompts().collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
    {
        return bad("unknown prompt value");
    }
    if prompts.contains(&"none") && prompts.len() > 1 {
        return bad("prompt=none cannot be combined with other values");
    }
    if req
        .max_age
        .as_deref()
        .is_some_and(|m| m.parse::<u32>().is_err())
    {
        return bad("max_age must be a number of seconds");
    }
    None
}

/// The scopes granted: the known ones asked for, in a stable order.
pub fn granted_scope(asked: &str) -> String {
    let asked: Vec<&str> = asked.split_ascii_whitespace().collect();
    SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Answers an authorization request for the person signed in (or not) in this browser.
pub async fn authorize(
    state: &AppState,
    req: AuthRequest,
    signed: AuthResult<Option<Signed>>,
) -> Result<Authorized, AuthorizeError> {
    let client = client_of(state, &req).await?;
    if let Some((code, description)) = invalid(&req) {
        return Ok(app_error(state, &req, code, &description));
    }
    let prompt_none = req.prompts().any(|p| p == "none");
    let signed = match signed {
        Ok(s) => s,
        Err(AuthError::Suspended) => {
            return Ok(app_error(
                state,
                &req,
                "access_denied",
                "the company is suspended",
            ));
        }
        Err(AuthError::Fault(f)) => return Err(f.into()),
        Err(_) => None,
    };
    let now = state.now();
    let fresh_needed = |s: &Signed| {
        let forced = req.prompts().any(|p| p == "login" || p == "select_account");
        let too_old = req
            .max_age
            .as_deref()
            .and_then(|m| m.parse::<i64>().ok())
            // max_age=0 asks for a sign-in now, as prompt=login does.
            .is_some_and(|max| max == 0 || now - s.auth_time > max);
        (forced || too_old) && !(req.resumed && s.auth_time >= req.started_at)
    };
    let signed = match signed {
        Some(s) if !fresh_needed(&s) => s,
        _ if prompt_none => {
            return Ok(app_error(
                state,
                &req,
                "login_required",
                "nobody is signed in",
            ));
        }
        _ => {
            return Ok(Authorized::SignIn {
                pending: seal(state, &req),
                login_hint: req.login_hint().map(str::to_owned),
            });
        }
    };
    issue_code(state, &client, &req, &signed).await
}

async fn issue_code(
    state: &AppState,
    client: &ClientRow,
    req: &AuthRequest,
    signed: &Signed,
) -> Result<Authorized, AuthorizeError> {
    // The session check may use a tenant row cached for a moment: a code is a new grant, so
    // ask the directory itself.
    let active = state
        .fresh_tenant(&signed.tenant.id)
        .await?
        .is_some_and(|t| t.status == crate::directory::TenantStatus::Active);
    if !active {
        return Ok(app_error(
            state,
            req,
            "access_denied",
            "the company is suspended",
        ));
    }
    let scope = granted_scope(&req.scope);
    let (req2, user_id, client_id, hash, now) = (
        req.clone(),
        signed.user.id.clone(),
        client.id.clone(),
        signed.session_hash,
        state.now(),
    );
    let code = state
        .tenants
        .write(&signed.tenant.id, move |tx| {
            let code = oidc::authorize(
                tx,
                &hash,
                &oidc::NewGrant {
                    user_id: &user_id,
                    client_id: &client_id,
                    scope: &scope,
                    nonce: req2.nonce.as_deref(),
                    redirect_uri: &req2.redirect_uri,
                    code_challenge: req2.code_challenge.as_deref().unwrap_or(""),
                    code_ttl_secs: CODE_SECS,
                },
                now,
            )?;
            audit::record(
                tx,
                Some(&user_id),
                "oidc.authorized",
                Some(&user_id),
                json!({"client_id": client_id, "scope": scope}),
                now,
            )?;
            Ok(code)
        })
        .await?;
    let code = bearer(&signed.tenant.id, &code);
    Ok(Authorized::Redirect(back_to_app(
        state,
        req,
        &[("code", &code)],
    )))
}

/// A sign-in for a pending request was refused for good (blocked account, suspended company):
/// the app hears `access_denied`.
pub fn deny(state: &AppState, pending: &str, why: &str) -> Option<String> {
    let req = unseal(state, pending)?;
    Some(back_to_app(
        state,
        &req,
        &[("error", "access_denied"), ("error_description", why)],
    ))
}
