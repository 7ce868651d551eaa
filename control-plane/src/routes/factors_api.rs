//! Second factors in the JSON API: the second step of a sign-in (`/api/auth/mfa…`), signing
//! in with a passkey alone (`/api/auth/passkey…`), a person's own factors
//! (`/api/account/factors…`, `/api/account/recovery-codes`) and an admin's reset
//! (`/api/admin/users/{id}/factors`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, Auth, ClientOrigin, KnownRoute, check_len, signed_in};
use super::paths::api as p;
use crate::service::auth::Signed;
use crate::service::factors::{self, Confirmation};
use crate::service::identity::SignedIn;
use crate::service::mfa::{self, Answer};
use crate::service::{passkeys, signin};
use crate::state::AppState;

/// A JSON body that may be left out altogether (then all its fields are absent).
struct MaybeJson<T>(T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            let ApiJson(v) = ApiJson::<T>::from_request(req, state).await?;
            return Ok(Self(v));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::payload_too_large())?;
        if bytes.is_empty() {
            Ok(Self(T::default()))
        } else {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with Content-Type: application/json.",
            ))
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(p::MFA, post(second_step))
        .route(p::MFA_TOTP, post(enrol_totp))
        .route(p::MFA_WEBAUTHN_OPTIONS, post(mfa_passkey_options))
        .route(p::PASSKEY_OPTIONS, post(passkey_options))
        .route(p::PASSKEY, post(passkey_sign_in))
        .route(p::FACTORS, get(list))
        .route(p::FACTOR, delete(remove).patch(rename))
        .route(p::FACTORS_TOTP, post(start_totp))
        .route(p::FACTOR_TOTP_CONFIRM, post(confirm_totp))
        .route(p::FACTORS_WEBAUTHN_OPTIONS, post(webauthn_options))
        .route(p::FACTORS_WEBAUTHN, post(add_webauthn))
        .route(p::RECOVERY_CODES, post(recovery_codes))
        .route(p::USER_FACTORS, delete(reset_user_factors))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondStep {
    mfa_token: String,
    code: Option<String>,
    recovery_code: Option<String>,
    /// A WebAuthn assertion (`PublicKeyCredential` as JSON).
    webauthn: Option<Value>,
}

fn one_answer(b: SecondStep) -> ApiResult<(String, Answer)> {
    let answer = match (b.code, b.recovery_code, b.webauthn) {
        (Some(c), None, None) => Answer::Code(c),
        (None, Some(r), None) => Answer::RecoveryCode(r),
        (None, None, Some(w)) => Answer::Passkey(w),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "Send exactly one of code, recovery_code and webauthn.",
            ));
        }
    };
    if let Answer::Code(c) | Answer::RecoveryCode(c) = &answer {
        check_len("code", c)?;
    }
    check_len("mfa_token", &b.mfa_token)?;
    Ok((b.mfa_token, answer))
}

