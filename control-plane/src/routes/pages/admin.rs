//! `/admin`: the people of the admin's company — search by name or email, filters by role and
//! status, sorting, cursor paging, the CSV export — with an invite form, a form per action, and
//! the company's address rule. Each action POSTs, then redirects back with a fixed flash code
//! (no user data in the URL); a refused action re-renders the page with the reason and its
//! status.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::people::Search;
use tenant_runtime::store::users::{Role, Status};

use super::account::role_label;
use super::forms::{self, Csrf, Form};
use super::html::{self, e};
use super::{MAX_FIELD, Query, signed};
use crate::routes::error::ApiError;
use crate::service::AdminUserView;
use crate::service::admin::{self as svc, AdminError, TenantAdmin};
use crate::service::people;
use crate::state::AppState;

pub(super) const PAGE_SIZE: u32 = 25;

/// The caller as an admin, or the page to show instead (sign in, or 403).
pub(super) async fn gate(state: &AppState, headers: &HeaderMap) -> Result<TenantAdmin, Response> {
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

pub(super) fn page_number(raw: Option<&str>) -> u32 {
    raw.and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000)
}

pub(super) fn flash(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "invited" => "Invitation sent.",
        "role_changed" => "Role changed. The user was signed out everywhere.",
        "blocked" => "User blocked and signed out everywhere.",
        "unblocked" => "User unblocked.",
        "deleted" => "User deleted.",
        "resent" => "A new invitation was sent. The previous link no longer works.",
        "revoked" => "Invitation revoked. The link no longer works.",
        "renamed" => "Name saved.",
        "email_requested" => {
            "A confirmation link was sent to the new address. The change takes effect when it is used; the old address was told."
        }
        "email_cancelled" => "The pending email change was cancelled.",
        "session_ended" => "The session was ended.",
        c @ ("factors_reset" | "mfa_policy_saved") => return super::factors::notice(c),
        "sessions_ended" => "Signed out everywhere.",
        "settings_saved" => "Settings saved.",
        _ => return None,
    })
}

/// What the invite form shows again after a refusal.
#[derive(Default)]
pub(super) struct Typed<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
}

/// The list's search as the page shows it; every value was checked by `people::search_of`.
#[derive(Default, Clone)]
pub(super) struct Filters {
    pub q: String,
    pub role: String,
    pub status: String,
    pub sort: String,
    pub cursor: String,
}

impl Filters {
    pub(super) fn of(q: &Query) -> Self {
        let v = |k: &str| q.get(k).unwrap_or("").trim().to_owned();
        Self {
            q: v("q"),
            role: v("role"),
            status: v("status"),
            sort: v("sort"),
            cursor: v("cursor"),
        }
    }

    fn search(&self) -> Result<Search, AdminError> {
        fn opt(s: &str) -> Option<&str> {
            Some(s).filter(|s| !s.is_empty())
        }
        people::search_of(
            opt(&self.q),
            opt(&self.role),
            opt(&self.status),
            opt(&self.sort),
            opt(&self.cursor),
            PAGE_SIZE,
        )
    }

    /// The query string of these filters (without the cursor unless `with_cursor`).
    pub(super) fn query(&self, with_cursor: bool) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("role", &self.role),
            ("status", &self.status),
            ("sort", &self.sort),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if with_cursor && !self.cursor.is_empty() {
            q.append_pair("cursor", &self.cursor);
        }
        q.finish()
    }
}

pub(super) struct View<'a> {
    pub filters: Filters,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub typed: Typed<'a>,
}

pub(super) fn status_badge(status: Status) -> &'static str {
    match status {
        Status::Active => "<span class=\"badge badge-active\">Active</span>",
        Status::Invited => "<span class=\"badge badge-invited\">Invited</span>",
        Status::Blocked => "<span class=\"badge badge-blocked\">Blocked</span>",
    }
}

pub(super) fn role_options(selected: &str) -> String {
    ["member", "admin"]
        .iter()
        .map(|r| {
            let label = role_label(Role::parse(r).unwrap_or(Role::Member));
            let sel = if *r == selected { " selected" } else { "" };
            format!("<option value=\"{r}\"{sel}>{label}</option>")
        })
        .collect()
}

