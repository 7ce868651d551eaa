//! `/`, `/login` (email first, then password) and `/logout`.
//!
//! The email step never tells whether an account exists: every well-formed address gets the
//! same password step. The password step signs in through the same service as the JSON API.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::email;
use tenant_runtime::store::users::Role;

use super::forms::{self, Csrf, Form};
use super::html::{self, Input, e};
use super::{MAX_FIELD, Query, destination, home, is_admin, safe_next, signed};
use crate::routes::error::ApiError;
use crate::routes::extract::{
    ClientOrigin, FormTargets, KnownRoute, clear_session_cookie, device_value, session_value,
    sign_in_cookies,
};
use crate::routes::paths::pages;
use crate::service::auth;
use crate::service::identity::AuthError;
use crate::service::oidc::authorize::{self, AuthRequest};
use crate::service::sso::flow::{self, Discovery};
use crate::state::AppState;

pub(super) async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed(&state, &headers).await {
        Ok(Some(s)) => html::see_other(home(&s), &[]),
        _ => html::see_other("/login", &[]),
    }
}

/// What a login page shows.
#[derive(Default)]
struct View<'a> {
    email: &'a str,
    next: Option<&'static str>,
    /// An app's authorization request waiting for this sign-in (signed by us).
    pending: Option<&'a str>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// "Continue with …" links of the social providers.
    social: &'a str,
    /// The email step leads to the password whatever the domain (break-glass admins).
    use_password: bool,
}

fn next_field(v: &View<'_>) -> String {
    let next = v.next.map(|n| html::hidden("next", n)).unwrap_or_default();
    let pending = v
        .pending
        .map(|p| html::hidden("pending", p))
        .unwrap_or_default();
    format!("{next}{pending}")
}

fn password_link(v: &View<'_>) -> &'static str {
    if v.use_password {
        ""
    } else {
        "<p class=\"links\"><a href=\"/login?password=1\">Sign in with a password instead</a></p>\n"
    }
}

/// Lets the page's forms end at the app of a pending request (the redirect back to it).
fn allow_app(mut res: Response, pending: Option<&AuthRequest>) -> Response {
    if let Some(t) = pending.and_then(|r| FormTargets::of(&r.redirect_uri)) {
        res.extensions_mut().insert(t);
    }
    res
}

/// A `pending` authorization request, if genuine: only those travel on.
fn pending<'a>(state: &AppState, value: Option<&'a str>) -> Option<(&'a str, AuthRequest)> {
    let value = value?;
    authorize::unseal(state, value).map(|req| (value, req))
}

fn email_step(state: &AppState, csrf: &Csrf, v: &View<'_>) -> String {
    let email = Input {
        id: "email",
        label: "Email",
        kind: "email",
        name: "email",
        value: v.email,
        autocomplete: "username",
        attrs: "required autofocus spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"",
        hint: None,
    };
    let main = format!(
        "<h1>Sign in</h1>\n\
<p class=\"lead\">Enter the email address of your work account.</p>\n\
{notice}{error}\
<form method=\"post\" action=\"/login\">\n\
{csrf}{next}{use_password}\n\
{email}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Continue</button>\n\
</form>\n\
{social}\
<p class=\"links\"><a href=\"/forgot\">Forgot your password?</a></p>\n\
{password_link}",
        notice = v.notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(v.error),
        csrf = html::csrf_field(&csrf.token),
        next = next_field(v),
        use_password = if v.use_password {
            html::hidden("use_password", "1")
        } else {
            String::new()
        },
        email = email.html(v.error.is_some()),
        social = v.social,
        password_link = password_link(v),
    );
    html::document(
        &state.config.product_name,
        "Sign in",
        html::Width::Narrow,
        "",
        &main,
    )
}

