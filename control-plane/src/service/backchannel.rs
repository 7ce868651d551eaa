//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session ends, every app
//! that held a grant from it is told, server to server, with a signed logout token.
//!
//! Ending a session queues the logouts in the company's own file (a trigger on the sessions
//! table, so no way of ending a session forgets them); [`kick`] then marks the company in the
//! directory and wakes [`deliver`], which posts each logout to its app's
//! `backchannel_logout_uri` and retries failures with backoff. The queue and the mark are
//! durable: deliveries resume after a restart, on whichever node serves the company.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use tenant_runtime::store::{audit, oidc};
use tenant_runtime::{TenantId, TenantRouter};

use super::oidc::claims;
use crate::directory::{Directory, Tenant};
use crate::error::Fault;
use crate::state::AppState;

/// How often the queue is looked at without being woken (retries, marks made by `tenantctl`
/// or another node).
const POLL: Duration = Duration::from_secs(2);
/// Attempts before a logout is given up (about a day with the backoff below).
const MAX_ATTEMPTS: i64 = 16;
const BATCH: u32 = 100;

/// Seconds to wait after the `attempts`-th failure: 5 s doubling, at most 2 hours.
fn backoff(attempts: i64) -> i64 {
    (5_i64 << attempts.clamp(0, 11)).min(7200)
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// After a write that may have ended sessions: if the company has logouts queued, mark it in
/// the directory (so they survive a crash of this process) and wake the deliverer.
pub async fn kick(state: &AppState, tenant: &TenantId) {
    let queued = state
        .tenants
        .read(tenant, |c| oidc::pending_logouts(c).map(|(n, _)| n))
        .await;
    match queued {
        Ok(0) => {}
        Ok(_) => queued_logouts(state, tenant).await,
        Err(e) => {
            tracing::warn!(tenant_id = %tenant, error = %e, "back-channel logout queue not read")
        }
    }
}

/// [`kick`] for a company known to have logouts queued.
pub async fn queued_logouts(state: &AppState, tenant: &TenantId) {
    if let Err(e) = state.directory.mark_logouts_pending(tenant).await {
        tracing::warn!(tenant_id = %tenant, error = %e, "back-channel logouts not marked");
    }
    state.logouts.notify_one();
}

/// Ends every grant of the vendor's apps in a company's file and queues their logouts, with
/// those of `replaced` (grants of a copy the file replaced, e.g. by a restore): for a company
/// suspended or restored by `tenantctl`. The node that serves the company delivers them.
pub async fn end_all_grants(
    directory: &Directory,
    router: &TenantRouter,
    tenant: &TenantId,
    replaced: Vec<(String, String, String)>,
    now: i64,
) -> Result<usize, Fault> {
    if !router.exists(tenant) {
        return Ok(0);
    }
    let ended = router
        .write(tenant, move |tx| {
            oidc::queue_logouts(tx, &replaced, now)?;
            oidc::end_all(tx, now)
        })
        .await?;
    let queued = router
        .read(tenant, |c| oidc::pending_logouts(c).map(|(n, _)| n))
        .await?;
    if queued > 0 {
        directory.mark_logouts_pending(tenant).await?;
    }
    Ok(ended)
}

/// The grants held in a copy of a company's file that is about to be replaced.
pub fn grants_in_copy(path: &std::path::Path) -> Vec<(String, String, String)> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags)
        .ok()
        .and_then(|c| oidc::holders(&c).ok())
        .unwrap_or_default()
}

/// Delivers queued logouts until the process ends.
pub async fn deliver(state: AppState) {
    loop {
        if let Err(e) = deliver_pending(&state).await {
            tracing::warn!(error = %e, "back-channel logouts: delivery round failed");
        }
        tokio::select! {
            () = state.logouts.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn deliver_pending(state: &AppState) -> Result<(), Fault> {
    for (id, since) in state.directory.logouts_pending().await? {
        let Some(tenant) = state.directory.tenant(&id).await? else {
            state.directory.clear_logouts_pending(&id, since).await?;
            continue;
        };
        if state.check_placement(&tenant).is_err() {
            continue; // the node that serves it delivers them
        }
        if let Err(e) = deliver_tenant(state, &tenant).await {
            tracing::warn!(tenant_id = %id, error = %e, "back-channel logouts: not delivered");
            continue;
        }
        let left = state
            .tenants
            .read(&id, |c| oidc::pending_logouts(c).map(|(n, _)| n))
            .await?;
        if left == 0 {
            state.directory.clear_logouts_pending(&id, since).await?;
        }
    }
    Ok(())
}

/// What happened to one delivery.
enum Sent {
    Delivered,
    /// No app, or no back-channel URI: nobody to tell.
    Nobody,
    Failed(String),
}

async fn send(state: &AppState, logout: &oidc::Logout) -> Result<Sent, Fault> {
    let Some(client) = state.directory.client(&logout.client_id).await? else {
        return Ok(Sent::Nobody);
    };
    let Some(uri) = client.backchannel_logout_uri else {
        return Ok(Sent::Nobody);
    };
    let token = claims::logout_token(state, &client.id, &logout.sub, &logout.sid).await?;
    let res = http()
        .post(&uri)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    Ok(match res {
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => Sent::Failed(format!("answered {}", r.status().as_u16())),
        Err(e) => Sent::Failed(if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "unreachable".to_owned()
        }),
    })
}

async fn deliver_tenant(state: &AppState, tenant: &Tenant) -> Result<(), Fault> {
    let now = state.now();
    let due = state
        .tenants
        .read(&tenant.id, move |c| oidc::due_logouts(c, now, BATCH))
        .await?;
    for logout in due {
        let outcome = send(state, &logout).await?;
        let now = state.now();
        let (id, attempts) = (logout.id, logout.attempts + 1);
        let (action, details, done) = match &outcome {
            Sent::Delivered => (
                "oidc.logout_sent",
                json!({"client_id": logout.client_id, "sid": logout.sid}),
                true,
            ),
            Sent::Nobody => ("", json!({}), true),
            Sent::Failed(why) if attempts >= MAX_ATTEMPTS => (
                "oidc.logout_failed",
                json!({"client_id": logout.client_id, "sid": logout.sid, "attempts": attempts, "error": why}),
                true,
            ),
            Sent::Failed(why) => {
                tracing::info!(client_id = %logout.client_id, attempts, error = %why, "back-channel logout will be retried");
                ("", json!({}), false)
            }
        };
        let sub = logout.sub.clone();
        state
            .tenants
            .write(&tenant.id, move |tx| {
                if done {
                    oidc::logout_done(tx, id)?;
                } else {
                    oidc::logout_retry(tx, id, now + backoff(attempts))?;
                }
                if !action.is_empty() {
                    audit::record(tx, None, action, Some(&sub), details, now)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_from_seconds_to_two_hours() {
        assert_eq!(super::backoff(1), 10);
        assert_eq!(super::backoff(2), 20);
        assert_eq!(super::backoff(15), 7200);
        assert!((1..super::MAX_ATTEMPTS).map(super::backoff).sum::<i64>() > 12 * 3600);
    }
}
