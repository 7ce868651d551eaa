//! The browser's way through an identity provider: `/sso/start` (a company's provider),
//! `/sso/social/{name}` (an operator's social provider), the one `/sso/callback` every
//! provider sends people back to, and `/sso/error` explaining a failure by its stable code.
//!
//! A short-lived `tenantd_sso` cookie binds each attempt to the browser that started it, so a
//! callback URL replayed elsewhere finds nothing.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::users::Role;

use super::html::{self, e};
use super::{Query, destination, forms};
use crate::routes::error::ApiError;
use crate::routes::extract::{ClientOrigin, cookie, cookie_name, session_cookie, set_cookie};
use crate::routes::paths::pages;
use crate::service::oidc::authorize;
use crate::service::sso::flow::{self, Answer, Done, Failed};
use crate::service::sso::{Failure, begin, random, social};
use crate::state::AppState;

pub(super) const BROWSER_COOKIE: &str = "tenantd_sso";

/// The browser's binding value: the one it has, or a new one to set.
fn browser(state: &AppState, headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let name = cookie_name(state, BROWSER_COOKIE);
    if let Some(v) = cookie(headers, &name).filter(|v| v.len() == 43) {
        return Some((v, None));
    }
    let v = random().ok()?;
    let set = set_cookie(state, &name, &v, flow::ATTEMPT_SECS, "Lax");
    Some((v, Some(set)))
}

fn to_provider(state: &AppState, set: Option<String>, url: Result<String, Failure>) -> Response {
    match url {
        Ok(url) => html::see_other(&url, &set.into_iter().collect::<Vec<_>>()),
        Err(f) => failure_page(state, f),
    }
}

pub(super) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let Some((value, set)) = browser(&state, &headers) else {
        return failure_page(&state, Failure::ProviderUnavailable);
    };
    let url = begin::start(
        &state,
        q.get("connection").unwrap_or(""),
        q.get("login_hint"),
        q.get("pending"),
        &value,
    )
    .await;
    to_provider(&state, set, url)
}

pub(super) async fn social_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let Some((value, set)) = browser(&state, &headers) else {
        return failure_page(&state, Failure::ProviderUnavailable);
    };
    let url = social::start(&state, &name, q.get("pending"), &value).await;
    to_provider(&state, set, url)
}

pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let answer = Answer {
        state: q.get("state"),
        code: q.get("code"),
        error: q.get("error"),
    };
    let bound = cookie(&headers, &cookie_name(&state, BROWSER_COOKIE));
    let result = match answer.state {
        Some(s) if s.starts_with(social::STATE_PREFIX) => {
            social::callback(&state, &answer, bound.as_deref(), origin).await
        }
        _ => flow::callback(&state, &answer, bound.as_deref(), origin).await,
    };
    match result {
        Ok(done) => signed_in(&state, &headers, done).await,
        Err(failed) => refused(&state, failed),
    }
}

/// The one place a sign-in through a provider becomes cookies and a destination, or the
/// second step the person still owes (their factor, or enrolling one the company requires).
pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap, done: Done) -> Response {
    let Done { finished, pending } = done;
    match finished.signed_in() {
        Ok((cookie, view)) => {
            let mut cookies = vec![
                session_cookie(state, &cookie),
                set_cookie(state, &cookie_name(state, BROWSER_COOKIE), "", 0, "Lax"),
            ];
            if let Ok(fresh) = forms::fresh(state) {
                cookies.push(fresh.cookie);
            }
            match pending {
                // Back to the app's request, as after a password (the value is our signature).
                Some(p) => {
                    html::see_other(&format!("{}?pending={p}", pages::OIDC_AUTHORIZE), &cookies)
                }
                None => html::see_other(destination(view.user.role == Role::Admin, None), &cookies),
            }
        }
        Err(step) => {
            let err = ApiError::from(step);
            match super::mfa::after_first_step(state, headers, &err, None, pending.as_deref()).await
            {
                Some(page) => page,
                None => html::error_page(state, &err, (pages::LOGIN, "Sign in again")),
            }
        }
    }
}

pub(super) fn refused(state: &AppState, failed: Failed) -> Response {
    let Failed { failure, pending } = failed;
    // Refused for good while an app waits: it hears `access_denied`.
    if matches!(failure, Failure::Blocked | Failure::Suspended)
        && let Some(to) = pending.and_then(|p| authorize::deny(state, &p, failure.message()))
    {
        return html::see_other(&to, &[]);
    }
    html::see_other(
        &format!("{}?code={}", pages::SSO_ERROR, failure.code()),
        &[],
    )
}

pub(super) async fn error(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let failure = q
        .get("code")
        .and_then(Failure::parse)
        .unwrap_or(Failure::InvalidState);
    failure_page(&state, failure)
}

fn failure_page(state: &AppState, failure: Failure) -> Response {
    let status = match failure {
        Failure::ProviderUnavailable => StatusCode::BAD_GATEWAY,
        Failure::Blocked | Failure::Suspended | Failure::NoAccount | Failure::SocialNotAllowed => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let main = format!(
        "<h1>Sign-in did not complete</h1>\n<p class=\"lead\">{}</p>\n\
<p class=\"muted\">Error code: <code id=\"sso-error-code\">{}</code></p>\n\
<p class=\"actions\"><a class=\"btn btn-primary\" href=\"/login\">Back to sign in</a></p>\n",
        e(failure.message()),
        e(failure.code())
    );
    let doc = html::document(
        &state.config.product_name,
        "Sign-in did not complete",
        html::Width::Narrow,
        "",
        &main,
    );
    html::respond(status, &[], doc)
}

/// The page the email step shows on its way to a company's provider: a link, followed at
/// once (a redirect after a form would be held to the form's `form-action`).
pub(super) fn continue_page(state: &AppState, to: &str) -> Response {
    // Browsers follow a refresh wherever it stands; the link is there for those that do not.
    let main = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={to}\">\n\
<h1>Continue to your company's sign-in</h1>\n\
<p class=\"lead\">Your company signs in with its own identity provider.</p>\n\
<p class=\"actions\"><a id=\"sso-continue\" class=\"btn btn-primary btn-block\" href=\"{to}\">Continue</a></p>\n",
        to = e(to)
    );
    let doc = html::document(
        &state.config.product_name,
        "Continue to your company's sign-in",
        html::Width::Narrow,
        "",
        &main,
    );
    html::respond(StatusCode::OK, &[], doc)
}

/// "Continue with …" links for the operator's social providers.
pub(super) async fn social_links(state: &AppState, pending: Option<&str>) -> String {
    let Ok(list) = social::list(&state.directory).await else {
        return String::new();
    };
    if list.is_empty() {
        return String::new();
    }
    let suffix = pending
        .map(|p| {
            format!(
                "?pending={}",
                url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let links: String = list
        .iter()
        .map(|p| {
            format!(
                "<a class=\"btn btn-block\" href=\"/sso/social/{}{}\">Continue with {}</a>\n",
                e(&p.name),
                e(&suffix),
                e(&p.label)
            )
        })
        .collect();
    format!("<div class=\"social\">\n<p class=\"muted\">or</p>\n{links}</div>\n")
}
