//! The vendor's apps that sign users in through tenantd (OpenID Connect clients): registering
//! them with exact redirect URIs, and their secrets, shown once and stored as SHA-256.

use serde::Serialize;

use crate::directory::{ClientRow, Directory, DirectoryError};
use crate::service::operator::scope::Scope;

/// What an operator registers.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub web_origins: Vec<String>,
    /// A public client (a single-page or native app) has no secret; it proves itself with PKCE.
    pub public: bool,
    /// Operator scopes the app may obtain with the client-credentials grant (comma-separated;
    /// a confidential app only).
    pub operator_scopes: String,
}

/// A registered app as operators see it: never the secret or its hash.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// `confidential` (has a secret) or `public`.
    pub kind: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub web_origins: Vec<String>,
    /// Operator scopes it may obtain with the client-credentials grant.
    pub operator_scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&ClientRow> for ClientView {
    fn from(c: &ClientRow) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            kind: if c.secret_hash.is_some() {
                "confidential"
            } else {
                "public"
            },
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            web_origins: c.web_origins.clone(),
            operator_scopes: c.operator_scopes.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A client secret, to be shown once; never printed by `Debug`.
#[derive(Clone)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

/// Why a registration or a change was refused; each message says what to give instead.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid name: give 1 to 100 characters without control characters")]
    InvalidName,
    #[error("give at least one --redirect-uri")]
    NoRedirectUri,
    #[error("invalid URI {uri:?}: {why}")]
    InvalidUri { uri: String, why: &'static str },
    #[error(
        "invalid web origin {0:?}: give scheme, host and port only, such as https://app.example"
    )]
    InvalidOrigin(String),
    #[error("no client {0:?}; `tenantctl client list` shows them")]
    UnknownClient(String),
    #[error("client {0:?} is public: it has no secret to rotate")]
    PublicClient(String),
    #[error(
        "unknown operator scope {0:?}: use tenants:read, tenants:write, users:read, audit:read or backups:write"
    )]
    InvalidScope(String),
    #[error("a public client cannot have operator scopes: they need a client secret")]
    PublicOperator,
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Runtime(#[from] tenant_runtime::Error),
}

impl ClientError {
    /// A stable code for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName => "invalid_name",
            Self::NoRedirectUri => "redirect_uri_required",
            Self::InvalidUri { .. } => "invalid_uri",
            Self::InvalidOrigin(_) => "invalid_origin",
            Self::UnknownClient(_) => "unknown_client",
            Self::PublicClient(_) => "public_client",
            Self::InvalidScope(_) => "invalid_scope",
            Self::PublicOperator => "public_client",
            Self::Directory(_) => "directory_error",
            Self::Runtime(e) => e.code(),
        }
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Whether `host` is this machine: the only hosts a plain `http` URI may name.
fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => *d == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// A URI the server will redirect to or call, matched later exactly as registered: absolute,
/// `https` (or `http` on a loopback host), no fragment, no user info, no wildcard.
fn check_uri(raw: &str) -> Result<String> {
    let bad = |why| ClientError::InvalidUri {
        uri: raw.to_owned(),
        why,
    };
    if raw.contains('*') {
        return Err(bad("wildcards are not allowed; register each URI exactly"));
    }
    let uri = url::Url::parse(raw).map_err(|_| bad("not an absolute URI"))?;
    let Some(host) = uri.host() else {
        return Err(bad("it has no host"));
    };
    match uri.scheme() {
        "https" => {}
        "http" if loopback(&host) => {}
        "http" => {
            return Err(bad(
                "plain http is allowed for loopback hosts only; use https",
            ));
        }
        _ => return Err(bad("use https")),
    }
    if uri.fragment().is_some() {
        return Err(bad("a redirect URI has no fragment"));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        return Err(bad("no user name or password in the URI"));
    }
    // Kept as given: redirect URIs are compared exactly, as the app will send them.
    Ok(raw.to_owned())
}

/// An origin for CORS: scheme, host and port, nothing else.
fn check_origin(raw: &str) -> Result<String> {
    let bad = || ClientError::InvalidOrigin(raw.to_owned());
    let uri = url::Url::parse(raw).map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    let plain_ok = uri.scheme() == "https" || (uri.scheme() == "http" && loopback(&host));
    if !plain_ok || uri.path() != "/" || uri.query().is_some() || uri.fragment().is_some() {
        return Err(bad());
    }
    let origin = uri.origin().ascii_serialization();
    if raw.trim_end_matches('/') != origin {
        return Err(bad());
    }
    Ok(origin)
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ClientError::InvalidName);
    }
    Ok(name.to_owned())
}

/// A new secret and the hash to store for it.
fn new_secret() -> Result<(ClientSecret, String)> {
    let s = tenant_runtime::secret::generate()?;
    Ok((ClientSecret(s.token), hex::encode(s.hash)))
}

