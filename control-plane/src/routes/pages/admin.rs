//! `/admin`: the users of the admin's company, page by page, with an invite form and a form
//! per action. Each action POSTs, then redirects back with a fixed flash code (no user data
//! in the URL); a refused action re-renders the page with the reason and its status.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::users::{Role, Status};

use super::account::role_label;
use super::forms::{self, Csrf, Form};
use super::html::{self, e};
use super::{MAX_FIELD, Query, signed};
use crate::routes::error::{ApiError, ApiResult};
use crate::service::AdminUserView;
use crate::service::admin::{self as svc, AdminError, TenantAdmin, UserChange};
use crate::state::AppState;

const PAGE_SIZE: u32 = 25;

/// The caller as an admin, or the page to show instead (sign in, or 403).
async fn gate(state: &AppState, headers: &HeaderMap) -> Result<TenantAdmin, Response> {
    match signed(state, headers).await {
        Ok(Some(s)) => TenantAdmin::new(s).map_err(|_| {
            html::message_page(
                state,
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only your company's administrators can manage users. Ask one of them if you need a change.",
                ("/account", "Go to your account"),
                &[],
            )
        }),
        Ok(None) => Err(html::see_other("/login?next=/admin", &[])),
        Err(err) => Err(html::error_page(state, &err.into(), ("/login", "Go to sign in"))),
    }
}

fn page_number(raw: Option<&str>) -> u32 {
    raw.and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000)
}

fn flash(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "invited" => "Invitation sent.",
        "role_changed" => "Role changed. The user was signed out everywhere.",
        "blocked" => "User blocked and signed out everywhere.",
        "unblocked" => "User unblocked.",
        "deleted" => "User deleted.",
        "resent" => "A new invitation was sent. The previous link no longer works.",
        "revoked" => "Invitation revoked. The link no longer works.",
        _ => return None,
    })
}

/// What the invite form shows again after a refusal.
#[derive(Default)]
struct Typed<'a> {
    email: &'a str,
    name: &'a str,
    role: &'a str,
}

struct View<'a> {
    page: u32,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    typed: Typed<'a>,
}

fn status_badge(status: Status) -> &'static str {
    match status {
        Status::Active => "<span class=\"badge badge-active\">Active</span>",
        Status::Invited => "<span class=\"badge badge-invited\">Invited</span>",
        Status::Blocked => "<span class=\"badge badge-blocked\">Blocked</span>",
    }
}

fn role_options(selected: &str) -> String {
    ["member", "admin"]
        .iter()
        .map(|r| {
            let label = role_label(Role::parse(r).unwrap_or(Role::Member));
            let sel = if *r == selected { " selected" } else { "" };
            format!("<option value=\"{r}\"{sel}>{label}</option>")
        })
        .collect()
}

/// A one-button form posting to `/admin/users/{id}/{action}`.
fn action_form(csrf: &str, page: u32, id: &str, action: &str, button: &str, who: &str) -> String {
    let class = match action {
        "block" | "revoke" => "btn btn-small btn-danger",
        _ => "btn btn-small",
    };
    format!(
        "<form method=\"post\" action=\"/admin/users/{id}/{action}\" class=\"inline\">{csrf}{page}\
<button type=\"submit\" class=\"{class}\">{button}<span class=\"sr-only\"> ({who})</span></button></form>",
        id = e(id),
        csrf = html::csrf_field(csrf),
        page = html::hidden("page", &page.to_string()),
    )
}

