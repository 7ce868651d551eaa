//! `/admin/audit`: the company's audit log, newest first — filtered by person, action and time
//! range, paged, and exported as CSV or JSON lines (links to the API, which the session cookie
//! opens).

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenant_runtime::store::audit::{self, Entry};

use super::Query;
use super::admin::{gate, options, refusal};
use super::forms;
use super::html::{self, e};
use crate::service::admin as svc;
use crate::service::people;
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;

/// The actions the log records, for the filter.
const ACTIONS: &[(&str, &str)] = &[
    ("", "Any action"),
    ("login.succeeded", "Signed in"),
    ("login.failed", "Sign-in failed"),
    ("invitation.sent", "Invitation sent"),
    ("invitation.accepted", "Invitation accepted"),
    ("invitation.revoked", "Invitation revoked"),
    ("user.role_changed", "Role changed"),
    ("user.blocked", "Blocked"),
    ("user.unblocked", "Unblocked"),
    ("user.deleted", "Deleted"),
    ("user.name_changed", "Name changed"),
    ("email.change_requested", "Email change requested"),
    ("email.changed", "Email changed"),
    ("email.change_cancelled", "Email change cancelled"),
    ("password.changed", "Password changed"),
    ("password.reset_requested", "Password reset requested"),
    ("password.reset", "Password reset"),
    ("session.revoked", "Session ended"),
    ("session.revoked_all", "Signed out everywhere"),
    ("session.revoked_others", "Other sessions ended"),
    ("settings.changed", "Settings changed"),
];

