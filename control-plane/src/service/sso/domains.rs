//! A company's domains: claimed by its admin, proven by a DNS TXT record at
//! `_tenantd-challenge.<domain>`, then the company's (the email's domain decides where a person
//! signs in). Domains the operator added (`tenantctl domain add`) count as verified. Names are
//! kept in their ASCII (punycode) form.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::json;
use tenant_runtime::TenantId;
use tenant_runtime::store::audit;

use super::{SsoError, SsoResult, random};
use crate::directory::DirectoryError;
use crate::service::admin::TenantAdmin;
use crate::state::AppState;

/// The label under which the TXT record is published.
pub const TXT_PREFIX: &str = "_tenantd-challenge";

/// Where the DNS server to ask is set (`ip:port`); the system's resolver otherwise.
pub const RESOLVER_ENV: &str = "TENANTD_DNS_RESOLVER";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DomainView {
    pub domain: String,
    /// `pending` or `verified`.
    pub status: &'static str,
    pub txt_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txt_value: Option<String>,
}

/// `domain` in lower-case ASCII form (IDNA), if it is a valid name with at least two labels.
pub fn normalize(domain: &str) -> SsoResult<String> {
    let d = domain.trim().trim_end_matches('.');
    if d.is_empty() || d.len() > 253 {
        return Err(SsoError::InvalidDomain);
    }
    let ascii = idna::domain_to_ascii(d).map_err(|_| SsoError::InvalidDomain)?;
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if ascii.len() > 253 || ascii.split('.').count() < 2 || !ascii.split('.').all(valid_label) {
        return Err(SsoError::InvalidDomain);
    }
    Ok(ascii)
}

fn txt_name(domain: &str) -> String {
    format!("{TXT_PREFIX}.{domain}")
}

fn verified(domain: String) -> DomainView {
    DomainView {
        txt_name: txt_name(&domain),
        domain,
        status: "verified",
        txt_value: None,
    }
}

fn pending(domain: String, txt_value: String) -> DomainView {
    DomainView {
        txt_name: txt_name(&domain),
        domain,
        status: "pending",
        txt_value: Some(txt_value),
    }
}

async fn audit_entry(
    state: &AppState,
    admin: &TenantAdmin,
    action: &'static str,
    domain: &str,
) -> SsoResult<()> {
    let (actor, now, d) = (
        admin.signed().user.id.clone(),
        state.now(),
        domain.to_owned(),
    );
    state
        .tenants
        .write(admin.signed().tenant_id(), move |tx| {
            audit::record(tx, Some(&actor), action, Some(&d), json!({}), now).map(|_| ())
        })
        .await?;
    Ok(())
}

/// Whether another company holds `domain`.
async fn taken_by_other(state: &AppState, tenant: &TenantId, domain: &str) -> SsoResult<bool> {
    Ok(state
        .directory
        .domain_owner(domain)
        .await?
        .is_some_and(|owner| owner != *tenant))
}

pub async fn list(state: &AppState, admin: &TenantAdmin) -> SsoResult<Vec<DomainView>> {
    let tenant = admin.signed().tenant_id();
    let mut out: Vec<DomainView> = state
        .directory
        .domains_of(tenant)
        .await?
        .into_iter()
        .map(verified)
        .collect();
    for c in state.directory.domain_claims(tenant).await? {
        if !out.iter().any(|d| d.domain == c.domain) {
            out.push(pending(c.domain, c.txt_value));
        }
    }
    out.sort_by(|a, b| a.domain.cmp(&b.domain));
    Ok(out)
}

