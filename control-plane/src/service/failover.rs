//! Recovering a tenant from its replica onto another node (`tenantctl tenant recover` and
//! `node recover`): the client side checks that the owner is gone, has the target node restore
//! and check the file, flips placement (and auth epoch) in one directory transaction and
//! rebuilds the tenant's part of the user index; the node side ([`recover_here`]) restores
//! with Litestream, checks integrity and the recorded tenant id, and installs the file.
//!
//! Nothing is served from the restored file before the flip, and a refused replica (missing,
//! unreadable, of another tenant) leaves the directory and the target's files as they were.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use tenant_runtime::{TenantId, ops};

use super::fleet::reindex;
use crate::cluster::client::{NodeClient, NodeError, RecoverRequest, RecoveredFile};
use crate::cluster::placement::LIVE_SECS;
use crate::directory::{Directory, Tenant, TenantStatus};
use crate::error::Fault;
use crate::replica::{PointInTime, Replica, ReplicaError};
use crate::state::AppState;

/// Why a tenant was not recovered. Nothing changed, except where said.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error(
        "node {node} is alive (heartbeat {secs} s ago): recovering would fork the tenant; stop it, wait {LIVE_SECS} s, or pass --force"
    )]
    OwnerAlive { node: String, secs: i64 },
    #[error("no node {0:?} is registered: start tenantd there with TENANTD_NODE_ID={0}")]
    UnknownNode(String),
    #[error("node {0} has not heartbeat for {LIVE_SECS} s: recover onto a live node")]
    NodeDown(String),
    #[error("the tenant is already on node {0}")]
    AlreadyThere(String),
    #[error("tenant {0} is not active (provisioning); finish or remove it first")]
    NotActive(String),
    #[error(
        "the tenant changed placement meanwhile (a move or another recovery?); nothing was switched"
    )]
    Raced,
    #[error("no such tenant")]
    NotFound,
    #[error("the replica is not this tenant's: it records tenant {found}, not {expected}")]
    ForeignReplica { expected: String, found: String },
    #[error("the replica is not a tenant database, or is damaged: {0}")]
    CorruptReplica(String),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("{0}")]
    Node(NodeError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(FailoverError);

impl From<NodeError> for FailoverError {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

impl From<super::fleet::FleetError> for FailoverError {
    fn from(e: super::fleet::FleetError) -> Self {
        use super::fleet::FleetError as F;
        match e {
            F::Runtime(e) => e.into(),
            F::Directory(e) => e.into(),
            other => Self::Fault(Fault::Unexpected(anyhow::anyhow!("{other}"))),
        }
    }
}

impl FailoverError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::OwnerAlive { .. } => "owner_alive",
            Self::UnknownNode(_) => "unknown_node",
            Self::NodeDown(_) => "node_down",
            Self::AlreadyThere(_) => "already_there",
            Self::NotActive(_) => "not_active",
            Self::Raced => "placement_changed",
            Self::NotFound => "unknown_tenant",
            Self::ForeignReplica { .. } => "replica_of_another_tenant",
            Self::CorruptReplica(_) => "replica_corrupt",
            Self::Replica(e) => e.code(),
            // The target node's own code, when it is one of ours.
            Self::Node(NodeError::Refused { code, .. }) => REMOTE_CODES
                .iter()
                .find(|c| **c == code.as_str())
                .copied()
                .unwrap_or("node_refused"),
            Self::Node(e) => e.code(),
            Self::Fault(_) => "internal_error",
        }
    }
}

/// Codes a target node may answer that `tenantctl` passes on as they are.
const REMOTE_CODES: &[&str] = &[
    "replica_missing",
    "replica_unreadable",
    "replica_of_another_tenant",
    "replica_corrupt",
    "replication_off",
    "litestream_missing",
    "invalid_time",
    "placement_changed",
    "already_there",
];

pub type FailoverResult<T> = Result<T, FailoverError>;

/// What a recovery did.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub slug: String,
    pub tenant_id: TenantId,
    pub from: String,
    pub to: String,
    pub placement_epoch: i64,
    pub auth_epoch: i64,
    pub users: usize,
    pub bytes: u64,
    /// The point in time restored, when one was asked for.
    pub at: Option<String>,
    /// Users whose email another tenant holds now: they stay unindexed.
    pub conflicts: Vec<String>,
    pub took_ms: u64,
}

/// Whether node `id` heartbeat within [`LIVE_SECS`]; `None` when it is not registered.
async fn heartbeat_age(directory: &Directory, id: &str, now: i64) -> FailoverResult<Option<i64>> {
    Ok(directory.node(id).await?.map(|n| now - n.heartbeat_at))
}

/// Refuses to recover the tenants of a node that is still alive, unless `force`.
pub async fn check_owner_gone(
    directory: &Directory,
    owner: &str,
    force: bool,
    now: i64,
) -> FailoverResult<()> {
    if force {
        return Ok(());
    }
    match heartbeat_age(directory, owner, now).await? {
        Some(secs) if secs < LIVE_SECS => Err(FailoverError::OwnerAlive {
            node: owner.to_owned(),
            secs,
        }),
        _ => Ok(()),
    }
}

