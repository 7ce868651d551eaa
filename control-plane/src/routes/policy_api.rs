//! The company's sign-in policy: `GET/PATCH /api/admin/policy`, for its admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tenant_runtime::store::policy::Policy;

use super::error::ApiResult;
use super::extract::{Admin, ApiJson};
use super::paths::api as p;
use crate::service::sign_in_policy::{self, PolicyChange};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(p::POLICY, get(policy).patch(change_policy))
}

async fn policy(State(state): State<AppState>, Admin(admin): Admin) -> ApiResult<Json<Policy>> {
    Ok(Json(sign_in_policy::get(&state, &admin).await?))
}

async fn change_policy(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(change): ApiJson<PolicyChange>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(sign_in_policy::update(&state, &admin, change).await?))
}
