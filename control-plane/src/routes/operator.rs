//! The operator API under `/api/operator`: what `tenantctl` does, for the vendor's back office.
//! Callers authenticate with an operator key (or a client-credentials token) as
//! `Authorization: Bearer` only — cookies are ignored here — and every authenticated call is
//! written to the operator audit log (and to the company's own log when it concerns one).
//! Handlers call the same `service::tenants` functions as `tenantctl`.

use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Extension, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tenant_runtime::store::audit;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, bearer_token};
use super::paths::{self, operator as p};
use crate::directory::TenantStatus;
use crate::service::operator::{self, Answer, Call, Operator, Scope};
use crate::service::provision::{Files, NewTenant};
use crate::service::{backup, tenants};
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(p::TENANTS, get(list).post(create))
        .route(p::TENANT, get(show).patch(update).delete(remove))
        .route(p::UNDELETE, post(undelete))
        .route(p::DOMAINS, get(domains).post(add_domain))
        .route(p::DOMAIN, delete(remove_domain))
        .route(p::USERS, get(find_user))
        .route(p::AUDIT, get(audit_log))
        .route(p::BACKUP, post(backup_one))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate))
}

/// What a handler tells the audit: the company it concerned, and the entry for the company's
/// own log when the service did not write one.
#[derive(Debug, Clone, Default)]
struct Note {
    tenant_id: Option<String>,
    slug: Option<String>,
    tenant_action: Option<&'static str>,
    details: Value,
}

fn noted(res: impl IntoResponse, note: Note) -> Response {
    let mut res = res.into_response();
    res.extensions_mut().insert(note);
    res
}

/// Authenticates the caller (bearer only), applies its rate, runs the call and audits it.
async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let bearer = bearer_token(req.headers()).map(str::to_owned);
    let caller = match operator::authenticate(&state, bearer.as_deref(), ip).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let action = action_of(
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str),
    );
    let slug = paths::operator_slug(req.uri().path()).map(str::to_owned);
    req.extensions_mut().insert(caller.clone());
    let res = next.run(req).await;
    let note = res.extensions().get::<Note>().cloned().unwrap_or_default();
    let mut details = note.details.clone();
    if let Some(err) = res.extensions().get::<ApiError>()
        && let Value::Object(m) = &mut details
    {
        m.insert("error".into(), json!(err.code));
    }
    let now = state.now();
    operator::record(
        &state.directory,
        Call {
            actor: caller.actor.clone(),
            action: action.to_owned(),
            tenant_id: note.tenant_id.clone(),
            tenant_slug: note.slug.clone().or(slug),
            status: res.status().as_u16(),
            ip: ip.map(|i| i.to_string()).unwrap_or_default(),
            details,
        },
        now,
    )
    .await;
    if let (Some(action), Some(slug)) = (note.tenant_action, &note.slug)
        && res.status().is_success()
    {
        let fleet = operator::fleet(&state, &caller);
        if let Ok(t) = fleet.tenant_by_slug(slug).await {
            fleet.audit(&t, action, note.details).await;
        }
    }
    res
}

/// The name of a call in the operator audit log.
fn action_of(method: &Method, route: &str) -> &'static str {
    match (method.as_str(), route) {
        ("GET", p::TENANTS) => "tenants.list",
        ("POST", p::TENANTS) => "tenant.create",
        ("GET", p::TENANT) => "tenant.show",
        ("PATCH", p::TENANT) => "tenant.update",
        ("DELETE", p::TENANT) => "tenant.delete",
        ("POST", p::UNDELETE) => "tenant.undelete",
        ("GET", p::DOMAINS) => "domains.list",
        ("POST", p::DOMAINS) => "domain.add",
        ("DELETE", p::DOMAIN) => "domain.remove",
        ("GET", p::USERS) => "user.find",
        ("GET", p::AUDIT) => "audit.read",
        ("POST", p::BACKUP) => "tenant.backup",
        _ => "unknown",
    }
}

fn bad_query(_: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", "Check the query parameters.")
}