/// Recovers tenant `t` from its replica onto node `to` (see the module doc).
pub async fn recover_tenant(
    directory: &Directory,
    client: &NodeClient,
    t: &Tenant,
    to: &str,
    at: Option<&PointInTime>,
    force: bool,
    now: i64,
) -> FailoverResult<Recovered> {
    let started = Instant::now();
    if t.status == TenantStatus::Provisioning {
        return Err(FailoverError::NotActive(t.slug.clone()));
    }
    if t.node == to {
        return Err(FailoverError::AlreadyThere(to.to_owned()));
    }
    check_owner_gone(directory, &t.node, force, now).await?;
    let target = directory
        .node(to)
        .await?
        .ok_or_else(|| FailoverError::UnknownNode(to.to_owned()))?;
    if now - target.heartbeat_at >= LIVE_SECS {
        return Err(FailoverError::NodeDown(to.to_owned()));
    }
    // Going back in time ends every session and link issued since.
    let min_auth_epoch = if at.is_some() {
        t.auth_epoch + 1
    } else {
        t.auth_epoch
    };
    let req = RecoverRequest {
        from: t.node.clone(),
        epoch: t.placement_epoch,
        min_auth_epoch,
        at: at.map(|a| a.rfc3339.clone()),
    };
    let file = client.recover(&target.url, &t.id, &req).await?;
    let placement_epoch = directory
        .recover_placement(&t.id, &t.node, t.placement_epoch, to, file.auth_epoch)
        .await?
        .ok_or(FailoverError::Raced)?;
    // The index follows the recovered file: users created after the last replicated
    // transaction are gone with the disk.
    let conflicts = reindex(directory, &t.id, &file.users).await?;
    if let Err(e) = client.refresh(&target.url, &t.id).await {
        tracing::warn!(tenant_id = %t.id, error = %e, "the new node did not refresh its cache");
    }
    tracing::info!(tenant_id = %t.id, from = %t.node, to, placement_epoch, "tenant recovered from its replica");
    Ok(Recovered {
        slug: t.slug.clone(),
        tenant_id: t.id.clone(),
        from: t.node.clone(),
        to: to.to_owned(),
        placement_epoch,
        auth_epoch: file.auth_epoch.max(t.auth_epoch),
        users: file.users.len(),
        bytes: file.bytes,
        at: req.at,
        conflicts,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

// ---- the node side ---------------------------------------------------------------------------

/// Restores tenant `id` from node `req.from`'s replica, checks it (integrity, the tenant id it
/// records, a schema this binary knows), raises its auth epoch and installs it here. The
/// directory does not place the tenant here yet: the caller flips it.
pub async fn recover_here(
    state: &AppState,
    id: &TenantId,
    req: &RecoverRequest,
) -> FailoverResult<RecoveredFile> {
    let replica = Replica::required(&state.config)?;
    let at = req.at.as_deref().map(PointInTime::parse).transpose()?;
    let t = state
        .fresh_tenant(id)
        .await?
        .ok_or(FailoverError::NotFound)?;
    if t.node == state.cluster.node_id() {
        return Err(FailoverError::AlreadyThere(t.node));
    }
    if t.node != req.from || t.placement_epoch != req.epoch {
        return Err(FailoverError::Raced);
    }
    // A file of this tenant left here by an earlier stay must not be moved out from under the
    // new one.
    state.cluster.arriving(id);
    let scratch = state.config.data_dir.join("tmp");
    std::fs::create_dir_all(&scratch).map_err(tenant_runtime::Error::from)?;
    let out = Restored::new(&scratch, id);
    replica.restore(&req.from, id, &out.0, at.as_ref()).await?;
    let bytes = std::fs::metadata(&out.0).map(|m| m.len()).unwrap_or(0);
    let router = state.tenants.clone();
    let (id2, src, min_epoch, now) = (id.clone(), out.0.clone(), req.min_auth_epoch, state.now());
    let installed = tokio::task::spawn_blocking(move || {
        let prepared =
            ops::prepare_restore(&router, &id2, &src, id2.as_str(), min_epoch, false, now)?;
        let users = prepared.inspection.users.clone();
        let auth_epoch = prepared.auth_epoch;
        ops::install(&router, &id2, prepared)?;
        Ok::<_, tenant_runtime::Error>((users, auth_epoch))
    })
    .await
    .map_err(|e| Fault::Unexpected(anyhow::anyhow!("file task failed: {e}")))?;
    let (users, auth_epoch) = installed.map_err(|e| match e {
        tenant_runtime::Error::ForeignTenantFile { expected, found } => {
            FailoverError::ForeignReplica { expected, found }
        }
        tenant_runtime::Error::NotATenantFile(_) => {
            FailoverError::CorruptReplica("it records no tenant".to_owned())
        }
        tenant_runtime::Error::Sqlite(e) => FailoverError::CorruptReplica(e.to_string()),
        tenant_runtime::Error::Unexpected(e) if e.to_string().contains("integrity_check") => {
            FailoverError::CorruptReplica(e.to_string())
        }
        other => other.into(),
    })?;
    tracing::info!(tenant_id = %id, from = %req.from, bytes, "tenant restored from its replica; waiting for the placement flip");
    Ok(RecoveredFile {
        users,
        auth_epoch,
        bytes,
    })
}

/// A file Litestream restores into, removed (with its sidecars) when dropped.
#[derive(Debug)]
pub struct Restored(pub PathBuf);

impl Restored {
    pub fn new(dir: &std::path::Path, id: &TenantId) -> Self {
        let mut nonce = [0u8; 8];
        let _ = getrandom::fill(&mut nonce);
        Self(dir.join(format!("replica-{id}-{}.db", hex::encode(nonce))))
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}
