//! A company's connections to its identity providers, managed by its admins. The client secret
//! is sealed (AES-256-GCM under a key derived from the server key) and never shown again, only
//! its last four characters.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_runtime::TenantId;
use tenant_runtime::store::audit;
use tenant_runtime::store::sso::{self, SsoConnection};
use tenant_runtime::store::users::Role;

use super::{CALLBACK_PATH, SsoError, SsoResult, domains, provider};
use crate::error::Fault;
use crate::keys::{ServerKey, jws};
use crate::service::admin::TenantAdmin;
use crate::state::AppState;

const SECRET_PURPOSE: &str = "sso-client-secret";

/// Creating people on their first sign-in, with this role.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Jit {
    pub enabled: bool,
    pub role: Role,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitInput {
    pub enabled: bool,
    pub role: Option<String>,
}

/// A new connection, or a change (absent fields keep their value).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<String>,
    pub domains: Option<Vec<String>>,
    pub jit: Option<JitInput>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// The last four characters of the client secret; the secret itself is never returned.
    pub client_secret_last4: String,
    pub scopes: String,
    pub domains: Vec<String>,
    pub jit: Jit,
    /// Where the provider sends people back: to register with it.
    pub callback_url: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn callback_url(state: &AppState) -> String {
    state.config.link(CALLBACK_PATH)
}

fn view(state: &AppState, c: &SsoConnection) -> ConnectionView {
    ConnectionView {
        id: c.id.clone(),
        kind: c.kind.clone(),
        name: c.name.clone(),
        issuer: c.issuer.clone(),
        client_id: c.client_id.clone(),
        client_secret_last4: c.client_secret_last4.clone(),
        scopes: c.scopes.clone(),
        domains: c.domains.clone(),
        jit: Jit {
            enabled: c.jit_enabled,
            role: c.jit_role,
        },
        callback_url: callback_url(state),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

pub fn seal_secret(state: &AppState, secret: &str) -> Result<String, Fault> {
    seal_secret_with(&state.keys, secret)
}

/// [`seal_secret`] with the server key itself (for `tenantctl`).
pub fn seal_secret_with(key: &ServerKey, secret: &str) -> Result<String, Fault> {
    jws::seal(&key.derive(SECRET_PURPOSE), secret.as_bytes())
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("sealing: {e}")))
}

pub fn open_secret(state: &AppState, sealed: &str) -> Result<String, Fault> {
    let plain = jws::open(&state.keys.derive(SECRET_PURPOSE), sealed)
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("opening a client secret: {e}")))?;
    String::from_utf8(plain).map_err(|_| Fault::Unexpected(anyhow::anyhow!("client secret")))
}

