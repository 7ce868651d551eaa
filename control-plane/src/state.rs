//! Shared state of the server, handed to every handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tenant_runtime::{Clock, TenantId, TenantRouter};

use crate::cluster::Cluster;
use crate::config::{Config, ServerConfig};
use crate::directory::{Directory, DirectoryError, Tenant};
use crate::error::Fault;
use crate::hasher::Hasher;
use crate::keys::ServerKey;
use crate::keys::jws::{Keyring, Verified};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::throttle::Throttles;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub server: Arc<ServerConfig>,
    pub directory: Directory,
    pub tenants: TenantRouter,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub tenant_cache: TenantCache,
    pub throttles: Throttles,
    pub metrics: Metrics,
    pub cluster: Cluster,
    pub keys: ServerKey,
    /// The token-signing keys as last read from the directory.
    pub keyring: Arc<Keyring>,
    /// Access tokens checked already.
    pub verified: Arc<Verified>,
    /// Wakes the back-channel logout deliverer.
    pub logouts: Arc<tokio::sync::Notify>,
    /// The apps' web origins allowed by CORS.
    pub web_origins: OriginCache,
    /// Calls left to each operator key on this node.
    pub operator_rate: crate::throttle::Buckets,
    /// How far behind the replica is, when Litestream replicates this node's files.
    pub replication: Option<Arc<crate::replica::supervisor::Lag>>,
    /// Identity providers' discovery documents and keys, as last fetched.
    pub idp_keys: Arc<crate::keys::remote::RemoteKeys>,
}

/// The registered web origins, kept a few seconds so CORS does not ask the directory for
/// every request.
#[derive(Clone, Debug, Default)]
pub struct OriginCache(Arc<parking_lot::RwLock<Option<Loaded>>>);

/// The origins, and when they were read.
type Loaded = (Arc<Vec<String>>, i64);

impl OriginCache {
    const SECS: i64 = 5;

    pub fn get(&self, now: i64) -> Option<Arc<Vec<String>>> {
        self.0
            .read()
            .as_ref()
            .filter(|(_, at)| now - *at < Self::SECS)
            .map(|(o, _)| o.clone())
    }

    pub fn put(&self, origins: Vec<String>, now: i64) -> Arc<Vec<String>> {
        let origins = Arc::new(origins);
        *self.0.write() = Some((origins.clone(), now));
        origins
    }
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A tenant's directory row, cached for well under a second so suspension takes effect
    /// within one.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        if let Some(t) = self.tenant_cache.get(id) {
            return Ok(Some(t));
        }
        let t = self.directory.tenant(id).await?;
        if let Some(t) = &t {
            self.tenant_cache.put(t.clone());
        }
        Ok(t)
    }

    /// The tenant's row straight from the directory (no cache), for decisions that must not
    /// act on a stale row (moves, tokens).
    pub async fn fresh_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        self.tenant_cache.forget(id);
        self.directory.tenant(id).await
    }

    /// Refuses a tenant this node does not hold (the directory places it elsewhere, or this
    /// node released it): its file here, if any, is not the live one.
    pub fn check_placement(&self, tenant: &Tenant) -> Result<(), Fault> {
        if self.cluster.holds(tenant) {
            Ok(())
        } else {
            Err(Fault::NotPlacedHere {
                tenant: tenant.id.clone(),
                node: tenant.node.clone(),
            })
        }
    }
}

/// Tenant rows for a short time; keeps session checks off the directory on hot paths.
#[derive(Clone, Debug, Default)]
pub struct TenantCache {
    entries: Arc<DashMap<TenantId, (Instant, Tenant)>>,
}

const TENANT_TTL: Duration = Duration::from_millis(500);

impl TenantCache {
    fn get(&self, id: &TenantId) -> Option<Tenant> {
        let e = self.entries.get(id)?;
        (e.0.elapsed() < TENANT_TTL).then(|| e.1.clone())
    }

    fn put(&self, t: Tenant) {
        if self.entries.len() > 100_000 {
            self.entries.retain(|_, (at, _)| at.elapsed() < TENANT_TTL);
        }
        self.entries.insert(t.id.clone(), (Instant::now(), t));
    }

    pub fn forget(&self, id: &TenantId) {
        self.entries.remove(id);
    }
}
