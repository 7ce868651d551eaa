use std::collections::HashMap;

use anyhow::Context;
use control_plane::directory::{Tenant, TenantStatus};
use control_plane::service::backchannel;
use control_plane::service::fleet::{self, FleetError};
use control_plane::service::provision::{self, NewTenant};
use serde_json::{Value, json};
use tenant_runtime::TenantId;

use super::{Ctx, Report, coded, table};
use crate::CreateArgs;
use crate::failpoint::crash_point;

fn tenant_json(t: &Tenant, domains: &[String]) -> Value {
    json!({
        "id": t.id,
        "slug": t.slug,
        "name": t.name,
        "status": t.status,
        "schema_version": t.schema_version,
        "node": t.node,
        "auth_epoch": t.auth_epoch,
        "domains": domains,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

pub(crate) async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<Report> {
    if !fleet::valid_slug(&a.slug) {
        return Err(FleetError::InvalidSlug(a.slug).into());
    }
    let fleet = ctx.fleet().await?;
    let _lock = fleet::lock(&ctx.config, &a.slug)?;
    let req = NewTenant {
        slug: a.slug.clone(),
        name: a.name.clone(),
        domains: a.domains.clone(),
        admin_email: a.admin_email.clone(),
        admin_name: a.admin_name.clone(),
    };
    let now = ctx.now();
    let (p, again) = match super::placement::create(
        &fleet,
        &ctx.config,
        &req,
        a.node.as_deref(),
        now,
        &crash_point,
    )
    .await
    {
        Ok(p) => (p, false),
        Err(FleetError::SlugTaken(slug)) => {
            match provision::reinvite_if_same(
                &fleet.directory,
                &fleet.router,
                &ctx.config,
                &req,
                now,
            )
            .await?
            {
                Some(p) => (p, true),
                None => return Err(FleetError::SlugTaken(slug).into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let domains = fleet.directory.domains_of(&p.tenant.id).await?;
    let (mailer, via) = super::config::mailer(ctx)?;
    let admin_email = p.mail.to.clone();
    let sent = mailer.send(p.mail.clone()).await;
    if sent.is_ok() {
        crash_point("mail_sent");
    }
    let mut text = if again {
        format!(
            "Tenant {} already exists as asked; its first admin has not accepted yet, so a new invitation was made.\n",
            p.tenant.slug
        )
    } else {
        format!("Created tenant {} ({}).\n", p.tenant.slug, p.tenant.name)
    };
    text.push_str(&format!(
        "  id:       {}\n  domains:  {}\n  admin:    {} (invited)\n  invite:   {}\n",
        p.tenant.id,
        if domains.is_empty() {
            "-".to_owned()
        } else {
            domains.join(", ")
        },
        admin_email,
        p.invite_link
    ));
    let mut report = Report::new(
        text,
        json!({
            "tenant": tenant_json(&p.tenant, &domains),
            "admin": {"id": p.admin_user_id, "email": admin_email, "status": "invited"},
            "invite_link": p.invite_link,
            "reinvited": again,
            "mail_sent": sent.is_ok(),
        }),
    );
    match sent {
        Ok(()) => report
            .text
            .push_str(&format!("Invitation mailed ({via}).\n")),
        Err(e) => {
            report = report.failed(
                "mail_failed",
                format!(
                    "tenant {} is created, but mailing the invitation failed ({e:#}); give the admin the link above, or run the same command again to send a new one",
                    p.tenant.slug
                ),
            );
        }
    }
    Ok(report)
}

pub(crate) async fn list(ctx: &Ctx) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let tenants = fleet.directory.tenants().await?;
    let mut domains: HashMap<TenantId, Vec<String>> = HashMap::new();
    for (t, d) in fleet.directory.all_domains().await? {
        domains.entry(t).or_default().push(d);
    }
    let none = Vec::new();
    let rows: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            vec![
                t.slug.clone(),
                t.status.as_str().to_owned(),
                t.schema_version.to_string(),
                domains.get(&t.id).unwrap_or(&none).join(","),
                t.id.to_string(),
                t.name.clone(),
            ]
        })
        .collect();
    let text = if tenants.is_empty() {
        "No tenants yet. Create one with `tenantctl tenant create`.\n".to_owned()
    } else {
        table(
            &["SLUG", "STATUS", "SCHEMA", "DOMAINS", "ID", "NAME"],
            &rows,
        )
    };
    let json = Value::Array(
        tenants
            .iter()
            .map(|t| tenant_json(t, domains.get(&t.id).unwrap_or(&none)))
            .collect(),
    );
    Ok(Report::new(text, json))
}

pub(crate) async fn show(ctx: &Ctx, slug: &str) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(slug).await?;
    let domains = fleet.directory.domains_of(&t.id).await?;
    let index = fleet.directory.index_of(&t.id).await?;
    let id = t.id.clone();
    let path = fleet.router.path_of(&id);
    let size = std::fs::metadata(&path).map(|m| m.len()).ok();
    let pending = index.iter().filter(|e| e.state != "active").count();
    let mut text = format!(
        "{} ({})\n  id:        {}\n  status:    {}\n  schema:    {}\n  domains:   {}\n  users:     {} indexed{}\n  file:      {}\n",
        t.slug,
        t.name,
        t.id,
        t.status.as_str(),
        t.schema_version,
        if domains.is_empty() {
            "-".to_owned()
        } else {
            domains.join(", ")
        },
        index.len(),
        if pending > 0 {
            format!(" ({pending} pending)")
        } else {
            String::new()
        },
        match size {
            Some(s) => format!("{} ({s} bytes)", path.display()),
            None => format!("{} (missing: run `tenantctl doctor`)", path.display()),
        }
    );
    for e in &index {
        text.push_str(&format!("    {} [{}]\n", e.email, e.state));
    }
    let mut json = tenant_json(&t, &domains);
    if let Value::Object(m) = &mut json {
        m.insert("users".into(), json!(index));
        m.insert("file".into(), json!(path));
        m.insert("file_size".into(), json!(size));
    }
    Ok(Report::new(text, json))
}

pub(crate) async fn set_status(ctx: &Ctx, slug: &str, suspend: bool) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(slug).await?;
    if t.status == TenantStatus::Provisioning {
        return Err(FleetError::Provisioning(t.slug).into());
    }
    let status = if suspend {
        TenantStatus::Suspended
    } else {
        TenantStatus::Active
    };
    let changed = t.status != status;
    if changed {
        fleet.directory.set_tenant_status(&t.id, status).await?;
        let action = if suspend {
            "tenant.suspended"
        } else {
            "tenant.resumed"
        };
        fleet.audit(&t, action, json!({})).await;
        if suspend {
            // The apps' sessions end with the company's: they are told by back-channel logout.
            backchannel::end_all_grants(
                &fleet.directory,
                &fleet.router,
                &t.id,
                Vec::new(),
                fleet.clock.now(),
            )
            .await?;
        }
    }
    let text = match (suspend, changed) {
        (true, true) => format!(
            "Suspended {}: its users are refused within a second (resume with `tenantctl tenant resume {}`).\n",
            t.slug, t.slug
        ),
        (false, true) => format!("Resumed {}: its users can sign in again.\n", t.slug),
        (true, false) => format!("{} was already suspended.\n", t.slug),
        (false, false) => format!("{} was already active.\n", t.slug),
    };
    Ok(Report::new(
        text,
        json!({"slug": t.slug, "id": t.id, "status": status, "changed": changed}),
    ))
}

pub(crate) async fn delete(ctx: &Ctx, slug: &str, yes: bool) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(slug).await?;
    if !yes {
        return Err(coded(
            "confirmation_required",
            format!(
                "deleting tenant {slug} needs --yes (its database is kept in the trash for 30 days; `tenantctl tenant undelete {slug}` brings it back)"
            ),
        ));
    }
    let entry = fleet::delete(&fleet, &t.slug, ctx.now(), &crash_point).await?;
    Ok(Report::new(
        format!(
            "Deleted {} ({}). Its database is kept in the trash for {} days: {}\nBring it back with `tenantctl tenant undelete {}`.\n",
            t.slug,
            t.id,
            fleet::TRASH_RETENTION_SECS / 86_400,
            entry.path.display(),
            t.slug
        ),
        json!({"slug": t.slug, "id": t.id, "deleted": true, "trash": entry.path, "note": entry.note}),
    ))
}

pub(crate) async fn undelete(ctx: &Ctx, slug: &str) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let t = fleet::undelete(&fleet, slug, ctx.now(), &crash_point)
        .await
        .with_context(|| format!("cannot undelete {slug}"))?;
    let domains = fleet.directory.domains_of(&t.id).await?;
    let users = fleet.directory.index_of(&t.id).await?.len();
    Ok(Report::new(
        format!(
            "Undeleted {} as {} ({} users, status {}). Sessions and links from before the delete no longer work.\n",
            t.slug,
            t.id,
            users,
            t.status.as_str()
        ),
        json!({"tenant": tenant_json(&t, &domains), "users": users}),
    ))
}
