//! This node's view of placement: which tenants it serves, the write gate that lets a move
//! freeze a tenant's writes, the tenants it gave away, and where the other nodes are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tenant_runtime::TenantId;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::client::node_http;
use super::signing::NodeSecret;
use crate::config::NodeConfig;
use crate::directory::{Directory, Tenant};

/// How long a write waits for a move of its tenant to finish.
const WRITE_WAIT: Duration = Duration::from_secs(10);
/// How long a freeze lasts unless renewed or released: a move that dies leaves no frozen
/// tenant behind.
pub const FREEZE_LEASE: Duration = Duration::from_secs(60);
/// How long a node's address is cached.
const URL_TTL: Duration = Duration::from_secs(5);
/// How often a node records that it is alive.
pub const HEARTBEAT_SECS: u64 = 5;
/// A node that has not heartbeat for this long gets no new tenants, and no moves.
pub const LIVE_SECS: i64 = 30;

/// Node ids name nodes in the directory, in headers and in metrics: keep them plain.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A write waited longer than [`WRITE_WAIT`] for a move (or a freeze for writes in flight).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the tenant's writes did not make way in time")]
pub struct GateTimeout;

/// A freeze of a tenant's writes during a move; writes wait until it goes.
struct Freeze {
    id: u64,
    epoch: i64,
    until: Instant,
    _writes: OwnedRwLockWriteGuard<()>,
}

