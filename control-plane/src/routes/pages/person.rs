//! `/admin/users/{id}`: one person of the admin's company — details, a pending email change,
//! their name and address, role and status actions, their live sessions (each can be ended,
//! or all at once), and the recent audit entries by or about them.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::audit;

use super::Query;
use super::account::{role_label, session_rows};
use super::admin::{flash, gate, refusal, role_form, status_badge, user_actions};
use super::audit::entry_rows_named;
use super::forms::{self, Csrf};
use super::html::{self, Input, e};
use crate::routes::error::ApiError;
use crate::service::admin::{self as svc, TenantAdmin};
use crate::service::{people, profile};
use crate::state::AppState;

/// How many audit entries the page shows.
const RECENT: u32 = 15;

pub(super) async fn person_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let csrf = match forms::for_page(&state, &headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(&state, &err, ("/admin", "Back to people")),
    };
    let q = Query::parse(raw.as_deref());
    render(
        &state,
        &admin,
        &csrf,
        &id,
        flash(q.get("done")),
        None,
        StatusCode::OK,
    )
    .await
}

/// The page again, with the reason an action was refused.
pub(super) async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    admin: &TenantAdmin,
    id: &str,
    err: &ApiError,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(e2) => return html::error_page(state, &e2, ("/admin", "Back to people")),
    };
    let mut res = render(
        state,
        admin,
        &csrf,
        id,
        None,
        Some(&err.message),
        err.status,
    )
    .await;
    html::with_retry_after(&mut res, err);
    res
}