/// Whether `presented` is the client's secret (constant time); a public client has none.
pub fn secret_matches(client: &ClientRow, presented: &str) -> bool {
    let Some(stored) = client.secret_hash.as_deref() else {
        return false;
    };
    let presented = hex::encode(tenant_runtime::secret::hash(presented));
    presented.len() == stored.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            presented.as_bytes(),
            stored.as_bytes(),
        ))
}

/// Registers an app; returns it and, for a confidential client, its secret (shown once).
pub async fn create(
    directory: &Directory,
    new: &NewClient,
    now: i64,
) -> Result<(ClientView, Option<ClientSecret>)> {
    // Everything is checked before anything is written.
    let name = check_name(&new.name)?;
    let operator_scopes =
        Scope::parse_list(&new.operator_scopes).map_err(ClientError::InvalidScope)?;
    // An app that only calls the operator API signs nobody in: it needs no redirect URI.
    if new.redirect_uris.is_empty() && operator_scopes.is_empty() {
        return Err(ClientError::NoRedirectUri);
    }
    let all = |uris: &[String]| {
        uris.iter()
            .map(|u| check_uri(u))
            .collect::<Result<Vec<_>>>()
    };
    let redirect_uris = all(&new.redirect_uris)?;
    let post_logout_redirect_uris = all(&new.post_logout_redirect_uris)?;
    let backchannel_logout_uri = new
        .backchannel_logout_uri
        .as_deref()
        .map(check_uri)
        .transpose()?;
    let web_origins = new
        .web_origins
        .iter()
        .map(|o| check_origin(o))
        .collect::<Result<Vec<_>>>()?;
    if new.public && !operator_scopes.is_empty() {
        return Err(ClientError::PublicOperator);
    }
    let (secret, secret_hash) = if new.public {
        (None, None)
    } else {
        let (s, h) = new_secret()?;
        (Some(s), Some(h))
    };
    let row = ClientRow {
        id: format!("app_{}", uuid::Uuid::new_v4().simple()),
        name,
        secret_hash,
        redirect_uris,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        web_origins,
        operator_scopes: operator_scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        created_at: now,
        updated_at: now,
    };
    directory.insert_client(&row).await?;
    Ok((ClientView::from(&row), secret))
}

pub async fn list(directory: &Directory) -> Result<Vec<ClientView>> {
    Ok(directory
        .clients()
        .await?
        .iter()
        .map(ClientView::from)
        .collect())
}

pub async fn show(directory: &Directory, id: &str) -> Result<ClientView> {
    directory
        .client(id)
        .await?
        .as_ref()
        .map(ClientView::from)
        .ok_or_else(|| ClientError::UnknownClient(id.to_owned()))
}

pub async fn delete(directory: &Directory, id: &str) -> Result<()> {
    if directory.delete_client(id).await? {
        Ok(())
    } else {
        Err(ClientError::UnknownClient(id.to_owned()))
    }
}

/// Gives a confidential client a new secret (shown once); the old one stops working at once.
pub async fn rotate_secret(directory: &Directory, id: &str) -> Result<ClientSecret> {
    let client = directory
        .client(id)
        .await?
        .ok_or_else(|| ClientError::UnknownClient(id.to_owned()))?;
    if client.secret_hash.is_none() {
        return Err(ClientError::PublicClient(id.to_owned()));
    }
    let (secret, hash) = new_secret()?;
    if !directory.set_client_secret(id, &hash).await? {
        return Err(ClientError::UnknownClient(id.to_owned()));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_exact_https_or_loopback_http() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
        ] {
            assert_eq!(check_uri(ok).unwrap(), ok);
        }
        for (bad, why) in [
            ("http://app.example/cb", "loopback"),
            ("https://*.app.example/cb", "wildcard"),
            ("https://app.example/*", "wildcard"),
            ("/callback", "absolute"),
            ("https://app.example/cb#frag", "fragment"),
            ("https://user:pw@app.example/cb", "user name"),
            ("ftp://app.example/cb", "https"),
            ("javascript:alert(1)", "host"),
        ] {
            let e = check_uri(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn web_origins_are_scheme_host_and_port_only() {
        assert_eq!(
            check_origin("https://app.example").unwrap(),
            "https://app.example"
        );
        assert_eq!(
            check_origin("http://localhost:5173/").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "https://app.example/path",
            "http://app.example",
            "https://app.example?x",
            "app.example",
            "*",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_match_only_their_own_hash_and_never_print() {
        let (secret, hash) = new_secret().unwrap();
        let row = ClientRow {
            id: "app_1".into(),
            name: "App".into(),
            secret_hash: Some(hash),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            web_origins: vec![],
            operator_scopes: vec![],
            created_at: 0,
            updated_at: 0,
        };
        assert!(secret_matches(&row, &secret.0));
        assert!(!secret_matches(&row, "not-the-secret"));
        let public = ClientRow {
            secret_hash: None,
            ..row.clone()
        };
        assert!(!secret_matches(&public, &secret.0));
        assert_eq!(format!("{secret:?}"), "ClientSecret(..)");
        assert!(!format!("{row:?}").contains(row.secret_hash.as_deref().unwrap()));
    }
}
