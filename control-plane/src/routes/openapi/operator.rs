//! The operator API's part of the OpenAPI document (tag `operator`, bearer `operatorKey`).

use serde_json::{Map, Value, json};

use super::super::paths::operator as p;
use super::{body, errors, ok, op, r, with};

/// Operations of the operator API, as (method, path).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", p::TENANTS),
    ("post", p::TENANTS),
    ("get", p::TENANT),
    ("patch", p::TENANT),
    ("delete", p::TENANT),
    ("post", p::UNDELETE),
    ("get", p::DOMAINS),
    ("post", p::DOMAINS),
    ("delete", p::DOMAIN),
    ("get", p::USERS),
    ("get", p::AUDIT),
    ("post", p::BACKUP),
];

/// Every operator call may be refused for its credentials (401), scope or address (403), rate
/// (429), or the company's node (503).
fn refusals(extra: &[u16]) -> Map<String, Value> {
    let mut codes = vec![401, 403, 429, 503];
    codes.extend_from_slice(extra);
    let mut m = errors(&codes);
    m.insert(
        "401".into(),
        json!({"description": "unauthenticated, invalid_operator_key, operator_key_expired or operator_key_revoked",
            "content": {"application/json": {"schema": r("Error")}}}),
    );
    m.insert(
        "403".into(),
        json!({"description": "insufficient_scope or address_not_allowed",
            "content": {"application/json": {"schema": r("Error")}}}),
    );
    m
}

fn slug() -> Value {
    json!({"name": "slug", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}})
}

fn key() -> Value {
    json!([{"operatorKey": []}])
}

fn tag() -> &'static [&'static str] {
    &["operator"]
}

const WRITE: &[u16] = &[400, 413, 415, 422];

pub(super) fn paths() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(p::TENANTS.into(), json!({
        "get": op("List companies (filter by status or a part of slug or name; paged)", tag(),
            with(refusals(&[400]), "200", ok("A page of companies", r("OperatorTenantPage"))),
            json!({"security": key(), "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["active", "suspended", "provisioning"]}},
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}}
            ]})),
        "post": op("Create a company with its first admin (invited by mail; the link is never answered). \
                With Idempotency-Key, a retry with the same body gets the same answer; another body 409 idempotency_key_reused", tag(),
            with(with(refusals(&[WRITE, &[409]].concat()), "201", ok("Created", r("OperatorCreated"))),
                "200", ok("The company existed as asked with its admin still invited: a new invitation was mailed", r("OperatorCreated"))),
            json!({"security": key(), "requestBody": body(r("OperatorCreateRequest")), "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
            ]}))
    }));
    m.insert(p::TENANT.into(), json!({
        "get": op("One company with its domains and indexed users", tag(),
            with(refusals(&[404]), "200", ok("The company", r("OperatorTenantDetail"))),
            json!({"security": key(), "parameters": [slug()]})),
        "patch": op("Rename, suspend (status suspended) or resume (status active) a company", tag(),
            with(refusals(&[WRITE, &[404, 409]].concat()), "200", ok("The company after the change", json!({
                "type": "object", "required": ["tenant", "changed"],
                "properties": {"tenant": r("OperatorTenant"), "changed": {"type": "boolean"}}}))),
            json!({"security": key(), "parameters": [slug()], "requestBody": body(r("OperatorTenantChange"))})),
        "delete": op("Delete a company to the trash (30 days; undelete brings it back)", tag(),
            with(refusals(&[404, 409]), "200", ok("Deleted", r("OperatorDeleted"))),
            json!({"security": key(), "parameters": [slug()]}))
    }));
    m.insert(p::UNDELETE.into(), json!({
        "post": op("Bring a deleted company back from the trash", tag(),
            with(refusals(&[400, 404, 409]), "200", ok("Back, under a new id", json!({
                "type": "object", "required": ["tenant", "users"],
                "properties": {"tenant": r("OperatorTenant"), "users": {"type": "integer", "minimum": 0}}}))),
            json!({"security": key(), "parameters": [slug()]}))
    }));
    m.insert(p::DOMAINS.into(), json!({
        "get": op("A company's email domains", tag(),
            with(refusals(&[404]), "200", ok("Domains", json!({
                "type": "object", "required": ["slug", "domains"],
                "properties": {"slug": {"type": "string"}, "domains": {"type": "array", "items": {"type": "string"}}}}))),
            json!({"security": key(), "parameters": [slug()]})),
        "post": op("Map an email domain to a company", tag(),
            with(with(refusals(&[WRITE, &[404, 409]].concat()), "201", ok("Mapped", r("OperatorDomainAdded"))),
                "200", ok("Already mapped to this company", r("OperatorDomainAdded"))),
            json!({"security": key(), "parameters": [slug()], "requestBody": body(json!({
                "type": "object", "additionalProperties": false, "required": ["domain"],
                "properties": {"domain": {"type": "string", "maxLength": 253}}}))}))
    }));
    m.insert(p::DOMAIN.into(), json!({
        "delete": op("Remove an email domain from a company", tag(),
            with(refusals(&[400, 404]), "200", ok("Removed", json!({
                "type": "object", "required": ["slug", "domain", "removed"],
                "properties": {"slug": {"type": "string"}, "domain": {"type": "string"}, "removed": {"type": "boolean"}}}))),
            json!({"security": key(), "parameters": [slug(),
                {"name": "domain", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 253}}]}))
    }));
    m.insert(p::USERS.into(), json!({
        "get": op("Find the company, status and role of the user with an email address", tag(),
            with(refusals(&[400, 404]), "200", ok("The user", r("OperatorFoundUser"))),
            json!({"security": key(), "parameters": [
                {"name": "email", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 320}}]}))
    }));
    m.insert(p::AUDIT.into(), json!({
        "get": op("A company's own audit log, newest first", tag(),
            with(refusals(&[400, 404]), "200", ok("A page of entries", r("AuditPage"))),
            json!({"security": key(), "parameters": [slug(),
                {"name": "user", "in": "query", "schema": {"type": "string"}},
                {"name": "action", "in": "query", "schema": {"type": "string"}},
                {"name": "before", "in": "query", "schema": {"type": "integer"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}}]}))
    }));
    m.insert(p::BACKUP.into(), json!({
        "post": op("Back up a company online into the server's backup folder; answers the manifest", tag(),
            with(refusals(&[404, 409]), "201", ok("Backed up", r("OperatorBackup"))),
            json!({"security": key(), "parameters": [slug()]}))
    }));
    m
}