async fn render(
    state: &AppState,
    admin: &TenantAdmin,
    csrf: &Csrf,
    id: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let user = match svc::get_user(state, admin, id).await {
        Ok(u) => u,
        Err(err) => return html::error_page(state, &refusal(err), ("/admin", "Back to people")),
    };
    let signed = admin.signed();
    let (sessions, pending, entries, names) = match tokio::try_join!(
        svc::user_sessions(state, admin, id),
        profile::pending_email(state, &signed.tenant.id, id),
        svc::audit_log(
            state,
            admin,
            audit::Filter {
                user: Some(id.to_owned()),
                limit: RECENT,
                ..audit::Filter::default()
            }
        ),
        people::emails_by_id(state, admin),
    ) {
        Ok(found) => found,
        Err(err) => return html::error_page(state, &refusal(err), ("/admin", "Back to people")),
    };
    let uid = e(&user.id);
    let csrf_field = html::csrf_field(&csrf.token);
    let from = html::hidden("from", "person");
    let title = if user.name.is_empty() {
        user.email.clone()
    } else {
        user.name.clone()
    };
    let pending_html = match &pending {
        Some(p) => format!(
            "<div class=\"alert alert-ok\" role=\"status\">Waiting for confirmation: moving to <strong>{}</strong> (the link expires {}).\
<form method=\"post\" action=\"/admin/users/{uid}/email/cancel\" class=\"inline\">{csrf_field}{from}<button type=\"submit\" class=\"btn btn-small\">Cancel the change</button></form></div>\n",
            e(&p.email),
            html::timestamp(p.expires_at),
        ),
        None => String::new(),
    };
    let name_input = Input {
        id: "person-name",
        label: "Name",
        kind: "text",
        name: "name",
        value: &user.name,
        autocomplete: "off",
        attrs: "maxlength=\"100\"",
        hint: None,
    };
    let email_input = Input {
        id: "person-email",
        label: "New email address",
        kind: "email",
        name: "email",
        value: "",
        autocomplete: "off",
        attrs: "required spellcheck=\"false\" autocapitalize=\"none\" maxlength=\"320\"",
        hint: Some(
            "A link goes to the new address; the change takes effect when it is used. The old address is told.",
        ),
    };
    let sessions_html = if sessions.is_empty() {
        "<p class=\"muted\">No live sessions.</p>\n".to_owned()
    } else {
        let rows = session_rows(&sessions, |sid| {
            format!(
                "<form method=\"post\" action=\"/admin/users/{uid}/sessions/{sid}/end\" class=\"inline\">{csrf_field}<button type=\"submit\" class=\"btn btn-small btn-danger\">End this session</button></form>",
                sid = e(sid),
            )
        });
        format!(
            "<div class=\"table-wrap\"><table aria-labelledby=\"sessions-heading\">\n\
<thead><tr><th scope=\"col\">Device</th><th scope=\"col\">Address</th><th scope=\"col\">Started</th><th scope=\"col\">Last seen</th><th scope=\"col\">Action</th></tr></thead>\n\
<tbody>\n{rows}</tbody></table></div>\n\
<form method=\"post\" action=\"/admin/users/{uid}/sessions/end-all\" class=\"actions\">{csrf_field}{from}<button type=\"submit\" class=\"btn btn-danger\">End all sessions</button></form>\n"
        )
    };
    let audit_html = if entries.is_empty() {
        "<p class=\"muted\">Nothing recorded yet.</p>\n".to_owned()
    } else {
        format!(
            "<div class=\"table-wrap\"><table aria-labelledby=\"audit-heading\">\n\
<thead><tr><th scope=\"col\">When</th><th scope=\"col\">Action</th><th scope=\"col\">By</th><th scope=\"col\">About</th><th scope=\"col\">Details</th></tr></thead>\n\
<tbody>\n{}</tbody></table></div>\n<p class=\"actions\"><a href=\"/admin/audit?user={uid}\">The whole audit log of this person</a></p>\n",
            entry_rows_named(&entries, &names)
        )
    };
    let last = user
        .last_login_at
        .map(html::timestamp)
        .unwrap_or_else(|| "Never".to_owned());
    let main = format!(
        "<p><a href=\"/admin\">← All people</a></p>\n\
<div class=\"page-head\"><h1>{title}</h1>{badge}</div>\n\
{notice}{error}\
<dl class=\"facts\">\n<dt>Email</dt><dd>{email}</dd>\n<dt>Role</dt><dd>{role}</dd>\n<dt>Added</dt><dd>{added}</dd>\n<dt>Last sign-in</dt><dd>{last}</dd>\n<dt>User id</dt><dd>{uid}</dd>\n</dl>\n\
{pending_html}\
<section class=\"section\" aria-labelledby=\"edit-heading\">\n<h2 id=\"edit-heading\">Details</h2>\n\
<form method=\"post\" action=\"/admin/users/{uid}/name\" class=\"row-form\">{csrf_field}{from}{name}<button type=\"submit\" class=\"btn\">Save name</button></form>\n\
<form method=\"post\" action=\"/admin/users/{uid}/email\" class=\"row-form\">{csrf_field}{from}{email_field}<button type=\"submit\" class=\"btn\">Change email</button></form>\n\
</section>\n\
<section class=\"section\" aria-labelledby=\"access-heading\">\n<h2 id=\"access-heading\">Role and access</h2>\n\
<div class=\"row-actions\">{role_form}{actions}</div>\n</section>\n\
{factors_html}\
<h2 id=\"sessions-heading\">Sessions</h2>\n{sessions_html}\
<h2 id=\"audit-heading\">Recent activity</h2>\n{audit_html}",
        title = e(&title),
        badge = status_badge(user.status),
        notice = notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(error),
        email = e(&user.email),
        role = role_label(user.role),
        added = html::timestamp(user.created_at),
        name = name_input.html(false),
        email_field = email_input.html(false),
        role_form = role_form(&user, &csrf.token, &from),
        actions = user_actions(&user, &csrf.token, &from).join(""),
        factors_html = super::factors::person_section(&user.id, &html::csrf_field(&csrf.token)),
    );
    let nav = html::nav(signed, &csrf.token, "");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            &title,
            html::Width::Wide,
            &nav,
            &main,
        ),
    )
}
