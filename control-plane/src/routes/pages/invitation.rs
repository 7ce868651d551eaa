//! `/invite`: who is invited to which company, and a form to accept (name and password).
//! Accepting signs the person in, as the JSON API does.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::tokens::Purpose;
use tenant_runtime::store::users::Role;

use super::forms::{self, Csrf, Form};
use super::html::{self, Input, e};
use super::{LinkRefusal, MAX_FIELD, Query, destination};
use crate::directory::Tenant;
use crate::routes::error::ApiError;
use crate::routes::extract::{ClientOrigin, sign_in_cookies};
use crate::service::identity::AuthError;
use crate::service::{admin, recovery};
use crate::state::AppState;

fn dead_link(state: &AppState) -> Response {
    html::message_page(
        state,
        StatusCode::BAD_REQUEST,
        "This invitation does not work",
        "The invitation link is invalid, has expired, was replaced by a newer one or was already used. Ask your company's administrator to send a new invitation.",
        ("/login", "Go to sign in"),
        &[],
    )
}

/// What the invitation page shows.
struct View<'a> {
    token: &'a str,
    company: &'a str,
    email: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

fn invite_form(state: &AppState, csrf: &Csrf, v: &View<'_>) -> String {
    let product = &state.config.product_name;
    let name = Input {
        id: "name",
        label: "Your name",
        kind: "text",
        name: "name",
        value: v.name,
        autocomplete: "name",
        attrs: "maxlength=\"100\"",
        hint: None,
    };
    let main = format!(
        "<h1>Join {company}</h1>\n\
<p class=\"lead\">{company} invited you to {product}. Choose a password to accept the invitation.</p>\n\
{error}\
<form method=\"post\" action=\"/invite\">\n\
{csrf}{token}\n\
<div class=\"field\">\n\
<label for=\"email\">Your email</label>\n\
<input id=\"email\" type=\"email\" value=\"{email}\" autocomplete=\"username\" readonly>\n\
</div>\n\
{name}{passwords}\
<button type=\"submit\" class=\"btn btn-primary btn-block\">Accept and sign in</button>\n\
</form>\n",
        company = e(v.company),
        product = e(product),
        error = html::maybe_error(v.error),
        csrf = html::csrf_field(&csrf.token),
        token = html::hidden("token", v.token),
        email = e(v.email),
        name = name.html(false),
        passwords = html::new_password_fields(
            "Choose a password",
            "Repeat the password",
            false,
            v.error.is_some()
        ),
    );
    html::document(
        product,
        &format!("Join {}", v.company),
        html::Width::Narrow,
        "",
        &main,
    )
}

/// The company and the invited person behind a token, or the page to show instead.
async fn owner(
    state: &AppState,
    token: &str,
    ip: &str,
) -> Result<(Tenant, tenant_runtime::store::users::User), Response> {
    if token.is_empty() || token.len() > MAX_FIELD {
        return Err(dead_link(state));
    }
    super::token_owner(state, token, Purpose::Invite, ip)
        .await
        .map_err(|err| match err {
            AuthError::InvalidToken => dead_link(state),
            other => html::error_page(state, &other.into(), ("/login", "Go to sign in")),
        })
}

pub(super) async fn invite_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let token = q.get("token").unwrap_or("");
    let (tenant, user) = match owner(&state, token, &origin.ip).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/login", "Go to sign in")),
    };
    let view = View {
        token,
        company: &tenant.name,
        email: &user.email,
        name: &user.name,
        error: None,
    };
    html::respond(
        StatusCode::OK,
        std::slice::from_ref(&csrf.cookie),
        invite_form(&state, &csrf, &view),
    )
}

pub(super) async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    form: Form,
) -> Response {
    let token = form.text("token");
    let (tenant, user) = match owner(&state, token, &origin.ip).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let typed_name = form.text("name");
    let password = form.text("password");
    let result = async {
        let name = admin::parse_name(Some(typed_name)).map_err(|e| LinkRefusal::Form(e.into()))?;
        if password != form.text("password2") {
            return Err(LinkRefusal::Form(ApiError::bad_request(
                "passwords_differ",
                "The two passwords are not the same. Type the password twice.",
            )));
        }
        Ok(recovery::accept_invite(&state, token, password, Some(&name), origin).await?)
    }
    .await;
    match result {
        Ok(done) => {
            let mut cookies = sign_in_cookies(&state, &done);
            if let Ok(fresh) = forms::fresh(&state) {
                cookies.push(fresh.cookie);
            }
            html::see_other(
                destination(done.view.user.role == Role::Admin, None),
                &cookies,
            )
        }
        Err(LinkRefusal::DeadLink) => dead_link(&state),
        Err(LinkRefusal::Form(err)) => {
            // Accepted; the company requires a second factor first.
            if let Some(res) =
                super::mfa::after_first_step(&state, &headers, &err, None, None).await
            {
                return res;
            }
            let csrf = match forms::for_page(&state, &headers) {
                Ok(c) => c,
                Err(e2) => return html::error_page(&state, &e2, ("/login", "Go to sign in")),
            };
            let view = View {
                token,
                company: &tenant.name,
                email: &user.email,
                name: if typed_name.len() > MAX_FIELD {
                    ""
                } else {
                    typed_name
                },
                error: Some(err.message.as_ref()),
            };
            let mut res = html::respond(
                err.status,
                std::slice::from_ref(&csrf.cookie),
                invite_form(&state, &csrf, &view),
            );
            html::with_retry_after(&mut res, &err);
            res
        }
    }
}
