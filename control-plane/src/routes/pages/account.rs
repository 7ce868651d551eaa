//! `/account`, for everyone signed in: who they are, their name and email address, their live
//! sessions (end one, or every other), their password, and the place where second factors and
//! linked identities will go; and a way to sign out.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::sessions::Summary;
use tenant_runtime::store::users::Role;

use super::forms::Form;
use super::html::{self, Input, e};
use super::{MAX_FIELD, Query, caller, forms};
use crate::routes::error::ApiError;
use crate::routes::extract::ClientOrigin;
use crate::service::account;
use crate::service::profile;
use crate::state::AppState;

pub(super) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Member => "Member",
    }
}

/// A short name for a browser's user agent.
fn device(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, n)| *n);
    let os = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, n)| *n);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) if ua.is_empty() => "Unknown device".to_owned(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// Table rows of sessions: device, address, started, last seen, and the action `end` makes
/// for a session id (trusted HTML).
pub(super) fn session_rows(list: &[Summary], end: impl Fn(&str) -> String) -> String {
    list.iter()
        .map(|s| {
            format!(
                "<tr><td><span title=\"{ua}\">{device}</span></td><td>{ip}</td><td class=\"when\">{start}</td><td class=\"when\">{seen}</td><td>{action}</td></tr>\n",
                ua = e(&s.user_agent),
                device = e(&device(&s.user_agent)),
                ip = e(if s.ip.is_empty() { "—" } else { &s.ip }),
                start = html::timestamp(s.created_at),
                seen = html::timestamp(s.last_seen_at),
                action = end(&s.id),
            )
        })
        .collect()
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "password_changed" => "Your password was changed. Your other sessions were signed out.",
        "renamed" => "Your name was saved.",
        "email_requested" => {
            "We sent a link to the new address. Your address changes when you open it; until then, sign in with the current one."
        }
        "email_cancelled" => "The email change was cancelled.",
        "session_ended" => "The session was ended.",
        "others_ended" => "Your other sessions were signed out.",
        "email_changed" => "Your email address was changed. Your other sessions were signed out.",
        other => return super::factors::notice(other),
    })
}

pub(super) async fn account_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(query.as_deref());
    render(
        &state,
        &headers,
        notice(q.get("done")),
        None,
        StatusCode::OK,
    )
    .await
}

/// After a form: back to the page with `done`, or the page again with the reason.
async fn answer(state: &AppState, headers: &HeaderMap, r: Result<&str, ApiError>) -> Response {
    match r {
        Ok(done) => html::see_other(&format!("/account?done={done}"), &[]),
        Err(err) => {
            let mut res = render(state, headers, None, Some(&err.message), err.status).await;
            html::with_retry_after(&mut res, &err);
            res
        }
    }
}

/// `POST /account/password`: needs the current password; other sessions end.
pub(super) async fn change_password(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
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
            .map(|()| "password_changed")
            .map_err(ApiError::from)
    };
    answer(&state, &headers, result).await
}

/// `POST /account/name`.
pub(super) async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let name = form.text("name");
    let result = if name.len() > MAX_FIELD {
        Err(crate::service::admin::AdminError::InvalidName.into())
    } else {
        profile::set_name(&state, &s.tenant.id, &s.user.id, &s.user.id, name)
            .await
            .map(|_| "renamed")
            .map_err(ApiError::from)
    };
    answer(&state, &headers, result).await
}

/// `POST /account/email`: mails a link to the new address.
pub(super) async fn change_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let email = form.text("email");
    let result = if email.trim().is_empty() {
        Err(ApiError::bad_request(
            "invalid_email",
            "Enter the new email address.",
        ))
    } else {
        profile::request_email_change(&state, &s.tenant, &s.user.id, &s.user.id, email)
            .await
            .map(|_| "email_requested")
            .map_err(ApiError::from)
    };
    answer(&state, &headers, result).await
}

/// `POST /account/email/cancel`.
pub(super) async fn cancel_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let result = profile::cancel_email_change(&state, &s.tenant.id, &s.user.id, &s.user.id)
        .await
        .map(|()| "email_cancelled")
        .map_err(ApiError::from);
    answer(&state, &headers, result).await
}

/// `POST /account/sessions/{sid}/end`: one of the caller's sessions.
pub(super) async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    _form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if sid == s.session_id {
        // Ending the session in use is signing out.
        return html::see_other("/account", &[]);
    }
    let result = account::end_session(&state, &s, &sid)
        .await
        .map(|()| "session_ended")
        .map_err(|e| match ApiError::from(e) {
            err if err.status == StatusCode::NOT_FOUND => ApiError {
                message: "This session has already ended.".into(),
                ..err
            },
            err => err,
        });
    answer(&state, &headers, result).await
}

