//! The OpenAPI 3.1 document of the JSON API, served at `/api/openapi.json`. A test checks that
//! every documented operation is routed and every routed operation is documented.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::paths::api as p;
use crate::state::AppState;

mod factors;
mod operator;
pub use factors::OPERATIONS as FACTOR_OPERATIONS;
mod sso;
pub use operator::OPERATIONS as OPERATOR_OPERATIONS;
pub use sso::OPERATIONS as SSO_OPERATIONS;

/// Every operation of the JSON API but the operator API's ([`OPERATOR_OPERATIONS`]), as
/// (method, path): the router and the document both follow these lists, and the tests compare
/// them.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("post", p::LOGIN),
    ("post", p::LOGOUT),
    ("post", p::LOGOUT_ALL),
    ("get", p::SESSION),
    ("post", p::ACCOUNT_PASSWORD),
    ("get", p::SESSIONS),
    ("delete", p::SESSION_BY_ID),
    ("post", p::FORGOT),
    ("post", p::RESET),
    ("post", p::ACCEPT_INVITE),
    ("get", p::USERS),
    ("post", p::USERS),
    ("get", p::USER),
    ("patch", p::USER),
    ("delete", p::USER),
    ("post", p::USER_INVITATION),
    ("delete", p::USER_INVITATION),
    ("get", p::USER_SESSIONS),
    ("delete", p::USER_SESSIONS),
    ("get", p::AUDIT),
    ("get", p::OPENAPI),
    ("get", p::USERS_EXPORT),
    ("post", p::USERS_BULK),
    ("delete", p::USER_SESSION),
    ("delete", p::USER_EMAIL_CHANGE),
    ("get", p::SETTINGS),
    ("patch", p::SETTINGS),
    ("get", p::POLICY),
    ("patch", p::POLICY),
    ("patch", p::ACCOUNT),
    ("post", p::ACCOUNT_EMAIL_CONFIRM),
];

pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(
        &state.config.product_name,
        state.config.public_url.as_str(),
    ))
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// Error answers an operation can give, each with the common error body.
fn errors(codes: &[u16]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for c in codes {
        let description = match c {
            400 => "Invalid input (see `error` for the code)",
            401 => "Not signed in, or wrong credentials",
            403 => "Not allowed (blocked account, suspended tenant, not an admin, bad CSRF)",
            404 => "Not found (also for ids of other companies)",
            409 => "Conflict (last_admin, email_taken, user_exists, not_invited, duplicate)",
            413 => "Body too large (payload_too_large), or more than 500 lines (too_many_lines)",
            415 => "Content-Type is not application/json (or text/csv where accepted)",
            422 => "Body does not have the expected fields",
            429 => "Too many attempts; see Retry-After",
            503 => "Busy or the tenant's data is unavailable; see Retry-After",
            _ => "Error",
        };
        let mut resp = json!({
            "description": description,
            "content": {"application/json": {"schema": r("Error")}}
        });
        if *c == 429 || *c == 503 {
            resp["headers"] = json!({"Retry-After": {"schema": {"type": "string"}}});
        }
        m.insert(c.to_string(), resp);
    }
    m
}

fn op(
    summary: &str,
    tags: &[&str],
    mut responses: serde_json::Map<String, Value>,
    extra: Value,
) -> Value {
    // Every operation may also fail with a generic 500 (logged with the request id).
    responses.insert(
        "500".into(),
        json!({"description": "Unexpected failure", "content": {"application/json": {"schema": r("Error")}}}),
    );
    let mut o = json!({"summary": summary, "tags": tags, "responses": responses});
    if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    o
}

fn with(
    mut m: serde_json::Map<String, Value>,
    code: &str,
    v: Value,
) -> serde_json::Map<String, Value> {
    m.insert(code.into(), v);
    m
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}}])
}

const JSON_WRITE: &[u16] = &[400, 413, 415, 422, 429, 503];

