//! Second factors' part of the OpenAPI document: the second step of a sign-in, passkeys,
//! a person's own factors, an admin's reset.

use serde_json::{Map, Value, json};

use super::super::paths::api as p;
use super::{body, errors, ok, op, r, with};

/// Operations of second factors, as (method, path).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("post", p::MFA),
    ("post", p::MFA_TOTP),
    ("post", p::MFA_WEBAUTHN_OPTIONS),
    ("post", p::PASSKEY_OPTIONS),
    ("post", p::PASSKEY),
    ("get", p::FACTORS),
    ("delete", p::FACTOR),
    ("patch", p::FACTOR),
    ("post", p::FACTORS_TOTP),
    ("post", p::FACTOR_TOTP_CONFIRM),
    ("post", p::FACTORS_WEBAUTHN_OPTIONS),
    ("post", p::FACTORS_WEBAUTHN),
    ("post", p::RECOVERY_CODES),
    ("delete", p::USER_FACTORS),
];

fn id() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 200}}])
}

pub(super) fn paths() -> Map<String, Value> {
    let public = json!([]);
    let write = [400, 401, 413, 415, 422, 429, 503];
    let mut m = Map::new();
    m.insert(p::MFA.into(), json!({"post": op(
        "The second step of a sign-in: a TOTP code, a recovery code or a WebAuthn assertion with the mfa_token of the first step; answers like a successful login",
        &["auth"],
        with(errors(&write), "200", ok("Signed in; the session cookie is set", r("SessionView"))),
        json!({"security": public, "requestBody": body(r("MfaRequest"))}))}));
    m.insert(p::MFA_TOTP.into(), json!({"post": op(
        "Enrol a TOTP factor during a sign-in the company's policy holds up (mfa_enrollment_required); its first code then goes to /api/auth/mfa",
        &["auth"],
        with(errors(&write), "200", ok("The secret to add to an authenticator app", r("TotpSecret"))),
        json!({"security": public, "requestBody": body(r("MfaTokenRequest"))}))}));
    m.insert(p::MFA_WEBAUTHN_OPTIONS.into(), json!({"post": op(
        "WebAuthn options for a second step with a passkey (navigator.credentials.get)",
        &["auth"],
        with(errors(&[400, 401, 409, 413, 415, 422, 429, 503]), "200", ok("PublicKeyCredentialRequestOptions, base64url", json!({"type": "object"}))),
        json!({"security": public, "requestBody": body(r("MfaTokenRequest"))}))}));
    m.insert(p::PASSKEY_OPTIONS.into(), json!({"post": op(
        "Start signing in with a passkey alone after the email step: options naming no credential, and a passkey_token",
        &["auth"],
        with(errors(&[400, 409, 413, 415, 422, 503]), "200", ok("Options and passkey_token", json!({"type": "object"}))),
        json!({"security": public, "requestBody": body(r("ForgotRequest"))}))}));
    m.insert(p::PASSKEY.into(), json!({"post": op(
        "Sign in with a passkey alone: the assertion for a passkey_token; answers like a successful login",
        &["auth"],
        with(errors(&[400, 401, 403, 413, 415, 422, 429, 503]), "200", ok("Signed in", r("SessionView"))),
        json!({"security": public, "requestBody": body(r("PasskeySignIn"))}))}));
    m.insert(p::FACTORS.into(), json!({"get": op(
        "The caller's second factors with their last use, recovery codes left, and whether the company requires one",
        &["account"],
        with(errors(&[401, 403, 503]), "200", ok("Factors", r("FactorList"))), json!({}))}));
    m.insert(p::FACTOR.into(), json!({
        "delete": op("Remove one of the caller's factors, with the current password (or a TOTP code); the last one stays while the company requires one (409 last_factor)",
            &["account"],
            with(errors(&[400, 401, 403, 404, 409, 413, 415, 422, 429, 503]), "204", json!({"description": "Removed"})),
            json!({"parameters": id(), "requestBody": body(r("FactorRemoval"))})),
        "patch": op("Rename one of the caller's factors", &["account"],
            with(errors(&[400, 401, 403, 404, 413, 415, 422, 503]), "204", json!({"description": "Renamed"})),
            json!({"parameters": id(), "requestBody": body(r("FactorName"))}))
    }));
    m.insert(p::FACTORS_TOTP.into(), json!({"post": op(
        "Start adding a TOTP factor (pending until confirmed with a code)", &["account"],
        with(errors(&[400, 401, 403, 413, 415, 422, 503]), "201", ok("The new secret, shown once", r("TotpEnrolment"))),
        json!({"requestBody": {"required": false, "content": {"application/json": {"schema": r("FactorNameOptional")}}}}))}));
    m.insert(p::FACTOR_TOTP_CONFIRM.into(), json!({"post": op(
        "Confirm a pending TOTP factor with one valid code", &["account"],
        with(errors(&[400, 401, 403, 404, 413, 415, 422, 429, 503]), "200", ok("The factor", r("Factor"))),
        json!({"parameters": id(), "requestBody": body(r("CodeRequest"))}))}));
    m.insert(p::FACTORS_WEBAUTHN_OPTIONS.into(), json!({"post": op(
        "WebAuthn registration options (navigator.credentials.create) and a ceremony token", &["account"],
        with(errors(&[401, 403, 409, 503]), "200", ok("PublicKeyCredentialCreationOptions and ceremony", json!({"type": "object"}))),
        json!({}))}));
    m.insert(
        p::FACTORS_WEBAUTHN.into(),
        json!({"post": op(
        "Register the passkey the browser made for a ceremony", &["account"],
        with(errors(&[400, 401, 403, 413, 415, 422, 503]), "201", ok("The factor", r("Factor"))),
        json!({"requestBody": body(r("PasskeyRegistration"))}))}),
    );
    m.insert(p::RECOVERY_CODES.into(), json!({"post": op(
        "A new set of 10 single-use recovery codes, shown once; the old set stops working", &["account"],
        with(errors(&[401, 403, 503]), "200", ok("The codes", r("RecoveryCodes"))), json!({}))}));
    m.insert(p::USER_FACTORS.into(), json!({"delete": op(
        "Remove every second factor and recovery code of a user; their sessions end (audited)", &["admin"],
        with(errors(&[401, 403, 404, 503]), "200", ok("How many factors were removed", r("FactorsReset"))),
        json!({"parameters": id()}))}));
    m
}

