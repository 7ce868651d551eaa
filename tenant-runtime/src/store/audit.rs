//! The append-only audit log of one tenant.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::{Result, WriteTx};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: i64,
    /// User id of who acted, `operator`, or `None` for an unauthenticated caller.
    pub actor: Option<String>,
    pub action: String,
    /// User id (or email for failed logins of unknown users is never stored) acted upon.
    pub target: Option<String>,
    pub details: serde_json::Value,
}

/// What to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub details: serde_json::Value,
}

pub fn append(tx: &WriteTx<'_>, e: &NewEntry<'_>, now: i64) -> Result<i64> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    stmt.execute(params![
        now,
        e.actor,
        e.action,
        e.target,
        e.details.to_string()
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Appends an entry; the short form of [`append`].
pub fn record(
    tx: &WriteTx<'_>,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    details: serde_json::Value,
    now: i64,
) -> Result<i64> {
    append(
        tx,
        &NewEntry {
            actor,
            action,
            target,
            details,
        },
        now,
    )
}

/// Filters for reading the log; entries come newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Entries where this user acted or was acted upon.
    pub user: Option<String>,
    pub action: Option<String>,
    /// Only entries older than this id (the cursor of the previous page).
    pub before: Option<i64>,
    /// Only entries at or after this time (seconds).
    pub since: Option<i64>,
    /// Only entries before this time (seconds).
    pub until: Option<i64>,
    pub limit: u32,
}

pub fn list(conn: &Connection, f: &Filter) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, target, details FROM audit_log
         WHERE (?1 IS NULL OR actor = ?1 OR target = ?1)
           AND (?2 IS NULL OR action = ?2)
           AND (?3 IS NULL OR id < ?3)
           AND (?5 IS NULL OR at >= ?5)
           AND (?6 IS NULL OR at < ?6)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(
            params![f.user, f.action, f.before, f.limit.max(1), f.since, f.until],
            |r| {
                let details: String = r.get(5)?;
                Ok(Entry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
