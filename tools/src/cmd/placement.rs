//! Nodes: where `tenant create` puts a new tenant, and `tenant move`.

use clap::Args;
use control_plane::cluster::client::{NodeClient, NodeError};
use control_plane::cluster::placement::{LIVE_SECS, valid_node_id};
use control_plane::cluster::signing::NodeSecret;
use control_plane::directory::TenantStatus;
use control_plane::service::fleet::{Fleet, FleetError};
use control_plane::service::moves::{self, MoveError};
use control_plane::service::provision::{Files, NewTenant};
use serde_json::json;

use super::{Ctx, Report, coded};

/// `tenant move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The tenant's slug.
    pub slug: String,
    /// The node to move it to (its TENANTD_NODE_ID).
    #[arg(long = "to", value_name = "NODE")]
    pub to: String,
    /// Secret shared by the nodes, to call their internal endpoints.
    #[arg(long, env = "TENANTD_NODE_SECRET", hide_env_values = true)]
    pub node_secret: Option<String>,
}

/// This machine's node: the one whose tenants folder is `--data-dir`.
pub(crate) fn own_node() -> String {
    std::env::var("TENANTD_NODE_ID")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// A client for the nodes' internal endpoints, with the nodes' CA (`TENANTD_NODE_CA`) for
/// `https://` node URLs.
pub(crate) fn client_for(
    secret: &str,
    clock: &std::sync::Arc<dyn tenant_runtime::Clock>,
) -> Result<NodeClient, NodeError> {
    let ca = std::env::var_os("TENANTD_NODE_CA").map(std::path::PathBuf::from);
    NodeClient::new(NodeSecret::new(secret), clock.clone(), ca.as_deref())
        .map_err(|e| NodeError::Invalid(format!("{e:#}")))
}

fn node_client(fleet: &Fleet) -> Result<NodeClient, NodeError> {
    match std::env::var("TENANTD_NODE_SECRET") {
        Ok(s) if !s.is_empty() => client_for(&s, &fleet.clock),
        _ => Err(NodeError::Invalid(
            "creating a tenant on another node needs the nodes' secret: set TENANTD_NODE_SECRET"
                .to_owned(),
        )),
    }
}

/// Where a new tenant goes, and who writes its file.
pub(crate) struct Target {
    pub node: String,
    /// A node's client and URL when the file is written by another node.
    remote: Option<(NodeClient, String)>,
}

impl Target {
    pub(crate) fn files<'a>(&'a self, fleet: &'a Fleet) -> Files<'a> {
        match &self.remote {
            None => Files::Local(&fleet.router),
            Some((client, url)) => Files::Remote { client, url },
        }
    }
}

/// Places a new tenant on `node`, or on the live node with the fewest tenants (this machine's
/// when no node is registered). A creation resumed after a crash stays on its node. The
/// file of a tenant placed on another node is written by that node.
pub(crate) async fn target(
    fleet: &Fleet,
    req: &NewTenant,
    node: Option<&str>,
) -> Result<Target, FleetError> {
    let own = own_node();
    let chosen = match fleet.directory.tenant_by_slug(&req.slug).await? {
        Some(t) if t.status == TenantStatus::Provisioning => t.node,
        _ => match node {
            Some(n) => n.to_owned(),
            None => fleet
                .directory
                .least_loaded_node(LIVE_SECS)
                .await?
                .unwrap_or_else(|| own.clone()),
        },
    };
    if !valid_node_id(&chosen) {
        return Err(NodeError::Invalid(format!(
            "invalid node id {chosen:?}: use 1 to 64 of a-z, 0-9, '-' and '_'"
        ))
        .into());
    }
    if chosen == own {
        return Ok(Target {
            node: chosen,
            remote: None,
        });
    }
    let Some(target) = fleet.directory.node(&chosen).await? else {
        return Err(NodeError::Invalid(format!(
            "no node {chosen:?} is registered: start tenantd there with TENANTD_NODE_ID={chosen}"
        ))
        .into());
    };
    let client = node_client(fleet)?;
    Ok(Target {
        node: chosen,
        remote: Some((client, target.url)),
    })
}

/// `tenant move SLUG --to NODE`.
pub(crate) async fn move_tenant(ctx: &Ctx, a: MoveArgs) -> anyhow::Result<Report> {
    let secret = a.node_secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        coded(
            "node_secret_required",
            "moving a tenant needs the nodes' secret: set TENANTD_NODE_SECRET (or --node-secret)",
        )
    })?;
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(&a.slug).await?;
    let client = client_for(&secret, &ctx.clock)?;
    let scratch = ctx.config.data_dir.join("tmp");
    let moved =
        match moves::move_tenant(&fleet.directory, &client, &t, &a.to, &scratch, ctx.now()).await {
            Ok(m) => m,
            Err(MoveError::AlreadyThere(node)) => {
                return Ok(Report::new(
                    format!("{} is already on node {node}.\n", t.slug),
                    json!({"slug": t.slug, "id": t.id, "node": node, "moved": false}),
                ));
            }
            Err(e) => return Err(coded(e.code(), format!("cannot move {}: {e}", t.slug))),
        };
    Ok(Report::new(
        format!(
            "Moved {} from node {} to node {} (placement epoch {}): {} bytes, {} users, SHA-256 {}.\nWrites waited {} ms; reads went on.\n",
            t.slug,
            moved.from,
            moved.to,
            moved.epoch,
            moved.bytes,
            moved.users,
            moved.sha256,
            moved.writes_paused_ms
        ),
        json!({"slug": t.slug, "moved": true, "move": moved}),
    ))
}
