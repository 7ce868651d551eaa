//! The OpenAPI part of a company's domains, identity-provider connections and `discover`.

use serde_json::{Map, Value, json};

use super::super::paths::api as p;
use super::{body, errors, ok, op, r, with};

/// Operations of this part, as (method, path).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", p::DOMAINS),
    ("post", p::DOMAINS),
    ("delete", p::DOMAIN),
    ("post", p::DOMAIN_VERIFY),
    ("get", p::SSO_CONNECTIONS),
    ("post", p::SSO_CONNECTIONS),
    ("get", p::SSO_CONNECTION),
    ("patch", p::SSO_CONNECTION),
    ("delete", p::SSO_CONNECTION),
    ("post", p::SSO_CONNECTION_TEST),
    ("post", p::DISCOVER),
];

fn admin(extra: &[u16]) -> Map<String, Value> {
    let mut codes = vec![401, 403, 503];
    codes.extend_from_slice(extra);
    errors(&codes)
}

fn domain_param() -> Value {
    json!([{"name": "domain", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 253}}])
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}}])
}

pub(super) fn paths() -> Map<String, Value> {
    let tags = &["sso"];
    let no_content = json!({"description": "Done"});
    let v = json!({
        (p::DOMAINS): {
            "get": op("The company's domains: verified, and claimed ones awaiting their TXT record", tags,
                with(admin(&[]), "200", ok("Domains", json!({"type": "object", "required": ["domains"],
                    "properties": {"domains": {"type": "array", "items": r("Domain")}}}))), json!({})),
            "post": op("Claim a domain: the TXT record to publish (a domain already the company's answers verified)", tags,
                with(with(admin(&[400, 409, 413, 415, 422]), "201", ok("Claimed", r("Domain"))), "200", ok("Already verified", r("Domain"))),
                json!({"requestBody": body(json!({"type": "object", "additionalProperties": false, "required": ["domain"],
                    "properties": {"domain": {"type": "string", "maxLength": 253}}}))}))
        },
        (p::DOMAIN): {
            "delete": op("Remove a domain or a claim", tags, with(admin(&[404]), "204", no_content.clone()),
                json!({"parameters": domain_param()}))
        },
        (p::DOMAIN_VERIFY): {
            "post": op("Look up the TXT record now: verified, or 409 domain_not_verified saying what was found (domain_taken when another company holds it)", tags,
                with(admin(&[404, 409]), "200", ok("Verified", r("Domain"))),
                json!({"parameters": domain_param()}))
        },
        (p::SSO_CONNECTIONS): {
            "get": op("The company's identity-provider connections", tags,
                with(admin(&[]), "200", ok("Connections", json!({"type": "object", "required": ["connections"],
                    "properties": {"connections": {"type": "array", "items": r("SsoConnection")}}}))), json!({})),
            "post": op("Add a connection (kind oidc); its domains must be verified domains of the company", tags,
                with(admin(&[400, 409, 413, 415, 422]), "201", ok("Created", r("SsoConnection"))),
                json!({"requestBody": body(r("SsoConnectionInput"))}))
        },
        (p::SSO_CONNECTION): {
            "get": op("One connection (never its client secret)", tags,
                with(admin(&[404]), "200", ok("Connection", r("SsoConnection"))), json!({"parameters": id_param()})),
            "patch": op("Change a connection (absent fields keep their value)", tags,
                with(admin(&[400, 404, 409, 413, 415, 422]), "200", ok("Connection", r("SsoConnection"))),
                json!({"parameters": id_param(), "requestBody": body(r("SsoConnectionInput"))})),
            "delete": op("Delete a connection (its people keep their accounts)", tags,
                with(admin(&[404]), "204", no_content), json!({"parameters": id_param()}))
        },
        (p::SSO_CONNECTION_TEST): {
            "post": op("Fetch the provider's discovery document and keys now, and report", tags,
                with(admin(&[404]), "200", ok("Report", r("SsoTestReport"))), json!({"parameters": id_param()}))
        },
        (p::DISCOVER): {
            "post": op("Where an email signs in: its domain's identity provider, or the password (never tells whether the person has an account)", &["auth"],
                with(errors(&[400, 413, 415, 422, 503]), "200", ok("Method", json!({"type": "object", "required": ["method"], "properties": {
                    "method": {"type": "string", "enum": ["password", "sso"]},
                    "redirect": {"type": "string", "description": "Where to send the browser (sso only)"}}}))),
                json!({"security": [], "requestBody": body(json!({"type": "object", "additionalProperties": false, "required": ["email"],
                    "properties": {"email": {"type": "string", "maxLength": 320}}}))}))
        }
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) fn schemas() -> Map<String, Value> {
    let v = json!({
        "Domain": {"type": "object", "required": ["domain", "status", "txt_name"], "properties": {
            "domain": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "verified"]},
            "txt_name": {"type": "string"}, "txt_value": {"type": "string"}}},
        "SsoConnection": {"type": "object", "required": ["id", "kind", "name", "issuer", "client_id", "client_secret_last4", "scopes", "domains", "jit", "callback_url"], "properties": {
            "id": {"type": "string"}, "kind": {"type": "string", "enum": ["oidc", "saml"]}, "name": {"type": "string"},
            "issuer": {"type": "string"}, "client_id": {"type": "string"}, "client_secret_last4": {"type": "string"},
            "scopes": {"type": "string"}, "domains": {"type": "array", "items": {"type": "string"}},
            "jit": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "role": {"type": "string", "enum": ["member", "admin"]}}},
            "callback_url": {"type": "string"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
            "saml": {"type": "object", "required": ["sp_entity_id", "sp_metadata_url", "acs_url", "idp_entity_id", "idp_sso_url", "idp_certificates", "idp_initiated", "sign_requests", "attributes"], "properties": {
                "sp_entity_id": {"type": "string"}, "sp_metadata_url": {"type": "string"}, "acs_url": {"type": "string"},
                "idp_entity_id": {"type": "string"}, "idp_sso_url": {"type": "string"},
                "idp_certificates": {"type": "array", "items": {"type": "string"}}, "idp_metadata_url": {"type": "string"},
                "idp_initiated": {"type": "boolean"}, "sign_requests": {"type": "boolean"},
                "attributes": {"type": "object", "properties": {"email": {"type": "string"}, "name": {"type": "string"}}}}}}},
        "SsoConnectionInput": {"type": "object", "additionalProperties": false, "properties": {
            "kind": {"type": "string", "enum": ["oidc", "saml"]}, "name": {"type": "string", "maxLength": 100},
            "issuer": {"type": "string", "maxLength": 500}, "client_id": {"type": "string", "maxLength": 255},
            "client_secret": {"type": "string", "maxLength": 1024}, "scopes": {"type": "string", "maxLength": 500},
            "domains": {"type": "array", "items": {"type": "string", "maxLength": 253}},
            "jit": {"type": "object", "additionalProperties": false, "required": ["enabled"], "properties": {
                "enabled": {"type": "boolean"}, "role": {"type": "string", "enum": ["member", "admin"]}}},
            "idp_metadata_xml": {"type": "string", "maxLength": 60000}, "idp_metadata_url": {"type": "string", "maxLength": 2000},
            "idp_initiated": {"type": "boolean"}, "sign_requests": {"type": "boolean"},
            "attributes": {"type": "object", "additionalProperties": false, "properties": {
                "email": {"type": "string", "maxLength": 255}, "name": {"type": "string", "maxLength": 255}}}}},
        "SsoTestReport": {"type": "object", "required": ["ok"], "properties": {
            "ok": {"type": "boolean"}, "authorization_endpoint": {"type": "string"}, "token_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"}, "signing_keys": {"type": "integer"}, "error": {"type": "string"}}}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