fn password_step(state: &AppState, csrf: &Csrf, v: &View<'_>) -> String {
    let password = Input {
        id: "password",
        label: "Password",
        kind: "password",
        name: "password",
        value: "",
        autocomplete: "current-password",
        attrs: "required autofocus maxlength=\"1024\"",
        hint: None,
    };
    let main = format!(
        "<h1>Enter your password</h1>\n\
<p class=\"lead\">Enter the password of this account. <a href=\"/login\">Use another email</a></p>\n\
{error}\
<form method=\"post\" action=\"/login\">\n\
{csrf}{next}\n\
<div class=\"field\">\n\
<label for=\"email\">Email</label>\n\
<input id=\"email\" type=\"email\" name=\"email\" value=\"{email}\" autocomplete=\"username\" readonly>\n\
</div>\n\
{password}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Sign in</button>\n\
</form>\n\
<form method=\"post\" action=\"/login/passkey\">\n\
{csrf}{next}<input type=\"hidden\" name=\"email\" value=\"{email}\">\n\
<button type=\"submit\" class=\"btn btn-block\">Use a passkey instead</button>\n\
</form>\n\
<p class=\"links\"><a href=\"/forgot\">Forgot your password?</a></p>\n",
        email = e(v.email),
        error = html::maybe_error(v.error),
        csrf = html::csrf_field(&csrf.token),
        next = next_field(v),
        password = password.html(v.error.is_some()),
    );
    html::document(
        &state.config.product_name,
        "Enter your password",
        html::Width::Narrow,
        "",
        &main,
    )
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let next = safe_next(q.get("next"));
    let pending = pending(&state, q.get("pending"));
    // A live session goes home; a broken one (e.g. a suspended company) sees the form. An
    // app's request that came here wants a (fresh) sign-in: the form too.
    if pending.is_none()
        && let Ok(Some(s)) = signed(&state, &headers).await
    {
        return html::see_other(destination(is_admin(&s), next), &[]);
    }
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/login", "Try again")),
    };
    let notice = match q.get("done") {
        Some("reset") => Some("Your password was changed. Sign in with the new one."),
        Some("signed_out") => Some("You are signed out."),
        _ => None,
    };
    let hint = pending
        .as_ref()
        .and_then(|(_, req)| req.login_hint())
        .unwrap_or("");
    let social = super::sso::social_links(&state, pending.as_ref().map(|(p, _)| *p)).await;
    let view = View {
        email: hint,
        next,
        pending: pending.as_ref().map(|(p, _)| *p),
        notice,
        social: &social,
        use_password: q.get("password") == Some("1"),
        ..View::default()
    };
    let res = html::respond(
        StatusCode::OK,
        std::slice::from_ref(&csrf.cookie),
        email_step(&state, &csrf, &view),
    );
    allow_app(res, pending.as_ref().map(|(_, r)| r))
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    KnownRoute(known): KnownRoute,
    form: Form,
) -> Response {
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/login", "Try again")),
    };
    let typed = form.text("email").trim();
    let next = safe_next(form.get("next"));
    let pending_req = pending(&state, form.get("pending"));
    let pending = pending_req.as_ref().map(|(p, _)| *p);
    let use_password = form.get("use_password") == Some("1");
    let social = super::sso::social_links(&state, pending).await;
    let page = |step: fn(&AppState, &Csrf, &View<'_>) -> String, status, error: Option<&str>| {
        let view = View {
            email: if typed.len() > MAX_FIELD { "" } else { typed },
            next,
            pending,
            error,
            notice: None,
            social: &social,
            use_password,
        };
        let res = html::respond(
            status,
            std::slice::from_ref(&csrf.cookie),
            step(&state, &csrf, &view),
        );
        allow_app(res, pending_req.as_ref().map(|(_, r)| r))
    };
    if typed.is_empty() {
        return page(
            email_step,
            StatusCode::BAD_REQUEST,
            Some("Enter your email address."),
        );
    }
    if typed.len() > MAX_FIELD || email::parse(typed).is_none() {
        return page(
            email_step,
            StatusCode::BAD_REQUEST,
            Some("Enter a valid email address, like name@example.com."),
        );
    }
    let Some(password) = form.get("password") else {
        // The email step: a domain of a company's identity provider goes there; every other
        // address gets the same password step.
        if !use_password
            && let Ok(Discovery::Sso { redirect }) = flow::discover(&state, typed, pending).await
        {
            return super::sso::continue_page(&state, &redirect);
        }
        return page(password_step, StatusCode::OK, None);
    };
    if password.is_empty() {
        return page(
            password_step,
            StatusCode::BAD_REQUEST,
            Some("Enter your password."),
        );
    }
    let device = device_value(&state, &headers);
    match auth::login(
        &state,
        typed,
        password,
        origin,
        known.as_ref(),
        device.as_deref(),
    )
    .await
    {
        Ok(done) => {
            let Ok(fresh) = forms::fresh(&state) else {
                return page(
                    password_step,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some("Something went wrong on our side. Try again later."),
                );
            };
            let mut cookies = sign_in_cookies(&state, &done);
            cookies.push(fresh.cookie);
            match pending {
                // Back to the app's request, now signed in (the value is our own signature).
                Some(p) => {
                    html::see_other(&format!("{}?pending={p}", pages::OIDC_AUTHORIZE), &cookies)
                }
                None => {
                    let to = destination(done.view.user.role == Role::Admin, next);
                    html::see_other(to, &cookies)
                }
            }
        }
        // Refused for good: the app that asked hears `access_denied`.
        Err(err @ (AuthError::Blocked | AuthError::Suspended))
            if let Some(to) =
                pending.and_then(|p| authorize::deny(&state, p, &err.to_string())) =>
        {
            html::see_other(&to, &[])
        }
        Err(err) => {
            let err = ApiError::from(err);
            // The password was right and a second step follows: its page.
            if let Some(res) =
                super::mfa::after_first_step(&state, &headers, &err, next, pending).await
            {
                return res;
            }
            let mut res = page(password_step, err.status, Some(err.message.as_ref()));
            html::with_retry_after(&mut res, &err);
            res
        }
    }
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: Form,
) -> Response {
    if let Some(value) = session_value(&state, &headers)
        && let Err(err) = auth::logout(&state, &value).await
    {
        return html::error_page(&state, &err.into(), ("/account", "Back"));
    }
    let mut cookies = vec![clear_session_cookie(&state)];
    if let Ok(fresh) = forms::fresh(&state) {
        cookies.push(fresh.cookie);
    }
    html::see_other("/login?done=signed_out", &cookies)
}
