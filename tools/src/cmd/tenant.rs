use anyhow::Context;
use control_plane::service::fleet::{self, FleetError};
use control_plane::service::provision::NewTenant;
use control_plane::service::tenants::{
    self, Created, Deleted, StatusChange, TenantDetail, TenantInfo, Undeleted,
};
use reqwest::Method;
use serde_json::{Value, json};

use super::remote::enc;
use super::{Ctx, Report, coded, table};
use crate::CreateArgs;
use crate::failpoint::crash_point;

fn domains_text(domains: &[String]) -> String {
    if domains.is_empty() {
        "-".to_owned()
    } else {
        domains.join(", ")
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(v)?)
}

fn created_report(c: &Created, via: &str) -> anyhow::Result<Report> {
    let mut text = if c.reinvited {
        format!(
            "Tenant {} already exists as asked; its first admin has not accepted yet, so a new invitation was made.\n",
            c.tenant.slug
        )
    } else {
        format!("Created tenant {} ({}).\n", c.tenant.slug, c.tenant.name)
    };
    text.push_str(&format!(
        "  id:       {}\n  domains:  {}\n  admin:    {} (invited)\n  invite:   {}\n",
        c.tenant.id,
        domains_text(&c.tenant.domains),
        c.admin.email,
        c.invite_link
            .as_deref()
            .unwrap_or("(mailed to the admin; the link is not shown remotely)")
    ));
    let mut shown = c.clone();
    shown.mail_error = None;
    let mut report = Report::new(text, to_json(&shown)?);
    if c.mail_sent {
        report
            .text
            .push_str(&format!("Invitation mailed ({via}).\n"));
    } else {
        let why = c.mail_error.as_deref().unwrap_or("see the server's log");
        report = report.failed(
            "mail_failed",
            format!(
                "tenant {} is created, but mailing the invitation failed ({why}); give the admin the link above, or run the same command again to send a new one",
                c.tenant.slug
            ),
        );
    }
    Ok(report)
}

pub(crate) async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<Report> {
    if !fleet::valid_slug(&a.slug) {
        return Err(FleetError::InvalidSlug(a.slug).into());
    }
    if let Some(remote) = &ctx.remote {
        if a.node.is_some() {
            return Err(coded(
                "not_remote",
                "--node works on the server only; a company created through --server is placed on the node that answers",
            ));
        }
        let body = json!({
            "slug": a.slug, "name": a.name, "domains": a.domains,
            "admin_email": a.admin_email, "admin_name": a.admin_name,
        });
        let c: Created = remote
            .call(Method::POST, "/api/operator/tenants", Some(body))
            .await?;
        return created_report(&c, "by the server");
    }
    let fleet = ctx.fleet().await?;
    let req = NewTenant {
        slug: a.slug.clone(),
        name: a.name.clone(),
        domains: a.domains.clone(),
        admin_email: a.admin_email.clone(),
        admin_name: a.admin_name.clone(),
    };
    let target = super::placement::target(&fleet, &req, a.node.as_deref()).await?;
    let (mailer, via) = super::config::mailer(ctx)?;
    let created = tenants::create(
        &fleet,
        target.files(&fleet),
        &target.node,
        &*mailer,
        &req,
        ctx.now(),
        &crash_point,
    )
    .await?;
    created_report(&created, &via)
}

fn list_report(all: &[TenantInfo]) -> anyhow::Result<Report> {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|t| {
            vec![
                t.slug.clone(),
                t.status.clone(),
                t.schema_version.to_string(),
                t.domains.join(","),
                t.id.clone(),
                t.name.clone(),
            ]
        })
        .collect();
    let text = if all.is_empty() {
        "No tenants yet. Create one with `tenantctl tenant create`.\n".to_owned()
    } else {
        table(
            &["SLUG", "STATUS", "SCHEMA", "DOMAINS", "ID", "NAME"],
            &rows,
        )
    };
    Ok(Report::new(text, to_json(&all)?))
}

pub(crate) async fn list(ctx: &Ctx) -> anyhow::Result<Report> {
    if let Some(remote) = &ctx.remote {
        // Every page, so the output is the whole fleet as locally.
        let mut all: Vec<TenantInfo> = Vec::new();
        loop {
            let page: Value = remote
                .call(
                    Method::GET,
                    &format!("/api/operator/tenants?offset={}&limit=200", all.len()),
                    None,
                )
                .await?;
            let got: Vec<TenantInfo> = serde_json::from_value(page["tenants"].clone())?;
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            let done = got.is_empty();
            all.extend(got);
            if done || all.len() >= total {
                break;
            }
        }
        return list_report(&all);
    }
    let fleet = ctx.fleet().await?;
    list_report(&tenants::list(&fleet, &tenants::Filter::default()).await?)
}

