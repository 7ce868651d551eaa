//! Request pieces every handler shares: JSON bodies, the session cookie, the caller.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tenant_runtime::store::sessions::Origin;

use super::error::ApiError;
use crate::service::admin::TenantAdmin;
use crate::service::auth::{self, EmailRoute, Signed};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body; every rejection becomes a JSON error with a stable code. Requires
/// `Content-Type: application/json`, which also keeps cross-site forms out.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with Content-Type: application/json.",
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request(
                "invalid_json",
                "The body is not valid JSON.",
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                // serde's message names the field and the problem, never a value.
                format!(
                    "The body does not have the expected fields: {}",
                    e.body_text().chars().take(300).collect::<String>()
                ),
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::payload_too_large()),
            Err(_) => Err(ApiError::bad_request(
                "invalid_body",
                "The body could not be read.",
            )),
        }
    }
}

/// Names of the session and CSRF cookies; `__Host-` prefixed when served over https.
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if state.config.https() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub const SESSION_COOKIE: &str = "tenantd_session";
pub const CSRF_COOKIE: &str = "tenantd_csrf";

/// The value of a cookie in the request, if present once.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None; // ambiguous: refuse rather than guess
                }
                found = Some(v.to_owned());
            }
        }
    }
    found
}

/// Whether the browser says this request comes from our own pages (Fetch Metadata, or Origin
/// against Host for older browsers); a request with neither is not from a browser page.
/// `null_origin_ok`: whether `Origin: null` (sent under `no-referrer`, but also by sandboxed
/// frames) passes — only where a CSRF token decides anyway.
pub fn same_site(headers: &HeaderMap, null_origin_ok: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == "null" {
        return null_origin_ok;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// A `Set-Cookie` value with the product's attributes.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> String {
    let secure = if state.config.https() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}")
}

pub fn session_cookie(state: &AppState, value: &str) -> String {
    set_cookie(
        state,
        &cookie_name(state, SESSION_COOKIE),
        value,
        state.server.session_absolute_secs,
        "Lax",
    )
}

pub fn clear_session_cookie(state: &AppState) -> String {
    set_cookie(state, &cookie_name(state, SESSION_COOKIE), "", 0, "Lax")
}

/// The session cookie's value in a request.
pub fn session_value(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(state, SESSION_COOKIE))
}

/// Where a request came from, recorded with sessions and audit entries. Forwarded headers are
/// not trusted: a proxy in front must be configured to be the peer.
pub fn origin(parts_headers: &HeaderMap, peer: Option<SocketAddr>) -> Origin {
    Origin {
        user_agent: parts_headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect(),
        ip: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    }
}

/// The caller's address and user agent.
#[derive(Debug)]
pub struct ClientOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for ClientOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self(origin(&parts.headers, peer)))
    }
}

/// A signed-in user (401 otherwise).
#[derive(Debug)]
pub struct Auth(pub Signed);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = session_value(state, &parts.headers).ok_or_else(ApiError::unauthenticated)?;
        auth::current(state, &value)
            .await?
            .map(Self)
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// An active admin of their own company (401 signed out, 403 otherwise).
#[derive(Debug)]
pub struct Admin(pub TenantAdmin);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth(signed) = Auth::from_request_parts(parts, state).await?;
        Ok(Self(TenantAdmin::new(signed)?))
    }
}

/// The route of the email in this request, if the forwarding layer already found it.
#[derive(Debug)]
pub struct KnownRoute(pub Option<EmailRoute>);

impl<S: Send + Sync> FromRequestParts<S> for KnownRoute {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.remove::<EmailRoute>()))
    }
}
