//! Replication: `replica status`, `tenant recover`, `node recover` and
//! `restore --from-replica`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Args, Subcommand};
use control_plane::cluster::client::NodeClient;
use control_plane::replica::{PointInTime, Replica};
use control_plane::service::backup::RestoreOptions;
use control_plane::service::failover::{self, FailoverError, Recovered};
use control_plane::service::replication;
use futures_util::StreamExt;
use serde_json::json;

use super::placement::{client_for, own_node};
use super::{Ctx, Report, coded, table};
use crate::failpoint::crash_point;

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Per tenant of this node: the newest transaction in its file and in the replica, when
    /// that was written, and how long since Litestream last synced it.
    Status,
}

/// `tenant recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The tenant's slug.
    pub slug: String,
    /// The node that takes the tenant over (its TENANTD_NODE_ID).
    #[arg(long = "to", value_name = "NODE")]
    pub to: String,
    /// Restore the tenant as it was at this time (RFC 3339); sessions and links issued since
    /// end. Default: the newest replicated transaction.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Recover even though the tenant's node still heartbeats (it must not serve the tenant
    /// any more: its copy is left behind).
    #[arg(long)]
    pub force: bool,
    /// Secret shared by the nodes, to call their internal endpoints.
    #[arg(long, env = "TENANTD_NODE_SECRET", hide_env_values = true)]
    pub node_secret: Option<String>,
}

/// `node recover`.
#[derive(Debug, Args)]
pub struct NodeRecoverArgs {
    /// The lost node (its TENANTD_NODE_ID).
    pub dead: String,
    /// The node(s) that take its tenants over, comma-separated: tenants are dealt out in turn.
    #[arg(
        long = "to",
        value_name = "NODE",
        value_delimiter = ',',
        required = true
    )]
    pub to: Vec<String>,
    /// Tenants recovered at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Recover even though the node still heartbeats.
    #[arg(long)]
    pub force: bool,
    /// Secret shared by the nodes, to call their internal endpoints.
    #[arg(long, env = "TENANTD_NODE_SECRET", hide_env_values = true)]
    pub node_secret: Option<String>,
}

fn failover_error(slug: &str, e: &FailoverError) -> anyhow::Error {
    coded(e.code(), format!("cannot recover {slug}: {e}"))
}

fn client(ctx: &Ctx, secret: Option<String>) -> anyhow::Result<NodeClient> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        coded(
            "node_secret_required",
            "recovering a tenant needs the nodes' secret: set TENANTD_NODE_SECRET (or --node-secret)",
        )
    })?;
    client_for(&secret, &ctx.clock).map_err(|e| coded(e.code(), e.to_string()))
}

fn point_in_time(at: Option<&str>) -> anyhow::Result<Option<PointInTime>> {
    at.map(PointInTime::parse)
        .transpose()
        .map_err(|e| coded(e.code(), e.to_string()))
}

