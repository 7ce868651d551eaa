//! `/forgot` (ask for a reset link) and `/reset` (choose a new password through it).
//!
//! `/forgot` answers every well-formed address with the same page, at once; the mail, if
//! any, is sent in the background. The reset page needs no session; its token travels in
//! the URL once and then in a hidden field, and no page sends a referrer.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::email;
use tenant_runtime::store::tokens::Purpose;

use super::forms::{self, Csrf, Form};
use super::html::{self, Input, e};
use super::{LinkRefusal, MAX_FIELD, Query};
use crate::routes::error::ApiError;
use crate::routes::extract::{ClientOrigin, KnownRoute, clear_session_cookie};
use crate::service::identity::AuthError;
use crate::service::recovery::{self as svc, RESET_TTL_SECS};
use crate::state::AppState;

fn forgot_form(state: &AppState, csrf: &Csrf, email: &str, error: Option<&str>) -> String {
    let input = Input {
        id: "email",
        label: "Email",
        kind: "email",
        name: "email",
        value: email,
        autocomplete: "username",
        attrs: "required autofocus spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"",
        hint: None,
    };
    let main = format!(
        "<h1>Reset your password</h1>\n\
<p class=\"lead\">Enter the email address of your account. We will send you a link to choose a new password.</p>\n\
{error}\
<form method=\"post\" action=\"/forgot\">\n\
{csrf}\n\
{input}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Send the link</button>\n\
</form>\n\
<p class=\"links\"><a href=\"/login\">Back to sign in</a></p>\n",
        error = html::maybe_error(error),
        csrf = html::csrf_field(&csrf.token),
        input = input.html(error.is_some()),
    );
    html::document(
        &state.config.product_name,
        "Reset your password",
        html::Width::Narrow,
        "",
        &main,
    )
}

pub(super) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match forms::for_page(&state, &headers) {
        Ok(csrf) => html::respond(
            StatusCode::OK,
            std::slice::from_ref(&csrf.cookie),
            forgot_form(&state, &csrf, "", None),
        ),
        Err(err) => html::error_page(&state, &err, ("/forgot", "Try again")),
    }
}

pub(super) async fn forgot(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    KnownRoute(known): KnownRoute,
    form: Form,
) -> Response {
    let typed = form.text("email").trim();
    let error = if typed.is_empty() {
        Some("Enter your email address.")
    } else if typed.len() > MAX_FIELD || email::parse(typed).is_none() {
        Some("Enter a valid email address, like name@example.com.")
    } else {
        None
    };
    let refuse = |status: StatusCode, error: &str| match forms::for_page(&state, &headers) {
        Ok(csrf) => html::respond(
            status,
            std::slice::from_ref(&csrf.cookie),
            forgot_form(
                &state,
                &csrf,
                if typed.len() > MAX_FIELD { "" } else { typed },
                Some(error),
            ),
        ),
        Err(err) => html::error_page(&state, &err, ("/forgot", "Try again")),
    };
    if let Some(error) = error {
        return refuse(StatusCode::BAD_REQUEST, error);
    }
    // Refused only when this address or this client asked too often (the same for every
    // address, so it tells nothing about accounts).
    if let Err(err) = svc::forgot(&state, typed, origin, known).await {
        let err = ApiError::from(err);
        let mut res = refuse(err.status, &err.message);
        html::with_retry_after(&mut res, &err);
        return res;
    }
    let main = format!(
        "<h1>Check your email</h1>\n\
<p class=\"lead\">If <strong>{}</strong> belongs to an account, a link to choose a new password is on its way. \
It works once and expires in {} minutes.</p>\n\
<p>No mail after a few minutes? Check your spam folder, or ask for a new link.</p>\n\
<p class=\"actions\"><a class=\"btn btn-primary\" href=\"/login\">Back to sign in</a><a href=\"/forgot\">Ask again</a></p>\n",
        e(typed),
        RESET_TTL_SECS / 60
    );
    html::respond(
        StatusCode::OK,
        &[],
        html::document(
            &state.config.product_name,
            "Check your email",
            html::Width::Narrow,
            "",
            &main,
        ),
    )
}