fn user_row(u: &AdminUserView, me: &str, csrf: &str, page: u32) -> String {
    let id = e(&u.id);
    let email = e(&u.email);
    let you = if u.id == me {
        "<span class=\"you\">(you)</span>"
    } else {
        ""
    };
    let who = if u.name.is_empty() {
        format!("<div class=\"who\">{email}{you}</div>")
    } else {
        format!(
            "<div class=\"who\">{}{you}</div><div class=\"email\">{email}</div>",
            e(&u.name)
        )
    };
    let role = format!(
        "<form method=\"post\" action=\"/admin/users/{id}/role\" class=\"inline\">{csrf}{page}\
<label class=\"sr-only\" for=\"role-{id}\">Role of {email}</label>\
<select id=\"role-{id}\" name=\"role\">{options}</select>\
<button type=\"submit\" class=\"btn btn-small\">Save<span class=\"sr-only\"> the role of {email}</span></button></form>",
        csrf = html::csrf_field(csrf),
        page = html::hidden("page", &page.to_string()),
        options = role_options(u.role.as_str()),
    );
    let mut actions = Vec::new();
    match u.status {
        Status::Invited => {
            actions.push(action_form(
                csrf,
                page,
                &u.id,
                "resend",
                "Re-send invitation",
                &email,
            ));
            actions.push(action_form(
                csrf,
                page,
                &u.id,
                "revoke",
                "Revoke invitation",
                &email,
            ));
        }
        Status::Active => actions.push(action_form(csrf, page, &u.id, "block", "Block", &email)),
        Status::Blocked => {
            actions.push(action_form(csrf, page, &u.id, "unblock", "Unblock", &email));
        }
    }
    actions.push(format!(
        "<form method=\"post\" action=\"/admin/users/{id}/delete\" class=\"inline\">{csrf}{page}\
<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> Confirm<span class=\"sr-only\"> to delete {email}</span></label>\
<button type=\"submit\" class=\"btn btn-small btn-danger\">Delete<span class=\"sr-only\"> {email}</span></button></form>",
        csrf = html::csrf_field(csrf),
        page = html::hidden("page", &page.to_string()),
    ));
    let last = u
        .last_login_at
        .map(html::timestamp)
        .unwrap_or_else(|| "Never".to_owned());
    format!(
        "<tr id=\"user-{id}\">\n<td class=\"person\">{who}</td>\n<td>{role}</td>\n<td>{badge}</td>\n<td class=\"when\">{last}</td>\n<td><div class=\"row-actions\">{actions}</div></td>\n</tr>\n",
        badge = status_badge(u.status),
        actions = actions.join(""),
    )
}

async fn render(
    state: &AppState,
    admin: &TenantAdmin,
    csrf: &Csrf,
    view: View<'_>,
    status: StatusCode,
) -> Response {
    let offset = (view.page - 1).saturating_mul(PAGE_SIZE);
    let (users, total) = match svc::list_users(state, admin, offset, PAGE_SIZE).await {
        Ok(found) => found,
        Err(err) => return html::error_page(state, &err.into(), ("/admin", "Try again")),
    };
    let signed = admin.signed();
    let rows: String = users
        .iter()
        .map(|u| user_row(u, &signed.user.id, &csrf.token, view.page))
        .collect();
    let rows = if rows.is_empty() {
        "<tr><td colspan=\"5\" class=\"muted\">No users on this page. <a href=\"/admin\">Go to the first page</a>.</td></tr>\n".to_owned()
    } else {
        rows
    };
    let shown_from = if users.is_empty() {
        0
    } else {
        u64::from(offset) + 1
    };
    let shown_to = u64::from(offset) + users.len() as u64;
    let prev = if view.page > 1 {
        format!(
            "<a href=\"/admin?page={}\">Previous page</a>",
            view.page - 1
        )
    } else {
        String::new()
    };
    let next = if shown_to < total {
        format!("<a href=\"/admin?page={}\">Next page</a>", view.page + 1)
    } else {
        String::new()
    };
    let people = if total == 1 { "person" } else { "people" };
    let invite_email = html::Input {
        id: "invite-email",
        label: "Email",
        kind: "email",
        name: "email",
        value: view.typed.email,
        autocomplete: "off",
        attrs: "required spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"",
        hint: None,
    };
    let invite_name = html::Input {
        id: "invite-name",
        label: "Name (optional)",
        kind: "text",
        name: "name",
        value: view.typed.name,
        autocomplete: "off",
        attrs: "maxlength=\"100\"",
        hint: None,
    };
    let main = format!(
        "<div class=\"page-head\"><h1>Users</h1><p class=\"muted\">{total} {people} in {company}</p></div>\n\
{notice}{error}\
<h2 id=\"invite-heading\">Invite someone</h2>\n\
<form method=\"post\" action=\"/admin/invite\" class=\"invite-form\" aria-labelledby=\"invite-heading\">\n\
{csrf}\n\
{invite_email}{invite_name}\
<div class=\"field\">\n<label for=\"invite-role\">Role</label>\n<select id=\"invite-role\" name=\"role\">{roles}</select>\n</div>\n\
<button type=\"submit\" class=\"btn btn-primary\">Send invitation</button>\n\
</form>\n\
<h2 id=\"users-heading\">People</h2>\n\
<div class=\"table-wrap\">\n<table aria-labelledby=\"users-heading\">\n\
<thead><tr><th scope=\"col\">Person</th><th scope=\"col\">Role</th><th scope=\"col\">Status</th><th scope=\"col\">Last sign-in</th><th scope=\"col\">Actions</th></tr></thead>\n\
<tbody>\n{rows}</tbody>\n</table>\n</div>\n\
<nav class=\"pager\" aria-label=\"Pages\"><span>Showing {shown_from}–{shown_to} of {total}</span><span class=\"actions\">{prev}{next}</span></nav>\n",
        company = e(&signed.tenant.name),
        notice = view.notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(view.error),
        csrf = html::csrf_field(&csrf.token),
        invite_email = invite_email.html(false),
        invite_name = invite_name.html(false),
        roles = role_options(if view.typed.role.is_empty() {
            "member"
        } else {
            view.typed.role
        }),
    );
    let nav = html::nav(signed, &csrf.token, "/admin");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Users",
            html::Width::Wide,
            &nav,
            &main,
        ),
    )
}