fn show_report(d: &TenantDetail) -> anyhow::Result<Report> {
    let t = &d.tenant;
    let pending = d.users.iter().filter(|e| e.state != "active").count();
    let mut text = format!(
        "{} ({})\n  id:        {}\n  status:    {}\n  schema:    {}\n  domains:   {}\n  users:     {} indexed{}\n  file:      {}\n",
        t.slug,
        t.name,
        t.id,
        t.status,
        t.schema_version,
        domains_text(&t.domains),
        d.users.len(),
        if pending > 0 {
            format!(" ({pending} pending)")
        } else {
            String::new()
        },
        match d.file_size {
            Some(s) => format!("{} ({s} bytes)", d.file.display()),
            None => format!("{} (missing: run `tenantctl doctor`)", d.file.display()),
        }
    );
    for e in &d.users {
        text.push_str(&format!("    {} [{}]\n", e.email, e.state));
    }
    Ok(Report::new(text, to_json(d)?))
}

pub(crate) async fn show(ctx: &Ctx, slug: &str) -> anyhow::Result<Report> {
    if let Some(remote) = &ctx.remote {
        let d: TenantDetail = remote
            .call(
                Method::GET,
                &format!("/api/operator/tenants/{}", enc(slug)),
                None,
            )
            .await?;
        return show_report(&d);
    }
    show_report(&tenants::show(&ctx.fleet().await?, slug).await?)
}

fn status_report(suspend: bool, c: &StatusChange) -> anyhow::Result<Report> {
    let text = match (suspend, c.changed) {
        (true, true) => format!(
            "Suspended {}: its users are refused within a second (resume with `tenantctl tenant resume {}`).\n",
            c.slug, c.slug
        ),
        (false, true) => format!("Resumed {}: its users can sign in again.\n", c.slug),
        (true, false) => format!("{} was already suspended.\n", c.slug),
        (false, false) => format!("{} was already active.\n", c.slug),
    };
    Ok(Report::new(text, to_json(c)?))
}

pub(crate) async fn set_status(ctx: &Ctx, slug: &str, suspend: bool) -> anyhow::Result<Report> {
    if let Some(remote) = &ctx.remote {
        let status = if suspend { "suspended" } else { "active" };
        let v: Value = remote
            .call(
                Method::PATCH,
                &format!("/api/operator/tenants/{}", enc(slug)),
                Some(json!({"status": status})),
            )
            .await?;
        let t: TenantInfo = serde_json::from_value(v["tenant"].clone())?;
        let change = StatusChange {
            slug: t.slug,
            id: t.id,
            status: t.status,
            changed: v["changed"].as_bool().unwrap_or(false),
        };
        return status_report(suspend, &change);
    }
    let change = tenants::set_status(&ctx.fleet().await?, slug, suspend).await?;
    status_report(suspend, &change)
}

pub(crate) async fn delete(ctx: &Ctx, slug: &str, yes: bool) -> anyhow::Result<Report> {
    if !yes {
        if ctx.remote.is_none() {
            // An unknown slug says so before asking for confirmation.
            ctx.fleet().await?.tenant_by_slug(slug).await?;
        }
        return Err(coded(
            "confirmation_required",
            format!(
                "deleting tenant {slug} needs --yes (its database is kept in the trash for 30 days; `tenantctl tenant undelete {slug}` brings it back)"
            ),
        ));
    }
    let d: Deleted = match &ctx.remote {
        Some(remote) => {
            remote
                .call(
                    Method::DELETE,
                    &format!("/api/operator/tenants/{}", enc(slug)),
                    None,
                )
                .await?
        }
        None => tenants::delete(&ctx.fleet().await?, slug, ctx.now(), &crash_point).await?,
    };
    Ok(Report::new(
        format!(
            "Deleted {} ({}). Its database is kept in the trash for {} days: {}\nBring it back with `tenantctl tenant undelete {}`.\n",
            d.slug,
            d.id,
            fleet::TRASH_RETENTION_SECS / 86_400,
            d.trash.display(),
            d.slug
        ),
        to_json(&d)?,
    ))
}

pub(crate) async fn undelete(ctx: &Ctx, slug: &str) -> anyhow::Result<Report> {
    let u: Undeleted = match &ctx.remote {
        Some(remote) => {
            remote
                .call(
                    Method::POST,
                    &format!("/api/operator/tenants/{}/undelete", enc(slug)),
                    None,
                )
                .await?
        }
        None => tenants::undelete(&ctx.fleet().await?, slug, ctx.now(), &crash_point)
            .await
            .with_context(|| format!("cannot undelete {slug}"))?,
    };
    Ok(Report::new(
        format!(
            "Undeleted {} as {} ({} users, status {}). Sessions and links from before the delete no longer work.\n",
            u.tenant.slug, u.tenant.id, u.users, u.tenant.status
        ),
        to_json(&u)?,
    ))
}
