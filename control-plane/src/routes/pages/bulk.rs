//! `/admin/bulk`: invitations from a CSV (`email,name,role`, header optional), pasted or
//! uploaded. The first POST only checks every line and shows the verdicts; the list of good
//! lines travels (base64) in the preview's form, and sending checks it again.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;

use super::admin::{gate, refusal};
use super::forms::{self, Form};
use super::html::{self, e};
use crate::routes::error::ApiError;
use crate::service::admin::TenantAdmin;
use crate::service::csv;
use crate::service::people::{self, BulkOutcome, MAX_BULK_LINES};
use crate::state::AppState;

fn page(
    state: &AppState,
    admin: &TenantAdmin,
    headers: &HeaderMap,
    status: StatusCode,
    body: &str,
) -> Response {
    let csrf = match forms::for_page(state, headers) {
        Ok(c) => c,
        Err(err) => return html::error_page(state, &err, ("/admin", "Back to people")),
    };
    let main = body.replace("{csrf}", &html::csrf_field(&csrf.token));
    let nav = html::nav(admin.signed(), &csrf.token, "");
    html::respond(
        status,
        std::slice::from_ref(&csrf.cookie),
        html::document(
            &state.config.product_name,
            "Invite many people",
            html::Width::Wide,
            &nav,
            &main,
        ),
    )
}

fn form_html(text: &str, error: Option<&str>) -> String {
    format!(
        "<p><a href=\"/admin\">← All people</a></p>\n<h1>Invite many people</h1>\n\
<p class=\"lead\">One person per line: <code>email,name,role</code> (name and role may be empty; the role is member or admin). A first line <code>email,name,role</code> is skipped. At most {MAX_BULK_LINES} lines at once. You see every line checked before anything is sent.</p>\n\
{error}\
<form method=\"post\" action=\"/admin/bulk\" enctype=\"multipart/form-data\" class=\"stack\">{{csrf}}\n\
<div class=\"field\"><label for=\"bulk-csv\">Paste the list</label><textarea id=\"bulk-csv\" name=\"csv\" rows=\"10\" spellcheck=\"false\">{text}</textarea></div>\n\
<div class=\"field\"><label for=\"bulk-file\">Or upload a CSV file</label><input id=\"bulk-file\" type=\"file\" name=\"file\" accept=\".csv,text/csv,text/plain\"></div>\n\
<button type=\"submit\" class=\"btn btn-primary\">Check the list</button>\n</form>\n",
        error = html::maybe_error(error),
        text = e(text),
    )
}

pub(super) async fn bulk_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    page(
        &state,
        &admin,
        &headers,
        StatusCode::OK,
        &form_html("", None),
    )
}

fn outcome_rows(outcomes: &[BulkOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            let verdict = match &o.error {
                None if o.user.is_some() => "<span class=\"line-ok\">Invited</span>".to_owned(),
                None => "<span class=\"line-ok\">Ready</span>".to_owned(),
                Some(err) => format!(
                    "<span class=\"line-error\">{}</span>",
                    e(&ApiError::from(clone_error(err)).message)
                ),
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td></tr>\n",
                o.line,
                e(&o.email),
                e(&o.name),
                e(&o.role),
            )
        })
        .collect()
}

/// The refusal of a line again (errors are not `Clone`; a line's never holds a fault).
fn clone_error(e: &crate::service::admin::AdminError) -> crate::service::admin::AdminError {
    use crate::service::admin::AdminError as A;
    match e {
        A::InvalidEmail => A::InvalidEmail,
        A::InvalidRole => A::InvalidRole,
        A::InvalidName => A::InvalidName,
        A::Duplicate => A::Duplicate,
        A::UserExists => A::UserExists,
        A::EmailOutsideDomains => A::EmailOutsideDomains,
        _ => A::EmailTaken,
    }
}

fn table(outcomes: &[BulkOutcome]) -> String {
    format!(
        "<div class=\"table-wrap\"><table aria-label=\"Lines\">\n\
<thead><tr><th scope=\"col\">Line</th><th scope=\"col\">Email</th><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">Result</th></tr></thead>\n\
<tbody>\n{}</tbody></table></div>\n",
        outcome_rows(outcomes)
    )
}

/// `POST /admin/bulk`: checks the list and shows each line's verdict.
pub(super) async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let file = form.text("file");
    let text = if file.trim().is_empty() {
        form.text("csv")
    } else {
        file
    };
    let lines = people::bulk_lines_of_csv(text);
    let outcomes = match people::bulk_invite(&state, &admin, lines, false).await {
        Ok(o) => o,
        Err(err) => {
            let err = refusal(err);
            let body = form_html(text, Some(&err.message));
            return page(&state, &admin, &headers, err.status, &body);
        }
    };
    let good: Vec<&BulkOutcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    let bad = outcomes.len() - good.len();
    let mut normalized = csv::row(["email", "name", "role"]);
    for o in &good {
        normalized.push_str(&csv::row([
            o.email.as_str(),
            o.name.as_str(),
            o.role.as_str(),
        ]));
    }
    let send = if good.is_empty() {
        "<p class=\"muted\">No line can be sent. Fix the list and check it again.</p>\n".to_owned()
    } else {
        format!(
            "<form method=\"post\" action=\"/admin/bulk/send\" class=\"actions\">{{csrf}}{list}\
<button type=\"submit\" class=\"btn btn-primary\">Send {n} invitation{s}</button></form>\n",
            list = html::hidden(
                "lines",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(normalized.as_bytes())
            ),
            n = good.len(),
            s = if good.len() == 1 { "" } else { "s" },
        )
    };
    let summary = format!(
        "{} line{} ready, {bad} with a problem{}.",
        good.len(),
        if good.len() == 1 { "" } else { "s" },
        if bad == 0 { "" } else { " (they are not sent)" }
    );
    let body = format!(
        "<p><a href=\"/admin/bulk\">← Another list</a></p>\n<h1>Check the list</h1>\n\
<p class=\"lead\">{summary}</p>\n{table}{send}",
        summary = e(&summary),
        table = table(&outcomes),
    );
    page(&state, &admin, &headers, StatusCode::OK, &body)
}

/// `POST /admin/bulk/send`: the previewed list, checked again and sent.
pub(super) async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let admin = match gate(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(form.text("lines"))
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some(text) = text else {
        let body = form_html("", Some("The list was damaged on the way. Check it again."));
        return page(&state, &admin, &headers, StatusCode::BAD_REQUEST, &body);
    };
    let lines = people::bulk_lines_of_csv(&text);
    let outcomes = match people::bulk_invite(&state, &admin, lines, true).await {
        Ok(o) => o,
        Err(err) => {
            let err = refusal(err);
            let body = form_html(&text, Some(&err.message));
            return page(&state, &admin, &headers, err.status, &body);
        }
    };
    let sent = outcomes.iter().filter(|o| o.user.is_some()).count();
    let body = format!(
        "<p><a href=\"/admin\">← All people</a></p>\n<h1>Invitations sent</h1>\n\
<div class=\"alert alert-ok\" role=\"status\">{sent} invitation{s} sent. The mail goes out over the next moments.</div>\n{table}",
        s = if sent == 1 { "" } else { "s" },
        table = table(&outcomes),
    );
    page(&state, &admin, &headers, StatusCode::OK, &body)
}
