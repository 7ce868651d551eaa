use control_plane::directory::IndexEntry;
use serde_json::json;
use tenant_runtime::email;
use tenant_runtime::store::users;

use super::{Ctx, Report, coded};

pub(crate) async fn find(ctx: &Ctx, raw: &str) -> anyhow::Result<Report> {
    let email = email::parse(raw).ok_or_else(|| {
        coded(
            "invalid_email",
            format!("{raw:?} is not an email address; give one like ann@acme.example"),
        )
    })?;
    let fleet = ctx.fleet().await?;
    let Some(entry): Option<IndexEntry> = fleet.directory.lookup_email(&email).await? else {
        return Err(coded(
            "unknown_user",
            format!("no user with email {email} in any tenant"),
        ));
    };
    let tenant = fleet.directory.tenant(&entry.tenant_id).await?;
    let Some(tenant) = tenant else {
        return Err(coded(
            "unknown_tenant",
            format!("{email} is indexed to a tenant that does not exist; run `tenantctl doctor`"),
        ));
    };
    let id = tenant.id.clone();
    let e = email.clone();
    let user = fleet
        .router
        .read(&id, move |c| users::find_by_email(c, &e))
        .await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            return Err(coded(
                "tenant_unreadable",
                format!(
                    "{email} belongs to tenant {}, whose database cannot be read ({e}); run `tenantctl doctor`",
                    tenant.slug
                ),
            ));
        }
    };
    let mut text = format!(
        "{email}\n  tenant:  {} ({}, {})\n  index:   {}\n",
        tenant.slug,
        tenant.id,
        tenant.status.as_str(),
        entry.state
    );
    match &user {
        Some(u) => text.push_str(&format!(
            "  user:    {}\n  status:  {}\n  role:    {}\n  name:    {}\n",
            u.id,
            u.status.as_str(),
            u.role.as_str(),
            u.name
        )),
        None => {
            text.push_str("  user:    none in the tenant's database (run `tenantctl doctor`)\n")
        }
    }
    Ok(Report::new(
        text,
        json!({
            "email": email,
            "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "status": tenant.status},
            "index_state": entry.state,
            "user": user.map(|u| json!({
                "id": u.id, "name": u.name, "status": u.status, "role": u.role,
                "created_at": u.created_at, "last_login_at": u.last_login_at,
            })),
        }),
    ))
}
