//! The JSON API under `/api`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{
    Admin, ApiJson, Auth, ClientOrigin, KnownRoute, bearer_token, check_len, clear_session_cookie,
    device_value, same_site, session_value, signed_in,
};
use super::paths::api as p;
use crate::service::admin::{self, UserChange};
use crate::service::auth;
use crate::service::identity::{AuthError, AuthResult};
use crate::service::{account, people, profile, recovery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route(p::LOGIN, post(login))
        .route(p::LOGOUT, post(logout))
        .route(p::SESSION, get(session))
        .route(p::FORGOT, post(forgot))
        .route(p::RESET, post(reset))
        .route(p::ACCEPT_INVITE, post(accept_invite))
        .route(p::USERS, get(list_users).post(invite_user))
        .route(
            p::USER,
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(
            p::USER_INVITATION,
            post(resend_invitation).delete(revoke_invitation),
        )
        .route(p::OPENAPI, get(super::openapi::serve))
        .route(p::SESSIONS, get(list_sessions))
        .route(p::SESSION_BY_ID, delete(end_session))
        .route(p::LOGOUT_ALL, post(logout_all))
        .route(p::ACCOUNT_PASSWORD, post(change_password))
        .route(
            p::USER_SESSIONS,
            get(list_user_sessions).delete(end_user_sessions),
        );
    api.merge(super::console_api::router())
        .merge(super::policy_api::router())
        .merge(super::factors_api::router())
        .merge(super::sso_api::router())
        .route_layer(axum::middleware::from_fn(refuse_cross_site))
}

/// A browser sends cookies along with cross-site requests, even bodiless ones or forms: a
/// state-changing request that carries a cookie must come from our own pages. Requests with a
/// bearer token and no cookie are not a browser's ambient authority and pass.
async fn refuse_cross_site(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let changes = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if changes && req.headers().contains_key(header::COOKIE) && !same_site(req.headers(), false) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "Requests from other sites are not accepted here.",
        )
        .into_response();
    }
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    KnownRoute(known): KnownRoute,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let device = device_value(&state, &headers);
    let signed = auth::login(
        &state,
        &body.email,
        &body.password,
        origin,
        known.as_ref(),
        device.as_deref(),
    )
    .await?;
    Ok(signed_in(&state, signed))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = bearer_token(&headers) {
        // An app signing its user out: the session behind its access token ends.
        let signed = auth::current_by_token(&state, token)
            .await?
            .ok_or_else(ApiError::invalid_token)?;
        auth::end_session(&state, &signed).await?;
    } else if let Some(value) = session_value(&state, &headers) {
        auth::logout(&state, &value).await?;
    }
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, clear_session_cookie(&state))],
        Json(json!({"signed_out": true})),
    )
        .into_response())
}