/// The answer to a reset link that does not work (any more).
fn dead_link(state: &AppState) -> Response {
    let message = format!(
        "The link is invalid, has expired or was already used. Reset links work once and for {} minutes. Ask for a new one.",
        RESET_TTL_SECS / 60
    );
    html::message_page(
        state,
        StatusCode::BAD_REQUEST,
        "This link does not work",
        &message,
        ("/forgot", "Ask for a new link"),
        &[],
    )
}

fn reset_form(
    state: &AppState,
    csrf: &Csrf,
    token: &str,
    email: &str,
    error: Option<&str>,
) -> String {
    let main = format!(
        "<h1>Choose a new password</h1>\n\
<p class=\"lead\">After the change, every device signed in to this account is signed out.</p>\n\
{error}\
<form method=\"post\" action=\"/reset\">\n\
{csrf}{token}\n\
<div class=\"field\">\n\
<label for=\"email\">Account</label>\n\
<input id=\"email\" type=\"email\" value=\"{email}\" autocomplete=\"username\" readonly>\n\
</div>\n\
{passwords}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Change the password</button>\n\
</form>\n",
        error = html::maybe_error(error),
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("token", token),
        email = e(email),
        passwords = html::new_password_fields(
            "New password",
            "Repeat the new password",
            true,
            error.is_some()
        ),
    );
    html::document(
        &state.config.product_name,
        "Choose a new password",
        html::Width::Narrow,
        "",
        &main,
    )
}

/// Who the token is for, or the page to show instead.
async fn owner(state: &AppState, token: &str, ip: &str) -> Result<String, Response> {
    if token.is_empty() || token.len() > MAX_FIELD {
        return Err(dead_link(state));
    }
    match super::token_owner(state, token, Purpose::Reset, ip).await {
        Ok((_, user)) => Ok(user.email),
        Err(AuthError::InvalidToken) => Err(dead_link(state)),
        Err(err) => Err(html::error_page(
            state,
            &err.into(),
            ("/forgot", "Start again"),
        )),
    }
}

pub(super) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let token = q.get("token").unwrap_or("");
    let email = match owner(&state, token, &origin.ip).await {
        Ok(email) => email,
        Err(res) => return res,
    };
    match forms::for_page(&state, &headers) {
        Ok(csrf) => html::respond(
            StatusCode::OK,
            std::slice::from_ref(&csrf.cookie),
            reset_form(&state, &csrf, token, &email, None),
        ),
        Err(err) => html::error_page(&state, &err, ("/forgot", "Start again")),
    }
}

pub(super) async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    form: Form,
) -> Response {
    let token = form.text("token");
    let email = match owner(&state, token, &origin.ip).await {
        Ok(email) => email,
        Err(res) => return res,
    };
    let password = form.text("password");
    let result = if password != form.text("password2") {
        Err(LinkRefusal::Form(ApiError::bad_request(
            "passwords_differ",
            "The two passwords are not the same. Type the new password twice.",
        )))
    } else {
        svc::reset(&state, token, password)
            .await
            .map_err(LinkRefusal::from)
    };
    match result {
        Ok(()) => {
            let mut cookies = vec![clear_session_cookie(&state)];
            if let Ok(fresh) = forms::fresh(&state) {
                cookies.push(fresh.cookie);
            }
            html::see_other("/login?done=reset", &cookies)
        }
        Err(LinkRefusal::DeadLink) => dead_link(&state),
        Err(LinkRefusal::Form(err)) => match forms::for_page(&state, &headers) {
            Ok(csrf) => {
                let mut res = html::respond(
                    err.status,
                    std::slice::from_ref(&csrf.cookie),
                    reset_form(&state, &csrf, token, &email, Some(err.message.as_ref())),
                );
                html::with_retry_after(&mut res, &err);
                res
            }
            Err(e2) => html::error_page(&state, &e2, ("/forgot", "Start again")),
        },
    }
}
