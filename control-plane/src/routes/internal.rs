//! The endpoints nodes and `tenantctl` call on a node (`/internal/…`), authenticated with the
//! nodes' shared secret; each is a thin adapter over `service::moves` (or `service::failover`).

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tenant_runtime::TenantId;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, MAX_BODY};
use super::paths::internal as p;
use crate::cluster::client::{
    FirstAdmin, Provisioned, RecoverRequest, RecoveredFile, SHA256_HEADER, SnapshotInfo,
    USERS_HEADER,
};
use crate::cluster::signing::{
    BODY_SHA256_HEADER, Covered, INTERNAL_HEADER, MAX_SKEW_SECS, body_sha256, path_and_query,
};
use crate::service::{failover, moves};
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(p::FREEZE, post(freeze))
        .route(p::THAW, post(thaw))
        .route(p::SNAPSHOT, get(send_snapshot).put(receive_snapshot))
        .route(p::RELEASE, post(release))
        .route(p::REFRESH, post(refresh))
        .route(p::PROVISION, post(provision_file))
        .route(p::RECOVER, post(recover))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_node_secret,
        ))
}

/// Lets through only calls signed with the nodes' secret, whose body is the one signed, and
/// whose signature no node has seen before.
async fn require_node_secret(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(secret) = state.cluster.secret() else {
        return ApiError::not_found().into_response();
    };
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(BODY_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // A snapshot is streamed: its handler checks it against the declared (signed) hash before
    // installing anything. Every other body is read and checked here.
    let body = if parts.method == Method::PUT {
        body
    } else {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) if body_sha256(&bytes) == declared => Body::from(bytes),
            Ok(_) => {
                return ApiError::forbidden()
                    .because("internal call: the body is not the one signed")
                    .into_response();
            }
            Err(_) => return ApiError::payload_too_large().into_response(),
        }
    };
    let verified = parts
        .headers
        .get(INTERNAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            secret.verify_internal(
                state.now(),
                v,
                Covered {
                    method: &parts.method,
                    path_and_query: path_and_query(&parts.uri),
                    body_sha256: &declared,
                    headers: &parts.headers,
                },
            )
        });
    let Some(verified) = verified else {
        return ApiError::forbidden()
            .because("internal call: bad or stale signature")
            .into_response();
    };
    if let Err(res) = first_use(&state, &verified.nonce).await {
        return res;
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Records a signature's nonce for the whole window in which it is valid, on every node (the
/// directory is shared); a nonce seen before is a replay.
pub async fn first_use(state: &AppState, nonce: &str) -> Result<(), Response> {
    let until = state.now() + 2 * MAX_SKEW_SECS;
    match state.directory.remember_signature(nonce, until).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::forbidden()
            .because("replayed node signature")
            .into_response()),
        Err(e) => Err(ApiError::from(crate::error::Fault::from(e)).into_response()),
    }
}

/// A tenant id in the path; anything else is no tenant here.
fn tenant(id: &str) -> ApiResult<TenantId> {
    TenantId::parse(id).map_err(|_| ApiError::not_found())
}

#[derive(Deserialize)]
struct EpochQuery {
    epoch: i64,
}

async fn freeze(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EpochQuery>,
) -> ApiResult<Json<Value>> {
    let lease = moves::freeze(&state, &tenant(&id)?, q.epoch).await?;
    Ok(Json(json!({"frozen": true, "lease_secs": lease.as_secs()})))
}

async fn thaw(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let was = moves::thaw(&state, &tenant(&id)?);
    Ok(Json(json!({"thawed": was})))
}

async fn send_snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let snap = moves::snapshot(&state, &tenant(&id)?).await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(snap.file));
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(snap.info.bytes));
    if let Ok(v) = HeaderValue::from_str(&snap.info.sha256) {
        h.insert(HeaderName::from_static(SHA256_HEADER), v);
    }
    h.insert(
        HeaderName::from_static(USERS_HEADER),
        HeaderValue::from(snap.info.users),
    );
    Ok(res)
}

async fn receive_snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EpochQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<SnapshotInfo>> {
    let expected = headers
        .get(BODY_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let info = moves::receive(
        &state,
        &tenant(&id)?,
        q.epoch,
        expected,
        body.into_data_stream(),
    )
    .await?;
    Ok(Json(info))
}

async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EpochQuery>,
) -> ApiResult<Json<Value>> {
    let kept = moves::release(&state, &tenant(&id)?, q.epoch).await?;
    Ok(Json(json!({"released": true, "kept": kept})))
}

async fn refresh(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    moves::refresh(&state, &tenant(&id)?);
    Ok(Json(json!({"refreshed": true})))
}

async fn provision_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(first): ApiJson<FirstAdmin>,
) -> ApiResult<Json<Provisioned>> {
    Ok(Json(
        moves::provision_file(&state, &tenant(&id)?, &first).await?,
    ))
}

async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RecoverRequest>,
) -> ApiResult<Json<RecoveredFile>> {
    Ok(Json(
        failover::recover_here(&state, &tenant(&id)?, &req).await?,
    ))
}
