//! The JSON API of the admin console and the account: the people export, bulk invitations,
//! the audit log and its exports, a user's single sessions, pending email changes, the
//! company's address rule, and the caller's own name and address.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tenant_runtime::store::audit;

use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, Auth, ClientOrigin, check_len, session_value};
use super::paths::api as p;
use crate::service::admin::{self, AdminError};
use crate::service::people::{self, BulkLine, BulkOutcome};
use crate::service::{SessionView, auth, profile, recovery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(p::AUDIT, get(audit_log))
        .route(p::USERS_EXPORT, get(export_users))
        .route(p::USERS_BULK, post(bulk_invite))
        .route(p::USER_SESSION, delete(end_user_session))
        .route(p::USER_EMAIL_CHANGE, delete(cancel_email_change))
        .route(p::SETTINGS, get(settings).patch(set_settings))
        .route(p::ACCOUNT, patch(update_account))
        .route(p::ACCOUNT_EMAIL_CONFIRM, post(confirm_email))
}

fn bad_query() -> ApiError {
    ApiError::bad_request("invalid_query", "Check the query parameters.")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    sort: Option<String>,
}

/// A download of `body` as `filename`.
fn download(content_type: &'static str, filename: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                match filename {
                    "people.csv" => "attachment; filename=\"people.csv\"",
                    "audit.csv" => "attachment; filename=\"audit.csv\"",
                    _ => "attachment; filename=\"audit.jsonl\"",
                },
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn export_users(
    State(state): State<AppState>,
    Admin(admin): Admin,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|_| bad_query())?;
    let search = people::search_of(
        q.q.as_deref(),
        q.role.as_deref(),
        q.status.as_deref(),
        q.sort.as_deref(),
        None,
        1,
    )?;
    let csv = people::export_csv(&state, &admin, search).await?;
    Ok(download("text/csv; charset=utf-8", "people.csv", csv))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkQuery {
    preview: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkItem {
    email: String,
    name: Option<String>,
    role: Option<String>,
}

/// The lines of a bulk request: a JSON array of `{email, name?, role?}`, or `text/csv`.
fn bulk_lines(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<BulkLine>> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match ctype.as_str() {
        "application/json" => {
            let items: Vec<BulkItem> = serde_json::from_slice(body).map_err(|e| {
                if e.is_syntax() || e.is_eof() {
                    ApiError::bad_request("invalid_json", "The body is not valid JSON.")
                } else {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        "Send an array of {\"email\", \"name\", \"role\"}.",
                    )
                }
            })?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, it)| BulkLine {
                    line: i + 1,
                    email: it.email,
                    name: it.name.unwrap_or_default(),
                    role: it.role.unwrap_or_default(),
                })
                .collect())
        }
        "text/csv" => {
            let text = std::str::from_utf8(body).map_err(|_| {
                ApiError::bad_request("invalid_csv", "The CSV is not valid UTF-8 text.")
            })?;
            Ok(people::bulk_lines_of_csv(text))
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the list as application/json (an array) or text/csv (email,name,role).",
        )),
    }
}

/// One line's answer: its code and message when refused.
pub fn outcome_json(o: BulkOutcome) -> serde_json::Value {
    let (status, code, message) = match o.error {
        None if o.user.is_some() => ("invited", None, None),
        None => ("ok", None, None),
        Some(e) => {
            let api = ApiError::from(e);
            ("error", Some(api.code), Some(api.message.into_owned()))
        }
    };
    json!({
        "line": o.line,
        "email": o.email,
        "name": o.name,
        "role": o.role,
        "status": status,
        "error": code,
        "message": message,
        "user": o.user,
    })
}