/// `<option>`s of `(value, label)`, with `selected` selected.
pub(super) fn options(list: &[(&str, &str)], selected: &str) -> String {
    list.iter()
        .map(|(v, l)| {
            let sel = if *v == selected { " selected" } else { "" };
            format!("<option value=\"{}\"{sel}>{}</option>", e(v), e(l))
        })
        .collect()
}

/// A one-button form posting to `/admin/users/{id}/{action}`; `back` is the hidden state
/// that says where to come back to.
pub(super) fn action_form(
    csrf: &str,
    back: &str,
    id: &str,
    action: &str,
    button: &str,
    who: &str,
) -> String {
    let class = match action {
        "block" | "revoke" => "btn btn-small btn-danger",
        _ => "btn btn-small",
    };
    format!(
        "<form method=\"post\" action=\"/admin/users/{id}/{action}\" class=\"inline\">{csrf}{back}\
<button type=\"submit\" class=\"{class}\">{button}<span class=\"sr-only\"> ({who})</span></button></form>",
        id = e(id),
        csrf = html::csrf_field(csrf),
    )
}

/// The actions a person's status allows, and delete.
pub(super) fn user_actions(u: &AdminUserView, csrf: &str, back: &str) -> Vec<String> {
    let email = e(&u.email);
    let mut actions = Vec::new();
    match u.status {
        Status::Invited => {
            actions.push(action_form(
                csrf,
                back,
                &u.id,
                "resend",
                "Re-send invitation",
                &email,
            ));
            actions.push(action_form(
                csrf,
                back,
                &u.id,
                "revoke",
                "Revoke invitation",
                &email,
            ));
        }
        Status::Active => actions.push(action_form(csrf, back, &u.id, "block", "Block", &email)),
        Status::Blocked => {
            actions.push(action_form(csrf, back, &u.id, "unblock", "Unblock", &email));
        }
    }
    actions.push(format!(
        "<form method=\"post\" action=\"/admin/users/{id}/delete\" class=\"inline\">{csrf}{back}\
<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> Confirm<span class=\"sr-only\"> to delete {email}</span></label>\
<button type=\"submit\" class=\"btn btn-small btn-danger\">Delete<span class=\"sr-only\"> {email}</span></button></form>",
        id = e(&u.id),
        csrf = html::csrf_field(csrf),
    ));
    actions
}

/// The role select of a person, as a form.
pub(super) fn role_form(u: &AdminUserView, csrf: &str, back: &str) -> String {
    let (id, email) = (e(&u.id), e(&u.email));
    format!(
        "<form method=\"post\" action=\"/admin/users/{id}/role\" class=\"inline\">{csrf}{back}\
<label class=\"sr-only\" for=\"role-{id}\">Role of {email}</label>\
<select id=\"role-{id}\" name=\"role\">{options}</select>\
<button type=\"submit\" class=\"btn btn-small\">Save<span class=\"sr-only\"> the role of {email}</span></button></form>",
        csrf = html::csrf_field(csrf),
        options = role_options(u.role.as_str()),
    )
}

fn user_row(u: &AdminUserView, me: &str, csrf: &str, back: &str) -> String {
    let id = e(&u.id);
    let email = e(&u.email);
    let you = if u.id == me {
        "<span class=\"you\">(you)</span>"
    } else {
        ""
    };
    let label = if u.name.is_empty() {
        email.clone()
    } else {
        e(&u.name)
    };
    let who = if u.name.is_empty() {
        format!("<div class=\"who\"><a href=\"/admin/users/{id}\">{label}</a>{you}</div>")
    } else {
        format!(
            "<div class=\"who\"><a href=\"/admin/users/{id}\">{label}</a>{you}</div><div class=\"email\">{email}</div>"
        )
    };
    let last = u
        .last_login_at
        .map(html::timestamp)
        .unwrap_or_else(|| "Never".to_owned());
    format!(
        "<tr id=\"user-{id}\">\n<td class=\"person\">{who}</td>\n<td>{role}</td>\n<td>{badge}</td>\n<td class=\"when\">{last}</td>\n<td><div class=\"row-actions\">{actions}</div></td>\n</tr>\n",
        role = role_form(u, csrf, back),
        badge = status_badge(u.status),
        actions = user_actions(u, csrf, back).join(""),
    )
}

