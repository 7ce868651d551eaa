//! What `tenantd` prints at start, and the `--demo` company.

use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, Status};

use super::provision::{self, NewTenant};
use crate::state::AppState;

pub const DEMO_SLUG: &str = "demo";
pub const DEMO_ADMIN: &str = "admin@demo.test";

/// Prints the URL and, on an empty directory, how to create the first company; with `demo`,
/// creates the demo company (once) and prints its admin's credentials.
pub async fn greet(
    state: &AppState,
    port: u16,
    internal_port: Option<u16>,
    demo: bool,
) -> anyhow::Result<()> {
    let listen = format!("http://{}:{port}", state.server.listen.ip());
    println!(
        "tenantd is listening on {listen} (public URL {})",
        state.config.public_url
    );
    if let (Some(p), Some(addr)) = (internal_port, state.server.internal_listen) {
        println!(
            "internal listener (nodes, /metrics) on http://{}:{p}",
            addr.ip()
        );
    }
    if demo {
        if state.directory.tenant_by_slug(DEMO_SLUG).await?.is_none() {
            let password = create_demo(state).await?;
            println!("Demo company created. Sign in at {}/login", listen);
            println!("  email:    {DEMO_ADMIN}");
            println!("  password: {password}");
            println!("(shown once; reset it through 'Forgot password' if you lose it)");
        } else {
            println!("Demo company exists. Sign in at {listen}/login as {DEMO_ADMIN}.");
        }
    } else if state.directory.tenants().await?.is_empty() {
        println!("No company yet. Create the first one with:");
        println!(
            "  tenantctl --data-dir {} tenant create --slug acme --name \"Acme\" --domain acme.test --admin-email you@acme.test",
            state.config.data_dir.display()
        );
        println!("or restart with --demo to get a demo company.");
    }
    Ok(())
}

async fn create_demo(state: &AppState) -> anyhow::Result<String> {
    let p = provision::create_tenant(
        &state.directory,
        &state.tenants,
        &state.config,
        &NewTenant {
            slug: DEMO_SLUG.into(),
            name: "Demo Company".into(),
            domains: vec!["demo.test".into()],
            admin_email: DEMO_ADMIN.into(),
            admin_name: Some("Demo Admin".into()),
        },
        state.now(),
    )
    .await?;
    let mut raw = [0u8; 12];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("rng: {e}"))?;
    let password = hex::encode(raw);
    let hash = state
        .hasher
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = p.tenant.id.clone();
    let now = state.now();
    let user_id = p.admin_user_id.clone();
    state
        .tenants
        .write(&id, move |tx| {
            tokens::revoke(tx, &user_id, Some(Purpose::Invite), now)?;
            users::set_password_hash(tx, &user_id, &hash, now)?;
            users::set_status(tx, &user_id, Status::Active, now)?;
            Ok(())
        })
        .await?;
    Ok(password)
}