pub(super) fn schemas() -> Map<String, Value> {
    let s = |max: u32| json!({"type": "string", "maxLength": max});
    let mut m = Map::new();
    m.insert("MfaRequest".into(), json!({"type": "object", "required": ["mfa_token"], "additionalProperties": false,
        "description": "Exactly one of code, recovery_code and webauthn.",
        "properties": {"mfa_token": s(200), "code": s(10), "recovery_code": s(40), "webauthn": {"type": "object"}}}));
    m.insert(
        "MfaTokenRequest".into(),
        json!({"type": "object", "required": ["mfa_token"], "additionalProperties": false,
        "properties": {"mfa_token": s(200)}}),
    );
    m.insert("TotpSecret".into(), json!({"type": "object", "required": ["secret", "otpauth_uri", "qr_svg"],
        "properties": {"secret": {"type": "string"}, "otpauth_uri": {"type": "string"}, "qr_svg": {"type": "string"}}}));
    m.insert("TotpEnrolment".into(), json!({"type": "object", "required": ["id", "secret", "otpauth_uri", "qr_svg"],
        "properties": {"id": {"type": "string"}, "secret": {"type": "string"}, "otpauth_uri": {"type": "string"}, "qr_svg": {"type": "string"}}}));
    m.insert("PasskeySignIn".into(), json!({"type": "object", "required": ["passkey_token", "credential"], "additionalProperties": false,
        "properties": {"passkey_token": s(1000), "credential": {"type": "object"}}}));
    m.insert("PasskeyRegistration".into(), json!({"type": "object", "required": ["ceremony", "credential"], "additionalProperties": false,
        "properties": {"ceremony": s(200), "credential": {"type": "object"}, "name": s(64)}}));
    let factor = json!({"type": "object", "required": ["id", "kind", "name", "created_at", "last_used_at"],
        "properties": {"id": {"type": "string"}, "kind": {"type": "string", "enum": ["totp", "webauthn"]},
            "name": {"type": "string"}, "created_at": {"type": "integer"}, "last_used_at": {"type": ["integer", "null"]}}});
    m.insert("Factor".into(), factor);
    m.insert("FactorList".into(), json!({"type": "object", "required": ["factors", "recovery_codes_left", "required"],
        "properties": {"factors": {"type": "array", "items": r("Factor")}, "recovery_codes_left": {"type": "integer"}, "required": {"type": "boolean"}}}));
    m.insert(
        "FactorRemoval".into(),
        json!({"type": "object", "additionalProperties": false,
        "description": "Exactly one of password and code.",
        "properties": {"password": s(1024), "code": s(10)}}),
    );
    m.insert(
        "FactorName".into(),
        json!({"type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": s(64)}}),
    );
    m.insert(
        "FactorNameOptional".into(),
        json!({"type": "object", "additionalProperties": false,
        "properties": {"name": s(64)}}),
    );
    m.insert(
        "CodeRequest".into(),
        json!({"type": "object", "required": ["code"], "additionalProperties": false,
        "properties": {"code": s(10)}}),
    );
    m.insert("RecoveryCodes".into(), json!({"type": "object", "required": ["codes"],
        "properties": {"codes": {"type": "array", "items": {"type": "string"}, "minItems": 10, "maxItems": 10}}}));
    m.insert(
        "FactorsReset".into(),
        json!({"type": "object", "required": ["removed"],
        "properties": {"removed": {"type": "integer"}}}),
    );
    m
}
