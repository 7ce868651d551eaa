//! `GET /metrics`, and the one layer that counts, times and logs every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, REQUEST_ID};
use crate::metrics::{ForwardedTo, Gauges};
use crate::state::AppState;

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(&Gauges {
            node_id: state.cluster.node_id(),
            hash_queue_depth: state.hasher.depth(),
            tenants: state.tenants.stats(),
            replication: state.replication.as_ref().map(|l| l.read()),
        }),
    )
        .into_response()
}

/// `GET /metrics` on the public listener: only with `Authorization: Bearer <metrics token>`.
pub async fn serve_with_token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state
        .server
        .metrics_token
        .as_ref()
        .map_or("", |t| t.expose());
    let ok = !expected.is_empty()
        && given.len() == expected.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            expected.as_bytes(),
        ));
    if !ok {
        return ApiError::unauthenticated()
            .because("metrics without the right token")
            .into_response();
    }
    serve(State(state)).await
}

/// Counts every request by route and status, times it, and logs one line for it: method,
/// route template, status, latency and request id, and the cause of an error answer. Never
/// the path, query, cookies or body, which may carry tokens and emails.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    let res = REQUEST_ID.scope(request_id.clone(), next.run(req)).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    state
        .metrics
        .observe_request(&route, method.as_str(), status, took);
    let forwarded_to = res.extensions().get::<ForwardedTo>().map(|f| f.0.clone());
    if let Some(err) = res.extensions().get::<ApiError>()
        && let Some(cause) = &err.cause
    {
        if err.status.is_server_error() && err.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = err.code, error = %cause, request_id = %request_id, route = %route, "request failed");
        } else {
            tracing::warn!(code = err.code, error = %cause, request_id = %request_id, route = %route, "request refused");
        }
    }
    tracing::info!(
        target: "tenantd::request",
        method = %method,
        route = %route,
        status,
        latency_ms = (took.as_secs_f64() * 1e6).round() / 1e3,
        request_id = %request_id,
        forwarded_to = forwarded_to.as_deref(),
        "request"
    );
    res
}
