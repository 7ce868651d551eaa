//! Token-signing keys (sealed) and the companies with back-channel logouts to deliver.

use sqlx::Row;

use super::{Directory, Result};
use tenant_runtime::TenantId;

/// A signing key as stored: the private part sealed with the server key.
#[derive(Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub sealed_key: String,
    pub created_at: i64,
    pub signs_from: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, alg, public_jwk, sealed_key, created_at, signs_from FROM signing_keys
             ORDER BY signs_from, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRow {
                    kid: r.try_get(0)?,
                    alg: r.try_get(1)?,
                    public_jwk: r.try_get(2)?,
                    sealed_key: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    signs_from: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, sealed_key, created_at, signs_from)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.public_jwk)
        .bind(&k.sealed_key)
        .bind(k.created_at)
        .bind(k.signs_from)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes keys no token can still be checked against.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notes that a company's file holds logouts to deliver.
    pub async fn mark_logouts_pending(&self, tenant: &TenantId) -> Result<()> {
        sqlx::query(
            "INSERT INTO logout_pending (tenant_id, since) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET since = excluded.since",
        )
        .bind(tenant.as_str())
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Companies with logouts to deliver, and since when (to clear the mark only if no newer
    /// logout was queued meanwhile).
    pub async fn logouts_pending(&self) -> Result<Vec<(TenantId, i64)>> {
        let rows = sqlx::query("SELECT tenant_id, since FROM logout_pending ORDER BY since")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get(0)?;
            if let Ok(id) = TenantId::parse(&id) {
                out.push((id, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    pub async fn clear_logouts_pending(&self, tenant: &TenantId, since: i64) -> Result<()> {
        sqlx::query("DELETE FROM logout_pending WHERE tenant_id = $1 AND since <= $2")
            .bind(tenant.as_str())
            .bind(since)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