/// `YYYY-MM-DD` (UTC) as seconds at the start of that day.
fn day_start(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// The label of an action, or the action itself.
fn action_label(a: &str) -> &str {
    ACTIONS.iter().find(|(v, _)| *v == a).map_or(a, |(_, l)| *l)
}

fn who(id: Option<&str>, names: &HashMap<String, String>) -> String {
    match id {
        None => "<span class=\"muted\">—</span>".to_owned(),
        Some("operator") => "Operator".to_owned(),
        Some(id) => match names.get(id) {
            Some(email) => format!("<a href=\"/admin/users/{}\">{}</a>", e(id), e(email)),
            None => format!("<span class=\"muted\">{}</span>", e(id)),
        },
    }
}

/// Table rows of entries; people are named by their address when they still exist.
pub(super) fn entry_rows_named(entries: &[Entry], names: &HashMap<String, String>) -> String {
    entries
        .iter()
        .map(|x| {
            format!(
                "<tr><td class=\"when\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"details\">{}</td></tr>\n",
                html::timestamp(x.at),
                e(action_label(&x.action)),
                who(x.actor.as_deref(), names),
                who(x.target.as_deref(), names),
                e(&x.details.to_string()),
            )
        })
        .collect()
}

pub(super) async fn audit_page(
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
        Err(err) => return html::error_page(&state, &err, ("/admin/audit", "Try again")),
    };
    let q = Query::parse(raw.as_deref());
    let get = |k: &str| q.get(k).unwrap_or("").trim().to_owned();
    let (person, action, from, to) = (get("user"), get("action"), get("from"), get("to"));
    let mut problems = Vec::new();
    // A person by address or by id.
    let user = if person.is_empty() {
        None
    } else if person.contains('@') {
        match people::id_of_email(&state, &admin, &person).await {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                problems.push("Nobody of your company has this address.");
                Some(String::new())
            }
            Err(err) => return html::error_page(&state, &refusal(err), ("/admin", "Back")),
        }
    } else {
        Some(person.chars().take(200).collect())
    };
    let since = if from.is_empty() {
        None
    } else {
        day_start(&from)
    };
    let until = if to.is_empty() {
        None
    } else {
        day_start(&to).map(|d| d + 24 * 3600)
    };
    if (!from.is_empty() && since.is_none()) || (!to.is_empty() && until.is_none()) {
        problems.push("Dates are written YYYY-MM-DD.");
    }
    let action = (!action.is_empty()).then(|| action.chars().take(100).collect::<String>());
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let filter = audit::Filter {
        user: user.clone(),
        action: action.clone(),
        before,
        since,
        until,
        limit: PAGE_SIZE,
    };
    let (entries, names) = match tokio::try_join!(
        svc::audit_log(&state, &admin, filter),
        people::emails_by_id(&state, &admin)
    ) {
        Ok(found) => found,
        Err(err) => return html::error_page(&state, &refusal(err), ("/admin", "Back")),
    };
    // The filters as a query string, for the pager and the exports.
    let mut base = url::form_urlencoded::Serializer::new(String::new());
    let mut api = url::form_urlencoded::Serializer::new(String::new());
    if let Some(u) = user.as_deref().filter(|u| !u.is_empty()) {
        base.append_pair("user", &person);
        api.append_pair("user", u);
    }
    if let Some(a) = &action {
        base.append_pair("action", a);
        api.append_pair("action", a);
    }
    if let Some(s) = since {
        base.append_pair("from", &from);
        api.append_pair("since", &s.to_string());
    }
    if let Some(u) = until {
        base.append_pair("to", &to);
        api.append_pair("until", &u.to_string());
    }
    let (base, api) = (base.finish(), api.finish());
    let amp = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("{s}&")
        }
    };
    let next = if entries.len() == PAGE_SIZE as usize {
        entries.last().map_or(String::new(), |last| {
            format!(
                "<a href=\"/admin/audit?{}before={}\">Older entries</a>",
                e(&amp(&base)),
                last.id
            )
        })
    } else {
        String::new()
    };
    let first = if before.is_some() {
        format!("<a href=\"/admin/audit?{}\">Newest entries</a>", e(&base))
    } else {
        String::new()
    };
    let rows = if entries.is_empty() {
        "<tr><td colspan=\"5\" class=\"muted\">No entries match.</td></tr>\n".to_owned()
    } else {
        entry_rows_named(&entries, &names)
    };
    let main = format!(
        "<div class=\"page-head\"><h1>Audit log</h1><p class=\"muted\">Newest first</p></div>\n\
{error}\
<div class=\"toolbar\"><a href=\"/api/admin/audit?{csv}format=csv\" download>Export as CSV</a><a href=\"/api/admin/audit?{csv}format=jsonl\" download>Export as JSON lines</a></div>\n\
<form method=\"get\" action=\"/admin/audit\" class=\"filters filters-audit\" role=\"search\" aria-label=\"Audit log\">\n\
<div class=\"field\"><label for=\"a-user\">Person (email)</label><input id=\"a-user\" type=\"text\" name=\"user\" value=\"{person}\" maxlength=\"320\" spellcheck=\"false\" autocapitalize=\"none\"></div>\n\
<div class=\"field\"><label for=\"a-action\">Action</label><select id=\"a-action\" name=\"action\">{actions}</select></div>\n\
<div class=\"field\"><label for=\"a-from\">From</label><input id=\"a-from\" type=\"date\" name=\"from\" value=\"{from}\"></div>\n\
<div class=\"field\"><label for=\"a-to\">To</label><input id=\"a-to\" type=\"date\" name=\"to\" value=\"{to}\"></div>\n\
<button type=\"submit\" class=\"btn\">Filter</button>\n</form>\n\
<div class=\"table-wrap\"><table aria-label=\"Audit entries\">\n\
<thead><tr><th scope=\"col\">When</th><th scope=\"col\">Action</th><th scope=\"col\">By</th><th scope=\"col\">About</th><th scope=\"col\">Details</th></tr></thead>\n\
<tbody>\n{rows}</tbody></table></div>\n\
<nav class=\"pager\" aria-label=\"Pages\"><span>{n} entries shown</span><span class=\"actions\">{first}{next}</span></nav>\n",
        error = html::maybe_error(problems.first().copied()),
        csv = e(&amp(&api)),
        person = e(&person),
        actions = options(ACTIONS, action.as_deref().unwrap_or("")),
        from = e(&from),
        to = e(&to),
        n = entries.len(),
    );
    let nav = html::nav(admin.signed(), &csrf.token, "/admin/audit");
    html::respond(
        StatusCode::OK,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Audit log",
            html::Width::Wide,
            &nav,
            &main,
        ),
    )
}
