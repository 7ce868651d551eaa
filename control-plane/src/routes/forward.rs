//! Forwarding: a request for a tenant placed on another node is proxied there (with a signed
//! header naming this node and the client), and the answer comes back unchanged; the browser
//! does not notice. Writes of a tenant being moved away wait for the move.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tenant_runtime::TenantId;

use super::error::{ApiError, PlacedElsewhere};
use super::extract::{MAX_ACS_BODY, MAX_BODY, bearer_token, session_value};
use super::internal::first_use;
use super::paths::{self, TenantField};
use crate::cluster::signing::{Covered, FORWARDED_HEADER, body_sha256, path_and_query};
use crate::directory::TenantStatus;
use crate::metrics::ForwardedTo;
use crate::service::identity::{EmailRoute, split_bearer};
use crate::service::sso::saml_settings;
use crate::state::AppState;

/// What in a request names its tenant.
#[derive(Debug, PartialEq, Eq)]
enum Hint {
    Tenant(TenantId),
    Email(String),
    /// An operator API path naming a company by slug.
    Slug(String),
    None,
}

/// The body field that names the tenant of a request, if any.
fn body_field(method: &Method, path: &str) -> Option<TenantField> {
    if method != Method::POST {
        return None;
    }
    paths::tenant_field(path)
}

fn field_of(headers: &HeaderMap, body: &[u8], name: &str) -> Option<String> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.get(name)?.as_str().map(str::to_owned)
    } else {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

fn tenant_of_bearer(value: &str) -> Option<TenantId> {
    split_bearer(value).map(|(t, _)| t)
}

/// The company an access token names. Unchecked: it only decides where the request goes; the
/// node serving the company checks the signature.
fn tenant_of_jwt(token: &str) -> Option<TenantId> {
    let claims = crate::keys::jws::payload(token).ok()?;
    TenantId::parse(claims.get("org_id")?.as_str()?).ok()
}

fn tenant_of_grant(value: &str) -> Option<TenantId> {
    tenant_of_bearer(value).or_else(|| tenant_of_jwt(value))
}

/// An operator API call goes to the node of the company it names (by slug, or the user's
/// email); its credentials and any cookie say nothing about a company.
fn operator_hint(parts: &Parts) -> Hint {
    let path = parts.uri.path();
    if let Some(slug) = paths::operator_slug(path) {
        return Hint::Slug(slug.to_owned());
    }
    if path == paths::operator::USERS
        && let Some(q) = parts.uri.query()
        && let Some((_, email)) =
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "email")
    {
        return Hint::Email(email.into_owned());
    }
    Hint::None
}

fn hint(state: &AppState, parts: &Parts, body: Option<&[u8]>) -> Hint {
    if paths::is_operator(parts.uri.path()) {
        return operator_hint(parts);
    }
    if let (Some(field), Some(body)) = (body_field(&parts.method, parts.uri.path()), body) {
        return match field {
            TenantField::Email => {
                field_of(&parts.headers, body, "email").map_or(Hint::None, Hint::Email)
            }
            TenantField::Token => field_of(&parts.headers, body, "token")
                .or_else(|| field_of(&parts.headers, body, "mfa_token"))
                .and_then(|v| tenant_of_bearer(&v))
                .map_or(Hint::None, Hint::Tenant),
            TenantField::Grant => ["code", "refresh_token", "token"]
                .iter()
                .find_map(|f| field_of(&parts.headers, body, f))
                .and_then(|v| tenant_of_grant(&v))
                .map_or(Hint::None, Hint::Tenant),
        };
    }
    if let Some(t) = bearer_token(&parts.headers).and_then(tenant_of_jwt) {
        return Hint::Tenant(t);
    }
    if let Some(t) = saml_settings::tenant_of_path(parts.uri.path()) {
        return Hint::Tenant(t);
    }
    if let Some(name) = paths::sso_tenant_param(parts.uri.path())
        && let Some(q) = parts.uri.query()
        && let Some((_, v)) = url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name)
        && let Some(t) = v.split_once('.').and_then(|(t, _)| TenantId::parse(t).ok())
    {
        return Hint::Tenant(t);
    }
    if let Some(q) = parts.uri.query()
        && let Some((_, token)) =
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token")
        && let Some(t) = tenant_of_bearer(&token)
    {
        return Hint::Tenant(t);
    }
    match session_value(state, &parts.headers)
        .as_deref()
        .and_then(tenant_of_bearer)
    {
        Some(t) => Hint::Tenant(t),
        None => Hint::None,
    }
}

/// The largest body a route takes, so a forwarded request gets the same limit as a local one:
/// a SAML ACS takes larger posts than the rest.
fn body_limit(path: &str) -> usize {
    if path.ends_with("/acs") && saml_settings::tenant_of_path(path).is_some() {
        MAX_ACS_BODY
    } else {
        MAX_BODY
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(ApiError::payload_too_large().into_response()),
    }
}

/// A request's body, read only when needed.
enum Held {
    Stream(Body),
    Bytes(Bytes),
}

