//! This node's life in the directory: registering, heartbeats, and the housekeeping of the
//! tenants it serves (expired sessions and links go when a tenant is opened, and from the
//! tenants that stay open every ten minutes).

use std::sync::Arc;
use std::time::Duration;

use tenant_runtime::WriteTx;
use tenant_runtime::router::OnOpen;
use tenant_runtime::store::{oidc, sessions, tokens};

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
    for beat in 0u64.. {
        every.tick().await;
        // About once a minute, forget what no longer matters: signatures past their window,
        // throttle rows nobody touched for a day.
        if beat % PURGE_EVERY_BEATS == 0 {
            purge_shared_rows(&state).await;
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

/// Heartbeats between two purges of the shared signature and throttle rows.
const PURGE_EVERY_BEATS: u64 = 60 / HEARTBEAT_SECS;

async fn purge_shared_rows(state: &AppState) {
    if let Err(e) = state.directory.forget_signatures().await {
        tracing::warn!(error = %e, "could not forget old node signatures");
    }
    if let Err(e) = state
        .directory
        .purge_throttles(state.now() - 24 * 3600)
        .await
    {
        tracing::warn!(error = %e, "could not purge old throttle counters");
    }
}

/// How long used and expired links stay in a tenant file (for the audit of recent events).
const KEEP_TOKENS_SECS: i64 = 7 * 24 * 3600;
/// Tenants purged per step of the housekeeping walk, before it yields to requests.
const BATCH: usize = 32;

/// Removes a tenant's expired sessions and old links.
fn purge(tx: &WriteTx<'_>, idle_secs: i64, now: i64) -> tenant_runtime::Result<()> {
    sessions::purge(tx, idle_secs, now)?;
    tokens::purge(tx, now, KEEP_TOKENS_SECS)?;
    tenant_runtime::store::email_changes::purge(tx, now, KEEP_TOKENS_SECS)?;
    Ok(())
}

/// What the router runs each time it opens a tenant: the purge, so a tenant that was closed
/// is cleaned when it is next used, never opened just for that.
pub fn purge_on_open(idle_secs: i64) -> OnOpen {
    Arc::new(move |tx, now| purge(tx, idle_secs, now))
}

/// Purges the tenants open now, in small batches, every `TENANTD_HOUSEKEEPING_SECS` (ten
/// minutes): tenants that stay open are cleaned too, no idle tenant is opened and the hot set
/// is not disturbed.
pub async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(state.server.housekeeping_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await; // the first tick is immediate; tenants were purged when opened
    loop {
        every.tick().await;
        let idle = state.server.session_idle_secs;
        let began = std::time::Instant::now();
        let open = state.tenants.open_tenants();
        for batch in open.chunks(BATCH) {
            for id in batch {
                let now = state.now();
                // Expired sessions had their apps' logouts queued: counted in the same
                // transaction, as a tenant closed since the list was taken must stay closed.
                let purged = state
                    .tenants
                    .write_if_open(id, move |tx| {
                        purge(tx, idle, now)?;
                        Ok(oidc::pending_logouts(tx)?.0)
                    })
                    .await;
                match purged {
                    Ok(Some(queued)) if queued > 0 => {
                        super::backchannel::queued_logouts(&state, id).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(tenant_id = %id, error = %e, "housekeeping: purge failed");
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        tracing::info!(
            tenants = open.len(),
            elapsed_us = began.elapsed().as_micros() as u64,
            "housekeeping pass"
        );
    }
}
