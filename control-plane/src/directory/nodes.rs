//! Nodes and placement: which node holds which tenant.

use sqlx::Row;
use tenant_runtime::TenantId;

use sqlx::any::AnyRow;

use super::{Directory, Result};

/// A node of a multi-node installation, as registered in the directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub id: String,
    /// Where other nodes reach it, e.g. `http://10.0.0.2:8080`.
    pub url: String,
    pub registered_at: i64,
    pub heartbeat_at: i64,
}

fn node_from(r: &AnyRow) -> Result<Node> {
    Ok(Node {
        id: r.try_get(0)?,
        url: r.try_get(1)?,
        registered_at: r.try_get(2)?,
        heartbeat_at: r.try_get(3)?,
    })
}

impl Directory {
    /// Records a node and its address (again at every start), with a fresh heartbeat.
    pub async fn register_node(&self, id: &str, url: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, url, registered_at, heartbeat_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(url)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a node alive now; false when the node is not registered.
    pub async fn heartbeat(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
            .bind(self.now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn node(&self, id: &str) -> Result<Option<Node>> {
        sqlx::query("SELECT id, url, registered_at, heartbeat_at FROM nodes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| node_from(&r))
            .transpose()
    }

    pub async fn nodes(&self) -> Result<Vec<Node>> {
        sqlx::query("SELECT id, url, registered_at, heartbeat_at FROM nodes ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(node_from)
            .collect()
    }

    /// Tenants per node (nodes without tenants are absent).
    pub async fn node_load(&self) -> Result<std::collections::HashMap<String, i64>> {
        let rows = sqlx::query("SELECT node, count(*) FROM tenants GROUP BY node")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The node with the fewest tenants among those that heartbeat within `live_secs`
    /// (ties go to the smallest id); `None` when no node is live.
    pub async fn least_loaded_node(&self, live_secs: i64) -> Result<Option<String>> {
        let since = self.now() - live_secs;
        let load = self.node_load().await?;
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.heartbeat_at >= since)
            .min_by_key(|n| (load.get(&n.id).copied().unwrap_or(0), n.id.clone()))
            .map(|n| n.id))
    }

    /// Moves a tenant to node `to`, only if it is still on `from` at placement `epoch`: the node
    /// and the raised epoch change in one transaction. Returns the new epoch, or `None` when the
    /// tenant was not where the caller thought (nothing changed).
    pub async fn move_placement(
        &self,
        id: &TenantId,
        from: &str,
        epoch: i64,
        to: &str,
    ) -> Result<Option<i64>> {
        // A move keeps the auth epoch: no epoch is below 0.
        self.recover_placement(id, from, epoch, to, 0).await
    }

    /// Places a tenant recovered from its replica on node `to`, only if it is still on `from`
    /// at placement `epoch`: node, raised placement epoch and an auth epoch of at least
    /// `auth_epoch` in one transaction. Returns the new placement epoch, or `None` when the
    /// tenant was not where the caller thought (nothing changed).
    pub async fn recover_placement(
        &self,
        id: &TenantId,
        from: &str,
        epoch: i64,
        to: &str,
        auth_epoch: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE tenants SET node = $1, placement_epoch = placement_epoch + 1,
                 auth_epoch = CASE WHEN auth_epoch < $2 THEN $2 ELSE auth_epoch END,
                 updated_at = $3
             WHERE id = $4 AND node = $5 AND placement_epoch = $6",
        )
        .bind(to)
        .bind(auth_epoch)
        .bind(self.now())
        .bind(id.as_str())
        .bind(from)
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let e: i64 = sqlx::query("SELECT placement_epoch FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(Some(e))
    }
}

impl Directory {
    /// Records a node-to-node signature as used until `expires_at`; false when it was already
    /// (a replay). Shared by every node through the directory.
    pub async fn remember_signature(&self, nonce: &str, expires_at: i64) -> Result<bool> {
        let r = sqlx::query("INSERT INTO seen_signatures (nonce, expires_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(expires_at)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if super::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets signatures whose window has passed.
    pub async fn forget_signatures(&self) -> Result<u64> {
        let r = sqlx::query("DELETE FROM seen_signatures WHERE expires_at < $1")
            .bind(self.now())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