pub fn document(product: &str, public_url: &str) -> Value {
    let mut doc = people(product, public_url);
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.extend(operator::paths());
        paths.extend(factors::paths());
        paths.extend(sso::paths());
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(operator::schemas());
        schemas.extend(factors::schemas());
        schemas.extend(sso::schemas());
    }
    doc["tags"] = json!([{"name": "operator", "description":
        "The operator API for the vendor's back office: what tenantctl does, with an operator key \
         (Authorization: Bearer) and its scopes. Errors carry the codes of tenantctl --json."}]);
    doc
}

/// The document without the operator API.
fn people(product: &str, public_url: &str) -> Value {
    let cookie = json!([{"session": []}, {"accessToken": []}]);
    let public = json!([]);
    let admin_errors = |extra: &[u16]| {
        let mut codes = vec![401, 403, 503];
        codes.extend_from_slice(extra);
        errors(&codes)
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{product} API"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One shared sign-in for every company; company admins manage their own users. \
                The session is an HttpOnly cookie set by login and accept-invite; the vendor's apps send \
                the person's OpenID Connect access token as Authorization: Bearer instead. State-changing \
                requests need Content-Type: application/json. Errors are {\"error\": code, \"message\": text}."
        },
        "servers": [{"url": public_url.trim_end_matches('/')}],
        "security": cookie,
        "paths": {
            (p::LOGIN): {"post": op("Sign in with email and password", &["auth"],
                with(with(errors(&[400, 401, 403, 413, 415, 422, 429, 503]), "200",
                    ok("Signed in; the session cookie is set", r("SessionView"))), "401",
                    json!({"description": "invalid_credentials", "content": {"application/json": {"schema": r("Error")}}})),
                json!({"security": public, "requestBody": body(r("LoginRequest"))}))},
            (p::LOGOUT): {"post": op("Sign out of this session", &["auth"],
                with(errors(&[503]), "200", ok("Signed out", r("SignedOut"))), json!({"security": public}))},
            (p::LOGOUT_ALL): {"post": op("Sign out of every session of the caller", &["sessions"],
                with(errors(&[401, 403, 503]), "200", ok("Signed out everywhere", r("SignedOut"))), json!({}))},
            (p::ACCOUNT_PASSWORD): {"post": op("Change the caller's password (needs the current one; ends other sessions)", &["sessions"],
                with(errors(&[400, 401, 403, 413, 415, 422, 429, 503]), "200", ok("Changed", r("Message"))),
                json!({"requestBody": body(r("PasswordChangeRequest"))}))},
            (p::SESSION): {"get": op("Who is signed in (also for the vendor's app)", &["auth"],
                with(errors(&[401, 403, 503]), "200", ok("The signed-in user and company", r("SessionView"))), json!({}))},
            (p::SESSIONS): {"get": op("The caller's active sessions", &["sessions"],
                with(errors(&[401, 403, 503]), "200", ok("Sessions", json!({
                    "type": "object", "required": ["sessions"],
                    "properties": {"sessions": {"type": "array", "items": r("OwnSession")}}}))), json!({}))},
            (p::SESSION_BY_ID): {"delete": op("End one of the caller's sessions", &["sessions"],
                with(errors(&[401, 403, 404, 503]), "204", json!({"description": "Ended"})),
                json!({"parameters": id_param()}))},
            (p::FORGOT): {"post": op("Ask for a password reset link", &["auth"],
                with(errors(&[400, 413, 415, 422, 429]), "202", ok("Accepted, whether or not the account exists", r("Message"))),
                json!({"security": public, "requestBody": body(r("ForgotRequest"))}))},
            (p::RESET): {"post": op("Set a new password with a reset link's token", &["auth"],
                with(errors(JSON_WRITE), "200", ok("Password changed; every session ended", r("Message"))),
                json!({"security": public, "requestBody": body(r("ResetRequest"))}))},
            (p::ACCEPT_INVITE): {"post": op("Accept an invitation and choose a password", &["auth"],
                with(errors(JSON_WRITE), "200", ok("Signed in; the session cookie is set", r("SessionView"))),
                json!({"security": public, "requestBody": body(r("AcceptInviteRequest"))}))},
            (p::USERS): {
                "get": op("List, search, filter and sort the company's users (cursor paging; offset pages the plain list)", &["admin"],
                    with(admin_errors(&[400]), "200", ok("A page of users", r("UserPage"))),
                    json!({"parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}, "description": "Part of the name or email, case-insensitive; % and _ match themselves"},
                        {"name": "role", "in": "query", "schema": {"type": "string", "enum": ["", "admin", "member"]}},
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["", "active", "invited", "blocked"]}},
                        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["", "name", "email", "created", "last_login", "-name", "-email", "-created", "-last_login"]}, "description": "- first for descending; email by default"},
                        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 1000}, "description": "next_cursor of the previous page (same sort)"},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}, "description": "Pages the plain list by email; not with q, role, status, sort or cursor"},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}}
                    ]})),
                "post": op("Invite a person", &["admin"],
                    with(admin_errors(&[400, 409, 413, 415, 422]), "201", ok("Invited; the invitation is mailed", r("AdminUser"))),
                    json!({"requestBody": body(r("InviteRequest"))}))
            },
            (p::USER): {
                "get": op("One user", &["admin"],
                    with(admin_errors(&[404]), "200", ok("The user", r("AdminUser"))), json!({"parameters": id_param()})),
                "patch": op("Change a user's role, name, or email (the change waits for the link mailed to the new address), or block or unblock them", &["admin"],
                    with(admin_errors(&[400, 404, 409, 413, 415, 422]), "200", ok("The changed user, with any pending email change", r("AdminUserChanged"))),
                    json!({"parameters": id_param(), "requestBody": body(r("UserChange"))})),
                "delete": op("Delete a user", &["admin"],
                    with(admin_errors(&[404, 409]), "204", json!({"description": "Deleted"})), json!({"parameters": id_param()}))
            },
            (p::USER_INVITATION): {
                "post": op("Re-send an invitation (the previous link stops working)", &["admin"],
                    with(admin_errors(&[404, 409]), "200", ok("The invited user", r("AdminUser"))), json!({"parameters": id_param()})),
                "delete": op("Revoke an invitation", &["admin"],
                    with(admin_errors(&[404, 409]), "200", ok("The user", r("AdminUser"))), json!({"parameters": id_param()}))
            },
            (p::USER_SESSIONS): {
                "get": op("A user's active sessions", &["admin"],
                    with(admin_errors(&[404]), "200", ok("Sessions", json!({
                        "type": "object", "required": ["sessions"],
                        "properties": {"sessions": {"type": "array", "items": r("Session")}}}))),
                    json!({"parameters": id_param()})),
                "delete": op("Sign a user out everywhere", &["admin"],
                    with(admin_errors(&[404]), "200", ok("Sessions ended", json!({
                        "type": "object", "required": ["sessions_ended"],
                        "properties": {"sessions_ended": {"type": "integer", "minimum": 0}}}))),
                    json!({"parameters": id_param()}))
            },
            (p::AUDIT): {"get": op("The company's audit log, newest first", &["admin"],
                with(admin_errors(&[400]), "200", json!({"description": "A page of entries (JSON), or every entry as CSV or JSON lines",
                    "content": {"application/json": {"schema": r("AuditPage")},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/x-ndjson": {"schema": {"type": "string"}}}})),
                json!({"parameters": [
                    {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "Entries by or about this user id"},
                    {"name": "action", "in": "query", "schema": {"type": "string"}},
                    {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "next_before of the previous page"},
                    {"name": "since", "in": "query", "schema": {"type": "integer"}, "description": "Entries at or after this time (Unix seconds)"},
                    {"name": "until", "in": "query", "schema": {"type": "integer"}, "description": "Entries before this time (Unix seconds)"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "jsonl"]}, "description": "csv or jsonl: every matching entry (up to 100,000) as a download"}
                ]}))},
            (p::USERS_EXPORT): {"get": op("The users matching the filters, as CSV (cells that would start a formula get a leading ')", &["admin"],
                with(admin_errors(&[400]), "200", json!({"description": "CSV: id,email,name,role,status,created_at,last_login_at",
                    "content": {"text/csv": {"schema": {"type": "string"}}}})),
                json!({"parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                    {"name": "role", "in": "query", "schema": {"type": "string", "enum": ["", "admin", "member"]}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["", "active", "invited", "blocked"]}},
                    {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["", "name", "email", "created", "last_login", "-name", "-email", "-created", "-last_login"]}}
                ]}))},
            (p::USERS_BULK): {"post": op("Invite many people at once (at most 500 lines): a JSON array or text/csv email,name,role (header optional). Answers per line; ?preview=true only checks", &["admin"],
                with(admin_errors(&[400, 413, 415, 422]), "200", ok("Each line's result", r("BulkResult"))),
                json!({"parameters": [{"name": "preview", "in": "query", "schema": {"type": "boolean"}}],
                    "requestBody": {"required": true, "content": {
                        "application/json": {"schema": {"type": "array", "maxItems": 500, "items": r("BulkItem")}},
                        "text/csv": {"schema": {"type": "string"}}}}}))},
            (p::USER_SESSION): {"delete": op("End one session of a user", &["admin"],
                with(admin_errors(&[404]), "204", json!({"description": "Ended"})),
                json!({"parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}},
                    {"name": "sid", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}}]}))},
            (p::USER_EMAIL_CHANGE): {"delete": op("Cancel a user's pending email change", &["admin"],
                with(admin_errors(&[404]), "204", json!({"description": "Cancelled"})), json!({"parameters": id_param()}))},
            (p::SETTINGS): {
                "get": op("The company's settings", &["admin"],
                    with(admin_errors(&[]), "200", ok("Settings", r("Settings"))), json!({})),
                "patch": op("Accept only addresses in the company's own domains, or any", &["admin"],
                    with(admin_errors(&[400, 413, 415, 422]), "200", ok("Settings", r("Settings"))),
                    json!({"requestBody": body(r("SettingsChange"))}))
            },
            (p::POLICY): {
                "get": op("The company's sign-in policy", &["admin"],
                    with(admin_errors(&[]), "200", ok("Policy", r("Policy"))), json!({})),
                "patch": op("Change some of the company's sign-in rules (absent fields keep their value)", &["admin"],
                    with(admin_errors(&[400, 409, 413, 415, 422]), "200", ok("Policy", r("Policy"))),
                    json!({"requestBody": body(r("PolicyChange"))}))
            },
            (p::ACCOUNT): {"patch": op("Change the caller's name, or start a change of their email (a link goes to the new address, a notice to the old)", &["account"],
                with(errors(&[400, 401, 403, 409, 413, 415, 422, 503]), "200", ok("The caller", r("AccountView"))),
                json!({"requestBody": body(r("AccountChange"))}))},
            (p::ACCOUNT_EMAIL_CONFIRM): {"post": op("Make an email change take effect with its link's token (ends the person's other sessions)", &["account"],
                with(errors(&[400, 409, 413, 415, 422, 429, 503]), "200", ok("Changed", r("EmailChanged"))),
                json!({"security": public, "requestBody": body(r("TokenRequest"))}))},
            (p::OPENAPI): {"get": op("This document", &["meta"],
                serde_json::Map::from_iter([("200".to_owned(), json!({"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}))]),
                json!({"security": public}))}
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "tenantd_session",
                    "description": "Named __Host-tenantd_session when the public URL is https."},
                "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token the OpenID provider gave one of the vendor's apps (typ at+jwt): the same rights as the person's session cookie, refused once the session or grant ends."},
                "operatorKey": {"type": "http", "scheme": "bearer",
                    "description": "The operator API only: an operator key (`tenantctl operator-key create`, tdo_…), or a client-credentials access token of an app granted operator scopes. Scopes: tenants:read, tenants:write, users:read, audit:read, backups:write. Cookies are ignored there."}
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let mut all = base_schemas();
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), console_schemas()) {
        all.extend(more);
    }
    all
}

