//! A company's domains and identity-provider connections (`/api/admin/domains…`,
//! `/api/admin/sso/connections…`, for its admins), and `POST /api/auth/discover`: where an
//! email signs in.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson};
use super::paths::api as p;
use crate::service::sso::connections::{self, ConnectionInput, ConnectionView, TestReport};
use crate::service::sso::domains::{self, DomainView};
use crate::service::sso::flow::{self, Discovery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(p::DOMAINS, get(list_domains).post(claim_domain))
        .route(p::DOMAIN, axum::routing::delete(remove_domain))
        .route(p::DOMAIN_VERIFY, post(verify_domain))
        .route(
            p::SSO_CONNECTIONS,
            get(list_connections).post(create_connection),
        )
        .route(
            p::SSO_CONNECTION,
            get(get_connection)
                .patch(update_connection)
                .delete(delete_connection),
        )
        .route(p::SSO_CONNECTION_TEST, post(test_connection))
        .route(p::DISCOVER, post(discover))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

async fn list_domains(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> ApiResult<Json<Value>> {
    let list = domains::list(&state, &admin).await?;
    Ok(Json(json!({ "domains": list })))
}

async fn claim_domain(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<DomainBody>,
) -> ApiResult<(StatusCode, Json<DomainView>)> {
    let d = domains::claim(&state, &admin, &body.domain).await?;
    let status = if d.status == "pending" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(d)))
}

async fn verify_domain(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(domain): Path<String>,
) -> ApiResult<Json<DomainView>> {
    Ok(Json(domains::verify(&state, &admin, &domain).await?))
}

async fn remove_domain(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    domains::remove(&state, &admin, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_connections(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> ApiResult<Json<Value>> {
    let list = connections::list(&state, &admin).await?;
    Ok(Json(json!({ "connections": list })))
}

async fn create_connection(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<ConnectionInput>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let c = connections::create(&state, &admin, body).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

async fn get_connection(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionView>> {
    Ok(Json(connections::get(&state, &admin, &id).await?))
}

async fn update_connection(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionInput>,
) -> ApiResult<Json<ConnectionView>> {
    Ok(Json(connections::update(&state, &admin, &id, body).await?))
}

async fn delete_connection(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    connections::delete(&state, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_connection(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<TestReport>> {
    Ok(Json(connections::test(&state, &admin, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverBody {
    email: String,
}

/// `{"method":"password"}` or `{"method":"sso","redirect":…}`: decided by the email's domain
/// alone, so the answer says nothing about whether the person has an account.
async fn discover(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DiscoverBody>,
) -> ApiResult<Json<Value>> {
    if body.email.len() > 320 {
        return Err(ApiError::bad_request(
            "invalid_email",
            "Enter a valid email address.",
        ));
    }
    Ok(Json(
        match flow::discover(&state, &body.email, None).await? {
            Discovery::Password => json!({"method": "password"}),
            Discovery::Sso { redirect } => {
                json!({"method": "sso", "redirect": state.config.link(&redirect)})
            }
        },
    ))
}