async fn session(Auth(signed): Auth) -> Json<crate::service::SessionView> {
    Json(signed.view())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotBody {
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    KnownRoute(known): KnownRoute,
    ApiJson(body): ApiJson<ForgotBody>,
) -> ApiResult<Response> {
    check_len("email", &body.email)?;
    recovery::forgot(&state, &body.email, origin, known).await?;
    Ok(forgot_accepted())
}

/// The one answer to a reset request, whether or not the account exists.
pub fn forgot_accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        Json(
            json!({"message": "If the address belongs to an account, a reset link is on its way."}),
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    token: String,
    password: String,
}

async fn reset(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<Json<serde_json::Value>> {
    check_len("token", &body.token)?;
    recovery::throttle_token(&state, &body.token, &origin.ip).await?;
    let result = recovery::reset(&state, &body.token, &body.password).await;
    forgive_unless_bad_token(&state, &body.token, &origin.ip, &result).await;
    result?;
    Ok(Json(
        json!({"message": "Your password was changed. Sign in with the new one."}),
    ))
}

/// Only a wrong or dead token counts against the caller; a refused password does not.
async fn forgive_unless_bad_token<T>(
    state: &AppState,
    token: &str,
    ip: &str,
    result: &AuthResult<T>,
) {
    if !matches!(result, Err(AuthError::InvalidToken)) {
        recovery::token_succeeded(state, token, ip).await;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    token: String,
    password: String,
    name: Option<String>,
}

async fn accept_invite(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<AcceptBody>,
) -> ApiResult<Response> {
    check_len("token", &body.token)?;
    let name = admin::parse_name(body.name.as_deref())?;
    recovery::throttle_token(&state, &body.token, &origin.ip).await?;
    let ip = origin.ip.clone();
    let result =
        recovery::accept_invite(&state, &body.token, &body.password, Some(&name), origin).await;
    forgive_unless_bad_token(&state, &body.token, &ip, &result).await;
    let signed = result?;
    Ok(signed_in(&state, signed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    offset: Option<u32>,
    limit: Option<u32>,
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

/// `offset` pages the plain list (by email); the other parameters search it, a cursor at a
/// time.
async fn list_users(
    State(state): State<AppState>,
    Admin(admin): Admin,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(page) = page.map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "offset and limit are whole numbers; q, role, status, sort and cursor are text.",
        )
    })?;
    let limit = page.limit.unwrap_or(50).clamp(1, 200);
    if let Some(offset) = page.offset {
        if page.cursor.is_some() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "Page with offset or with cursor, not both.",
            ));
        }
        if page.q.is_none() && page.role.is_none() && page.status.is_none() && page.sort.is_none() {
            let (users, total) = admin::list_users(&state, &admin, offset, limit).await?;
            return Ok(Json(
                json!({"users": users, "total": total, "offset": offset, "limit": limit, "next_cursor": null}),
            ));
        }
        return Err(ApiError::bad_request(
            "invalid_query",
            "Search, filters and sort page with cursor, not offset.",
        ));
    }
    let search = people::search_of(
        page.q.as_deref(),
        page.role.as_deref(),
        page.status.as_deref(),
        page.sort.as_deref(),
        page.cursor.as_deref(),
        limit,
    )?;
    let found = people::search(&state, &admin, search).await?;
    Ok(Json(json!({
        "users": found.users,
        "total": found.total,
        "offset": 0,
        "limit": limit,
        "next_cursor": found.next_cursor,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: String,
    name: Option<String>,
}

async fn invite_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult<Response> {
    check_len("email", &body.email)?;
    let role = admin::parse_role(&body.role)?;
    let user = admin::invite(&state, &admin, &body.email, role, body.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn get_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::service::AdminUserView>> {
    Ok(Json(admin::get_user(&state, &admin, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    role: Option<String>,
    blocked: Option<bool>,
    name: Option<String>,
    email: Option<String>,
}

/// Role, block, name and email in one request; every field is checked before anything
/// changes. An email change only starts: it waits for the link mailed to the new address.
async fn update_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let change = UserChange {
        role: body.role.as_deref().map(admin::parse_role).transpose()?,
        blocked: body.blocked,
    };
    if let Some(name) = &body.name {
        check_len("name", name)?;
        admin::parse_name(Some(name))?;
    }
    if let Some(email) = &body.email {
        check_len("email", email)?;
        tenant_runtime::email::parse(email).ok_or(admin::AdminError::InvalidEmail)?;
    }
    let mut user = admin::get_user(&state, &admin, &id).await?;
    if change.role.is_some() || change.blocked.is_some() {
        user = admin::update_user(&state, &admin, &id, change).await?;
    }
    let signed = admin.signed();
    if let Some(name) = &body.name {
        let u = profile::set_name(&state, &signed.tenant.id, &signed.user.id, &id, name).await?;
        user = crate::service::AdminUserView::from(&u);
    }
    let pending = match &body.email {
        Some(email) => Some(
            profile::request_email_change(&state, &signed.tenant, &signed.user.id, &id, email)
                .await?,
        ),
        None => profile::pending_email(&state, &signed.tenant.id, &id).await?,
    };
    let mut v = json!(user);
    v["pending_email"] = json!(pending);
    Ok(Json(v))
}

async fn delete_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin::delete_user(&state, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resend_invitation(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::service::AdminUserView>> {
    Ok(Json(admin::resend_invitation(&state, &admin, &id).await?))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::service::AdminUserView>> {
    Ok(Json(admin::revoke_invitation(&state, &admin, &id).await?))
}

async fn list_sessions(
    State(state): State<AppState>,
    Auth(signed): Auth,
) -> ApiResult<Json<serde_json::Value>> {
    let sessions = account::sessions_of(&state, &signed).await?;
    Ok(Json(json!({"sessions": sessions})))
}

async fn end_session(
    State(state): State<AppState>,
    Auth(signed): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    account::end_session(&state, &signed, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_all(State(state): State<AppState>, Auth(signed): Auth) -> ApiResult<Response> {
    let ended = account::end_all_sessions(&state, &signed).await?;
    Ok((
        [(header::SET_COOKIE, clear_session_cookie(&state))],
        Json(json!({"signed_out": true, "sessions_ended": ended})),
    )
        .into_response())
}

async fn list_user_sessions(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let sessions = admin::user_sessions(&state, &admin, &id).await?;
    Ok(Json(json!({"sessions": sessions})))
}

async fn end_user_sessions(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let ended = admin::end_user_sessions(&state, &admin, &id).await?;
    Ok(Json(json!({"sessions_ended": ended})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    Auth(signed): Auth,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<Json<serde_json::Value>> {
    account::change_password(
        &state,
        &signed,
        &body.current_password,
        &body.new_password,
        &origin.ip,
    )
    .await?;
    Ok(Json(
        json!({"message": "Your password was changed. Your other sessions were signed out."}),
    ))
}
