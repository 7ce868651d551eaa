//! The OpenID provider's endpoints for apps: discovery, keys, token, userinfo, revocation and
//! introspection. Errors are RFC 6749 JSON (`error`, `error_description`); token answers are
//! never cached. A registered web origin (a single-page app) may call them with CORS, as it
//! may call `/api/*` with an access token; cookies never cross origins.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{MAX_BODY, bearer_token};
use super::paths::{oidc as p, pages};
use crate::service::oidc::token::{self, TokenRequest};
use crate::service::oidc::{self, ClientCredentials, OidcError, SCOPES, claims, signing};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(p::DISCOVERY, get(discovery))
        .route(p::JWKS, get(jwks))
        .route(p::TOKEN, axum::routing::post(token_endpoint))
        .route(p::USERINFO, get(userinfo).post(userinfo))
        .route(p::REVOKE, axum::routing::post(revoke))
        .route(p::INTROSPECT, axum::routing::post(introspect))
}

/// An error as RFC 6749 §5.2 spells it.
struct OAuthError(ApiError, bool);

impl From<OidcError> for OAuthError {
    fn from(e: OidcError) -> Self {
        Self(ApiError::from(e), false)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let OAuthError(err, basic) = self;
        if err.status.is_server_error() {
            return err.into_response();
        }
        let body = json!({"error": err.code, "error_description": err.message});
        let mut res = (err.status, no_store(), Json(body)).into_response();
        if err.status == StatusCode::UNAUTHORIZED {
            let challenge = match (basic, err.code) {
                (true, _) => r#"Basic realm="tenantd""#.to_owned(),
                (false, "invalid_client") => r#"Basic realm="tenantd""#.to_owned(),
                (false, code) => format!(r#"Bearer error="{code}""#),
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

fn link(state: &AppState, path: &str) -> String {
    format!("{}{path}", oidc::issuer(state))
}

async fn discovery(State(state): State<AppState>) -> Response {
    let doc = json!({
        "issuer": oidc::issuer(&state),
        "authorization_endpoint": link(&state, pages::OIDC_AUTHORIZE),
        "token_endpoint": link(&state, p::TOKEN),
        "userinfo_endpoint": link(&state, p::USERINFO),
        "jwks_uri": link(&state, p::JWKS),
        "revocation_endpoint": link(&state, p::REVOKE),
        "introspection_endpoint": link(&state, p::INTROSPECT),
        "end_session_endpoint": link(&state, pages::OIDC_LOGOUT),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "email",
            "email_verified", "name", "org_id", "org_slug", "org_name", "role"
        ],
        "acr_values_supported": [claims::ACR_SINGLE_FACTOR, claims::ACR_MULTI_FACTOR],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(doc)).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    match signing::jwks(&state).await {
        Ok(jwks) => ([(header::CACHE_CONTROL, "public, max-age=300")], Json(jwks)).into_response(),
        Err(f) => ApiError::from(f).into_response(),
    }
}

/// `application/x-www-form-urlencoded` fields; a repeated field is refused (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let bad = |d: &'static str| OAuthError::from(OidcError::InvalidRequest(d.into()));
    if !is_form {
        return Err(bad(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(bad("a parameter was sent more than once"));
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(fields)
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `Authorization: Basic` with the id and secret form-encoded (RFC 6749 §2.3.1).
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || OAuthError(ApiError::from(OidcError::InvalidClient), true);
    let value = value.to_str().map_err(|_| invalid())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(invalid());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The client behind a request's credentials.
async fn client(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Result<crate::directory::ClientRow, OAuthError> {
    let creds = ClientCredentials {
        basic: basic(headers)?,
        form_id: field(fields, "client_id"),
        form_secret: field(fields, "client_secret"),
    };
    let used_basic = creds.used_basic();
    oidc::authenticate(state, &creds)
        .await
        .map_err(|e| OAuthError(ApiError::from(e), used_basic))
}

async fn token_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let fields = form(&headers, &body)?;
    let client = client(&state, &headers, &fields).await?;
    let req = TokenRequest {
        grant_type: field(&fields, "grant_type").unwrap_or_default(),
        code: field(&fields, "code"),
        redirect_uri: field(&fields, "redirect_uri"),
        code_verifier: field(&fields, "code_verifier"),
        refresh_token: field(&fields, "refresh_token"),
        scope: field(&fields, "scope"),
    };
    let tokens = token::exchange(&state, &client, req).await?;
    Ok((no_store(), Json(tokens)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let fields = form(&headers, &body)?;
    let client = client(&state, &headers, &fields).await?;
    let token = field(&fields, "token")
        .ok_or_else(|| OAuthError::from(OidcError::InvalidRequest("token is required".into())))?;
    token::revoke(&state, &client, &token).await?;
    Ok((StatusCode::OK, no_store()).into_response())
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let fields = form(&headers, &body)?;
    let client = client(&state, &headers, &fields).await?;
    if client.secret_hash.is_none() {
        // Introspection is for confidential clients (RFC 7662 §2.1).
        return Err(OAuthError(ApiError::from(OidcError::InvalidClient), false));
    }
    let token = field(&fields, "token")
        .ok_or_else(|| OAuthError::from(OidcError::InvalidRequest("token is required".into())))?;
    let answer = token::introspect(&state, &client, &token).await?;
    Ok((no_store(), Json(answer)).into_response())
}

async fn userinfo(State(state): State<AppState>, req: Request) -> Result<Response, OAuthError> {
    let token = match bearer_token(req.headers()) {
        Some(t) => t.to_owned(),
        None => {
            // RFC 6750 §2.2: a form body with access_token is also allowed.
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_BODY)
                .await
                .unwrap_or_default();
            form(&parts.headers, &bytes)
                .ok()
                .and_then(|f| field(&f, "access_token"))
                .ok_or_else(|| OAuthError::from(OidcError::InvalidToken))?
        }
    };
    let claims: Value = token::userinfo(&state, &token).await?;
    Ok((no_store(), Json(claims)).into_response())
}

/// CORS for the registered web origins of the vendor's apps, on the endpoints a single-page
/// app calls (token, userinfo, revocation, `/api/*`). No credentials: a cross-origin call
/// authenticates with its access token, never with our cookies.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let applies = path.starts_with("/api/")
        || matches!(
            path,
            p::TOKEN | p::USERINFO | p::REVOKE | p::JWKS | p::DISCOVERY
        );
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let own = state.config.public_url.origin().ascii_serialization();
    let Some(origin) = origin.filter(|o| applies && *o != own) else {
        return next.run(req).await;
    };
    let allowed = web_origins(&state).await.contains(&origin);
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        if allowed {
            let h = res.headers_mut();
            allow(h, &origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PATCH, DELETE"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return res;
    }
    let mut res = next.run(req).await;
    if allowed {
        allow(res.headers_mut(), &origin);
    }
    res
}

/// The web origins of every registered app, read from the directory at most every few seconds.
async fn web_origins(state: &AppState) -> std::sync::Arc<Vec<String>> {
    let now = state.now();
    if let Some(o) = state.web_origins.get(now) {
        return o;
    }
    match state.directory.clients().await {
        Ok(cs) => {
            let all: Vec<String> = cs.into_iter().flat_map(|c| c.web_origins).collect();
            state.web_origins.put(all, now)
        }
        Err(e) => {
            tracing::warn!(error = %e, "web origins not read");
            Default::default()
        }
    }
}

fn allow(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
