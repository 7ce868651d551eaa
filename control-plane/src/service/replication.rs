//! Continuous replication of this node's files: starting Litestream under `tenantd`, the
//! replication status of each tenant (`tenantctl replica status`), and the point-in-time
//! restore of one tenant in place (`tenantctl restore --from-replica --at`).

use futures_util::StreamExt;
use serde::Serialize;
use tenant_runtime::TenantId;

use super::backup::{RestoreOptions, Restored, TenantCopy, restore_tenant};
use super::failover::Restored as Scratch;
use super::fleet::{Checkpoint, Fleet, FleetError};
use crate::directory::Directory;
use crate::replica::supervisor::{self, Setup};
use crate::replica::{PointInTime, Replica, ReplicaError, local_txid, socket_path};
use crate::state::AppState;

/// Starts Litestream and the lag reader when replication is configured; returns their tasks.
pub async fn start(state: &AppState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let (Some(replica), Some(lag)) = (
        Replica::from_config(&state.config)?,
        state.replication.clone(),
    ) else {
        return Ok(Vec::new());
    };
    // On a single node the SQLite directory is replicated too; PostgreSQL has its own.
    let directory_db = state
        .config
        .directory_url
        .is_none()
        .then(|| state.config.data_dir.join("directory.db"));
    let setup = Setup {
        node: state.cluster.node_id().to_owned(),
        data_dir: state.config.data_dir.clone(),
        tenants_dir: state.config.tenants_dir(),
        directory_db,
    };
    let config = supervisor::prepare(&replica, &setup).await?;
    Ok(vec![
        tokio::spawn(supervisor::supervise(replica.clone(), config, lag.clone())),
        tokio::spawn(supervisor::watch_lag(
            replica,
            setup.data_dir,
            lag,
            state.clock.clone(),
        )),
    ])
}

/// Replication of one tenant, as seen from its node.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReplica {
    pub slug: String,
    pub tenant_id: TenantId,
    /// The newest transaction in the local file, as Litestream numbers them (hex).
    pub local_txid: Option<String>,
    /// The newest transaction in the replica (hex).
    pub replicated_txid: Option<String>,
    /// When that transaction was written (RFC 3339) and how long ago, in seconds.
    pub replicated_at: Option<String>,
    pub age_secs: Option<i64>,
    /// When the running Litestream last synced the file, and how long ago.
    pub last_sync_at: Option<String>,
    pub lag_secs: Option<i64>,
    /// Every local transaction is in the replica.
    pub in_sync: bool,
    /// What went wrong reading the replica.
    pub error: Option<String>,
}

/// The replication status of this node.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node: String,
    pub replica: String,
    /// Whether the node's Litestream answered.
    pub daemon: bool,
    pub tenants: Vec<TenantReplica>,
    /// The worst `lag_secs`.
    pub worst_lag_secs: Option<i64>,
}

fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The replication status of every tenant placed on `node`, whose files are in `config`'s
/// data directory.
pub async fn status(
    fleet: &Fleet,
    replica: &Replica,
    node: &str,
    now: i64,
) -> Result<Status, ReplicationError> {
    let directory: &Directory = &fleet.directory;
    let daemon = replica
        .daemon(&socket_path(&fleet.config.data_dir))
        .await
        .ok();
    let mut tenants: Vec<_> = directory
        .tenants()
        .await
        .map_err(FleetError::from)?
        .into_iter()
        .filter(|t| t.node == node)
        .collect();
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let rows: Vec<TenantReplica> = futures_util::stream::iter(tenants)
        .map(|t| {
            let path = fleet.router.path_of(&t.id);
            let synced = daemon
                .as_ref()
                .and_then(|d| d.iter().find(|s| s.path == path))
                .and_then(|s| s.last_sync_at);
            async move {
                let local = local_txid(&path);
                let (pos, error) = match replica.position(node, &t.id).await {
                    Ok(p) => (p, None),
                    Err(e) => (None, Some(e.to_string())),
                };
                TenantReplica {
                    slug: t.slug,
                    tenant_id: t.id,
                    in_sync: local.is_some() && pos.as_ref().map(|p| &p.txid) >= local.as_ref(),
                    local_txid: local,
                    replicated_txid: pos.as_ref().map(|p| p.txid.clone()),
                    replicated_at: pos.as_ref().and_then(|p| rfc3339(p.at)),
                    age_secs: pos.as_ref().map(|p| now - p.at),
                    last_sync_at: synced.and_then(rfc3339),
                    lag_secs: synced.map(|s| now - s),
                    error,
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
    Ok(Status {
        node: node.to_owned(),
        replica: replica.describe(node),
        daemon: daemon.is_some(),
        worst_lag_secs: rows.iter().filter_map(|r| r.lag_secs).max(),
        tenants: rows,
    })
}

/// Why the status could not be read, or a restore from the replica was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl ReplicationError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Replica(e) => e.code(),
            Self::Fleet(e) => e.code(),
        }
    }
}

/// Restores tenant `slug` in place as it was at `at`, from this node's replica: the replica's
/// copy goes through the same checks and steps as a restore from a backup folder (previous
/// content kept in the trash, identity and integrity checked, index rebuilt, auth epoch
/// raised so sessions and links issued since end).
pub async fn restore_in_place(
    fleet: &Fleet,
    replica: &Replica,
    slug: &str,
    at: &PointInTime,
    options: RestoreOptions,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> Result<Restored, ReplicationError> {
    let t = fleet.tenant_by_slug(slug).await?;
    if t.node != fleet.node {
        return Err(FleetError::Backup(format!(
            "tenant {slug:?} is on node {}: run this on that node (its tenantctl)",
            t.node
        ))
        .into());
    }
    let scratch = fleet.config.data_dir.join("tmp");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| FleetError::from(tenant_runtime::Error::from(e)))?;
    let out = Scratch::new(&scratch, &t.id);
    replica.restore(&t.node, &t.id, &out.0, Some(at)).await?;
    let copy = TenantCopy {
        tenant_id: t.id.to_string(),
        slug: t.slug.clone(),
        name: t.name.clone(),
        status: t.status.as_str().to_owned(),
        domains: fleet
            .directory
            .domains_of(&t.id)
            .await
            .map_err(FleetError::from)?,
        file: out.0.to_string_lossy().into_owned(),
        size: std::fs::metadata(&out.0).map(|m| m.len()).unwrap_or(0),
        sha256: String::new(),
        schema_version: 0,
        auth_epoch: t.auth_epoch,
        backed_up_at: at.unix,
    };
    Ok(restore_tenant(fleet, out.0.clone(), &copy, options, now, checkpoint).await?)
}
