//! The scopes of the operator API.

use serde::Serialize;

/// What an operator key or client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    #[serde(rename = "tenants:read")]
    TenantsRead,
    #[serde(rename = "tenants:write")]
    TenantsWrite,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "backups:write")]
    BackupsWrite,
}

impl Scope {
    pub const ALL: [Self; 5] = [
        Self::TenantsRead,
        Self::TenantsWrite,
        Self::UsersRead,
        Self::AuditRead,
        Self::BackupsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantsRead => "tenants:read",
            Self::TenantsWrite => "tenants:write",
            Self::UsersRead => "users:read",
            Self::AuditRead => "audit:read",
            Self::BackupsWrite => "backups:write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Scopes separated by commas or spaces; each known, none repeated in the result.
    /// `Err` names the first unknown scope.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for s in raw
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|s| !s.is_empty())
        {
            let scope = Self::parse(s).ok_or_else(|| s.to_owned())?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Space-separated, as stored and as OAuth spells scopes.
    pub fn join(scopes: &[Self]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
