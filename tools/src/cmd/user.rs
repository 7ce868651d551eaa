use control_plane::service::tenants::{self, FoundUser};
use reqwest::Method;

use super::remote::enc;
use super::{Ctx, Report};

pub(crate) async fn find(ctx: &Ctx, raw: &str) -> anyhow::Result<Report> {
    let found: FoundUser = match &ctx.remote {
        Some(remote) => {
            remote
                .call(
                    Method::GET,
                    &format!("/api/operator/users?email={}", enc(raw)),
                    None,
                )
                .await?
        }
        None => tenants::find_user(&ctx.fleet().await?, raw).await?.1,
    };
    let t = &found.tenant;
    let mut text = format!(
        "{}\n  tenant:  {} ({}, {})\n  index:   {}\n",
        found.email, t.slug, t.id, t.status, found.index_state
    );
    match &found.user {
        Some(u) => text.push_str(&format!(
            "  user:    {}\n  status:  {}\n  role:    {}\n  name:    {}\n",
            u.id, u.status, u.role, u.name
        )),
        None => {
            text.push_str("  user:    none in the tenant's database (run `tenantctl doctor`)\n")
        }
    }
    Ok(Report::new(text, serde_json::to_value(&found)?))
}
