//! Shared state of the server, handed to every handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tenant_runtime::{Clock, TenantRouter};

use crate::config::{Config, ServerConfig};
use crate::directory::{Directory, Tenant};
use crate::hasher::Hasher;
use crate::mail::Mailer;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub server: Arc<ServerConfig>,
    pub directory: Directory,
    pub tenants: TenantRouter,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub tenant_cache: TenantCache,
    pub throttles: crate::throttle::Throttles,
    pub metrics: crate::metrics::Metrics,
    pub cluster: crate::cluster::Cluster,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A tenant's directory row, cached for well under a second so suspension takes effect
    /// within one.
    pub async fn tenant(
        &self,
        id: &str,
    ) -> Result<Option<Tenant>, crate::directory::DirectoryError> {
        if let Some(t) = self.tenant_cache.get(id) {
            return Ok(Some(t));
        }
        let t = self.directory.tenant(id).await?;
        if let Some(t) = &t {
            self.tenant_cache.put(t.clone());
        }
        Ok(t)
    }
}

/// Tenant rows for a short time; keeps session checks off the directory on hot paths.
#[derive(Clone, Default)]
pub struct TenantCache {
    entries: Arc<DashMap<String, (Instant, Tenant)>>,
}

const TENANT_TTL: Duration = Duration::from_millis(500);

impl TenantCache {
    fn get(&self, id: &str) -> Option<Tenant> {
        let e = self.entries.get(id)?;
        (e.0.elapsed() < TENANT_TTL).then(|| e.1.clone())
    }

    fn put(&self, t: Tenant) {
        if self.entries.len() > 100_000 {
            self.entries.retain(|_, (at, _)| at.elapsed() < TENANT_TTL);
        }
        self.entries.insert(t.id.clone(), (Instant::now(), t));
    }

    pub fn forget(&self, id: &str) {
        self.entries.remove(id);
    }
}