fn note_of(t: &tenants::TenantInfo) -> Note {
    Note {
        tenant_id: Some(t.id.clone()),
        slug: Some(t.slug.clone()),
        ..Note::default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    offset: Option<u32>,
    limit: Option<u32>,
}

fn parse_status(raw: &str) -> ApiResult<TenantStatus> {
    match raw {
        "active" => Ok(TenantStatus::Active),
        "suspended" => Ok(TenantStatus::Suspended),
        "provisioning" => Ok(TenantStatus::Provisioning),
        _ => Err(ApiError::bad_request(
            "invalid_status",
            "status is active, suspended or provisioning.",
        )),
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    op.require(Scope::TenantsRead)?;
    let Query(q) = q.map_err(bad_query)?;
    let filter = tenants::Filter {
        status: q.status.as_deref().map(parse_status).transpose()?,
        search: q.q.filter(|s| !s.is_empty()),
    };
    let all = tenants::list(&operator::fleet(&state, &op), &filter).await?;
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(50).clamp(1, 200));
    let page: Vec<_> = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Json(
        json!({"tenants": page, "total": all.len(), "offset": offset, "limit": limit}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    slug: String,
    name: String,
    #[serde(default)]
    domains: Vec<String>,
    admin_email: String,
    admin_name: Option<String>,
}

/// An answer as kept under an Idempotency-Key.
fn answer_of(result: ApiResult<(StatusCode, Value)>) -> Answer {
    match result {
        Ok((status, body)) => Answer {
            status: status.as_u16(),
            body: body.to_string(),
        },
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(code = e.code, cause = ?e.cause, "operator create failed");
            }
            Answer {
                status: e.status.as_u16(),
                body: json!({"error": e.code, "message": e.message}).to_string(),
            }
        }
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    headers: HeaderMap,
    ApiJson(raw): ApiJson<Value>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(operator::idempotency_key(v.to_str().unwrap_or(""))?),
    };
    let slug = raw.get("slug").and_then(Value::as_str).map(str::to_owned);
    let work = || async { answer_of(create_once(&state, &op, raw.clone()).await) };
    let (answer, replayed) = match key {
        Some(key) => {
            let hash = operator::request_hash(&raw);
            operator::idempotent(&state, &op.actor, &key, &hash, work).await?
        }
        None => (work().await, false),
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let tenant_id = body["tenant"]["id"].as_str().map(str::to_owned);
    let mut res = (status, Json(body)).into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(noted(
        res,
        Note {
            tenant_id,
            slug,
            tenant_action: None,
            details: json!({"replayed": replayed}),
        },
    ))
}

async fn create_once(
    state: &AppState,
    op: &Operator,
    raw: Value,
) -> ApiResult<(StatusCode, Value)> {
    let body: CreateBody = serde_json::from_value(raw).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!(
                "The body does not have the expected fields: {}",
                e.to_string().chars().take(300).collect::<String>()
            ),
        )
    })?;
    let req = NewTenant {
        slug: body.slug,
        name: body.name,
        domains: body.domains,
        admin_email: body.admin_email,
        admin_name: body.admin_name,
    };
    let fleet = operator::fleet(state, op);
    // Placed on the node that answers (move it later with `tenantctl tenant move`).
    let mut created = tenants::create(
        &fleet,
        Files::Local(&state.tenants),
        state.cluster.node_id(),
        &*state.mailer,
        &req,
        state.now(),
        &|_| {},
    )
    .await?;
    // The invitation goes to the admin by mail only: its link never leaves the server.
    created.invite_link = None;
    if let Some(e) = created.mail_error.take() {
        tracing::warn!(slug = %created.tenant.slug, error = %e, "invitation of a company created through the operator API not mailed");
    }
    let status = if created.reinvited {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let value = serde_json::to_value(&created).map_err(ApiError::internal)?;
    Ok((status, value))
}

async fn show(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsRead)?;
    let detail = tenants::show(&operator::fleet(&state, &op), &slug).await?;
    let note = Note {
        tenant_action: Some("operator.tenant_viewed"),
        details: json!({}),
        ..note_of(&detail.tenant)
    };
    Ok(noted(Json(detail), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    status: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    // Checked before anything changes.
    let suspend = match body.status.as_deref() {
        None => None,
        Some("suspended") => Some(true),
        Some("active") => Some(false),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is active or suspended.",
            ));
        }
    };
    let fleet = operator::fleet(&state, &op);
    let mut changed = false;
    if let Some(name) = &body.name {
        changed |= tenants::rename(&fleet, &slug, name).await?;
    }
    if let Some(suspend) = suspend {
        changed |= tenants::set_status(&fleet, &slug, suspend).await?.changed;
    }
    let detail = tenants::show(&fleet, &slug).await?;
    let note = note_of(&detail.tenant);
    Ok(noted(
        Json(json!({"tenant": detail.tenant, "changed": changed})),
        note,
    ))
}

async fn remove(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    let deleted =
        tenants::delete(&operator::fleet(&state, &op), &slug, state.now(), &|_| {}).await?;
    let note = Note {
        tenant_id: Some(deleted.id.clone()),
        slug: Some(deleted.slug.clone()),
        ..Note::default()
    };
    Ok(noted(Json(deleted), note))
}

