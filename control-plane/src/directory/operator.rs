//! Operator tools: bulk writes, repairs and backups (`tenantctl`).

use sqlx::Row;
use tenant_runtime::TenantId;

use super::{
    Backend, Directory, DirectoryError, IndexEntry, Result, Tenant, index_from,
    is_unique_violation, tenant_id_from,
};

impl Directory {
    /// Applies missing schema steps (what [`Directory::connect`] does).
    pub async fn apply_migrations(&self) -> Result<()> {
        self.migrate().await
    }

    /// Schema steps this binary would apply.
    pub async fn pending_migrations(&self) -> Result<Vec<&'static tenant_schema::Migration>> {
        let has_table = match self.backend {
            Backend::Sqlite => sqlx::query(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            ),
            Backend::Postgres => sqlx::query(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'",
            ),
        }
        .fetch_one(&self.pool)
        .await?
        .try_get::<i64, _>(0)?
            > 0;
        let current = if has_table { self.version().await? } else { 0 };
        Ok(tenant_schema::DIRECTORY_MIGRATIONS
            .iter()
            .filter(|m| i64::from(m.version) > current)
            .collect())
    }

    /// Inserts complete tenant rows in one transaction (restores, tests and benchmarks).
    pub async fn insert_tenants(&self, rows: &[Tenant]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for t in rows {
            let r = sqlx::query(
                "INSERT INTO tenants (id, slug, name, status, schema_version, node, placement_epoch, auth_epoch, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.id.as_str())
            .bind(&t.slug)
            .bind(&t.name)
            .bind(t.status.as_str())
            .bind(t.schema_version)
            .bind(&t.node)
            .bind(t.placement_epoch)
            .bind(t.auth_epoch)
            .bind(t.created_at)
            .bind(t.updated_at)
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(DirectoryError::SlugTaken),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Inserts the domains and confirmed email entries of many tenants in one transaction
    /// (bulk provisioning in benchmarks and restores): a taken domain or email fails it all.
    pub async fn insert_index(
        &self,
        domains: &[(String, TenantId)],
        emails: &[IndexEntry],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (domain, tenant) in domains {
            super::index::insert_domain(&mut tx, domain, tenant, self.now()).await?;
        }
        for e in emails {
            let r = sqlx::query(
                "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&e.email)
            .bind(e.tenant_id.as_str())
            .bind(&e.user_id)
            .bind(&e.state)
            .bind(e.created_at)
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(DirectoryError::EmailTaken),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the schema version of many tenants in one transaction.
    pub async fn set_schema_versions(&self, versions: &[(TenantId, i64)]) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        for (id, v) in versions {
            sqlx::query("UPDATE tenants SET schema_version = $1, updated_at = $2 WHERE id = $3")
                .bind(*v)
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Raises a tenant's auth epoch to at least `at_least` and returns it.
    pub async fn raise_auth_epoch_to(&self, id: &TenantId, at_least: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE tenants SET auth_epoch = $1, updated_at = $2 WHERE id = $3 AND auth_epoch < $1",
        )
        .bind(at_least)
        .bind(self.now())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        self.auth_epoch(id).await
    }

    /// Every domain mapping as `(tenant id, domain)`.
    pub async fn all_domains(&self) -> Result<Vec<(TenantId, String)>> {
        let rows = sqlx::query("SELECT tenant_id, domain FROM domains ORDER BY tenant_id, domain")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((tenant_id_from(r, 0)?, r.try_get(1)?)))
            .collect()
    }

    /// Every entry of the user index.
    pub async fn all_index(&self) -> Result<Vec<IndexEntry>> {
        sqlx::query(
            "SELECT email, tenant_id, user_id, state, created_at FROM user_index ORDER BY tenant_id, email",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(index_from)
        .collect()
    }

    /// Writes a consistent copy of an SQLite directory to `dest` (`VACUUM INTO`), while the
    /// server goes on. PostgreSQL directories are backed up with `pg_dump`.
    pub async fn vacuum_into(&self, dest: &std::path::Path) -> Result<()> {
        let dest = dest
            .to_str()
            .ok_or_else(|| sqlx::Error::Configuration("backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
