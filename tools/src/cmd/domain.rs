use control_plane::service::tenants::{self, DomainAdded, DomainRemoved};
use reqwest::Method;
use serde_json::json;

use super::remote::enc;
use super::{Ctx, Report};

pub(crate) async fn add(ctx: &Ctx, slug: &str, raw: &str) -> anyhow::Result<Report> {
    let a: DomainAdded = match &ctx.remote {
        Some(remote) => {
            remote
                .call(
                    Method::POST,
                    &format!("/api/operator/tenants/{}/domains", enc(slug)),
                    Some(json!({"domain": raw})),
                )
                .await?
        }
        None => tenants::add_domain(&ctx.fleet().await?, slug, raw).await?,
    };
    let text = if a.added {
        format!("{} now maps to {}.\n", a.domain, a.slug)
    } else {
        format!("{} already maps to {}.\n", a.domain, a.slug)
    };
    Ok(Report::new(text, serde_json::to_value(&a)?))
}

pub(crate) async fn remove(ctx: &Ctx, slug: &str, raw: &str) -> anyhow::Result<Report> {
    let r: DomainRemoved = match &ctx.remote {
        Some(remote) => {
            remote
                .call(
                    Method::DELETE,
                    &format!("/api/operator/tenants/{}/domains/{}", enc(slug), enc(raw)),
                    None,
                )
                .await?
        }
        None => tenants::remove_domain(&ctx.fleet().await?, slug, raw).await?,
    };
    Ok(Report::new(
        format!("{} no longer maps to {}.\n", r.domain, r.slug),
        serde_json::to_value(&r)?,
    ))
}
