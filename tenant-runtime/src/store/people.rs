//! The people list: search, filters, sorting and keyset paging over one tenant's users.
//!
//! Every order ends with the id, so a page boundary is exact even between equal keys, and the
//! next page starts strictly after the last row seen (a cursor), not at an offset.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::Result;
use crate::store::users::{self, Role, Status, User};

/// What the list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Email,
    Created,
    LastLogin,
}

impl SortKey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Created => "created",
            Self::LastLogin => "last_login",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "email" => Self::Email,
            "created" => Self::Created,
            "last_login" => Self::LastLogin,
            _ => return None,
        })
    }

    /// The SQL expression; each one has an index ending with `id` (migration 0006).
    fn expr(self) -> &'static str {
        match self {
            Self::Name => "name COLLATE NOCASE",
            Self::Email => "email",
            Self::Created => "created_at",
            Self::LastLogin => "coalesce(last_login_at, 0)",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Self::Name | Self::Email)
    }

    /// The key of `u` under this order, as the cursor carries it.
    pub fn key_of(self, u: &User) -> Key {
        match self {
            Self::Name => Key::Text(u.name.clone()),
            Self::Email => Key::Text(u.email.clone()),
            Self::Created => Key::Int(u.created_at),
            Self::LastLogin => Key::Int(u.last_login_at.unwrap_or(0)),
        }
    }
}

/// A sort key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Text(String),
    Int(i64),
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub key: Key,
    pub id: String,
}

/// A search of the people list.
#[derive(Debug, Clone)]
pub struct Search {
    /// Part of the name or email, matched case-insensitively (ASCII); wildcards are literal.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub status: Option<Status>,
    pub sort: SortKey,
    pub descending: bool,
    pub after: Option<After>,
    pub limit: u32,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            q: None,
            role: None,
            status: None,
            sort: SortKey::Email,
            descending: false,
            after: None,
            limit: 50,
        }
    }
}

/// `%text%` with `\`, `%` and `_` escaped, for `LIKE … ESCAPE '\'`.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The `WHERE` clause of the filters (not the cursor), with its parameters.
fn filters(s: &Search, args: &mut Vec<Value>) -> String {
    let mut clauses = vec!["1 = 1".to_owned()];
    if let Some(q) = s.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        args.push(Value::Text(like_pattern(q)));
        let n = args.len();
        clauses.push(format!(
            "(email LIKE ?{n} ESCAPE '\\' OR name LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some(role) = s.role {
        args.push(Value::Text(role.as_str().to_owned()));
        clauses.push(format!("role = ?{}", args.len()));
    }
    if let Some(status) = s.status {
        args.push(Value::Text(status.as_str().to_owned()));
        clauses.push(format!("status = ?{}", args.len()));
    }
    clauses.join(" AND ")
}

/// One page of people, and how many match the filters in all.
pub fn search(conn: &Connection, s: &Search) -> Result<(Vec<User>, u64)> {
    let mut args = Vec::new();
    let mut wh = filters(s, &mut args);
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM users WHERE {wh}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let expr = s.sort.expr();
    let (cmp, dir) = if s.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &s.after {
        let key = match (&after.key, s.sort.is_text()) {
            (Key::Text(t), true) => Value::Text(t.clone()),
            (Key::Int(i), false) => Value::Integer(*i),
            // A cursor of another order: start over rather than guess.
            _ => {
                return search(
                    conn,
                    &Search {
                        after: None,
                        ..s.clone()
                    },
                );
            }
        };
        args.push(key);
        let k = args.len();
        args.push(Value::Text(after.id.clone()));
        let i = args.len();
        wh.push_str(&format!(
            " AND ({expr} {cmp} ?{k} OR ({expr} = ?{k} AND id {cmp} ?{i}))"
        ));
    }
    args.push(Value::Integer(i64::from(s.limit.max(1))));
    let sql = format!(
        "SELECT {cols} FROM users WHERE {wh} ORDER BY {expr} {dir}, id {dir} LIMIT ?{n}",
        cols = users::COLUMNS,
        n = args.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), users::from_row_pub)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_the_search_are_literal() {
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(like_pattern("ada"), "%ada%");
    }
}
