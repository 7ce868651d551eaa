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
use crate::service::auth::{self, Signed};
use crate::service::identity::{EmailRoute, SignedIn};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest body of a post to a SAML Assertion Consumer Service: a response of
/// `saml::MAX_RESPONSE` and its RelayState, form-encoded.
pub const MAX_ACS_BODY: usize = 320 * 1024;

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

/// Longest email, name or token field accepted anywhere in the API.
pub const MAX_FIELD: usize = 1024;

/// Refuses a field longer than [`MAX_FIELD`].
pub fn check_len(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_FIELD {
        return Err(ApiError::bad_request(
            "field_too_long",
            format!("The field {field} is too long."),
        ));
    }
    Ok(())
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
/// Marks a browser that signed in to an account before (see `crate::throttle`).
pub const DEVICE_COOKIE: &str = "tenantd_device";
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

/// The cookies a sign-in sets: the session, and a device cookie when one was issued.
pub fn sign_in_cookies(state: &AppState, signed: &SignedIn) -> Vec<String> {
    let mut cookies = vec![session_cookie(state, &signed.cookie)];
    if let Some(device) = &signed.device {
        // Kept about a year (browsers cap cookies at 400 days).
        cookies.push(set_cookie(
            state,
            &cookie_name(state, DEVICE_COOKIE),
            device,
            365 * 24 * 3600,
            "Lax",
        ));
    }
    cookies
}

/// A sign-in's answer: what `POST /api/auth/login` answers, with its cookies.
pub fn signed_in(state: &AppState, s: SignedIn) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut res = axum::Json(&s.view).into_response();
    for cookie in sign_in_cookies(state, &s) {
        if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The device cookie's value in a request.
pub fn device_value(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(state, DEVICE_COOKIE))
}

pub fn clear_session_cookie(state: &AppState) -> String {
    set_cookie(state, &cookie_name(state, SESSION_COOKIE), "", 0, "Lax")
}

/// The session cookie's value in a request.
pub fn session_value(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(state, SESSION_COOKIE))
}

/// The client of a request: the peer, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not one. Stored as the connection's address, so every
/// handler, the throttles and the forwarding layer see the client.
pub async fn resolve_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let proxies = &state.server.trusted_proxies;
    if !proxies.is_empty()
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
        && let Some(client) = client_behind(proxies, peer.ip(), req.headers())
    {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
    next.run(req).await
}

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy.
fn client_behind(
    proxies: &[ipnet::IpNet],
    peer: std::net::IpAddr,
    headers: &HeaderMap,
) -> Option<std::net::IpAddr> {
    let trusted = |ip: &std::net::IpAddr| proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return None;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            break; // garbage: stop at the last address we could trust
        };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// Where a request came from, recorded with sessions and audit entries: the connection's
/// address (the client, once [`resolve_client`] has looked behind trusted proxies).
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

/// The access token of `Authorization: Bearer`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A signed-in user (401 otherwise): by the session cookie, or by an app's access token
/// (`Authorization: Bearer`), which then decides alone.
#[derive(Debug)]
pub struct Auth(pub Signed);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer_token(&parts.headers) {
            return auth::current_by_token(state, token)
                .await?
                .map(Self)
                .ok_or_else(ApiError::invalid_token);
        }
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

/// Origins a page's forms may end up at besides our own (`form-action` of its CSP): the
/// registered redirect origin of an app whose sign-in or sign-out the page completes. Only
/// origins of registered URIs, as `scheme://host:port`, are ever put here.
#[derive(Debug, Clone)]
pub struct FormTargets(pub Vec<String>);

impl FormTargets {
    /// The origin of a registered URI.
    pub fn of(uri: &str) -> Option<Self> {
        let origin = url::Url::parse(uri).ok()?.origin();
        origin
            .is_tuple()
            .then(|| Self(vec![origin.ascii_serialization()]))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_taken_from_forwarded_for_only_behind_trusted_proxies() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.7, 198.51.100.2, 10.1.1.1".parse().unwrap(),
        );
        let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        // The nearest untrusted hop is the client; what it claims before it is not believed.
        assert_eq!(
            client_behind(&proxies, proxy, &h),
            Some("198.51.100.2".parse().unwrap())
        );
        // A peer that is not a trusted proxy: its header is ignored.
        assert_eq!(
            client_behind(&proxies, "198.51.100.9".parse().unwrap(), &h),
            None
        );
        // Garbage stops the walk at the last trusted hop.
        h.insert("x-forwarded-for", "nonsense, 10.2.2.2".parse().unwrap());
        assert_eq!(
            client_behind(&proxies, proxy, &h),
            Some("10.2.2.2".parse().unwrap())
        );
        h.remove("x-forwarded-for");
        assert_eq!(client_behind(&proxies, proxy, &h), Some(proxy));
    }
}