async fn undelete(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    let back =
        tenants::undelete(&operator::fleet(&state, &op), &slug, state.now(), &|_| {}).await?;
    let note = Note {
        tenant_action: Some("tenant.undeleted"),
        details: json!({}),
        ..note_of(&back.tenant)
    };
    Ok(noted(Json(back), note))
}

async fn domains(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsRead)?;
    let detail = tenants::show(&operator::fleet(&state, &op), &slug).await?;
    let note = note_of(&detail.tenant);
    Ok(noted(
        Json(json!({"slug": detail.tenant.slug, "domains": detail.tenant.domains})),
        note,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

async fn add_domain(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<DomainBody>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    let added = tenants::add_domain(&operator::fleet(&state, &op), &slug, &body.domain).await?;
    let status = if added.added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let note = Note {
        slug: Some(added.slug.clone()),
        details: json!({"domain": added.domain}),
        ..Note::default()
    };
    Ok(noted((status, Json(added)), note))
}

async fn remove_domain(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path((slug, domain)): Path<(String, String)>,
) -> ApiResult<Response> {
    op.require(Scope::TenantsWrite)?;
    let removed = tenants::remove_domain(&operator::fleet(&state, &op), &slug, &domain).await?;
    let note = Note {
        slug: Some(removed.slug.clone()),
        details: json!({"domain": removed.domain}),
        ..Note::default()
    };
    Ok(noted(Json(removed), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindQuery {
    email: String,
}

async fn find_user(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    q: Result<Query<FindQuery>, QueryRejection>,
) -> ApiResult<Response> {
    op.require(Scope::UsersRead)?;
    let Query(q) = q.map_err(|_| {
        ApiError::bad_request("invalid_query", "Give the address to find as ?email=.")
    })?;
    if q.email.len() > 320 {
        return Err(ApiError::bad_request(
            "invalid_email",
            "Enter a valid email address.",
        ));
    }
    let (tenant, found) = tenants::find_user(&operator::fleet(&state, &op), &q.email).await?;
    let note = Note {
        tenant_id: Some(tenant.id.to_string()),
        slug: Some(tenant.slug.clone()),
        tenant_action: Some("operator.user_looked_up"),
        details: json!({"email": found.email}),
    };
    Ok(noted(Json(found), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit_log(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Response> {
    op.require(Scope::AuditRead)?;
    let Query(q) = q.map_err(bad_query)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let filter = audit::Filter {
        user: q.user,
        action: q.action,
        before: q.before,
        since: None,
        until: None,
        limit,
    };
    let (tenant, entries) =
        tenants::audit_log(&operator::fleet(&state, &op), &slug, filter).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let note = Note {
        tenant_id: Some(tenant.id.to_string()),
        slug: Some(tenant.slug.clone()),
        tenant_action: Some("operator.audit_read"),
        details: json!({}),
    };
    Ok(noted(
        Json(json!({"entries": entries, "next_before": next})),
        note,
    ))
}

async fn backup_one(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    op.require(Scope::BackupsWrite)?;
    let fleet = operator::fleet(&state, &op);
    let t = fleet.tenant_by_slug(&slug).await?;
    let out = backup::new_folder(&fleet, &t.slug);
    let report =
        backup::backup_folder(&fleet, &out, Some(&t.slug), 1, std::sync::Arc::new(|| {})).await?;
    if let Some(f) = report.failed.first() {
        return Err(ApiError::internal(format!(
            "backup of {}: {}",
            f.slug, f.error
        )));
    }
    let note = Note {
        tenant_id: Some(t.id.to_string()),
        slug: Some(t.slug.clone()),
        tenant_action: Some("tenant.backed_up"),
        details: json!({"out": report.out}),
    };
    Ok(noted((StatusCode::CREATED, Json(report)), note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_an_audit_action() {
        for (m, path) in [
            (Method::GET, p::TENANTS),
            (Method::POST, p::TENANTS),
            (Method::GET, p::TENANT),
            (Method::PATCH, p::TENANT),
            (Method::DELETE, p::TENANT),
            (Method::POST, p::UNDELETE),
            (Method::GET, p::DOMAINS),
            (Method::POST, p::DOMAINS),
            (Method::DELETE, p::DOMAIN),
            (Method::GET, p::USERS),
            (Method::GET, p::AUDIT),
            (Method::POST, p::BACKUP),
        ] {
            assert_ne!(action_of(&m, path), "unknown", "{m} {path}");
        }
    }
}
