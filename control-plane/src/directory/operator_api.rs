//! The operator API's rows: keys, the operator audit log, and idempotent creations.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Directory, DirectoryError, Result, is_unique_violation};

/// An operator key as stored: never the secret, only its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKeyRow {
    pub id: String,
    pub name: String,
    /// SHA-256 (hex) of the key's secret.
    pub secret_hash: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// CIDRs the key may be used from; empty: anywhere.
    pub allowed_cidrs: Vec<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for OperatorKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorKeyRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

const KEY_COLUMNS: &str = "id, name, secret_hash, scopes, allowed_cidrs, expires_at, created_at, last_used_at, revoked_at";

fn key_from(r: &AnyRow) -> Result<OperatorKeyRow> {
    let raw: String = r.try_get(4)?;
    let allowed_cidrs = serde_json::from_str(&raw)
        .map_err(|_| DirectoryError::Corrupt(format!("operator key networks {raw:?}")))?;
    Ok(OperatorKeyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        secret_hash: r.try_get(2)?,
        scopes: r.try_get(3)?,
        allowed_cidrs,
        expires_at: r.try_get(5)?,
        created_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
    })
}

/// One entry of the operator audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorAuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<String>,
    pub tenant_slug: Option<String>,
    pub status: i64,
    pub ip: String,
    /// JSON text.
    pub details: String,
}

/// What the first request under an Idempotency-Key left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    pub request_hash: String,
    /// `None` while the first request is still working.
    pub answer: Option<(u16, String)>,
    pub created_at: i64,
}

impl Directory {
    // ---- keys ----

    pub async fn insert_operator_key(&self, k: &OperatorKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_keys (id, name, secret_hash, scopes, allowed_cidrs, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.secret_hash)
        .bind(&k.scopes)
        .bind(serde_json::Value::from(k.allowed_cidrs.clone()).to_string())
        .bind(k.expires_at)
        .bind(k.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn operator_key(&self, id: &str) -> Result<Option<OperatorKeyRow>> {
        let q = format!("SELECT {KEY_COLUMNS} FROM operator_keys WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| key_from(&r))
            .transpose()
    }

    pub async fn operator_keys(&self) -> Result<Vec<OperatorKeyRow>> {
        let q = format!("SELECT {KEY_COLUMNS} FROM operator_keys ORDER BY created_at, id");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from)
            .collect()
    }

    /// Revokes a key; false when there is no such key or it was revoked already.
    pub async fn revoke_operator_key(&self, id: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE operator_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a use of a key, at most once a minute (no write per request).
    pub async fn touch_operator_key(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE operator_keys SET last_used_at = $1
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(now - 60)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- the operator audit log ----

    pub async fn record_operator_call(&self, e: &OperatorAuditRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_audit (id, at, actor, action, tenant_id, tenant_slug, status, ip, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&e.id)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(e.tenant_id.as_deref())
        .bind(e.tenant_slug.as_deref())
        .bind(e.status)
        .bind(&e.ip)
        .bind(&e.details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- idempotent creations ----

    /// Claims an Idempotency-Key for a request: `Ok(None)` when this request is the first,
    /// otherwise what the first one left. Keys older than `forget_before` are dropped first.
    pub async fn claim_idempotency_key(
        &self,
        actor: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<Option<IdempotencyRow>> {
        sqlx::query("DELETE FROM operator_idempotency WHERE created_at < $1")
            .bind(forget_before)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO operator_idempotency (actor, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(actor)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) if is_unique_violation(&e) => self.idempotency_key(actor, key).await,
            Err(e) => Err(e.into()),
        }
    }

    pub async fn idempotency_key(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRow>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response, created_at FROM operator_idempotency
             WHERE actor = $1 AND idem_key = $2",
        )
        .bind(actor)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let status: Option<i64> = r.try_get(1)?;
            let response: Option<String> = r.try_get(2)?;
            Ok(IdempotencyRow {
                request_hash: r.try_get(0)?,
                answer: match (status, response) {
                    (Some(s), Some(body)) => Some((u16::try_from(s).unwrap_or(500), body)),
                    _ => None,
                },
                created_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Keeps the answer of the request that claimed the key.
    pub async fn finish_idempotency_key(
        &self,
        actor: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE operator_idempotency SET status = $1, response = $2 WHERE actor = $3 AND idem_key = $4",
        )
        .bind(i64::from(status))
        .bind(response)
        .bind(actor)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a key up (its request failed in a way a retry may fix), if it is still unfinished
    /// and claimed at `created_at`.
    pub async fn release_idempotency_key(
        &self,
        actor: &str,
        key: &str,
        created_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM operator_idempotency WHERE actor = $1 AND idem_key = $2 AND status IS NULL AND created_at = $3",
        )
        .bind(actor)
        .bind(key)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
