//! Tenant rows.

use sqlx::Row;
use tenant_runtime::TenantId;

use super::{
    Directory, DirectoryError, Result, TENANT_COLUMNS, Tenant, TenantStatus, is_unique_violation,
    tenant_from,
};

impl Directory {
    /// Inserts a tenant in `provisioning` state.
    pub async fn insert_tenant(
        &self,
        id: &TenantId,
        slug: &str,
        name: &str,
        node: &str,
    ) -> Result<Tenant> {
        let now = self.now();
        let r = sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, schema_version, node, created_at, updated_at)
             VALUES ($1, $2, $3, 'provisioning', 0, $4, $5, $5)",
        )
        .bind(id.as_str())
        .bind(slug)
        .bind(name)
        .bind(node)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(DirectoryError::SlugTaken),
            Err(e) => return Err(e.into()),
        }
        self.tenant(id)
            .await?
            .ok_or_else(|| DirectoryError::Corrupt(format!("tenant {id} vanished after insert")))
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let q = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| tenant_from(&r))
            .transpose()
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let q = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| tenant_from(&r))
            .transpose()
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let q = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(tenant_from)
            .collect()
    }

    pub async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(self.now())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_tenant_name(&self, id: &TenantId, name: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(self.now())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_schema_version(&self, id: &TenantId, version: i64) -> Result<()> {
        sqlx::query("UPDATE tenants SET schema_version = $1, updated_at = $2 WHERE id = $3")
            .bind(version)
            .bind(self.now())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn auth_epoch(&self, id: &TenantId) -> Result<i64> {
        Ok(sqlx::query("SELECT auth_epoch FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Raises a tenant's auth epoch (after a restore) and returns the new value.
    pub async fn bump_auth_epoch(&self, id: &TenantId) -> Result<i64> {
        sqlx::query(
            "UPDATE tenants SET auth_epoch = auth_epoch + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(self.now())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        self.auth_epoch(id).await
    }

    /// Removes a tenant with its domains and index rows, in one transaction.
    pub async fn delete_tenant(&self, id: &TenantId) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM user_index WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM domains WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM domain_claims WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}