/// `?preview=true` only checks; otherwise the good lines are invited. Per line, always 200.
async fn bulk_invite(
    State(state): State<AppState>,
    Admin(admin): Admin,
    q: Result<Query<BulkQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(q) = q.map_err(|_| bad_query())?;
    let body = body.map_err(|_| ApiError::payload_too_large())?;
    let lines = bulk_lines(&headers, &body)?;
    let send = !q.preview.unwrap_or(false);
    let outcomes = people::bulk_invite(&state, &admin, lines, send).await?;
    let (mut ok, mut refused) = (0, 0);
    for o in &outcomes {
        if o.error.is_none() {
            ok += 1;
        } else {
            refused += 1;
        }
    }
    let lines: Vec<_> = outcomes.into_iter().map(outcome_json).collect();
    Ok(Json(json!({
        "preview": !send,
        "accepted": ok,
        "refused": refused,
        "lines": lines,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    before: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<u32>,
    format: Option<String>,
}

/// Most entries in one export.
const MAX_AUDIT_EXPORT: usize = 100_000;

/// A page of the log as JSON, or every matching entry as CSV or JSON lines (`format`).
async fn audit_log(
    State(state): State<AppState>,
    Admin(admin): Admin,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|_| bad_query())?;
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (user, action) = (text(q.user), text(q.action));
    for v in [&user, &action].into_iter().flatten() {
        check_len("user or action", v)?;
    }
    let filter = audit::Filter {
        user,
        action,
        before: q.before,
        since: q.since,
        until: q.until,
        limit: q.limit.unwrap_or(50).clamp(1, 200),
    };
    let format = q.format.as_deref().unwrap_or("json");
    if format == "json" {
        let limit = filter.limit;
        let entries = admin::audit_log(&state, &admin, filter).await?;
        let next = (entries.len() == limit as usize)
            .then(|| entries.last().map(|e| e.id))
            .flatten();
        return Ok(Json(json!({"entries": entries, "next_before": next})).into_response());
    }
    if format != "csv" && format != "jsonl" {
        return Err(ApiError::bad_request(
            "invalid_query",
            "format is json, csv or jsonl.",
        ));
    }
    let mut filter = audit::Filter {
        limit: 1000,
        ..filter
    };
    let mut all = Vec::new();
    loop {
        let page = admin::audit_log(&state, &admin, filter.clone()).await?;
        let done = page.len() < filter.limit as usize;
        filter.before = page.last().map(|e| e.id);
        all.extend(page);
        if done || all.len() >= MAX_AUDIT_EXPORT {
            break;
        }
    }
    Ok(if format == "csv" {
        download(
            "text/csv; charset=utf-8",
            "audit.csv",
            crate::service::people::audit_csv(&all),
        )
    } else {
        let mut out = String::new();
        for e in &all {
            out.push_str(&json!(e).to_string());
            out.push('\n');
        }
        download("application/x-ndjson", "audit.jsonl", out)
    })
}

async fn end_user_session(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin::end_user_session(&state, &admin, &id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel_email_change(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let s = admin.signed();
    admin::get_user(&state, &admin, &id).await?;
    profile::cancel_email_change(&state, &s.tenant.id, &s.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn settings(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> ApiResult<Json<people::Settings>> {
    Ok(Json(people::settings(&state, &admin).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    email_domains_only: bool,
}

async fn set_settings(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<people::Settings>> {
    Ok(Json(
        people::set_email_domains_only(&state, &admin, body.email_domains_only).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    name: Option<String>,
    email: Option<String>,
}

/// The caller's own name (at once) and address (once the link mailed to it is used).
async fn update_account(
    State(state): State<AppState>,
    Auth(signed): Auth,
    ApiJson(body): ApiJson<AccountBody>,
) -> ApiResult<Json<serde_json::Value>> {
    if let Some(name) = &body.name {
        check_len("name", name)?;
        admin::parse_name(Some(name))?;
    }
    if let Some(email) = &body.email {
        check_len("email", email)?;
        tenant_runtime::email::parse(email).ok_or(AdminError::InvalidEmail)?;
    }
    let (tenant, me) = (&signed.tenant, &signed.user.id);
    let mut user = signed.user.clone();
    if let Some(name) = &body.name {
        user = profile::set_name(&state, &tenant.id, me, me, name).await?;
    }
    let pending = match &body.email {
        Some(email) => Some(profile::request_email_change(&state, tenant, me, me, email).await?),
        None => profile::pending_email(&state, &tenant.id, me).await?,
    };
    let view = SessionView {
        user: (&user).into(),
        tenant: tenant.into(),
    };
    Ok(Json(
        json!({"user": view.user, "tenant": view.tenant, "pending_email": pending}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    token: String,
}

/// Uses an email change link. Needs no session (the link is the proof); a session of the same
/// person sending it stays, their other sessions end.
async fn confirm_email(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> ApiResult<Json<serde_json::Value>> {
    check_len("token", &body.token)?;
    recovery::throttle_token(&state, &body.token, &origin.ip).await?;
    let keep = match session_value(&state, &headers) {
        Some(v) => auth::current(&state, &v)
            .await?
            .map(|s| (s.user.id, s.session_hash)),
        None => None,
    };
    let keep = match &keep {
        Some((who, hash)) => {
            let for_them = profile::peek_email_change(&state, &body.token)
                .await
                .is_ok_and(|(_, u, _)| u.id == *who);
            for_them.then_some(*hash)
        }
        None => None,
    };
    let result = profile::confirm_email_change(&state, &body.token, keep).await;
    if !matches!(result, Err(AdminError::InvalidToken)) {
        recovery::token_succeeded(&state, &body.token, &origin.ip).await;
    }
    let user = result?;
    Ok(Json(json!({
        "email": user.email,
        "message": "Your email address was changed. Sign in with the new one.",
    })))
}