impl Held {
    async fn bytes(self, limit: usize) -> Result<Bytes, Response> {
        match self {
            Self::Stream(b) => read_body(b, limit).await,
            Self::Bytes(b) => Ok(b),
        }
    }

    fn into_body(self) -> Body {
        match self {
            Self::Stream(b) => b,
            Self::Bytes(b) => Body::from(b),
        }
    }
}

enum Forwarded {
    Answer(Response),
    /// The node does not hold the tenant (it moved): look again.
    Misdirected,
    Unreachable,
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name) || name == "content-length" || name == FORWARDED_HEADER {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

/// Proxies a request to `node` and reads its answer.
async fn forward(
    state: &AppState,
    node: &str,
    parts: &Parts,
    body: Bytes,
    client_ip: &str,
) -> Forwarded {
    let cluster = &state.cluster;
    let Some(secret) = cluster.secret() else {
        return Forwarded::Unreachable;
    };
    let started = Instant::now();
    let Some(base) = cluster.url_of(&state.directory, node).await else {
        state
            .metrics
            .forwarded(node, "unavailable", started.elapsed());
        return Forwarded::Unreachable;
    };
    let pq = path_and_query(&parts.uri);
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let ip = if client_ip.is_empty() { "-" } else { client_ip };
    let sha = body_sha256(&body);
    let signed = secret.sign_forward(
        state.now(),
        Covered {
            method: &parts.method,
            path_and_query: pq,
            body_sha256: &sha,
            headers: &headers,
        },
        cluster.node_id(),
        ip,
    );
    if let Ok(v) = HeaderValue::from_str(&signed) {
        headers.insert(HeaderName::from_static(FORWARDED_HEADER), v);
    }
    let url = format!("{}{pq}", base.trim_end_matches('/'));
    let sent = cluster
        .http()
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let res = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node, error = %e, "forwarding failed: node unreachable");
            cluster.forget_url(node);
            state
                .metrics
                .forwarded(node, "unavailable", started.elapsed());
            return Forwarded::Unreachable;
        }
    };
    if res.status() == StatusCode::MISDIRECTED_REQUEST {
        state
            .metrics
            .forwarded(node, "misdirected", started.elapsed());
        return Forwarded::Misdirected;
    }
    let status = res.status();
    let mut out_headers = HeaderMap::new();
    copy_headers(res.headers(), &mut out_headers);
    let body = match res.bytes().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(node, error = %e, "forwarding failed while reading the answer");
            state
                .metrics
                .forwarded(node, "unavailable", started.elapsed());
            return Forwarded::Unreachable;
        }
    };
    state.metrics.forwarded(node, "ok", started.elapsed());
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    out.extensions_mut().insert(ForwardedTo(node.to_owned()));
    Forwarded::Answer(out)
}

fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Serves a request here when this node holds its tenant (or it has none), and forwards it to
/// the tenant's node otherwise. Writes of a tenant being moved wait for the move.
pub async fn route_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if paths::node_local(req.uri().path()) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let mut held = Held::Stream(body);
    let limit = body_limit(parts.uri.path());
    // A request another node forwarded: authenticated with its body and authority headers, seen
    // for the first time, and the client is the one it names.
    let forwarded = match parts.headers.get(FORWARDED_HEADER).cloned() {
        None => false,
        Some(value) => {
            let bytes = match held.bytes(limit).await {
                Ok(b) => b,
                Err(res) => return res,
            };
            let sha = body_sha256(&bytes);
            held = Held::Bytes(bytes);
            let genuine = state.cluster.secret().and_then(|secret| {
                secret.verify_forward(
                    state.now(),
                    value.to_str().unwrap_or(""),
                    Covered {
                        method: &parts.method,
                        path_and_query: path_and_query(&parts.uri),
                        body_sha256: &sha,
                        headers: &parts.headers,
                    },
                )
            });
            let Some(verified) = genuine else {
                return ApiError::forbidden()
                    .because("forwarded request: bad or stale signature")
                    .into_response();
            };
            if let Err(res) = first_use(&state, &verified.nonce).await {
                return res;
            }
            let ip = verified
                .from
                .and_then(|(_, ip)| ip.parse::<IpAddr>().ok())
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            parts.extensions.insert(ConnectInfo(SocketAddr::new(ip, 0)));
            true
        }
    };
    if !state.cluster.forwarding() {
        // One node (or forwarding off): nothing to route; a tenant placed elsewhere is refused
        // where it is opened (`check_placement`).
        return next.run(Request::from_parts(parts, held.into_body())).await;
    }
    if body_field(&parts.method, parts.uri.path()).is_some() {
        match held.bytes(limit).await {
            Ok(b) => held = Held::Bytes(b),
            Err(res) => return res,
        }
    }
    let found = match &held {
        Held::Bytes(b) => hint(&state, &parts, Some(b)),
        Held::Stream(_) => hint(&state, &parts, None),
    };
    let tenant_id = match found {
        Hint::Tenant(id) => id,
        Hint::Email(raw) => {
            let email = tenant_runtime::email::canonicalize(&raw);
            if tenant_runtime::email::parse(&email).is_none() || email.len() > 320 {
                return next.run(Request::from_parts(parts, held.into_body())).await;
            }
            let routed = match state.directory.route_email(&email).await {
                Ok(t) => t,
                Err(e) => return ApiError::from(crate::error::Fault::from(e)).into_response(),
            };
            // The handler reuses this answer instead of asking the directory again.
            parts.extensions.insert(EmailRoute {
                email,
                tenant: routed.clone(),
            });
            match routed {
                Some(t) if t.status != TenantStatus::Provisioning => t.id,
                _ => return next.run(Request::from_parts(parts, held.into_body())).await,
            }
        }
        Hint::Slug(slug) => match state.directory.tenant_by_slug(&slug).await {
            Ok(Some(t)) if t.status != TenantStatus::Provisioning => t.id,
            Ok(_) => return next.run(Request::from_parts(parts, held.into_body())).await,
            Err(e) => return ApiError::from(crate::error::Fault::from(e)).into_response(),
        },
        Hint::None => return next.run(Request::from_parts(parts, held.into_body())).await,
    };
    let ip = client_ip(&parts);
    for attempt in 0..3 {
        let tenant = match state.tenant(&tenant_id).await {
            Ok(Some(t)) => t,
            // Unknown: the handler gives its usual answer.
            Ok(None) => return next.run(Request::from_parts(parts, held.into_body())).await,
            Err(e) => return ApiError::from(crate::error::Fault::from(e)).into_response(),
        };
        if state.cluster.holds(&tenant) {
            if !is_write(&parts.method) {
                // A read takes no write permit, so a move may release the tenant while it is
                // served: then it goes again, to the tenant's new node.
                let bytes = match held.bytes(limit).await {
                    Ok(b) => b,
                    Err(res) => return res,
                };
                let res = next
                    .clone()
                    .run(Request::from_parts(
                        parts.clone(),
                        Body::from(bytes.clone()),
                    ))
                    .await;
                if res.extensions().get::<PlacedElsewhere>().is_none() {
                    return res;
                }
                state.tenant_cache.forget(&tenant_id);
                held = Held::Bytes(bytes);
                continue;
            }
            let permit = match state.cluster.write_permit(&tenant.id).await {
                Ok(p) => p,
                Err(_) => return ApiError::from(crate::error::Fault::Moving).into_response(),
            };
            let after_wait = match state.tenant(&tenant_id).await {
                Ok(Some(t)) => t,
                Ok(None) => tenant,
                Err(e) => return ApiError::from(crate::error::Fault::from(e)).into_response(),
            };
            if !state.cluster.holds(&after_wait) {
                // The tenant moved away while this write waited: on to its new node.
                drop(permit);
                state.tenant_cache.forget(&tenant_id);
                continue;
            }
            let res = next.run(Request::from_parts(parts, held.into_body())).await;
            drop(permit);
            return res;
        }
        if forwarded {
            // Another node sent it here: check the directory itself before saying no.
            if attempt == 0 {
                state.tenant_cache.forget(&tenant_id);
                continue;
            }
            return misdirected();
        }
        if !state.cluster.forwarding() {
            return ApiError::tenant_unavailable()
                .because("tenant on another node and forwarding is off (no TENANTD_NODE_SECRET)")
                .into_response();
        }
        let bytes = match held.bytes(limit).await {
            Ok(b) => b,
            Err(res) => return res,
        };
        match forward(&state, &tenant.node, &parts, bytes.clone(), &ip).await {
            Forwarded::Answer(res) => return res,
            Forwarded::Misdirected => {
                state.tenant_cache.forget(&tenant_id);
                held = Held::Bytes(bytes);
            }
            Forwarded::Unreachable => {
                if paths::is_forgot(parts.uri.path()) {
                    // A reset request answers the same whether or not the account exists,
                    // and whether or not its node is up: the usual answer, and no mail.
                    return next
                        .run(Request::from_parts(parts, Body::from(bytes)))
                        .await;
                }
                return ApiError::tenant_unavailable().into_response();
            }
        }
    }
    ApiError::tenant_unavailable().into_response()
}

fn misdirected() -> Response {
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "tenant_moved",
        "This tenant is served by another node.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_is_found_in_the_fields_that_name_it() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let b = serde_json::json!({"email": "Ann@Acme.test", "password": "x"}).to_string();
        assert_eq!(
            field_of(&h, b.as_bytes(), "email").as_deref(),
            Some("Ann@Acme.test")
        );
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            field_of(&form, b"csrf=1&token=abc.def&password=x", "token").as_deref(),
            Some("abc.def")
        );
        assert_eq!(field_of(&h, b"not json", "email"), None);
        assert_eq!(
            body_field(&Method::POST, paths::api::LOGIN),
            Some(TenantField::Email)
        );
        assert_eq!(
            body_field(&Method::POST, paths::pages::INVITE),
            Some(TenantField::Token)
        );
        assert_eq!(body_field(&Method::GET, paths::pages::INVITE), None);
        assert_eq!(body_field(&Method::POST, paths::api::USERS), None);
    }
}