/// `POST /account/sessions/end-others`.
pub(super) async fn end_others(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: Form,
) -> Response {
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let result = account::end_other_sessions(&state, &s)
        .await
        .map(|_| "others_ended")
        .map_err(ApiError::from);
    answer(&state, &headers, result).await
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (state, headers) = (state.clone(), headers.clone());
    let s = match caller(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/account", "Try again")),
    };
    let (sessions, pending) = match tokio::try_join!(
        async {
            account::sessions_of(&state, &s)
                .await
                .map_err(ApiError::from)
        },
        async {
            profile::pending_email(&state, &s.tenant.id, &s.user.id)
                .await
                .map_err(ApiError::from)
        },
    ) {
        Ok(found) => found,
        Err(err) => return html::error_page(&state, &err, ("/account", "Try again")),
    };
    let csrf_field = html::csrf_field(&csrf.token);
    let name = if s.user.name.is_empty() {
        "<span class=\"muted\">Not set</span>".to_owned()
    } else {
        e(&s.user.name)
    };
    let manage = if s.user.role == Role::Admin {
        "<a class=\"btn btn-primary\" href=\"/admin\">Manage people</a>\n"
    } else {
        ""
    };
    let pending_html = match &pending {
        Some(p) => format!(
            "<div class=\"alert alert-ok\" role=\"status\">Waiting for you to open the link sent to <strong>{}</strong> (it expires {}).\
<form method=\"post\" action=\"/account/email/cancel\" class=\"inline\">{csrf_field}<button type=\"submit\" class=\"btn btn-small\">Cancel the change</button></form></div>\n",
            e(&p.email),
            html::timestamp(p.expires_at)
        ),
        None => String::new(),
    };
    let rows = session_rows(
        &sessions
            .iter()
            .map(|x| x.session.clone())
            .collect::<Vec<_>>(),
        |sid| {
            if sid == s.session_id {
                "<span class=\"muted\">This browser</span>".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/account/sessions/{}/end\" class=\"inline\">{csrf_field}<button type=\"submit\" class=\"btn btn-small btn-danger\">End this session</button></form>",
                    e(sid)
                )
            }
        },
    );
    let others = if sessions.len() > 1 {
        format!(
            "<form method=\"post\" action=\"/account/sessions/end-others\" class=\"actions\">{csrf_field}<button type=\"submit\" class=\"btn btn-danger\">Sign out other sessions</button></form>\n"
        )
    } else {
        String::new()
    };
    let main = format!(
        "<h1>Your account</h1>\n\
<p class=\"lead\">You are signed in to {company}.</p>\n\
{notice}{error}\
<dl class=\"facts\">\n\
<dt>Name</dt><dd>{name}</dd>\n\
<dt>Email</dt><dd>{email}</dd>\n\
<dt>Role</dt><dd>{role}</dd>\n\
<dt>Company</dt><dd>{company}</dd>\n\
</dl>\n\
<div class=\"actions\">\n\
{manage}\
<form method=\"post\" action=\"/logout\" class=\"inline\">{csrf_field}<button type=\"submit\" class=\"btn\">Sign out</button></form>\n\
</div>\n\
<h2>Your details</h2>\n\
{pending_html}\
<form method=\"post\" action=\"/account/name\" class=\"row-form\">{csrf_field}{name_input}<button type=\"submit\" class=\"btn\">Save name</button></form>\n\
<form method=\"post\" action=\"/account/email\" class=\"row-form\">{csrf_field}{email_input}<button type=\"submit\" class=\"btn\">Change email</button></form>\n\
<h2 id=\"sessions-heading\">Where you are signed in</h2>\n\
<div class=\"table-wrap\"><table aria-labelledby=\"sessions-heading\">\n\
<thead><tr><th scope=\"col\">Device</th><th scope=\"col\">Address</th><th scope=\"col\">Started</th><th scope=\"col\">Last seen</th><th scope=\"col\">Action</th></tr></thead>\n\
<tbody>\n{rows}</tbody></table></div>\n\
{others}\
<h2>Change your password</h2>\n\
<form method=\"post\" action=\"/account/password\">{csrf_field}\n\
<input type=\"hidden\" name=\"username\" value=\"{email}\" autocomplete=\"username\">\n\
{current}{new}{confirm}\
<button type=\"submit\" class=\"btn\">Change password</button>\n\
</form>\n\
{methods}",
        methods = super::factors::methods_section(&state, &s, &csrf_field).await,
        notice = notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(error),
        name_input = Input {
            id: "account-name",
            label: "Name",
            kind: "text",
            name: "name",
            value: &s.user.name,
            autocomplete: "name",
            attrs: "maxlength=\"100\"",
            hint: None
        }
        .html(false),
        email_input = Input {
            id: "account-email",
            label: "New email address",
            kind: "email",
            name: "email",
            value: "",
            autocomplete: "email",
            attrs: "required spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"",
            hint: Some("We send a link to the new address; your address changes when you open it.")
        }
        .html(false),
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
        .html(false),
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
    );
    let nav = html::nav(&s, &csrf.token, "/account");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Your account",
            html::Width::Wide,
            &nav,
            &main,
        ),
    )
}
