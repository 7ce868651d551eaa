//! HTTP: the JSON API, the pages, the node endpoints, and what they share (errors, extractors,
//! paths, forwarding, the request log). Handlers are thin adapters over `service`.
//!
//! # Layout
//! - [`paths`]: every path, named once (routers, OpenAPI document, forwarding rules).
//! - [`error`]: `ApiError`, the one mapping of service errors to HTTP.
//! - [`extract`]: JSON bodies, cookies, the caller.
//! - [`api`], [`openapi`], [`pages`]: the JSON API, its document, the server-rendered pages.
//! - [`forward`]: sends a request for a tenant on another node to that node.
//! - [`internal`]: what nodes and `tenantctl` call on a node.
//! - [`observe`]: `/metrics` and the one log line per request.
//! - [`operator`]: the operator API (`/api/operator/*`) for the vendor's back office.
//! - [`oidc`]: the OpenID provider's endpoints for apps (discovery, keys, token, userinfo,
//!   revocation, introspection) and CORS for the apps' web origins.

pub mod api;
pub mod console_api;
pub mod error;
pub mod extract;
/// Second factors: the second step of a sign-in, passkeys, a person's own factors.
pub mod factors_api;
pub mod forward;
pub mod internal;
pub mod observe;
pub mod oidc;
pub mod openapi;
pub mod operator;
pub mod pages;
pub mod paths;
pub mod policy_api;
pub mod sso_api;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use self::error::ApiError;
use self::extract::MAX_BODY;
use crate::state::AppState;

/// Every route with its middleware.
/// Which listener an app serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// What browsers and the vendor's app reach. Without an internal listener it also serves
    /// the node endpoints (HMAC-authenticated); `/metrics` only with `TENANTD_METRICS_TOKEN`.
    Public,
    /// `TENANTD_INTERNAL_LISTEN`: everything, for other nodes and operators.
    Internal,
}

pub fn app(state: AppState, listener: Listener) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let internal_elsewhere = state.server.internal_listen.is_some();
    let mut router = Router::new()
        .route(paths::node::HEALTHZ, get(healthz))
        .route(paths::node::LIVEZ, get(|| async { "ok\n" }))
        .merge(api::router())
        .merge(operator::router(&state))
        .merge(oidc::router())
        .merge(pages::router());
    match listener {
        Listener::Internal => {
            router = router
                .route(paths::node::METRICS, get(observe::serve))
                .merge(internal::router(&state));
        }
        Listener::Public => {
            if state.server.metrics_token.is_some() {
                router = router.route(paths::node::METRICS, get(observe::serve_with_token));
            }
            if !internal_elsewhere {
                router = router.merge(internal::router(&state));
            }
        }
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward::route_request,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), oidc::cors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::resolve_client,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.directory.version().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: directory unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "directory unavailable\n").into_response()
        }
    }
}

/// JSON under `/api/` (and for the other machine endpoints), a page everywhere else.
fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with(paths::internal::PREFIX)
        || path == paths::node::METRICS
}

async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    if wants_json(req.uri().path()) {
        ApiError::not_found().into_response()
    } else {
        pages::not_found_page(&state.config.product_name)
    }
}

async fn method_not_allowed(State(state): State<AppState>, req: Request) -> Response {
    if wants_json(req.uri().path()) {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed here.",
        )
        .into_response()
    } else {
        pages::method_not_allowed_page(&state.config.product_name)
    }
}

/// Headers on every answer: no framing, no sniffing, no referrer (links carry tokens), a strict
/// content security policy without inline script, no caching of personal data, HSTS on https.
async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    // A form that ends in a redirect to an app (the login page of an app's sign-in, the
    // confirmation of an app's sign-out) may go to that app's registered origin too.
    let targets = res
        .extensions_mut()
        .remove::<extract::FormTargets>()
        .map(|t| t.0.join(" "))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'{}{targets}; frame-ancestors 'none'; base-uri 'none'",
        if targets.is_empty() { "" } else { " " }
    );
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if state.config.https() {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}