/// Claims a domain: the TXT record to publish. A domain the company has already is answered
/// as verified; another company's is `DomainTaken`.
pub async fn claim(state: &AppState, admin: &TenantAdmin, raw: &str) -> SsoResult<DomainView> {
    let domain = normalize(raw)?;
    let tenant = admin.signed().tenant_id();
    if state.directory.domains_of(tenant).await?.contains(&domain) {
        return Ok(verified(domain));
    }
    if taken_by_other(state, tenant, &domain).await? {
        return Err(SsoError::DomainTaken);
    }
    let claim = state
        .directory
        .claim_domain(tenant, &domain, &random()?)
        .await?;
    audit_entry(state, admin, "domain.claimed", &domain).await?;
    Ok(pending(claim.domain, claim.txt_value))
}

/// Looks the TXT record up; on a match the domain becomes the company's.
pub async fn verify(state: &AppState, admin: &TenantAdmin, raw: &str) -> SsoResult<DomainView> {
    let domain = normalize(raw).map_err(|_| SsoError::NotFound)?;
    let tenant = admin.signed().tenant_id();
    if state.directory.domains_of(tenant).await?.contains(&domain) {
        return Ok(verified(domain));
    }
    let claim = state
        .directory
        .domain_claims(tenant)
        .await?
        .into_iter()
        .find(|c| c.domain == domain)
        .ok_or(SsoError::NotFound)?;
    if taken_by_other(state, tenant, &domain).await? {
        return Err(SsoError::DomainTaken);
    }
    let found = lookup_txt(&txt_name(&domain)).await;
    if !found.iter().any(|v| v == &claim.txt_value) {
        return Err(SsoError::DomainNotVerified { found });
    }
    match state.directory.verify_claim(tenant, &domain).await {
        Err(DirectoryError::DomainTaken) => return Err(SsoError::DomainTaken),
        other => other?,
    }
    audit_entry(state, admin, "domain.verified", &domain).await?;
    Ok(verified(domain))
}

pub async fn remove(state: &AppState, admin: &TenantAdmin, raw: &str) -> SsoResult<()> {
    let domain = normalize(raw).map_err(|_| SsoError::NotFound)?;
    let tenant = admin.signed().tenant_id();
    let was_domain = state.directory.remove_domain(tenant, &domain).await?;
    let was_claim = state.directory.remove_claim(tenant, &domain).await?;
    if !(was_domain || was_claim) {
        return Err(SsoError::NotFound);
    }
    audit_entry(state, admin, "domain.removed", &domain).await?;
    Ok(())
}

/// An admin waits for the answer: a few seconds at most, and nothing cached (a record just
/// published must be seen).
fn quick(o: &mut hickory_resolver::config::ResolverOpts) {
    o.timeout = std::time::Duration::from_secs(3);
    o.attempts = 1;
    o.cache_size = 0;
}

/// The TXT strings at `name` (each record's character-strings joined); none when the name
/// does not exist or the lookup fails.
pub async fn lookup_txt(name: &str) -> Vec<String> {
    use hickory_resolver::Resolver;
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
    use hickory_resolver::name_server::TokioConnectionProvider;

    let resolver = match std::env::var(RESOLVER_ENV)
        .ok()
        .and_then(|v| v.parse::<SocketAddr>().ok())
    {
        Some(addr) => {
            let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            let mut b = Resolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], servers),
                TokioConnectionProvider::default(),
            );
            quick(b.options_mut());
            b.build()
        }
        None => match Resolver::builder_tokio() {
            Ok(mut b) => {
                quick(b.options_mut());
                b.build()
            }
            Err(e) => {
                tracing::warn!(error = %e, "no system DNS configuration");
                return Vec::new();
            }
        },
    };
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(found) => found
            .iter()
            .map(|txt| {
                txt.txt_data()
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<String>()
            })
            .collect(),
        Err(e) => {
            tracing::info!(error = %e, "TXT lookup found nothing");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_kept_in_lower_case_ascii() {
        assert_eq!(normalize(" Acme.TEST. ").unwrap(), "acme.test");
        assert_eq!(
            normalize("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "a..b",
            "-a.b",
            "a b.c",
            "x@y.z",
            &"a".repeat(64),
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