/// The schemas of the console's and the account's operations.
fn console_schemas() -> Value {
    let string = |max: u32| json!({"type": "string", "maxLength": max});
    json!({
        "AdminUserChanged": {"allOf": [r("AdminUser"), {"type": "object", "required": ["pending_email"], "properties": {
            "pending_email": {"oneOf": [r("PendingEmail"), {"type": "null"}]}}}]},
        "PendingEmail": {"type": "object", "required": ["email", "expires_at"], "properties": {
            "email": {"type": "string"}, "expires_at": {"type": "integer"}}},
        "AccountView": {"type": "object", "required": ["user", "tenant", "pending_email"], "properties": {
            "user": r("User"), "tenant": r("Tenant"),
            "pending_email": {"oneOf": [r("PendingEmail"), {"type": "null"}]}}},
        "AccountChange": {"type": "object", "additionalProperties": false, "properties": {
            "name": {"type": ["string", "null"], "maxLength": 100},
            "email": {"type": ["string", "null"], "format": "email", "maxLength": 254}}},
        "TokenRequest": {"type": "object", "additionalProperties": false, "required": ["token"], "properties": {
            "token": string(200)}},
        "EmailChanged": {"type": "object", "required": ["email", "message"], "properties": {
            "email": {"type": "string"}, "message": {"type": "string"}}},
        "Settings": {"type": "object", "required": ["email_domains_only", "domains"], "properties": {
            "email_domains_only": {"type": "boolean"}, "domains": {"type": "array", "items": {"type": "string"}}}},
        "SettingsChange": {"type": "object", "additionalProperties": false, "required": ["email_domains_only"], "properties": {
            "email_domains_only": {"type": "boolean"}}},
        "Policy": {"type": "object", "required": ["sso_required", "sso_required_except_admins", "social_login", "mfa_required", "trust_idp_mfa"], "properties": {
            "sso_required": {"type": "boolean"}, "sso_required_except_admins": {"type": "boolean"},
            "social_login": {"type": "boolean"}, "mfa_required": {"type": "string", "enum": ["off", "admins", "all"]},
            "trust_idp_mfa": {"type": "boolean"}}},
        "PolicyChange": {"type": "object", "additionalProperties": false, "properties": {
            "sso_required": {"type": "boolean"}, "sso_required_except_admins": {"type": "boolean"},
            "social_login": {"type": "boolean"}, "mfa_required": {"type": "string", "enum": ["off", "admins", "all"]},
            "trust_idp_mfa": {"type": "boolean"}}},
        "BulkItem": {"type": "object", "additionalProperties": false, "required": ["email"], "properties": {
            "email": {"type": "string", "maxLength": 320}, "name": {"type": ["string", "null"], "maxLength": 100},
            "role": {"type": ["string", "null"], "enum": ["admin", "member", "", null]}}},
        "BulkLine": {"type": "object", "required": ["line", "email", "name", "role", "status", "error", "message", "user"], "properties": {
            "line": {"type": "integer", "minimum": 1}, "email": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
            "status": {"type": "string", "enum": ["ok", "invited", "error"], "description": "ok: would be invited (preview)"},
            "error": {"type": ["string", "null"], "description": "invalid_email, invalid_role, invalid_name, duplicate, user_exists, email_taken, email_outside_domains"},
            "message": {"type": ["string", "null"]},
            "user": {"oneOf": [r("AdminUser"), {"type": "null"}]}}},
        "BulkResult": {"type": "object", "required": ["preview", "accepted", "refused", "lines"], "properties": {
            "preview": {"type": "boolean"}, "accepted": {"type": "integer", "minimum": 0}, "refused": {"type": "integer", "minimum": 0},
            "lines": {"type": "array", "items": r("BulkLine")}}}
    })
}

