//! Server-rendered pages: plain HTML forms that work without JavaScript, over the same
//! services as the JSON API. Every form carries a CSRF token ([`forms`]); no GET changes
//! anything; the CSP allows no inline script or style, so the look comes from `/assets/app.css`.
//!
//! # Layout
//! - [`html`]: the document layout, escaping, form pieces, answers.
//! - [`forms`]: form bodies and the CSRF check every POST passes.
//! - [`assets`]: the stylesheet and the icon.
//! - [`login`]: `/`, `/login` (email first, then password), `/logout`.
//! - [`mfa`]: `/login/mfa` (the second step, or setting up a required factor), `/login/passkey`.
//! - [`recovery`]: `/forgot` and `/reset`.
//! - [`invitation`]: `/invite` (accept and choose a password).
//! - [`account`]: `/account` (name, email, sessions, password, sign out).
//! - [`email`]: `/account/email/confirm` (the link of an email change).
//! - [`factors`]: sign-in methods on `/account`, an admin's reset, the company's MFA rule.
//! - [`admin`]: `/admin` (people: search, filters, sort, pages, export, invite, settings).
//! - [`admin_actions`]: the per-person actions (role, block, delete, invitations, name, email).
//! - [`person`]: `/admin/users/{id}` (a person's details, sessions and recent activity).
//! - [`bulk`]: `/admin/bulk` (invitations from a CSV: preview, then send).
//! - [`audit`]: `/admin/audit` (the audit log, filtered, paged, exported).
//! - [`oidc`]: `/oauth2/authorize` and `/oauth2/logout`, the OpenID provider's browser side.
//! - [`sso`]: `/sso/start`, `/sso/social/{name}`, `/sso/callback`, `/sso/error`: signing in
//!   through an identity provider.
//! - [`saml`]: `/saml/{connection}/metadata`, `/saml/{connection}/acs`, `/saml/finish`: the
//!   same through a SAML identity provider.
//! - [`sso_admin`]: `/admin/sso` (the company's domains, identity providers and sign-in policy).

mod account;
mod admin;
mod admin_actions;
mod assets;
mod audit;
mod bulk;
mod email;
mod factors;
mod forms;
mod html;
mod invitation;
mod login;
mod mfa;
mod oidc;
mod person;
mod recovery;
mod saml;
mod sso;
mod sso_admin;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use tenant_runtime::store::tokens::Purpose;
use tenant_runtime::store::users::{Role, Status, User};

use super::error::ApiError;
use super::extract::{MAX_ACS_BODY, session_value};
use super::paths::pages as p;
use crate::directory::Tenant;
use crate::service::auth::{self, Signed};
use crate::service::identity::{AuthError, AuthResult};
use crate::service::recovery as links;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(p::ROOT, get(login::root))
        .route(p::LOGIN, get(login::login_page).post(login::login))
        .route(p::LOGOUT, post(login::logout))
        .route(p::LOGIN_MFA, post(mfa::second_step))
        .route(p::LOGIN_PASSKEY, post(mfa::passkey_sign_in))
        .route(p::FORGOT, get(recovery::forgot_page).post(recovery::forgot))
        .route(p::RESET, get(recovery::reset_page).post(recovery::reset))
        .route(
            p::INVITE,
            get(invitation::invite_page).post(invitation::accept),
        )
        .route(p::ACCOUNT, get(account::account_page))
        .route(p::ACCOUNT_PASSWORD, post(account::change_password))
        .route(p::ACCOUNT_NAME, post(account::rename))
        .route(p::ACCOUNT_EMAIL, post(account::change_email))
        .route(p::ACCOUNT_EMAIL_CANCEL, post(account::cancel_email))
        .route(
            p::ACCOUNT_EMAIL_CONFIRM,
            get(email::confirm_page).post(email::confirm),
        )
        .route(p::ACCOUNT_SESSION_END, post(account::end_session))
        .route(p::ACCOUNT_SESSIONS_END_OTHERS, post(account::end_others))
        .route(p::ACCOUNT_FACTORS_TOTP, post(factors::start_totp))
        .route(p::ACCOUNT_FACTOR_TOTP_CONFIRM, post(factors::confirm_totp))
        .route(p::ACCOUNT_FACTORS_WEBAUTHN, post(factors::add_passkey))
        .route(p::ACCOUNT_FACTOR_REMOVE, post(factors::remove))
        .route(p::ACCOUNT_RECOVERY_CODES, post(factors::recovery_codes))
        .route(p::ADMIN_FACTORS_RESET, post(factors::admin_reset))
        .route(p::ADMIN_MFA_POLICY, post(factors::save_policy))
        .route(p::ADMIN, get(admin::admin_page))
        .route(p::ADMIN_INVITE, post(admin::invite))
        .route(p::ADMIN_SETTINGS, post(admin::settings))
        .route(p::ADMIN_USER, get(person::person_page))
        .route(p::ADMIN_ROLE, post(admin_actions::change_role))
        .route(p::ADMIN_BLOCK, post(admin_actions::block))
        .route(p::ADMIN_UNBLOCK, post(admin_actions::unblock))
        .route(p::ADMIN_DELETE, post(admin_actions::delete))
        .route(p::ADMIN_RESEND, post(admin_actions::resend))
        .route(p::ADMIN_REVOKE, post(admin_actions::revoke))
        .route(p::ADMIN_NAME, post(admin_actions::rename))
        .route(p::ADMIN_EMAIL, post(admin_actions::change_email))
        .route(p::ADMIN_EMAIL_CANCEL, post(admin_actions::cancel_email))
        .route(p::ADMIN_SESSIONS_END_ALL, post(admin_actions::end_sessions))
        .route(p::ADMIN_SESSION_END, post(admin_actions::end_session))
        .route(p::ADMIN_BULK, get(bulk::bulk_page).post(bulk::preview))
        .route(p::ADMIN_BULK_SEND, post(bulk::send))
        .route(p::ADMIN_AUDIT, get(audit::audit_page))
        .route(p::OIDC_AUTHORIZE, get(oidc::authorize))
        .route(
            p::OIDC_LOGOUT,
            get(oidc::logout_get).post(oidc::logout_post),
        )
        .route(p::SSO_START, get(sso::start))
        .route(p::SSO_SOCIAL, get(sso::social_start))
        .route(p::SSO_CALLBACK, get(sso::callback))
        .route(p::SSO_ERROR, get(sso::error))
        .route(p::SAML_METADATA, get(saml::metadata))
        .route(
            p::SAML_ACS,
            post(saml::acs).layer(axum::extract::DefaultBodyLimit::max(MAX_ACS_BODY)),
        )
        .route(p::SAML_FINISH, get(saml::finish))
        .route(p::ADMIN_SSO, get(sso_admin::page))
        .route(p::ADMIN_SSO_ACTION, post(sso_admin::act))
        .route(p::CSS, get(assets::css))
        .route(p::ICON, get(assets::icon))
        .route(p::PASSKEY_JS, get(assets::passkey_js))
}

