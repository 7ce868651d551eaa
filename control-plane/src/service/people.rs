//! The admin console's people: search with filters, sorting and cursor paging, the CSV export,
//! bulk invitations, and the company's address rule. Every operation acts on the admin's own
//! tenant, through a [`TenantAdmin`].

use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde::Serialize;
use serde_json::json;
use tenant_runtime::email;
use tenant_runtime::store::people::{self, After, Key, Search, SortKey};
use tenant_runtime::store::users::{self, Role, Status, User};
use tenant_runtime::store::{audit, meta};

use super::AdminUserView;
use super::admin::{
    AdminError, AdminResult, TenantAdmin, check_domain_rules, invitation_mail, invite_quiet,
    parse_name, parse_role,
};
use super::csv;
use crate::mail;
use crate::state::AppState;

/// Most lines of one bulk invitation.
pub const MAX_BULK_LINES: usize = 500;
/// Most rows of one export.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

/// A page of the people list.
#[derive(Debug, Clone, Serialize)]
pub struct PeoplePage {
    pub users: Vec<AdminUserView>,
    /// People matching the filters, on every page.
    pub total: u64,
    /// Pass as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// The name of an order as `sort` takes it (`-` first for descending).
fn order_label(sort: SortKey, descending: bool) -> String {
    format!("{}{}", if descending { "-" } else { "" }, sort.as_str())
}

/// The opaque cursor after `u` under the order: base64url of `[order, key, id]`.
fn cursor_after(sort: SortKey, descending: bool, u: &User) -> String {
    let key = match sort.key_of(u) {
        Key::Text(t) => json!(t),
        Key::Int(i) => json!(i),
    };
    let raw = json!([order_label(sort, descending), key, u.id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Reads a cursor made by [`cursor_after`] for the same order.
pub fn parse_cursor(sort: SortKey, descending: bool, cursor: &str) -> AdminResult<After> {
    let bad = || AdminError::InvalidCursor;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let (Some(s), Some(id)) = (v[0].as_str(), v[2].as_str()) else {
        return Err(bad());
    };
    if s != order_label(sort, descending) {
        return Err(bad());
    }
    let key = match &v[1] {
        serde_json::Value::String(t) => Key::Text(t.clone()),
        serde_json::Value::Number(n) => Key::Int(n.as_i64().ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(After {
        key,
        id: id.to_owned(),
    })
}

/// One page of the people matching `search`.
pub async fn search(
    state: &AppState,
    admin: &TenantAdmin,
    search: Search,
) -> AdminResult<PeoplePage> {
    let (sort, descending, limit) = (search.sort, search.descending, search.limit.max(1));
    let (found, total) = state
        .tenants
        .read(&admin.signed().tenant.id, move |c| {
            people::search(c, &search)
        })
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|u| cursor_after(sort, descending, u)))
        .flatten();
    Ok(PeoplePage {
        users: found.iter().map(AdminUserView::from).collect(),
        total,
        next_cursor,
    })
}

fn time_cell(secs: Option<i64>) -> String {
    let format = time::format_description::well_known::Rfc3339;
    secs.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The people matching `search` (every page) as CSV, for the customer's own records.
pub async fn export_csv(
    state: &AppState,
    admin: &TenantAdmin,
    search: Search,
) -> AdminResult<String> {
    let search = Search {
        after: None,
        limit: MAX_EXPORT_ROWS,
        ..search
    };
    let (found, _) = state
        .tenants
        .read(&admin.signed().tenant.id, move |c| {
            people::search(c, &search)
        })
        .await?;
    let mut out = csv::row([
        "id",
        "email",
        "name",
        "role",
        "status",
        "created_at",
        "last_login_at",
    ]);
    for u in &found {
        out.push_str(&csv::row([
            u.id.as_str(),
            u.email.as_str(),
            u.name.as_str(),
            u.role.as_str(),
            u.status.as_str(),
            time_cell(Some(u.created_at)).as_str(),
            time_cell(u.last_login_at).as_str(),
        ]));
    }
    Ok(out)
}

/// One line of a bulk invitation, as given.
#[derive(Debug, Clone, Default)]
pub struct BulkLine {
    /// Line of the input (1-based), or position in a JSON array (1-based).
    pub line: usize,
    pub email: String,
    pub name: String,
    /// Empty means member.
    pub role: String,
}

/// The lines of a CSV text `email,name,role`; a first line naming the columns is skipped.
pub fn bulk_lines_of_csv(text: &str) -> Vec<BulkLine> {
    let mut records = csv::parse(text);
    if records
        .first()
        .and_then(|r| r.cells.first())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("email"))
    {
        records.remove(0);
    }
    records
        .into_iter()
        .map(|r| {
            let at = |i: usize| {
                r.cells
                    .get(i)
                    .map(|c| c.trim().to_owned())
                    .unwrap_or_default()
            };
            BulkLine {
                line: r.line,
                email: at(0),
                name: at(1),
                role: at(2),
            }
        })
        .collect()
}

/// What happened to one line.
#[derive(Debug)]
pub struct BulkOutcome {
    pub line: usize,
    pub email: String,
    pub name: String,
    pub role: String,
    /// The invited user (when sent), or `None`.
    pub user: Option<AdminUserView>,
    /// Why the line was refused.
    pub error: Option<AdminError>,
}

/// Checks every line of a bulk invitation and, with `send`, invites the good ones; mail goes
/// out paced (see [`mail::send_paced`]). A refused line never stops the others.
pub async fn bulk_invite(
    state: &AppState,
    admin: &TenantAdmin,
    lines: Vec<BulkLine>,
    send: bool,
) -> AdminResult<Vec<BulkOutcome>> {
    if lines.is_empty() {
        return Err(AdminError::EmptyBatch);
    }
    if lines.len() > MAX_BULK_LINES {
        return Err(AdminError::TooManyLines);
    }
    let tenant_id = admin.signed().tenant.id.clone();
    let existing: HashSet<String> = state
        .tenants
        .read(&tenant_id, users::all_emails)
        .await?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let mut seen = HashSet::new();
    let mut domain_verdict: HashMap<String, Option<AdminError>> = HashMap::new();
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let verdict = check_line(state, admin, &l, &existing, &mut seen, &mut domain_verdict).await;
        let mut outcome = BulkOutcome {
            line: l.line,
            email: l.email.clone(),
            name: l.name.clone(),
            role: if l.role.is_empty() {
                "member".to_owned()
            } else {
                l.role.clone()
            },
            user: None,
            error: None,
        };
        match verdict {
            Err(AdminError::Fault(f)) => return Err(AdminError::Fault(f)),
            Err(e) => outcome.error = Some(e),
            Ok(canonical) => outcome.email = canonical,
        }
        out.push(outcome);
    }
    if !send {
        return Ok(out);
    }
    let mut mails = Vec::new();
    for o in out.iter_mut().filter(|o| o.error.is_none()) {
        let role = parse_role(&o.role)?;
        match invite_quiet(state, admin, &o.email, role, Some(&o.name)).await {
            Ok((user, token)) => {
                mails.push(invitation_mail(
                    state,
                    &admin.signed().tenant,
                    &user,
                    &token,
                ));
                o.user = Some(AdminUserView::from(&user));
            }
            Err(AdminError::Fault(f)) => {
                // What went out so far still goes out; the rest is reported by the fault.
                mail::send_paced(state.mailer.clone(), mails);
                return Err(AdminError::Fault(f));
            }
            Err(e) => o.error = Some(e),
        }
    }
    mail::send_paced(state.mailer.clone(), mails);
    Ok(out)
}

/// The canonical address of a line that may be invited, or why not.
async fn check_line(
    state: &AppState,
    admin: &TenantAdmin,
    l: &BulkLine,
    existing: &HashSet<String>,
    seen: &mut HashSet<String>,
    domain_verdict: &mut HashMap<String, Option<AdminError>>,
) -> AdminResult<String> {
    if l.email.len() > 320 {
        return Err(AdminError::InvalidEmail);
    }
    let canonical = email::parse(&l.email).ok_or(AdminError::InvalidEmail)?;
    if !l.role.is_empty() {
        parse_role(&l.role)?;
    }
    parse_name(Some(&l.name))?;
    if !seen.insert(canonical.clone()) {
        return Err(AdminError::Duplicate);
    }
    if existing.contains(&canonical) {
        return Err(AdminError::UserExists);
    }
    let tenant_id = &admin.signed().tenant.id;
    let domain = email::domain_of(&canonical).unwrap_or("").to_owned();
    if !domain_verdict.contains_key(&domain) {
        let verdict = match check_domain_rules(state, tenant_id, &canonical).await {
            Ok(()) => None,
            Err(AdminError::Fault(f)) => return Err(AdminError::Fault(f)),
            Err(e) => Some(e),
        };
        domain_verdict.insert(domain.clone(), verdict);
    }
    if let Some(Some(e)) = domain_verdict.get(&domain) {
        return Err(same_refusal(e));
    }
    if let Some(other) = state.directory.lookup_email(&canonical).await?
        && other.tenant_id != *tenant_id
    {
        return Err(AdminError::EmailTaken);
    }
    Ok(canonical)
}

fn same_refusal(e: &AdminError) -> AdminError {
    match e {
        AdminError::EmailOutsideDomains => AdminError::EmailOutsideDomains,
        _ => AdminError::EmailTaken,
    }
}

/// The company's settings an admin sees.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// People may only be invited or moved to addresses in `domains`.
    pub email_domains_only: bool,
    /// The company's verified domains (the operator adds them).
    pub domains: Vec<String>,
}

pub async fn settings(state: &AppState, admin: &TenantAdmin) -> AdminResult<Settings> {
    let id = &admin.signed().tenant.id;
    Ok(Settings {
        email_domains_only: state.tenants.read(id, meta::email_domains_only).await?,
        domains: state.directory.domains_of(id).await?,
    })
}

pub async fn set_email_domains_only(
    state: &AppState,
    admin: &TenantAdmin,
    on: bool,
) -> AdminResult<Settings> {
    let (actor, now) = (admin.actor(), state.now());
    state
        .tenants
        .write(&admin.signed().tenant.id, move |tx| {
            if meta::email_domains_only(tx)? != on {
                meta::set_email_domains_only(tx, on)?;
                audit::record(
                    tx,
                    Some(&actor),
                    "settings.changed",
                    None,
                    json!({"email_domains_only": on}),
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    settings(state, admin).await
}

/// Longest search text.
pub const MAX_QUERY_LEN: usize = 200;

/// A search from its query parameters (empty means unset): `q`, `role`, `status`, `sort`
/// (`name`, `email`, `created`, `last_login`, `-` first for descending) and `cursor`.
pub fn search_of(
    q: Option<&str>,
    role: Option<&str>,
    status: Option<&str>,
    sort: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> AdminResult<Search> {
    let set = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let q = set(q);
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_LEN)
    {
        return Err(AdminError::InvalidFilter);
    }
    let role = set(role)
        .map(|r| Role::parse(&r).ok_or(AdminError::InvalidFilter))
        .transpose()?;
    let status = set(status)
        .map(|s| Status::parse(&s).ok_or(AdminError::InvalidFilter))
        .transpose()?;
    let sort_raw = set(sort).unwrap_or_else(|| "email".to_owned());
    let (descending, key) = match sort_raw.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort_raw.as_str()),
    };
    let sort = SortKey::parse(key).ok_or(AdminError::InvalidFilter)?;
    let after = set(cursor)
        .map(|c| parse_cursor(sort, descending, &c))
        .transpose()?;
    Ok(Search {
        q,
        role,
        status,
        sort,
        descending,
        after,
        limit,
    })
}

/// Audit entries as CSV (the time in RFC 3339, the details as JSON).
pub fn audit_csv(entries: &[audit::Entry]) -> String {
    let mut out = csv::row(["id", "at", "actor", "action", "target", "details"]);
    for e in entries {
        let (id, at, details) = (
            e.id.to_string(),
            time_cell(Some(e.at)),
            e.details.to_string(),
        );
        out.push_str(&csv::row([
            id.as_str(),
            at.as_str(),
            e.actor.as_deref().unwrap_or(""),
            e.action.as_str(),
            e.target.as_deref().unwrap_or(""),
            details.as_str(),
        ]));
    }
    out
}

/// Every user id of the company with its address, to name people in the audit log.
pub async fn emails_by_id(
    state: &AppState,
    admin: &TenantAdmin,
) -> AdminResult<HashMap<String, String>> {
    Ok(state
        .tenants
        .read(&admin.signed().tenant.id, users::all_emails)
        .await?
        .into_iter()
        .collect())
}

/// The id of the company's user with address `raw`, if any.
pub async fn id_of_email(
    state: &AppState,
    admin: &TenantAdmin,
    raw: &str,
) -> AdminResult<Option<String>> {
    let Some(canonical) = email::parse(raw) else {
        return Ok(None);
    };
    Ok(state
        .tenants
        .read(&admin.signed().tenant.id, move |c| {
            users::find_by_email(c, &canonical)
        })
        .await?
        .map(|u| u.id))
}
