//! A company's connections to its identity providers, managed by its admins: OpenID Connect
//! (`kind` `oidc`) or SAML 2.0 (`saml`). Secrets (an OIDC client secret, our SAML private key)
//! are sealed (AES-256-GCM under a key derived from the server key) and never shown again.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;
use tenant_runtime::TenantId;
use tenant_runtime::store::audit;
use tenant_runtime::store::sso::{self, SsoConnection};
use tenant_runtime::store::users::Role;

use super::saml_settings::{self, Attributes, SamlSettings};
use super::{CALLBACK_PATH, SsoError, SsoResult, domains, provider};
use crate::error::Fault;
use crate::keys::{ServerKey, jws};
use crate::service::admin::TenantAdmin;
use crate::service::saml;
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
    /// SAML: the IdP's metadata, as a document or where to fetch it.
    pub idp_metadata_xml: Option<String>,
    pub idp_metadata_url: Option<String>,
    /// SAML: attribute names of the email and the name, when not one of the common ones.
    pub attributes: Option<Attributes>,
    /// SAML: accept sign-ins the IdP starts (off by default).
    pub idp_initiated: Option<bool>,
    /// SAML: sign our AuthnRequests (off by default).
    pub sign_requests: Option<bool>,
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
    /// Where the provider sends people back: to register with it (SAML: the ACS URL).
    pub callback_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a SAML connection shows: what to give the IdP, and what was read from its metadata.
#[derive(Debug, Clone, Serialize)]
pub struct SamlView {
    /// Our entity ID, which is also where our metadata is served.
    pub sp_entity_id: String,
    pub sp_metadata_url: String,
    /// The Assertion Consumer Service (HTTP-POST binding).
    pub acs_url: String,
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    /// SHA-256 fingerprints of the IdP's signing certificates.
    pub idp_certificates: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<String>,
    pub idp_initiated: bool,
    pub sign_requests: bool,
    pub attributes: Attributes,
}

pub fn callback_url(state: &AppState) -> String {
    state.config.link(CALLBACK_PATH)
}

fn saml_view(state: &AppState, tenant: &TenantId, c: &SsoConnection) -> Option<SamlView> {
    let s = SamlSettings::of(c)?;
    let idp = saml::parse_idp_metadata(&s.idp_metadata_xml).ok();
    let fingerprints = idp
        .as_ref()
        .map(|m| {
            m.certificates
                .iter()
                .map(|b64| {
                    use base64::Engine;
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap_or_default();
                    hex::encode(sha2::Sha256::digest(der))
                })
                .collect()
        })
        .unwrap_or_default();
    let sp_entity_id = saml_settings::entity_id(state, tenant, &c.id);
    Some(SamlView {
        sp_metadata_url: sp_entity_id.clone(),
        sp_entity_id,
        acs_url: saml_settings::acs_url(state, tenant, &c.id),
        idp_entity_id: c.issuer.clone(),
        idp_sso_url: idp.map(|m| m.sso_url).unwrap_or_default(),
        idp_certificates: fingerprints,
        idp_metadata_url: s.idp_metadata_url,
        idp_initiated: s.idp_initiated,
        sign_requests: s.sign_requests,
        attributes: s.attributes,
    })
}