/// The second step of a sign-in: answers exactly like a successful `POST /api/auth/login`.
async fn second_step(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<SecondStep>,
) -> ApiResult<Response> {
    let (token, answer) = one_answer(body)?;
    let (cookie, view) = signin::second_step(&state, &token, answer, origin)
        .await?
        .signed_in()?;
    Ok(signed_in(
        &state,
        SignedIn {
            cookie,
            view,
            device: None,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    mfa_token: String,
}

/// Enrolling a TOTP factor during a sign-in that requires one.
async fn enrol_totp(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenOnly>,
) -> ApiResult<Json<Value>> {
    check_len("mfa_token", &body.mfa_token)?;
    let e = mfa::enrol_totp(&state, &body.mfa_token).await?;
    Ok(Json(
        json!({"secret": e.secret, "otpauth_uri": e.otpauth_uri, "qr_svg": e.qr_svg}),
    ))
}

async fn mfa_passkey_options(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenOnly>,
) -> ApiResult<Json<Value>> {
    check_len("mfa_token", &body.mfa_token)?;
    Ok(Json(mfa::passkey_options(&state, &body.mfa_token).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailOnly {
    email: String,
}

async fn passkey_options(
    State(state): State<AppState>,
    KnownRoute(known): KnownRoute,
    ApiJson(body): ApiJson<EmailOnly>,
) -> ApiResult<Json<Value>> {
    check_len("email", &body.email)?;
    Ok(Json(
        passkeys::options(&state, &body.email, known.as_ref()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeySignIn {
    passkey_token: String,
    credential: Value,
}

async fn passkey_sign_in(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<PasskeySignIn>,
) -> ApiResult<Response> {
    check_len("passkey_token", &body.passkey_token)?;
    let signed = passkeys::sign_in(&state, &body.passkey_token, &body.credential, origin).await?;
    Ok(signed_in(&state, signed))
}

/// Factors are the person's own business: an app acting with an access token may not see or
/// change them.
fn own(signed: Signed) -> ApiResult<Signed> {
    if signed.client_id.is_some() {
        return Err(ApiError::forbidden());
    }
    Ok(signed)
}

async fn list(State(state): State<AppState>, Auth(signed): Auth) -> ApiResult<Json<Value>> {
    let signed = own(signed)?;
    let l = factors::list(&state, &signed).await?;
    Ok(Json(json!({
        "factors": l.factors,
        "recovery_codes_left": l.recovery_codes_left,
        "required": l.required,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Named {
    name: Option<String>,
}

async fn start_totp(
    State(state): State<AppState>,
    Auth(signed): Auth,
    MaybeJson(body): MaybeJson<Named>,
) -> ApiResult<Response> {
    let signed = own(signed)?;
    let name = body.name;
    let e = factors::start_totp(&state, &signed, name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

async fn confirm_totp(
    State(state): State<AppState>,
    Auth(signed): Auth,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Code>,
) -> ApiResult<Json<Value>> {
    let signed = own(signed)?;
    check_len("code", &body.code)?;
    check_len("id", &id)?;
    let f = factors::confirm_totp(&state, &signed, &id, &body.code, &origin.ip).await?;
    Ok(Json(json!(f)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Removal {
    password: Option<String>,
    code: Option<String>,
}

async fn remove(
    State(state): State<AppState>,
    Auth(signed): Auth,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<Removal>,
) -> ApiResult<StatusCode> {
    let signed = own(signed)?;
    check_len("id", &id)?;
    let confirmation = match (body.password, body.code) {
        (Some(p), None) => Confirmation::Password(p),
        (None, Some(c)) => Confirmation::Code(c),
        _ => {
            return Err(ApiError::bad_request(
                "confirmation_required",
                "Send your current password (password) or a code of your authenticator app (code).",
            ));
        }
    };
    factors::remove(&state, &signed, &id, confirmation, &origin.ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    Auth(signed): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<StatusCode> {
    let signed = own(signed)?;
    check_len("id", &id)?;
    factors::rename(&state, &signed, &id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn webauthn_options(
    State(state): State<AppState>,
    Auth(signed): Auth,
) -> ApiResult<Json<Value>> {
    let signed = own(signed)?;
    Ok(Json(factors::passkey_options(&state, &signed).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPasskey {
    ceremony: String,
    credential: Value,
    name: Option<String>,
}

async fn add_webauthn(
    State(state): State<AppState>,
    Auth(signed): Auth,
    ApiJson(body): ApiJson<NewPasskey>,
) -> ApiResult<Response> {
    let signed = own(signed)?;
    check_len("ceremony", &body.ceremony)?;
    let f = factors::add_passkey(
        &state,
        &signed,
        &body.ceremony,
        &body.credential,
        body.name.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(f)).into_response())
}

async fn recovery_codes(
    State(state): State<AppState>,
    Auth(signed): Auth,
) -> ApiResult<Json<Value>> {
    let signed = own(signed)?;
    let codes = factors::new_recovery_codes(&state, &signed).await?;
    Ok(Json(json!({"codes": codes})))
}

async fn reset_user_factors(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    check_len("id", &id)?;
    let removed = factors::admin_reset(&state, &admin, &id).await?;
    Ok(Json(json!({"removed": removed})))
}
