//! `/account/email/confirm`: the link mailed to a new address. Opening it shows what will
//! change; only the button (a POST, with the CSRF token) makes it happen, so a mail scanner
//! that follows links changes nothing.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::forms::{self, Form};
use super::html::{self, e};
use super::{MAX_FIELD, Query, signed};
use crate::routes::error::ApiError;
use crate::routes::extract::ClientOrigin;
use crate::service::admin::AdminError;
use crate::service::{profile, recovery};
use crate::state::AppState;

fn dead_link(state: &AppState) -> Response {
    html::message_page(
        state,
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "The link is unknown, was already used, or has expired. Ask for the change again from your account page.",
        ("/account", "Go to your account"),
        &[],
    )
}

pub(super) async fn confirm_page(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let token = q.get("token").unwrap_or("").to_owned();
    if token.is_empty() || token.len() > MAX_FIELD {
        return dead_link(&state);
    }
    if let Err(err) = recovery::throttle_token(&state, &token, &origin.ip).await {
        return html::error_page(&state, &err.into(), ("/", "Start again"));
    }
    let (tenant, user, pending) = match profile::peek_email_change(&state, &token).await {
        Ok(found) => found,
        Err(AdminError::InvalidToken) => return dead_link(&state),
        Err(err) => return html::error_page(&state, &err.into(), ("/", "Start again")),
    };
    recovery::token_succeeded(&state, &token, &origin.ip).await;
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/", "Start again")),
    };
    let main = format!(
        "<h1>Confirm your new email address</h1>\n\
<p class=\"lead\">Your {company} account moves from {old} to <strong>{new}</strong>. From then on you sign in with the new address, and you are signed out everywhere else.</p>\n\
<form method=\"post\" action=\"/account/email/confirm\">{csrf}{token}\n\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Use {new}</button>\n</form>\n",
        company = e(&tenant.name),
        old = e(&user.email),
        new = e(&pending.email),
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("token", &token),
    );
    html::respond(
        StatusCode::OK,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Confirm your new email address",
            html::Width::Narrow,
            "",
            &main,
        ),
    )
}

pub(super) async fn confirm(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let token = form.text("token").to_owned();
    if token.is_empty() || token.len() > MAX_FIELD {
        return dead_link(&state);
    }
    if let Err(err) = recovery::throttle_token(&state, &token, &origin.ip).await {
        return html::error_page(&state, &err.into(), ("/", "Start again"));
    }
    // Signed in as this person: that session stays; every other one ends.
    let me = signed(&state, &headers).await.ok().flatten();
    let keep = match &me {
        Some(s) => profile::peek_email_change(&state, &token)
            .await
            .ok()
            .filter(|(_, u, _)| u.id == s.user.id)
            .map(|_| s.session_hash),
        None => None,
    };
    let result = profile::confirm_email_change(&state, &token, keep).await;
    if !matches!(result, Err(AdminError::InvalidToken)) {
        recovery::token_succeeded(&state, &token, &origin.ip).await;
    }
    match result {
        Ok(user) => {
            let link = if keep.is_some() {
                ("/account?done=email_changed", "Go to your account")
            } else {
                ("/login", "Sign in")
            };
            html::message_page(
                &state,
                StatusCode::OK,
                "Your email address was changed",
                &format!(
                    "From now on, sign in with {}. Your other sessions were signed out.",
                    user.email
                ),
                link,
                &[],
            )
        }
        Err(AdminError::InvalidToken) => dead_link(&state),
        Err(err) => html::error_page(
            &state,
            &ApiError::from(err),
            ("/account", "Go to your account"),
        ),
    }
}
