//! Moving a tenant between nodes: the client side (`tenantctl tenant move`) drives the steps
//! through the nodes' internal endpoints; the node side (the functions below [`NodeOpError`])
//! does each step on the node that holds, or receives, the tenant.
//!
//! The source freezes the tenant's writes (in-flight ones finish, new ones wait), sends a
//! `VACUUM INTO` snapshot, the target checks and installs it, the directory flips node and epoch
//! in one transaction, and the source releases the tenant: waiting writes then go to the new
//! owner. Reads go on throughout. A failure before the flip thaws the source.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tenant_runtime::TenantId;

use super::backup::sha256_file;
use super::fleet::FleetError;
use super::provision;
use crate::cluster::client::{FirstAdmin, NodeClient, NodeError, Provisioned, SnapshotInfo};
use crate::cluster::placement::{FREEZE_LEASE, LIVE_SECS};
use crate::directory::{Directory, DirectoryError, Tenant, TenantStatus};
use crate::error::Fault;
use crate::state::AppState;

/// How long a released tenant's old file stays in place for requests already under way.
const MOVE_OUT_DELAY: Duration = Duration::from_secs(5);

// ---- the client side ------------------------------------------------------------------------

/// What a move did.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub tenant_id: TenantId,
    pub from: String,
    pub to: String,
    pub epoch: i64,
    pub bytes: u64,
    pub users: usize,
    pub sha256: String,
    /// How long writes to the tenant waited, in milliseconds.
    pub writes_paused_ms: u64,
}

/// Errors of a move.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("tenant is already on node {0}")]
    AlreadyThere(String),
    #[error("no node {0:?} is registered: start tenantd there with TENANTD_NODE_ID={0}")]
    UnknownNode(String),
    #[error("node {0} has not heartbeat for {LIVE_SECS} s: is it up?")]
    NodeDown(String),
    #[error("tenant {0} is not active (provisioning); finish or remove it first")]
    NotActive(String),
    #[error("the tenant changed placement during the move (another move?); nothing was switched")]
    Raced,
    #[error("the move took longer than the freeze lease; nothing was switched, writes resumed")]
    LeaseExpired,
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl MoveError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyThere(_) => "already_there",
            Self::UnknownNode(_) => "unknown_node",
            Self::NodeDown(_) => "node_down",
            Self::NotActive(_) => "not_active",
            Self::Raced => "placement_changed",
            Self::LeaseExpired => "lease_expired",
            Self::Node(e) => e.code(),
            Self::Directory(_) => "directory_error",
        }
    }
}

/// Moves a tenant to node `to`: freeze writes at the source, copy a snapshot, check it at the
/// target, flip node and epoch in one directory transaction, release the source. A failure
/// before the flip thaws the source and leaves the tenant where it was.
pub async fn move_tenant(
    directory: &Directory,
    client: &NodeClient,
    tenant: &Tenant,
    to: &str,
    scratch: &Path,
    now: i64,
) -> Result<Moved, MoveError> {
    if tenant.node == to {
        return Err(MoveError::AlreadyThere(to.to_owned()));
    }
    if tenant.status == TenantStatus::Provisioning {
        return Err(MoveError::NotActive(tenant.slug.clone()));
    }
    let node = |id: &str| {
        let id = id.to_owned();
        async move { directory.node(&id).await?.ok_or(MoveError::UnknownNode(id)) }
    };
    let source = node(&tenant.node).await?;
    let target = node(to).await?;
    if target.heartbeat_at < now - LIVE_SECS {
        return Err(MoveError::NodeDown(to.to_owned()));
    }
    let epoch = tenant.placement_epoch;
    let frozen_at = Instant::now();
    client.freeze(&source.url, &tenant.id, epoch).await?;
    let copied = copy_and_flip(
        directory,
        client,
        tenant,
        &source.url,
        &target.url,
        to,
        scratch,
        frozen_at,
    )
    .await;
    let new_epoch = match copied {
        Ok(v) => v,
        Err(e) => {
            if let Err(thaw) = client.thaw(&source.url, &tenant.id).await {
                tracing::warn!(error = %thaw, "could not thaw the source; its lease ends the freeze");
            }
            return Err(e);
        }
    };
    let (new_epoch, info) = new_epoch;
    client.release(&source.url, &tenant.id, epoch).await?;
    let writes_paused_ms = frozen_at.elapsed().as_millis() as u64;
    if let Err(e) = client.refresh(&target.url, &tenant.id).await {
        tracing::warn!(error = %e, "target did not refresh; its cache expires within a second");
    }
    Ok(Moved {
        tenant_id: tenant.id.clone(),
        from: tenant.node.clone(),
        to: to.to_owned(),
        epoch: new_epoch,
        bytes: info.bytes,
        users: info.users,
        sha256: info.sha256,
        writes_paused_ms,
    })
}