const ROLE_FILTER: &[(&str, &str)] = &[("", "Any role"), ("admin", "Admin"), ("member", "Member")];
const STATUS_FILTER: &[(&str, &str)] = &[
    ("", "Any status"),
    ("active", "Active"),
    ("invited", "Invited"),
    ("blocked", "Blocked"),
];
const SORTS: &[(&str, &str)] = &[
    ("email", "Email (A–Z)"),
    ("name", "Name (A–Z)"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-last_login", "Last sign-in, recent first"),
];

fn search_form(f: &Filters) -> String {
    format!(
        "<form method=\"get\" action=\"/admin\" class=\"filters\" role=\"search\" aria-label=\"People\">\n\
<div class=\"field\"><label for=\"q\">Search</label><input id=\"q\" type=\"search\" name=\"q\" value=\"{q}\" maxlength=\"200\" placeholder=\"Name or email\"></div>\n\
<div class=\"field\"><label for=\"f-role\">Role</label><select id=\"f-role\" name=\"role\">{roles}</select></div>\n\
<div class=\"field\"><label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\">{statuses}</select></div>\n\
<div class=\"field\"><label for=\"f-sort\">Sort</label><select id=\"f-sort\" name=\"sort\">{sorts}</select></div>\n\
<button type=\"submit\" class=\"btn\">Search</button>\n\
</form>\n",
        q = e(&f.q),
        roles = options(ROLE_FILTER, &f.role),
        statuses = options(STATUS_FILTER, &f.status),
        sorts = options(SORTS, if f.sort.is_empty() { "email" } else { &f.sort }),
    )
}

async fn settings_section(state: &AppState, admin: &TenantAdmin, csrf: &str) -> String {
    let Ok(s) = people::settings(state, admin).await else {
        return String::new();
    };
    let domains = if s.domains.is_empty() {
        "none yet (the vendor adds them)".to_owned()
    } else {
        e(&s.domains.join(", "))
    };
    format!(
        "<section class=\"section\" aria-labelledby=\"settings-heading\">\n<h2 id=\"settings-heading\">Company settings</h2>\n\
<form method=\"post\" action=\"/admin/settings\" class=\"row-form\">{csrf}\n\
<label class=\"check\"><input type=\"checkbox\" name=\"email_domains_only\" value=\"yes\"{checked}> Accept only addresses in our domains: {domains}</label>\n\
<button type=\"submit\" class=\"btn btn-small\">Save settings</button>\n</form>\n</section>\n",
        csrf = html::csrf_field(csrf),
        checked = if s.email_domains_only { " checked" } else { "" },
    )
}

pub(super) async fn render(
    state: &AppState,
    admin: &TenantAdmin,
    csrf: &Csrf,
    view: View<'_>,
    status: StatusCode,
) -> Response {
    let mut filters = view.filters.clone();
    let mut error = view.error.map(str::to_owned);
    let search = match filters.search() {
        Ok(s) => s,
        Err(err) => {
            // A bad filter in the address: say so, and show everyone.
            error.get_or_insert_with(|| ApiError::from(err).message.into_owned());
            filters = Filters::default();
            Search {
                limit: PAGE_SIZE,
                ..Search::default()
            }
        }
    };
    let found = match people::search(state, admin, search).await {
        Ok(found) => found,
        Err(err) => return html::error_page(state, &err.into(), ("/admin", "Try again")),
    };
    let signed = admin.signed();
    let back = html::hidden("back", &filters.query(true));
    let rows: String = found
        .users
        .iter()
        .map(|u| user_row(u, &signed.user.id, &csrf.token, &back))
        .collect();
    let rows = if rows.is_empty() {
        "<tr><td colspan=\"5\" class=\"muted\">Nobody matches. <a href=\"/admin\">Show everyone</a>.</td></tr>\n".to_owned()
    } else {
        rows
    };
    let base = filters.query(false);
    let amp = if base.is_empty() { "" } else { "&" };
    let first = if filters.cursor.is_empty() {
        String::new()
    } else {
        format!("<a href=\"/admin?{}\">First page</a>", e(&base))
    };
    let next = match &found.next_cursor {
        Some(c) => format!(
            "<a href=\"/admin?{}{amp}cursor={}\">Next page</a>",
            e(&base),
            e(c)
        ),
        None => String::new(),
    };
    let total = found.total;
    let people_word = if total == 1 { "person" } else { "people" };
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
    let export = format!(
        "/api/admin/users/export{}{}",
        if base.is_empty() { "" } else { "?" },
        base
    );
    let main = format!(
        "<div class=\"page-head\"><h1>People</h1><p class=\"muted\">{total} {people_word} match</p></div>\n\
{notice}{error}\
<div class=\"toolbar\"><a href=\"/admin/bulk\">Invite many from a CSV</a><a href=\"{export}\" download>Export this list (CSV)</a><a href=\"/admin/audit\">Audit log</a></div>\n\
<h2 id=\"invite-heading\">Invite someone</h2>\n\
<form method=\"post\" action=\"/admin/invite\" class=\"invite-form\" aria-labelledby=\"invite-heading\">\n\
{csrf}\n\
{invite_email}{invite_name}\
<div class=\"field\">\n<label for=\"invite-role\">Role</label>\n<select id=\"invite-role\" name=\"role\">{roles}</select>\n</div>\n\
<button type=\"submit\" class=\"btn btn-primary\">Send invitation</button>\n\
</form>\n\
<h2 id=\"users-heading\">People of {company}</h2>\n\
{search}\
<div class=\"table-wrap\">\n<table aria-labelledby=\"users-heading\">\n\
<thead><tr><th scope=\"col\">Person</th><th scope=\"col\">Role</th><th scope=\"col\">Status</th><th scope=\"col\">Last sign-in</th><th scope=\"col\">Actions</th></tr></thead>\n\
<tbody>\n{rows}</tbody>\n</table>\n</div>\n\
<nav class=\"pager\" aria-label=\"Pages\"><span>Showing {shown} of {total}</span><span class=\"actions\">{first}{next}</span></nav>\n\
{settings}",
        company = e(&signed.tenant.name),
        export = e(&export),
        notice = view.notice.map(html::notice_box).unwrap_or_default(),
        error = html::maybe_error(error.as_deref()),
        csrf = html::csrf_field(&csrf.token),
        invite_email = invite_email.html(false),
        invite_name = invite_name.html(false),
        roles = role_options(if view.typed.role.is_empty() {
            "member"
        } else {
            view.typed.role
        }),
        search = search_form(&filters),
        shown = found.users.len(),
        settings = settings_section(state, admin, &csrf.token).await
            + &super::factors::policy_section(state, admin, &csrf.token).await,
    );
    let nav = html::nav(signed, &csrf.token, "/admin");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "People",
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
        filters: Filters::of(&q),
        notice: flash(q.get("done")),
        error: None,
        typed: Typed::default(),
    };
    render(&state, &admin, &csrf, view, StatusCode::OK).await
}

/// An admin action's refusal as the page words it.
pub(super) fn refusal(e: AdminError) -> ApiError {
    match e {
        AdminError::NotFound => ApiError {
            message: "This user no longer exists.".into(),
            ..ApiError::not_found()
        },
        other => other.into(),
    }
}

/// Re-renders the page with the reason an action was refused.
pub(super) async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    admin: &TenantAdmin,
    filters: Filters,
    err: &ApiError,
    typed: Typed<'_>,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(e2) => return html::error_page(state, &e2, ("/admin", "Try again")),
    };
    let view = View {
        filters,
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
            refused(&state, &headers, &admin, Filters::default(), &err, typed).await
        }
    }
}

/// `POST /admin/settings`: the company's address rule.
pub(super) async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let on = form.get("email_domains_only") == Some("yes");
    match people::set_email_domains_only(&state, &admin, on).await {
        Ok(_) => html::see_other("/admin?done=settings_saved", &[]),
        Err(err) => {
            let err = refusal(err);
            refused(
                &state,
                &headers,
                &admin,
                Filters::default(),
                &err,
                Typed::default(),
            )
            .await
        }
    }
}
