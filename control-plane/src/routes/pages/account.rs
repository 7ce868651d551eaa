//! `/account`: who is signed in, to which company, a password change, and a way to sign out.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::users::Role;

use super::forms::Form;
use super::html::{self, Input, e};
use super::{forms, signed};
use crate::routes::error::ApiError;
use crate::routes::extract::ClientOrigin;
use crate::service::account;
use crate::state::AppState;

pub(super) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Member => "Member",
    }
}

pub(super) async fn account_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let changed = query.as_deref() == Some("done=password_changed");
    render(&state, &headers, changed, None, StatusCode::OK).await
}

/// `POST /account/password`: needs the current password; other sessions end.
pub(super) async fn change_password(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match signed(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return html::see_other("/login?next=/account", &[]),
        Err(err) => return html::error_page(&state, &err.into(), ("/login", "Go to sign in")),
    };
    let ip = origin.ip;
    let new = form.text("new_password");
    let result = if new != form.text("confirm_password") {
        Err(ApiError::bad_request(
            "password_mismatch",
            "The two new passwords differ.",
        ))
    } else {
        account::change_password(&state, &s, form.text("current_password"), new, &ip)
            .await
            .map_err(ApiError::from)
    };
    match result {
        Ok(()) => html::see_other("/account?done=password_changed", &[]),
        Err(err) => {
            let mut res = render(&state, &headers, false, Some(&err.message), err.status).await;
            html::with_retry_after(&mut res, &err);
            res
        }
    }
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    changed: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (state, headers) = (state.clone(), headers.clone());
    let s = match signed(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return html::see_other("/login?next=/account", &[]),
        Err(err) => return html::error_page(&state, &err.into(), ("/login", "Go to sign in")),
    };
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/account", "Try again")),
    };
    let name = if s.user.name.is_empty() {
        "<span class=\"muted\">Not set</span>".to_owned()
    } else {
        e(&s.user.name)
    };
    let manage = if s.user.role == Role::Admin {
        "<a class=\"btn btn-primary\" href=\"/admin\">Manage users</a>\n"
    } else {
        ""
    };
    let main = format!(
        "<h1>Your account</h1>\n\
<p class=\"lead\">You are signed in to {company}.</p>\n\
<dl class=\"facts\">\n\
<dt>Name</dt><dd>{name}</dd>\n\
<dt>Email</dt><dd>{email}</dd>\n\
<dt>Role</dt><dd>{role}</dd>\n\
<dt>Company</dt><dd>{company}</dd>\n\
</dl>\n\
<div class=\"actions\">\n\
{manage}\
<form method=\"post\" action=\"/logout\" class=\"inline\">{csrf}<button type=\"submit\" class=\"btn\">Sign out</button></form>\n\
</div>\n\
{notice}\
<h2>Change your password</h2>\n\
{error}\
<form method=\"post\" action=\"/account/password\">{csrf}\n\
<input type=\"hidden\" name=\"username\" value=\"{email}\" autocomplete=\"username\">\n\
{current}{new}{confirm}\
<button type=\"submit\" class=\"btn\">Change password</button>\n\
</form>\n",
        notice = if changed {
            html::notice_box("Your password was changed. Your other sessions were signed out.")
        } else {
            String::new()
        },
        error = html::maybe_error(error),
        current = Input {
            id: "current_password",
            label: "Current password",
            kind: "password",
            name: "current_password",
            value: "",
            autocomplete: "current-password",
            attrs: "required",
            hint: None
        }
        .html(error.is_some()),
        new = Input {
            id: "new_password",
            label: "New password",
            kind: "password",
            name: "new_password",
            value: "",
            autocomplete: "new-password",
            attrs: "required minlength=\"12\" maxlength=\"256\"",
            hint: Some("At least 12 characters.")
        }
        .html(false),
        confirm = Input {
            id: "confirm_password",
            label: "New password again",
            kind: "password",
            name: "confirm_password",
            value: "",
            autocomplete: "new-password",
            attrs: "required",
            hint: None
        }
        .html(false),
        company = e(&s.tenant.name),
        email = e(&s.user.email),
        role = role_label(s.user.role),
        csrf = html::csrf_field(&csrf.token),
    );
    let nav = html::nav(&s, &csrf.token, "/account");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Your account",
            html::Width::Narrow,
            &nav,
            &main,
        ),
    )
}