/// `replica status`.
pub(crate) async fn status(ctx: &Ctx) -> anyhow::Result<Report> {
    let replica = Replica::required(&ctx.config).map_err(|e| coded(e.code(), e.to_string()))?;
    let fleet = ctx.fleet().await?;
    let node = own_node();
    let s = replication::status(&fleet, &replica, &node, ctx.now())
        .await
        .map_err(|e| coded(e.code(), e.to_string()))?;
    let rows: Vec<Vec<String>> = s
        .tenants
        .iter()
        .map(|t| {
            let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
            let secs = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} s"));
            vec![
                t.slug.clone(),
                opt(&t.local_txid),
                opt(&t.replicated_txid),
                secs(t.age_secs),
                secs(t.lag_secs),
                if t.in_sync { "yes" } else { "no" }.to_owned(),
                t.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = format!(
        "Node {} replicates to {}{}.\n",
        s.node,
        s.replica,
        if s.daemon {
            ""
        } else {
            " (Litestream does not answer: is tenantd running?)"
        }
    );
    text.push_str(&table(
        &[
            "SLUG",
            "LOCAL TXID",
            "REPLICATED TXID",
            "WRITTEN",
            "LAST SYNC",
            "IN SYNC",
            "ERROR",
        ],
        &rows,
    ));
    if let Some(w) = s.worst_lag_secs {
        text.push_str(&format!("Worst lag: {w} s.\n"));
    }
    Ok(Report::new(text, serde_json::to_value(&s)?))
}

/// `tenant recover SLUG --to NODE`.
pub(crate) async fn recover_tenant(ctx: &Ctx, a: RecoverArgs) -> anyhow::Result<Report> {
    let client = client(ctx, a.node_secret)?;
    let at = point_in_time(a.at.as_deref())?;
    let fleet = ctx.fleet().await?;
    let t = fleet.tenant_by_slug(&a.slug).await?;
    let r = failover::recover_tenant(
        &fleet.directory,
        &client,
        &t,
        &a.to,
        at.as_ref(),
        a.force,
        ctx.now(),
    )
    .await
    .map_err(|e| failover_error(&t.slug, &e))?;
    let mut text = format!(
        "Recovered {} from node {}'s replica onto node {} (placement epoch {}): {} users, {} bytes, in {} ms.\n",
        r.slug, r.from, r.to, r.placement_epoch, r.users, r.bytes, r.took_ms
    );
    if let Some(at) = &r.at {
        text.push_str(&format!(
            "As it was at {at}: sessions and links issued before now no longer work.\n"
        ));
    }
    for e in &r.conflicts {
        text.push_str(&format!(
            "  {e} belongs to another tenant now: that user stays unindexed\n"
        ));
    }
    Ok(Report::new(text, json!({"recovered": r})))
}

/// `node recover DEAD --to NODE[,NODE…]`: every tenant of the lost node, `jobs` at a time. Run
/// again after an interruption: tenants already recovered are no longer on the lost node.
pub(crate) async fn recover_node(ctx: &Ctx, a: NodeRecoverArgs) -> anyhow::Result<Report> {
    let client = client(ctx, a.node_secret)?;
    if a.to.iter().any(|n| n == &a.dead) {
        return Err(coded(
            "already_there",
            format!("node {} cannot take over its own tenants", a.dead),
        ));
    }
    let fleet = ctx.fleet().await?;
    failover::check_owner_gone(&fleet.directory, &a.dead, a.force, ctx.now())
        .await
        .map_err(|e| coded(e.code(), e.to_string()))?;
    let mut tenants: Vec<_> = fleet
        .directory
        .tenants()
        .await?
        .into_iter()
        .filter(|t| t.node == a.dead)
        .collect();
    tenants.sort_by(|x, y| x.slug.cmp(&y.slug));
    let started = std::time::Instant::now();
    let bar = ctx.progress(tenants.len(), "recover");
    let turn = Arc::new(AtomicUsize::new(0));
    let (directory, now) = (&fleet.directory, ctx.now());
    let results: Vec<(String, Result<Recovered, FailoverError>)> =
        futures_util::stream::iter(tenants)
            .map(|t| {
                let to = a.to[turn.fetch_add(1, Ordering::Relaxed) % a.to.len()].clone();
                let (client, bar) = (&client, &bar);
                async move {
                    // The owner was checked once above: it is gone for all of them.
                    let r =
                        failover::recover_tenant(directory, client, &t, &to, None, true, now).await;
                    bar.inc(1);
                    (t.slug, r)
                }
            })
            .buffer_unordered(a.jobs.max(1))
            .collect()
            .await;
    bar.finish_and_clear();
    let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|(_, r)| r.is_ok());
    let recovered: Vec<Recovered> = ok.into_iter().filter_map(|(_, r)| r.ok()).collect();
    let failed: Vec<(String, FailoverError)> = failed
        .into_iter()
        .filter_map(|(s, r)| r.err().map(|e| (s, e)))
        .collect();
    let mut text = format!(
        "Recovered {} tenant(s) of node {} onto {} in {} ms.\n",
        recovered.len(),
        a.dead,
        a.to.join(", "),
        took_ms
    );
    for (s, e) in &failed {
        text.push_str(&format!("FAILED {s}: {e}\n"));
    }
    let report = Report::new(
        text,
        json!({
            "node": a.dead,
            "to": a.to,
            "recovered": recovered,
            "took_ms": took_ms,
            "failed": failed.iter().map(|(s, e)| json!({"slug": s, "error": e.code(), "message": e.to_string()})).collect::<Vec<_>>(),
        }),
    );
    Ok(if failed.is_empty() {
        report
    } else {
        report.failed(
            "recover_incomplete",
            format!(
                "{} tenant(s) were not recovered (see above); run the command again to retry them",
                failed.len()
            ),
        )
    })
}

/// `restore --tenant SLUG --from-replica --at T`.
pub(crate) async fn restore(
    ctx: &Ctx,
    slug: &str,
    at: &str,
    require_password_reset: bool,
) -> anyhow::Result<Report> {
    let replica = Replica::required(&ctx.config).map_err(|e| coded(e.code(), e.to_string()))?;
    let at = point_in_time(Some(at))?
        .ok_or_else(|| coded("invalid_time", "give --at with --from-replica"))?;
    let fleet = ctx.fleet().await?;
    let options = RestoreOptions {
        require_password_reset,
    };
    let r = replication::restore_in_place(
        &fleet,
        &replica,
        slug,
        &at,
        options,
        ctx.now(),
        &crash_point,
    )
    .await
    .map_err(|e| {
        coded(
            e.code(),
            format!("cannot restore {slug} from the replica: {e}"),
        )
    })?;
    let mut text = format!(
        "Restored {} as it was at {} ({} users): sessions and links issued before now no longer work.\n",
        r.slug, at.rfc3339, r.users
    );
    if let Some(p) = &r.previous {
        text.push_str(&format!(
            "  the replaced content is kept in {}\n",
            p.display()
        ));
    }
    Ok(Report::new(
        text,
        json!({"from_replica": true, "at": at.rfc3339, "restored": [r]}),
    ))
}