/// An issuer URL: https, or http on a loopback address (a provider on this machine).
pub fn check_issuer(issuer: &str) -> SsoResult<String> {
    let issuer = issuer.trim().trim_end_matches('/');
    let url = url::Url::parse(issuer).map_err(|_| SsoError::Invalid("issuer must be a URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
        || url.query().is_some()
        || url.fragment().is_some()
        || issuer.len() > 500
    {
        return Err(SsoError::Invalid(
            "issuer must be an https URL without query or fragment",
        ));
    }
    Ok(issuer.to_owned())
}

fn text(v: &str, what: &'static str, max: usize) -> SsoResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(SsoError::Invalid(what));
    }
    Ok(v.to_owned())
}

/// Applies `input` to `c`, checking each field; `domains` must be verified domains of the
/// company and in no other of its connections.
async fn apply(
    state: &AppState,
    admin: &TenantAdmin,
    c: &mut SsoConnection,
    input: ConnectionInput,
) -> SsoResult<()> {
    if let Some(kind) = input.kind
        && kind != c.kind
    {
        return Err(SsoError::Invalid("kind must be oidc"));
    }
    if let Some(v) = input.name {
        c.name = text(&v, "name must have 1 to 100 characters", 100)?;
    }
    if let Some(v) = input.issuer {
        c.issuer = check_issuer(&v)?;
    }
    if let Some(v) = input.client_id {
        c.client_id = text(&v, "client_id must have 1 to 255 characters", 255)?;
    }
    if let Some(v) = input.client_secret {
        let v = text(&v, "client_secret must have 1 to 1024 characters", 1024)?;
        c.client_secret_last4 = v
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        c.client_secret_sealed = seal_secret(state, &v)?;
    }
    if let Some(v) = input.scopes {
        let v = text(&v, "scopes must be a space-separated list", 500)?;
        if !v.split_whitespace().any(|s| s == "openid") {
            return Err(SsoError::Invalid("scopes must include openid"));
        }
        c.scopes = v.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if let Some(list) = input.domains {
        let tenant = admin.signed().tenant_id();
        let own = state.directory.domains_of(tenant).await?;
        let others = list_raw(state, admin).await?;
        let mut out = Vec::new();
        for d in list {
            let d = domains::normalize(&d)?;
            if !own.contains(&d) {
                return Err(SsoError::UnverifiedDomain(d));
            }
            if others
                .iter()
                .any(|o| o.id != c.id && o.domains.contains(&d))
            {
                return Err(SsoError::Invalid("a domain can be in only one connection"));
            }
            if !out.contains(&d) {
                out.push(d);
            }
        }
        c.domains = out;
    }
    if let Some(j) = input.jit {
        c.jit_enabled = j.enabled;
        if let Some(r) = j.role {
            c.jit_role =
                Role::parse(&r).ok_or(SsoError::Invalid("jit.role must be member or admin"))?;
        }
    }
    if c.kind == "oidc"
        && (c.issuer.is_empty() || c.client_id.is_empty() || c.client_secret_sealed.is_empty())
    {
        return Err(SsoError::Invalid(
            "an oidc connection needs issuer, client_id and client_secret",
        ));
    }
    Ok(())
}

async fn list_raw(state: &AppState, admin: &TenantAdmin) -> SsoResult<Vec<SsoConnection>> {
    Ok(state
        .tenants
        .read(admin.signed().tenant_id(), sso::list)
        .await?)
}

pub async fn list(state: &AppState, admin: &TenantAdmin) -> SsoResult<Vec<ConnectionView>> {
    Ok(list_raw(state, admin)
        .await?
        .iter()
        .map(|c| view(state, c))
        .collect())
}

pub async fn get(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<ConnectionView> {
    Ok(view(state, &get_raw(state, admin, id).await?))
}

async fn get_raw(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<SsoConnection> {
    let id = id.to_owned();
    state
        .tenants
        .read(admin.signed().tenant_id(), move |c| sso::get(c, &id))
        .await?
        .ok_or(SsoError::NotFound)
}

async fn save(
    state: &AppState,
    admin: &TenantAdmin,
    c: SsoConnection,
    action: &'static str,
) -> SsoResult<ConnectionView> {
    let (actor, now) = (admin.signed().user.id.clone(), state.now());
    let out = view(state, &c);
    state
        .tenants
        .write(admin.signed().tenant_id(), move |tx| {
            sso::put(tx, &c)?;
            audit::record(
                tx,
                Some(&actor),
                action,
                Some(&c.id),
                json!({"name": c.name, "issuer": c.issuer, "domains": c.domains}),
                now,
            )
            .map(|_| ())
        })
        .await?;
    Ok(out)
}

pub async fn create(
    state: &AppState,
    admin: &TenantAdmin,
    input: ConnectionInput,
) -> SsoResult<ConnectionView> {
    let kind = input.kind.clone().unwrap_or_else(|| "oidc".into());
    if kind != "oidc" {
        return Err(SsoError::Invalid("kind must be oidc"));
    }
    if input.name.is_none() {
        return Err(SsoError::Invalid("name is required"));
    }
    let now = state.now();
    let mut c = SsoConnection {
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        name: String::new(),
        issuer: String::new(),
        client_id: String::new(),
        client_secret_sealed: String::new(),
        client_secret_last4: String::new(),
        scopes: "openid email profile".into(),
        domains: vec![],
        jit_enabled: false,
        jit_role: Role::Member,
        settings: json!({}),
        created_at: now,
        updated_at: now,
    };
    apply(state, admin, &mut c, input).await?;
    save(state, admin, c, "sso.connection_created").await
}

pub async fn update(
    state: &AppState,
    admin: &TenantAdmin,
    id: &str,
    input: ConnectionInput,
) -> SsoResult<ConnectionView> {
    let mut c = get_raw(state, admin, id).await?;
    apply(state, admin, &mut c, input).await?;
    c.updated_at = state.now();
    save(state, admin, c, "sso.connection_changed").await
}

pub async fn delete(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<()> {
    let (actor, now, id) = (admin.signed().user.id.clone(), state.now(), id.to_owned());
    let gone = state
        .tenants
        .write(admin.signed().tenant_id(), move |tx| {
            let gone = sso::delete(tx, &id)?;
            if gone {
                audit::record(
                    tx,
                    Some(&actor),
                    "sso.connection_deleted",
                    Some(&id),
                    json!({}),
                    now,
                )?;
            }
            Ok(gone)
        })
        .await?;
    if gone {
        Ok(())
    } else {
        Err(SsoError::NotFound)
    }
}

/// What `POST …/{id}/test` found at the provider.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_keys: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Fetches the provider's discovery document and keys now.
pub async fn test(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<TestReport> {
    let c = get_raw(state, admin, id).await?;
    let failed = |e: String| TestReport {
        ok: false,
        authorization_endpoint: None,
        token_endpoint: None,
        jwks_uri: None,
        signing_keys: None,
        error: Some(e),
    };
    let meta = match provider::metadata(state, &c.issuer, true).await {
        Ok(m) => m,
        Err(e) => return Ok(failed(e)),
    };
    let keys = match provider::key_set(state, &meta.jwks_uri, true).await {
        Ok(k) => provider::rsa_key_count(&k),
        Err(e) => return Ok(failed(e)),
    };
    Ok(TestReport {
        ok: keys > 0,
        error: (keys == 0).then(|| "the key set has no RS256 signing key".to_owned()),
        authorization_endpoint: Some(meta.authorization_endpoint),
        token_endpoint: Some(meta.token_endpoint),
        jwks_uri: Some(meta.jwks_uri),
        signing_keys: Some(keys),
    })
}

/// Whether the company has a connection people can sign in with: one with a verified domain.
pub async fn has_working_connection(state: &AppState, tenant: &TenantId) -> Result<bool, Fault> {
    let own = state.directory.domains_of(tenant).await?;
    let list = state.tenants.read(tenant, sso::list).await?;
    Ok(list
        .iter()
        .any(|c| c.domains.iter().any(|d| own.contains(d))))
}
