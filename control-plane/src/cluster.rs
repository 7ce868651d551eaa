//! Several nodes sharing one directory: each tenant is placed on one node, and a request that
//! reaches another node is forwarded to the owner.

use std::sync::Arc;

use crate::config::NodeConfig;

/// Set on a response that came from another node: that node's id (for the request log).
#[derive(Debug, Clone)]
pub struct ForwardedTo(pub String);

/// This node, as the rest of the server sees it; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

pub struct Inner {
    /// This node's id: tenants whose `node` is this are served here.
    pub node_id: String,
    /// Where other nodes reach this one.
    pub node_url: String,
    secret: Option<String>,
}

impl std::ops::Deref for Cluster {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("node_url", &self.node_url)
            .field("forwarding", &self.secret.is_some())
            .finish()
    }
}

impl Cluster {
    /// `node_url` is the configured address, or the one derived from the bound listener.
    pub fn new(node: &NodeConfig, node_url: String) -> Self {
        Self(Arc::new(Inner {
            node_id: node.node_id.clone(),
            node_url,
            secret: node.node_secret.clone().filter(|s| !s.is_empty()),
        }))
    }

    /// Whether this node forwards requests and accepts forwarded ones.
    pub fn forwarding(&self) -> bool {
        self.secret.is_some()
    }
}

/// How often a node records that it is alive.
pub const HEARTBEAT_SECS: u64 = 5;
/// A node that has not heartbeat for this long gets no new tenants.
pub const LIVE_SECS: i64 = 30;

/// Records this node and its address in the directory.
pub async fn register(state: &crate::state::AppState) -> anyhow::Result<()> {
    state
        .directory
        .register_node(&state.cluster.node_id, &state.cluster.node_url)
        .await?;
    Ok(())
}

/// Heartbeats until aborted; registers again if the row went missing.
pub async fn heartbeat(state: crate::state::AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(HEARTBEAT_SECS));
    loop {
        every.tick().await;
        match state.directory.heartbeat(&state.cluster.node_id).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = register(&state).await {
                    tracing::warn!(error = %e, "could not register this node");
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}