#[allow(clippy::too_many_arguments)]
async fn copy_and_flip(
    directory: &Directory,
    client: &NodeClient,
    tenant: &Tenant,
    source_url: &str,
    target_url: &str,
    to: &str,
    scratch: &Path,
    frozen_at: Instant,
) -> Result<(i64, SnapshotInfo), MoveError> {
    let epoch = tenant.placement_epoch;
    std::fs::create_dir_all(scratch).map_err(NodeError::from)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".move-{}.", tenant.id))
        .tempfile_in(scratch)
        .map_err(NodeError::from)?
        .into_temp_path();
    let sent = client.download(source_url, &tenant.id, &tmp).await?;
    let installed = client
        .upload(target_url, &tenant.id, epoch, &tmp, &sent.sha256)
        .await?;
    if installed != sent {
        return Err(NodeError::Invalid(format!(
            "the target holds a different copy ({installed:?}) from the one sent ({sent:?})"
        ))
        .into());
    }
    // The flip is safe only while the source is still frozen.
    if frozen_at.elapsed() + Duration::from_secs(5) > FREEZE_LEASE {
        return Err(MoveError::LeaseExpired);
    }
    client.freeze(source_url, &tenant.id, epoch).await?;
    match directory
        .move_placement(&tenant.id, &tenant.node, epoch, to)
        .await?
    {
        Some(e) => Ok((e, installed)),
        None => Err(MoveError::Raced),
    }
}

// ---- the node side ---------------------------------------------------------------------------

/// Why a node refused a step of a move or of a remote creation.
#[derive(Debug, thiserror::Error)]
pub enum NodeOpError {
    #[error("no such tenant")]
    NotFound,
    #[error("{0}")]
    NotOwner(String),
    #[error("freeze the tenant first: a snapshot of a tenant taking writes would miss some")]
    NotFrozen,
    #[error("{0}")]
    NotIncoming(String),
    #[error("the directory still places the tenant here: flip the placement first")]
    NotMoved,
    #[error("the tenant is not being created on this node")]
    NotProvisioningHere,
    #[error("send the snapshot's SHA-256 with it")]
    MissingChecksum,
    #[error("the snapshot arrived damaged (SHA-256 differs); nothing was installed")]
    ChecksumMismatch,
    #[error("the snapshot could not be read: {0}")]
    BodyFailed(String),
    /// Writes in flight did not finish in time for a freeze.
    #[error("writes of this tenant did not finish in time")]
    Busy,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(NodeOpError);

impl From<std::io::Error> for NodeOpError {
    fn from(e: std::io::Error) -> Self {
        Self::Fault(Fault::from(tenant_runtime::Error::from(e)))
    }
}

impl From<FleetError> for NodeOpError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::Runtime(e) => e.into(),
            FleetError::Directory(e) => e.into(),
            other => Self::Fault(Fault::Unexpected(anyhow::anyhow!("{other}"))),
        }
    }
}

type NodeResult<T> = Result<T, NodeOpError>;

/// The tenant as the directory has it now (no cache).
async fn fresh(state: &AppState, id: &TenantId) -> NodeResult<Tenant> {
    state.fresh_tenant(id).await?.ok_or(NodeOpError::NotFound)
}

fn scratch_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("tmp")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> NodeResult<T> + Send + 'static,
) -> NodeResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Fault::Unexpected(anyhow::anyhow!("file task failed: {e}")))?
}

/// Freezes a tenant this node holds at placement `epoch`; returns the lease.
pub async fn freeze(state: &AppState, id: &TenantId, epoch: i64) -> NodeResult<Duration> {
    let t = fresh(state, id).await?;
    if !state.cluster.holds(&t) || t.placement_epoch != epoch {
        return Err(NodeOpError::NotOwner(format!(
            "tenant is on node {} at epoch {}, not here at epoch {epoch}",
            t.node, t.placement_epoch
        )));
    }
    state
        .cluster
        .freeze(id, epoch)
        .await
        .map_err(|_| NodeOpError::Busy)?;
    tracing::info!(tenant_id = %id, epoch, "tenant frozen for a move");
    Ok(FREEZE_LEASE)
}

/// Ends a freeze (the move did not happen); whether there was one.
pub fn thaw(state: &AppState, id: &TenantId) -> bool {
    let was = state.cluster.thaw(id);
    if was {
        tracing::info!(tenant_id = %id, "tenant thawed; the move did not happen");
    }
    was
}

/// A consistent copy of a frozen tenant, ready to stream: the file is already unlinked, so
/// nothing is left behind whatever happens to the transfer.
#[derive(Debug)]
pub struct Snapshot {
    pub file: std::fs::File,
    pub info: SnapshotInfo,
}