pub(super) async fn admin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/admin", "Try again")),
    };
    let q = Query::parse(raw.as_deref());
    let view = View {
        page: page_number(q.get("page")),
        notice: flash(q.get("done")),
        error: None,
        typed: Typed::default(),
    };
    render(&state, &admin, &csrf, view, StatusCode::OK).await
}

/// An admin action's refusal as the page words it.
fn refusal(e: AdminError) -> ApiError {
    match e {
        AdminError::NotFound => ApiError {
            message: "This user no longer exists.".into(),
            ..ApiError::not_found()
        },
        other => other.into(),
    }
}

/// Re-renders the page with the reason an action was refused.
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    admin: &TenantAdmin,
    page: u32,
    err: &ApiError,
    typed: Typed<'_>,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(e2) => return html::error_page(state, &e2, ("/admin", "Try again")),
    };
    let view = View {
        page,
        notice: None,
        error: Some(err.message.as_ref()),
        typed,
    };
    let mut res = render(state, admin, &csrf, view, err.status).await;
    html::with_retry_after(&mut res, err);
    res
}

pub(super) async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let (email, name, role) = (form.text("email"), form.text("name"), form.text("role"));
    let result = async {
        if email.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_email",
                "Enter the email address of the person to invite.",
            ));
        }
        if email.len() > MAX_FIELD {
            return Err(ApiError::bad_request(
                "invalid_email",
                "Enter a valid email address.",
            ));
        }
        let role = svc::parse_role(role).map_err(refusal)?;
        svc::invite(&state, &admin, email, role, Some(name))
            .await
            .map_err(refusal)
    }
    .await;
    match result {
        Ok(_) => html::see_other("/admin?done=invited", &[]),
        Err(err) => {
            let typed = Typed {
                email: if email.len() > MAX_FIELD { "" } else { email },
                name: if name.len() > MAX_FIELD { "" } else { name },
                role,
            };
            refused(&state, &headers, &admin, 1, &err, typed).await
        }
    }
}

/// The per-user actions.
#[derive(Clone, Copy)]
enum Action {
    Role,
    Block,
    Unblock,
    Delete,
    Resend,
    Revoke,
}

async fn perform(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
    form: &Form,
    action: Action,
) -> ApiResult<&'static str> {
    let change = |role, blocked| UserChange { role, blocked };
    match action {
        Action::Role => {
            let role = svc::parse_role(form.text("role")).map_err(refusal)?;
            svc::update_user(state, admin, id, change(Some(role), None))
                .await
                .map_err(refusal)?;
            Ok("role_changed")
        }
        Action::Block => {
            svc::update_user(state, admin, id, change(None, Some(true)))
                .await
                .map_err(refusal)?;
            Ok("blocked")
        }
        Action::Unblock => {
            svc::update_user(state, admin, id, change(None, Some(false)))
                .await
                .map_err(refusal)?;
            Ok("unblocked")
        }
        Action::Delete => {
            if form.get("confirm") != Some("yes") {
                return Err(ApiError::bad_request(
                    "not_confirmed",
                    "To delete a user, tick \u{201c}Confirm\u{201d} next to the Delete button, then press Delete.",
                ));
            }
            svc::delete_user(state, admin, id).await.map_err(refusal)?;
            Ok("deleted")
        }
        Action::Resend => {
            svc::resend_invitation(state, admin, id)
                .await
                .map_err(refusal)?;
            Ok("resent")
        }
        Action::Revoke => {
            svc::revoke_invitation(state, admin, id)
                .await
                .map_err(refusal)?;
            Ok("revoked")
        }
    }
}

async fn act(
    state: AppState,
    headers: HeaderMap,
    id: String,
    form: Form,
    action: Action,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let page = page_number(form.get("page"));
    match perform(&state, &admin, &id, &form, action).await {
        Ok(done) => html::see_other(&format!("/admin?page={page}&done={done}"), &[]),
        Err(err) => refused(&state, &headers, &admin, page, &err, Typed::default()).await,
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub(crate) async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
            form: Form,
        ) -> Response {
            act(state, headers, id, form, $action).await
        }
    };
}

action_handler!(change_role, Action::Role);
action_handler!(block, Action::Block);
action_handler!(unblock, Action::Unblock);
action_handler!(delete, Action::Delete);
action_handler!(resend, Action::Resend);
action_handler!(revoke, Action::Revoke);