fn view(state: &AppState, tenant: &TenantId, c: &SsoConnection) -> ConnectionView {
    let saml = saml_view(state, tenant, c);
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
        callback_url: saml
            .as_ref()
            .map_or_else(|| callback_url(state), |v| v.acs_url.clone()),
        saml,
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

/// A new key pair for our side of a SAML connection: the key sealed, the certificate in PEM.
fn new_sp_key(state: &AppState) -> Result<(String, String), saml::SamlError> {
    let (key, cert) = saml::new_sp_keypair(&state.config.product_name)?;
    let sealed = seal_secret(state, &key).map_err(|e| saml::SamlError::Internal(e.to_string()))?;
    Ok((sealed, cert))
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
    if let Some(kind) = &input.kind
        && *kind != c.kind
    {
        return Err(SsoError::Invalid("kind cannot change"));
    }
    let saml = c.kind == "saml";
    let oidc_only = input.issuer.is_some()
        || input.client_id.is_some()
        || input.client_secret.is_some()
        || input.scopes.is_some();
    let saml_only = input.idp_metadata_xml.is_some()
        || input.idp_metadata_url.is_some()
        || input.attributes.is_some()
        || input.idp_initiated.is_some()
        || input.sign_requests.is_some();
    if saml && oidc_only {
        return Err(SsoError::Invalid(
            "issuer, client_id, client_secret and scopes are for oidc connections",
        ));
    }
    if !saml && saml_only {
        return Err(SsoError::Invalid(
            "idp_metadata_xml, idp_metadata_url, attributes, idp_initiated and sign_requests are for saml connections",
        ));
    }
    if saml {
        apply_saml(c, &input).await?;
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
    if saml && c.issuer.is_empty() {
        return Err(SsoError::Invalid(
            "a saml connection needs idp_metadata_xml or idp_metadata_url",
        ));
    }
    if !saml && (c.issuer.is_empty() || c.client_id.is_empty() || c.client_secret_sealed.is_empty())
    {
        return Err(SsoError::Invalid(
            "an oidc connection needs issuer, client_id and client_secret",
        ));
    }
    Ok(())
}

/// The SAML fields of `input` applied to `c`: the IdP's metadata read (fetched first when
/// given by URL) and checked, its entity ID kept as the connection's issuer.
async fn apply_saml(c: &mut SsoConnection, input: &ConnectionInput) -> SsoResult<()> {
    let mut s = SamlSettings::of(c).ok_or(SsoError::Invalid("kind must be saml"))?;
    if input.idp_metadata_xml.is_some() && input.idp_metadata_url.is_some() {
        return Err(SsoError::Invalid(
            "give idp_metadata_xml or idp_metadata_url, not both",
        ));
    }
    if let Some(url) = &input.idp_metadata_url {
        let url = url.trim();
        let parsed = url::Url::parse(url)
            .map_err(|_| SsoError::Invalid("idp_metadata_url must be a URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
            || url.len() > 2000
        {
            return Err(SsoError::Invalid(
                "idp_metadata_url must be an https URL (of at most 2000 characters)",
            ));
        }
        s.idp_metadata_xml = fetch_metadata(url).await?;
        s.idp_metadata_url = Some(url.to_owned());
    }
    if let Some(xml) = &input.idp_metadata_xml {
        s.idp_metadata_xml = xml.clone();
        s.idp_metadata_url = None;
    }
    if input.idp_metadata_xml.is_some() || input.idp_metadata_url.is_some() {
        let idp = saml::parse_idp_metadata(&s.idp_metadata_xml)
            .map_err(|e| SsoError::InvalidMetadata(e.to_string()))?;
        c.issuer = idp.entity_id;
    }
    if let Some(a) = &input.attributes {
        let check = |v: &Option<String>| -> SsoResult<Option<String>> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) => text(v, "attribute names have 1 to 255 characters", 255).map(Some),
            }
        };
        s.attributes = Attributes {
            email: check(&a.email)?,
            name: check(&a.name)?,
        };
    }
    if let Some(on) = input.idp_initiated {
        s.idp_initiated = on;
    }
    if let Some(on) = input.sign_requests {
        s.sign_requests = on;
    }
    c.settings = serde_json::to_value(&s)
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("saml settings: {e}")))?;
    Ok(())
}

async fn fetch_metadata(url: &str) -> SsoResult<String> {
    provider::get_text(url, saml::MAX_METADATA)
        .await
        .map_err(SsoError::InvalidMetadata)
}

async fn list_raw(state: &AppState, admin: &TenantAdmin) -> SsoResult<Vec<SsoConnection>> {
    Ok(state
        .tenants
        .read(admin.signed().tenant_id(), sso::list)
        .await?)
}

