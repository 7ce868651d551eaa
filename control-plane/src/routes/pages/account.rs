//! `/account`: who is signed in, to which company, and a way to sign out.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::users::Role;

use super::html::{self, e};
use super::{forms, signed};
use crate::state::AppState;

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Member => "Member",
    }
}

pub async fn account_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match signed(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return html::see_other("/login?next=/account", &[]),
        Err(err) => return html::error_page(&state, &err, ("/login", "Go to sign in")),
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
<p class=\"links\"><a href=\"/forgot\">Change your password</a></p>\n",
        company = e(&s.tenant.name),
        email = e(&s.user.email),
        role = role_label(s.user.role),
        csrf = html::csrf_field(&csrf.token),
    );
    let nav = html::nav(&s, &csrf.token, "/account");
    html::respond(
        StatusCode::OK,
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