/// The 404 page for paths outside the API.
pub fn not_found_page(product: &str) -> axum::response::Response {
    html::not_found(product)
}

pub fn method_not_allowed_page(product: &str) -> axum::response::Response {
    html::method_not_allowed(product)
}

/// The signed-in user of a request, if any.
async fn signed(state: &AppState, headers: &HeaderMap) -> AuthResult<Option<Signed>> {
    match session_value(state, headers) {
        Some(value) => auth::current(state, &value).await,
        None => Ok(None),
    }
}

/// The signed-in caller of an account page, or the page to show instead.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Signed, axum::response::Response> {
    match signed(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(html::see_other("/login?next=/account", &[])),
        Err(err) => Err(html::error_page(
            state,
            &err.into(),
            ("/login", "Go to sign in"),
        )),
    }
}

/// Where a user lands after signing in: an allowlisted `next`, else their home (INP-07).
/// Only fixed strings come out, so nothing from the request reaches a `Location` header.
fn destination(admin: bool, next: Option<&str>) -> &'static str {
    match next {
        Some("/admin") if admin => "/admin",
        Some("/account") => "/account",
        _ if admin => "/admin",
        _ => "/account",
    }
}

fn home(signed: &Signed) -> &'static str {
    destination(is_admin(signed), None)
}

fn is_admin(signed: &Signed) -> bool {
    signed.user.role == Role::Admin && signed.user.status == Status::Active
}

/// The allowlisted form of a `next` value.
fn safe_next(next: Option<&str>) -> Option<&'static str> {
    match next? {
        "/admin" => Some("/admin"),
        "/account" => Some("/account"),
        _ => None,
    }
}

/// Query parameters, first occurrence wins; never fails.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Who a reset or invitation link is for. Each look-up counts as a token attempt of the
/// caller's address, as the JSON API counts redemptions, so the pages are no way around the
/// throttle; a live token is not held against the address.
async fn token_owner(
    state: &AppState,
    token: &str,
    purpose: Purpose,
    ip: &str,
) -> AuthResult<(Tenant, User)> {
    links::throttle_token(state, token, ip).await?;
    let found = links::token_owner(state, token, purpose).await;
    if !matches!(&found, Err(AuthError::InvalidToken)) {
        links::token_succeeded(state, token, ip).await;
    }
    found
}

/// Why a form behind a reset or invitation link did not go through.
enum LinkRefusal {
    /// The link is unknown, used or expired: the page says so and offers a new one.
    DeadLink,
    /// A reason to show on the form.
    Form(ApiError),
}

impl From<AuthError> for LinkRefusal {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidToken => Self::DeadLink,
            other => Self::Form(other.into()),
        }
    }
}

/// Longest email, name or token accepted from a form.
const MAX_FIELD: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_local_paths_are_followed() {
        for bad in [
            "//evil.test",
            "https:evil.test",
            "/\\evil.test",
            "javascript:alert(1)",
            "https://evil.test/admin",
            "/admin/../evil",
            "/admin?x=1",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
            assert_eq!(destination(false, Some(bad)), "/account");
            assert_eq!(destination(true, Some(bad)), "/admin");
        }
        assert_eq!(safe_next(Some("/account")), Some("/account"));
        // A member is never sent to the admin page.
        assert_eq!(destination(false, Some("/admin")), "/account");
        assert_eq!(destination(true, Some("/account")), "/account");
        assert_eq!(destination(true, Some("/admin")), "/admin");
    }
}