fn base_schemas() -> Value {
    let string = |max: u32| json!({"type": "string", "maxLength": max});
    json!({
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "description": "Stable code, e.g. invalid_credentials"},
            "message": {"type": "string"},
            "request_id": {"type": "string", "description": "On 5xx: the x-request-id of the request, as in the server's log"}}},
        "Message": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "SignedOut": {"type": "object", "required": ["signed_out"], "properties": {
            "signed_out": {"type": "boolean"}, "sessions_ended": {"type": "integer", "minimum": 0}}},
        "Role": {"type": "string", "enum": ["admin", "member"]},
        "Status": {"type": "string", "enum": ["invited", "active", "blocked"]},
        "User": {"type": "object", "required": ["id", "email", "name", "role"], "properties": {
            "id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}, "role": r("Role")}},
        "Tenant": {"type": "object", "required": ["id", "slug", "name"], "properties": {
            "id": {"type": "string"}, "slug": {"type": "string"}, "name": {"type": "string"}}},
        "SessionView": {"type": "object", "required": ["user", "tenant"], "properties": {
            "user": r("User"), "tenant": r("Tenant")}},
        "AdminUser": {"type": "object",
            "required": ["id", "email", "name", "role", "status", "created_at", "updated_at", "last_login_at"],
            "properties": {
                "id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"},
                "role": r("Role"), "status": r("Status"),
                "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
                "last_login_at": {"type": ["integer", "null"]}}},
        "UserPage": {"type": "object", "required": ["users", "total", "offset", "limit", "next_cursor"], "properties": {
            "next_cursor": {"type": ["string", "null"]},
            "users": {"type": "array", "items": r("AdminUser")},
            "total": {"type": "integer", "minimum": 0}, "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200}}},
        "Session": {"type": "object", "required": ["id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip"],
            "properties": {
                "id": {"type": "string"}, "created_at": {"type": "integer"}, "last_seen_at": {"type": "integer"},
                "expires_at": {"type": "integer"}, "user_agent": {"type": "string"}, "ip": {"type": "string"}}},
        "OwnSession": {"allOf": [r("Session"), {"type": "object", "required": ["current"], "properties": {"current": {"type": "boolean"}}}]},
        "AuditEntry": {"type": "object", "required": ["id", "at", "actor", "action", "target", "details"], "properties": {
            "id": {"type": "integer"}, "at": {"type": "integer"},
            "actor": {"type": ["string", "null"]}, "action": {"type": "string"},
            "target": {"type": ["string", "null"]}, "details": {}}},
        "AuditPage": {"type": "object", "required": ["entries", "next_before"], "properties": {
            "entries": {"type": "array", "items": r("AuditEntry")},
            "next_before": {"type": ["integer", "null"]}}},
        "LoginRequest": {"type": "object", "additionalProperties": false, "required": ["email", "password"], "properties": {
            "email": string(320), "password": string(1024)}},
        "PasswordChangeRequest": {"type": "object", "additionalProperties": false, "required": ["current_password", "new_password"], "properties": {
            "current_password": string(1024), "new_password": {"type": "string", "minLength": 12, "maxLength": 256}}},
        "ForgotRequest": {"type": "object", "additionalProperties": false, "required": ["email"], "properties": {
            "email": string(320)}},
        "ResetRequest": {"type": "object", "additionalProperties": false, "required": ["token", "password"], "properties": {
            "token": string(200), "password": {"type": "string", "minLength": 12, "maxLength": 256}}},
        "AcceptInviteRequest": {"type": "object", "additionalProperties": false, "required": ["token", "password"], "properties": {
            "token": string(200), "password": {"type": "string", "minLength": 12, "maxLength": 256},
            "name": {"type": ["string", "null"], "maxLength": 100}}},
        "InviteRequest": {"type": "object", "additionalProperties": false, "required": ["email", "role"], "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254}, "role": r("Role"),
            "name": {"type": ["string", "null"], "maxLength": 100}}},
        "UserChange": {"type": "object", "additionalProperties": false, "properties": {
            "role": {"oneOf": [r("Role"), {"type": "null"}]}, "blocked": {"type": ["boolean", "null"]},
            "name": {"type": ["string", "null"], "maxLength": 100},
            "email": {"type": ["string", "null"], "format": "email", "maxLength": 254}}}
    })
}
