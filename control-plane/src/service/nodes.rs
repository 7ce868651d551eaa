//! This node's life in the directory: registering, heartbeats, and the housekeeping of the
//! tenants it serves.

use std::time::Duration;

use crate::cluster::placement::{HEARTBEAT_SECS, valid_node_id};
use crate::state::AppState;

/// Records this node and its address in the directory.
pub async fn register(state: &AppState) -> anyhow::Result<()> {
    let node = state.cluster.node_id();
    if !valid_node_id(node) {
        anyhow::bail!("invalid node id {node:?}: use 1 to 64 of a-z, 0-9, '-' and '_'");
    }
    if state.cluster.secret().is_some_and(|s| s.is_too_short()) {
        anyhow::bail!("TENANTD_NODE_SECRET is too short: use at least 16 random characters");
    }
    state
        .directory
        .register_node(node, state.cluster.node_url())
        .await?;
    Ok(())
}

/// Heartbeats until aborted; registers again if the row went missing.
pub async fn heartbeat(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
    loop {
        every.tick().await;
        if let Err(e) = state.directory.forget_signatures().await {
            tracing::warn!(error = %e, "could not forget old node signatures");
        }
        // Throttle rows nobody touched for a day are of no use any more.
        if let Err(e) = state
            .directory
            .purge_throttles(state.now() - 24 * 3600)
            .await
        {
            tracing::warn!(error = %e, "could not purge old throttle counters");
        }
        match state.directory.heartbeat(state.cluster.node_id()).await {
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

/// Purges expired sessions and tokens of the tenants placed on this node, now and then.
pub async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let tenants = match state.directory.tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "housekeeping: cannot list tenants");
                continue;
            }
        };
        let idle = state.server.session_idle_secs;
        for t in tenants.into_iter().filter(|t| state.cluster.holds(t)) {
            let now = state.now();
            let purged = state
                .tenants
                .write(&t.id, move |tx| {
                    tenant_runtime::store::sessions::purge(tx, idle, now)?;
                    tenant_runtime::store::tokens::purge(tx, now, 7 * 24 * 3600)?;
                    Ok(())
                })
                .await;
            if let Err(e) = purged {
                tracing::warn!(tenant_id = %t.id, error = %e, "housekeeping: purge failed");
            }
        }
    }
}