/// This node, as the rest of the server sees it; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    node_id: String,
    node_url: String,
    secret: Option<NodeSecret>,
    /// Forwards requests to other nodes.
    http: reqwest::Client,
    urls: DashMap<String, (Instant, String)>,
    /// Per tenant: writes in flight hold it shared; a freeze holds it exclusively.
    gates: DashMap<TenantId, Arc<RwLock<()>>>,
    freezes: DashMap<TenantId, Freeze>,
    /// Tenants this node gave away, with the placement epoch they left at.
    released: DashMap<TenantId, i64>,
    /// Released tenants whose file is about to leave the tenants folder.
    moving_out: DashMap<TenantId, u64>,
    next_token: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.0.node_id)
            .field("node_url", &self.0.node_url)
            .field("forwarding", &self.0.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// `node_url` is the configured address, or the one derived from the bound listener.
    pub fn new(node: &NodeConfig, node_url: String) -> anyhow::Result<Self> {
        let http = node_http(node.node_ca.as_deref(), |b| {
            b.connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(30))
        })?;
        Ok(Self(Arc::new(Inner {
            node_id: node.node_id.clone(),
            node_url,
            secret: node
                .node_secret
                .as_ref()
                .map(|s| s.expose())
                .filter(|s| !s.is_empty())
                .map(NodeSecret::new),
            http,
            urls: DashMap::new(),
            gates: DashMap::new(),
            freezes: DashMap::new(),
            released: DashMap::new(),
            moving_out: DashMap::new(),
            next_token: AtomicU64::new(1),
        })))
    }

    /// This node's id: tenants whose `node` is this are served here.
    pub fn node_id(&self) -> &str {
        &self.0.node_id
    }

    /// Where other nodes reach this one.
    pub fn node_url(&self) -> &str {
        &self.0.node_url
    }

    /// The nodes' shared secret, when this node forwards and accepts forwarded requests.
    pub fn secret(&self) -> Option<&NodeSecret> {
        self.0.secret.as_ref()
    }

    /// Whether this node forwards requests and accepts forwarded ones.
    pub fn forwarding(&self) -> bool {
        self.0.secret.is_some()
    }

    /// The HTTP client that forwards requests to other nodes.
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Whether this node serves `tenant` now: the directory places it here, and this node has
    /// not given it away at that placement epoch.
    pub fn holds(&self, tenant: &Tenant) -> bool {
        tenant.node == self.0.node_id
            && self
                .0
                .released
                .get(&tenant.id)
                .is_none_or(|left_at| tenant.placement_epoch > *left_at)
    }

    fn gate(&self, tenant: &TenantId) -> Arc<RwLock<()>> {
        self.0
            .gates
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(RwLock::new(())))
            .clone()
    }

    /// Waits until writes to `tenant` may go (no move under way), up to [`WRITE_WAIT`].
    pub async fn write_permit(&self, tenant: &TenantId) -> Result<WritePermit, GateTimeout> {
        let gate = self.gate(tenant);
        match tokio::time::timeout(WRITE_WAIT, gate.clone().read_owned()).await {
            Ok(guard) => Ok(WritePermit {
                cluster: self.clone(),
                tenant: tenant.clone(),
                guard: Some(guard),
                _gate: gate,
            }),
            Err(_) => Err(GateTimeout),
        }
    }

    /// Where node `node` is reached, from the directory (cached for a few seconds).
    pub async fn url_of(&self, directory: &Directory, node: &str) -> Option<String> {
        if let Some(e) = self.0.urls.get(node)
            && e.0.elapsed() < URL_TTL
        {
            return Some(e.1.clone());
        }
        match directory.node(node).await {
            Ok(Some(n)) => {
                self.0
                    .urls
                    .insert(node.to_owned(), (Instant::now(), n.url.clone()));
                Some(n.url)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "node address lookup failed");
                None
            }
        }
    }

    /// Forgets a node's address (it did not answer).
    pub fn forget_url(&self, node: &str) {
        self.0.urls.remove(node);
    }

    /// Freezes writes to a tenant: waits for writes in flight, then holds new ones until
    /// released, thawed or the lease ends. Freezing again renews the lease.
    pub async fn freeze(&self, tenant: &TenantId, epoch: i64) -> Result<(), GateTimeout> {
        if let Some(mut f) = self.0.freezes.get_mut(tenant)
            && f.epoch == epoch
        {
            f.until = Instant::now() + FREEZE_LEASE;
            return Ok(());
        }
        let gate = self.gate(tenant);
        let guard = tokio::time::timeout(WRITE_WAIT, gate.write_owned())
            .await
            .map_err(|_| GateTimeout)?;
        let id = self.0.next_token.fetch_add(1, Ordering::Relaxed);
        self.0.freezes.insert(
            tenant.clone(),
            Freeze {
                id,
                epoch,
                until: Instant::now() + FREEZE_LEASE,
                _writes: guard,
            },
        );
        // The lease: a move that dies leaves no frozen tenant behind.
        let this = self.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            loop {
                let until = match this.0.freezes.get(&tenant) {
                    Some(f) if f.id == id => f.until,
                    _ => return,
                };
                if Instant::now() >= until {
                    if this
                        .0
                        .freezes
                        .remove_if(&tenant, |_, f| f.id == id && Instant::now() >= f.until)
                        .is_some()
                    {
                        tracing::warn!(tenant_id = %tenant, "freeze lease ended; writes resume");
                    }
                    return;
                }
                tokio::time::sleep_until(until.into()).await;
            }
        });
        Ok(())
    }

    pub fn is_frozen(&self, tenant: &TenantId) -> bool {
        self.0.freezes.contains_key(tenant)
    }

    /// Ends a freeze; whether there was one.
    pub fn thaw(&self, tenant: &TenantId) -> bool {
        self.0.freezes.remove(tenant).is_some()
    }

    /// Records that this node gave `tenant` away at placement `epoch`, and thaws it: waiting
    /// writes then find it released and follow it to its new node. Returns a token for
    /// [`Cluster::take_moving_out`].
    pub fn release(&self, tenant: &TenantId, epoch: i64) -> u64 {
        self.0
            .released
            .entry(tenant.clone())
            .and_modify(|e| *e = (*e).max(epoch))
            .or_insert(epoch);
        self.thaw(tenant);
        let token = self.0.next_token.fetch_add(1, Ordering::Relaxed);
        self.0.moving_out.insert(tenant.clone(), token);
        token
    }

    /// Whether the released tenant's old file may leave now: false when the tenant came back
    /// (or was released again) since `token` was handed out.
    pub fn take_moving_out(&self, tenant: &TenantId, token: u64) -> bool {
        self.0
            .moving_out
            .remove_if(tenant, |_, t| *t == token)
            .is_some()
    }

    /// A tenant arrives (again): its old file must not be moved out from under the new one.
    pub fn arriving(&self, tenant: &TenantId) {
        self.0.moving_out.remove(tenant);
    }
}

/// A write's share of its tenant's gate; a move waits for it.
#[derive(Debug)]
pub struct WritePermit {
    cluster: Cluster,
    tenant: TenantId,
    guard: Option<OwnedRwLockReadGuard<()>>,
    _gate: Arc<RwLock<()>>,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.guard.take();
        // Forget gates nobody uses, so the map holds only tenants being written or moved.
        self.cluster
            .0
            .gates
            .remove_if(&self.tenant, |_, g| Arc::strong_count(g) <= 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_plain() {
        assert!(valid_node_id("n1"));
        assert!(valid_node_id("eu-west_2"));
        for bad in ["", "N1", "a b", "a.b", "ü", &"x".repeat(65)] {
            assert!(!valid_node_id(bad), "{bad:?}");
        }
    }
}