pub(super) fn schemas() -> Map<String, Value> {
    let tenant = json!({"type": "object",
        "required": ["id", "slug", "name", "status", "schema_version", "node", "auth_epoch", "domains", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"}, "slug": {"type": "string"}, "name": {"type": "string"},
            "status": {"type": "string", "enum": ["provisioning", "active", "suspended"]},
            "schema_version": {"type": "integer"}, "node": {"type": "string"}, "auth_epoch": {"type": "integer"},
            "domains": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}});
    let v = json!({
        "OperatorTenant": tenant,
        "OperatorTenantPage": {"type": "object", "required": ["tenants", "total", "offset", "limit"], "properties": {
            "tenants": {"type": "array", "items": r("OperatorTenant")},
            "total": {"type": "integer", "minimum": 0}, "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200}}},
        "OperatorTenantDetail": {"allOf": [r("OperatorTenant"), {"type": "object",
            "required": ["users", "file", "file_size"], "properties": {
                "users": {"type": "array", "items": {"type": "object",
                    "required": ["email", "tenant_id", "user_id", "state", "created_at"], "properties": {
                        "email": {"type": "string"}, "tenant_id": {"type": "string"}, "user_id": {"type": "string"},
                        "state": {"type": "string"}, "created_at": {"type": "integer"}}}},
                "file": {"type": "string"}, "file_size": {"type": ["integer", "null"]}}}]},
        "OperatorCreateRequest": {"type": "object", "additionalProperties": false,
            "required": ["slug", "name", "admin_email"], "properties": {
                "slug": {"type": "string", "maxLength": 63}, "name": {"type": "string", "maxLength": 100},
                "domains": {"type": "array", "items": {"type": "string", "maxLength": 253}, "maxItems": 50},
                "admin_email": {"type": "string", "maxLength": 320},
                "admin_name": {"type": ["string", "null"], "maxLength": 100}}},
        "OperatorCreated": {"type": "object", "required": ["tenant", "admin", "invite_link", "reinvited", "mail_sent"], "properties": {
            "tenant": r("OperatorTenant"),
            "admin": {"type": "object", "required": ["id", "email", "status"], "properties": {
                "id": {"type": "string"}, "email": {"type": "string"}, "status": {"type": "string", "enum": ["invited"]}}},
            "invite_link": {"type": "null", "description": "Never sent by the API: the invitation is mailed to the admin"},
            "reinvited": {"type": "boolean"}, "mail_sent": {"type": "boolean"}}},
        "OperatorTenantChange": {"type": "object", "additionalProperties": false, "properties": {
            "name": {"type": ["string", "null"], "maxLength": 100},
            "status": {"oneOf": [{"type": "string", "enum": ["active", "suspended"]}, {"type": "null"}]}}},
        "OperatorDeleted": {"type": "object", "required": ["slug", "id", "deleted", "trash", "note"], "properties": {
            "slug": {"type": "string"}, "id": {"type": "string"}, "deleted": {"type": "boolean"},
            "trash": {"type": "string"}, "note": {"type": "object"}}},
        "OperatorDomainAdded": {"type": "object", "required": ["slug", "domain", "added"], "properties": {
            "slug": {"type": "string"}, "domain": {"type": "string"}, "added": {"type": "boolean"}}},
        "OperatorFoundUser": {"type": "object", "required": ["email", "tenant", "index_state", "user"], "properties": {
            "email": {"type": "string"},
            "tenant": {"type": "object", "required": ["id", "slug", "name", "status"], "properties": {
                "id": {"type": "string"}, "slug": {"type": "string"}, "name": {"type": "string"}, "status": {"type": "string"}}},
            "index_state": {"type": "string"},
            "user": {"oneOf": [{"type": "null"}, {"type": "object",
                "required": ["id", "name", "status", "role", "created_at", "last_login_at"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "status": r("Status"), "role": r("Role"),
                    "created_at": {"type": "integer"}, "last_login_at": {"type": ["integer", "null"]}}}]}}},
        "OperatorBackup": {"type": "object",
            "required": ["out", "tenants", "bytes", "failed", "skipped_provisioning", "elapsed_secs", "tenants_per_sec", "manifest"],
            "properties": {
                "out": {"type": "string"}, "tenants": {"type": "integer"}, "bytes": {"type": "integer"},
                "failed": {"type": "array"}, "skipped_provisioning": {"type": "array", "items": {"type": "string"}},
                "elapsed_secs": {"type": "number"}, "tenants_per_sec": {"type": "number"},
                "manifest": {"type": "object", "required": ["format", "tenants", "directory"], "properties": {
                    "format": {"type": "integer"}, "directory": {"type": "object"},
                    "tenants": {"type": "array", "items": {"type": "object", "required": ["tenant_id", "slug", "file", "size", "sha256"]}}}}}}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