pub async fn snapshot(state: &AppState, id: &TenantId) -> NodeResult<Snapshot> {
    let t = fresh(state, id).await?;
    if !state.cluster.holds(&t) {
        return Err(NodeOpError::NotOwner(
            "this node does not hold the tenant".to_owned(),
        ));
    }
    if !state.cluster.is_frozen(id) {
        return Err(NodeOpError::NotFrozen);
    }
    let dir = scratch_dir(state);
    let router = state.tenants.clone();
    let id = id.clone();
    blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let dest = dir.join(format!("{id}.{}.snapshot", uuid::Uuid::new_v4().simple()));
        // VACUUM INTO, synced and checked with integrity_check.
        router.backup_blocking(&id, &dest)?;
        let users = tenant_runtime::ops::inspect_file(&dest)?.users.len();
        let sha256 = sha256_file(&dest)?;
        let bytes = std::fs::metadata(&dest)?.len();
        let file = std::fs::File::open(&dest)?;
        std::fs::remove_file(&dest)?;
        Ok(Snapshot {
            file,
            info: SnapshotInfo {
                sha256,
                bytes,
                users,
            },
        })
    })
    .await
}

/// Receives a snapshot of a tenant moving here at placement `epoch`, checks its SHA-256 and
/// the file, and installs it (it is served once the directory flips the placement).
pub async fn receive<E: std::fmt::Display>(
    state: &AppState,
    id: &TenantId,
    epoch: i64,
    expected_sha256: Option<String>,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
) -> NodeResult<SnapshotInfo> {
    use sha2::Digest;
    use std::io::Write;
    let t = fresh(state, id).await?;
    // Coming back soon after leaving: the old file must not be moved out from under the new.
    state.cluster.arriving(id);
    if t.node == state.cluster.node_id() || t.placement_epoch != epoch {
        return Err(NodeOpError::NotIncoming(format!(
            "tenant is on node {} at epoch {}: not a move to this node at epoch {epoch}",
            t.node, t.placement_epoch
        )));
    }
    let expected = expected_sha256.ok_or(NodeOpError::MissingChecksum)?;
    let router = state.tenants.clone();
    let mut tmp = {
        let (router, id) = (router.clone(), id.clone());
        blocking(move || Ok(tenant_runtime::ops::incoming(&router, &id)?)).await?
    };
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let data = chunk.map_err(|e| NodeOpError::BodyFailed(e.to_string()))?;
        hasher.update(&data);
        bytes += data.len() as u64;
        tmp.as_file_mut().write_all(&data)?;
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != expected {
        return Err(NodeOpError::ChecksumMismatch);
    }
    let id2 = id.clone();
    let users = blocking(move || {
        tmp.as_file().sync_all()?;
        let prepared = tenant_runtime::ops::prepare_transfer(&id2, tmp.into_temp_path())?;
        let users = prepared.inspection.users.len();
        tenant_runtime::ops::install(&router, &id2, prepared)?;
        Ok(users)
    })
    .await?;
    tracing::info!(tenant_id = %id, bytes, "tenant snapshot installed; waiting for the placement flip");
    Ok(SnapshotInfo {
        sha256,
        bytes,
        users,
    })
}

/// Gives a tenant away after the directory placed it elsewhere: waiting writes follow it to
/// its new node, and its old file leaves the tenants folder a little later (kept under
/// `moved/`, never served again). Returns where the old file is kept.
pub async fn release(state: &AppState, id: &TenantId, epoch: i64) -> NodeResult<PathBuf> {
    let t = fresh(state, id).await?;
    if t.node == state.cluster.node_id() || t.placement_epoch <= epoch {
        return Err(NodeOpError::NotMoved);
    }
    let token = state.cluster.release(id, epoch);
    state.tenant_cache.forget(id);
    let dest = state
        .config
        .data_dir
        .join("moved")
        .join(format!("{id}.e{epoch}.db"));
    let kept = dest.clone();
    // Requests that passed the placement check just before may still read the file.
    let (cluster, router, id2) = (state.cluster.clone(), state.tenants.clone(), id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(MOVE_OUT_DELAY).await;
        if !cluster.take_moving_out(&id2, token) {
            return; // the tenant is coming back
        }
        let (id, at) = (id2.clone(), dest.clone());
        let moved = blocking(move || Ok(tenant_runtime::ops::move_out(&router, &id, &at)?)).await;
        match moved {
            Ok(()) => {
                tracing::info!(tenant_id = %id2, kept = %dest.display(), "moved tenant's old file set aside")
            }
            Err(e) => {
                tracing::warn!(tenant_id = %id2, error = %e, "could not set the moved tenant's old file aside")
            }
        }
    });
    tracing::info!(tenant_id = %id, to = %t.node, epoch = t.placement_epoch, "tenant released to another node");
    Ok(kept)
}

/// Forgets the cached directory row of a tenant (it just moved here).
pub fn refresh(state: &AppState, id: &TenantId) {
    state.tenant_cache.forget(id);
}

/// Writes the file and first admin of a tenant being created on this node by `tenantctl` on
/// another machine.
pub async fn provision_file(
    state: &AppState,
    id: &TenantId,
    first: &FirstAdmin,
) -> NodeResult<Provisioned> {
    let t = fresh(state, id).await?;
    if t.node != state.cluster.node_id() || t.status != TenantStatus::Provisioning {
        return Err(NodeOpError::NotProvisioningHere);
    }
    provision::create_file(&state.tenants, id, first.now).await?;
    Ok(provision::write_first_admin(&state.tenants, id, first).await?)
}