pub async fn list(state: &AppState, admin: &TenantAdmin) -> SsoResult<Vec<ConnectionView>> {
    let tenant = admin.signed().tenant_id();
    Ok(list_raw(state, admin)
        .await?
        .iter()
        .map(|c| view(state, tenant, c))
        .collect())
}

pub async fn get(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<ConnectionView> {
    let c = get_raw(state, admin, id).await?;
    Ok(view(state, admin.signed().tenant_id(), &c))
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
    let out = view(state, admin.signed().tenant_id(), &c);
    state
        .tenants
        .write(admin.signed().tenant_id(), move |tx| {
            sso::put(tx, &c)?;
            audit::record(
                tx,
                Some(&actor),
                action,
                Some(&c.id),
                json!({"kind": c.kind, "name": c.name, "issuer": c.issuer, "domains": c.domains}),
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
    if kind != "oidc" && kind != "saml" {
        return Err(SsoError::Invalid("kind must be oidc or saml"));
    }
    if input.name.is_none() {
        return Err(SsoError::Invalid("name is required"));
    }
    let now = state.now();
    let mut c = SsoConnection {
        id: uuid::Uuid::new_v4().to_string(),
        kind: kind.clone(),
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
    if kind == "saml" {
        c.scopes = String::new();
        let (sp_key_sealed, sp_certificate) =
            new_sp_key(state).map_err(|e| Fault::Unexpected(anyhow::anyhow!("SAML key: {e}")))?;
        c.settings = serde_json::to_value(SamlSettings {
            sp_key_sealed,
            sp_certificate,
            ..SamlSettings::default()
        })
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("saml settings: {e}")))?;
    }
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

/// What `POST …/{id}/test` found at the provider. For SAML, `authorization_endpoint` is the
/// IdP's sign-in URL and `signing_keys` counts its certificates.
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

fn failed(e: String) -> TestReport {
    TestReport {
        ok: false,
        authorization_endpoint: None,
        token_endpoint: None,
        jwks_uri: None,
        signing_keys: None,
        error: Some(e),
    }
}

/// A SAML connection's metadata read again (fetched again when it came from a URL, and kept
/// when it changed, as when the IdP rolls its certificate over).
async fn test_saml(
    state: &AppState,
    admin: &TenantAdmin,
    mut c: SsoConnection,
) -> SsoResult<TestReport> {
    let Some(mut s) = SamlSettings::of(&c) else {
        return Ok(failed("the connection's settings are unreadable".into()));
    };
    let xml = match &s.idp_metadata_url {
        Some(url) => match provider::get_text(url, saml::MAX_METADATA).await {
            Ok(x) => x,
            Err(e) => return Ok(failed(e)),
        },
        None => s.idp_metadata_xml.clone(),
    };
    let idp = match saml::parse_idp_metadata(&xml) {
        Ok(m) => m,
        Err(e) => return Ok(failed(e.to_string())),
    };
    if idp.entity_id != c.issuer {
        return Ok(failed(format!(
            "the metadata now names the entity {}, not {}",
            idp.entity_id, c.issuer
        )));
    }
    if xml != s.idp_metadata_xml {
        s.idp_metadata_xml = xml;
        c.settings = serde_json::to_value(&s)
            .map_err(|e| Fault::Unexpected(anyhow::anyhow!("saml settings: {e}")))?;
        c.updated_at = state.now();
        save(state, admin, c, "sso.connection_metadata_refreshed").await?;
    }
    Ok(TestReport {
        ok: true,
        authorization_endpoint: Some(idp.sso_url),
        token_endpoint: None,
        jwks_uri: None,
        signing_keys: Some(idp.certificates.len()),
        error: None,
    })
}

/// Fetches the provider's discovery document and keys now (SAML: its metadata).
pub async fn test(state: &AppState, admin: &TenantAdmin, id: &str) -> SsoResult<TestReport> {
    let c = get_raw(state, admin, id).await?;
    if c.kind == "saml" {
        return test_saml(state, admin, c).await;
    }
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
