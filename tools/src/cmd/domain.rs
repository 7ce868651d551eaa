use control_plane::directory::DirectoryError;
use control_plane::service::fleet::FleetError;
use serde_json::json;
use tenant_runtime::TenantId;
use tenant_runtime::email;

use super::{Ctx, Report};

fn parse(raw: &str) -> Result<String, FleetError> {
    email::parse_domain(raw).ok_or_else(|| FleetError::InvalidDomain(raw.to_owned()))
}

pub(crate) async fn add(ctx: &Ctx, slug: &str, raw: &str) -> anyhow::Result<Report> {
    let domain = parse(raw)?;
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(slug).await?;
    let owner_slug = |id: Option<TenantId>| {
        let dir = fleet.directory.clone();
        async move {
            let Some(id) = id else {
                return Ok::<_, DirectoryError>("another tenant".to_owned());
            };
            Ok(match dir.tenant(&id).await? {
                Some(o) => o.slug,
                None => id.to_string(),
            })
        }
    };
    let added = match fleet.directory.domain_owner(&domain).await? {
        Some(owner) if owner == t.id => false,
        Some(owner) => {
            return Err(FleetError::DomainTaken {
                domain,
                owner: owner_slug(Some(owner)).await?,
            }
            .into());
        }
        None => match fleet.directory.add_domain(&t.id, &domain).await {
            Ok(()) => true,
            Err(DirectoryError::DomainTaken) => {
                let owner = fleet.directory.domain_owner(&domain).await?;
                return Err(FleetError::DomainTaken {
                    domain,
                    owner: owner_slug(owner).await?,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        },
    };
    if added {
        fleet
            .audit(&t, "domain.added", json!({"domain": domain}))
            .await;
    }
    let text = if added {
        format!("{domain} now maps to {}.\n", t.slug)
    } else {
        format!("{domain} already maps to {}.\n", t.slug)
    };
    Ok(Report::new(
        text,
        json!({"slug": t.slug, "domain": domain, "added": added}),
    ))
}

pub(crate) async fn remove(ctx: &Ctx, slug: &str, raw: &str) -> anyhow::Result<Report> {
    let domain = parse(raw)?;
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(slug).await?;
    if !fleet.directory.remove_domain(&t.id, &domain).await? {
        return Err(FleetError::DomainNotMapped {
            domain,
            slug: t.slug,
        }
        .into());
    }
    fleet
        .audit(&t, "domain.removed", json!({"domain": domain}))
        .await;
    Ok(Report::new(
        format!("{domain} no longer maps to {}.\n", t.slug),
        json!({"slug": t.slug, "domain": domain, "removed": true}),
    ))
}
