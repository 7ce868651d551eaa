//! Domains and the user index: which tenant an email signs in to.

use sqlx::Row;
use tenant_runtime::TenantId;

use super::{
    Directory, DirectoryError, IndexEntry, Result, Tenant, index_from, is_unique_violation,
    tenant_id_from,
};

/// Routes `domain` to `tenant_id`, on `conn` (a transaction's or the pool's); a domain held
/// already is `DomainTaken`.
pub(super) async fn insert_domain(
    conn: &mut sqlx::AnyConnection,
    domain: &str,
    tenant_id: &TenantId,
    now: i64,
) -> Result<()> {
    let r = sqlx::query("INSERT INTO domains (domain, tenant_id, created_at) VALUES ($1, $2, $3)")
        .bind(domain)
        .bind(tenant_id.as_str())
        .bind(now)
        .execute(conn)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(DirectoryError::DomainTaken),
        Err(e) => Err(e.into()),
    }
}

impl Directory {
    // ---- domains ----

    pub async fn add_domain(&self, tenant_id: &TenantId, domain: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_domain(&mut conn, domain, tenant_id, self.now()).await
    }

    pub async fn remove_domain(&self, tenant_id: &TenantId, domain: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM domains WHERE domain = $1 AND tenant_id = $2")
            .bind(domain)
            .bind(tenant_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn domains_of(&self, tenant_id: &TenantId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT domain FROM domains WHERE tenant_id = $1 ORDER BY domain")
            .bind(tenant_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn domain_owner(&self, domain: &str) -> Result<Option<TenantId>> {
        let row = sqlx::query("SELECT tenant_id FROM domains WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| tenant_id_from(&r, 0)).transpose()
    }

    // ---- user index ----

    /// Reserves an email for a user of a tenant (`pending`). An email held by another tenant is
    /// [`DirectoryError::EmailTaken`]; a row of the same tenant is returned for the caller to
    /// reconcile.
    pub async fn reserve_email(
        &self,
        email: &str,
        tenant_id: &TenantId,
        user_id: &str,
    ) -> Result<Option<IndexEntry>> {
        let r = sqlx::query(
            "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, 'pending', $4)",
        )
        .bind(email)
        .bind(tenant_id.as_str())
        .bind(user_id)
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) if is_unique_violation(&e) => match self.lookup_email(email).await? {
                Some(existing) if existing.tenant_id == *tenant_id => Ok(Some(existing)),
                _ => Err(DirectoryError::EmailTaken),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Marks an index row as confirmed by the tenant database.
    pub async fn confirm_email(
        &self,
        email: &str,
        tenant_id: &TenantId,
        user_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE user_index SET state = 'active', user_id = $1 WHERE email = $2 AND tenant_id = $3",
        )
        .bind(user_id)
        .bind(email)
        .bind(tenant_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inserts or fixes an index row as confirmed (used by repair).
    pub async fn upsert_email(
        &self,
        email: &str,
        tenant_id: &TenantId,
        user_id: &str,
    ) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(email)
        .bind(tenant_id.as_str())
        .bind(user_id)
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let existing = self.lookup_email(email).await?;
                match existing {
                    Some(x) if x.tenant_id == *tenant_id => {
                        self.confirm_email(email, tenant_id, user_id).await
                    }
                    _ => Err(DirectoryError::EmailTaken),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a `pending` reservation of this tenant and user (an invitation that failed).
    pub async fn remove_pending_email(
        &self,
        email: &str,
        tenant_id: &TenantId,
        user_id: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM user_index WHERE email = $1 AND tenant_id = $2 AND user_id = $3 AND state = 'pending'",
        )
        .bind(email)
        .bind(tenant_id.as_str())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Removes an index row, only if it points at this tenant.
    pub async fn remove_email(&self, email: &str, tenant_id: &TenantId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM user_index WHERE email = $1 AND tenant_id = $2")
            .bind(email)
            .bind(tenant_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Removes an index row, only if it points at this tenant's user `user_id` (the old
    /// address after an email change).
    pub async fn remove_email_of(
        &self,
        email: &str,
        tenant_id: &TenantId,
        user_id: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM user_index WHERE email = $1 AND tenant_id = $2 AND user_id = $3",
        )
        .bind(email)
        .bind(tenant_id.as_str())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn lookup_email(&self, email: &str) -> Result<Option<IndexEntry>> {
        sqlx::query(
            "SELECT email, tenant_id, user_id, state, created_at FROM user_index WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| index_from(&r))
        .transpose()
    }

    pub async fn index_of(&self, tenant_id: &TenantId) -> Result<Vec<IndexEntry>> {
        sqlx::query(
            "SELECT email, tenant_id, user_id, state, created_at FROM user_index WHERE tenant_id = $1 ORDER BY email",
        )
        .bind(tenant_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(index_from)
        .collect()
    }

    /// The tenant an email signs in to: the user index first, then the email's domain.
    pub async fn route_email(&self, email: &str) -> Result<Option<Tenant>> {
        if let Some(entry) = self.lookup_email(email).await? {
            return self.tenant(&entry.tenant_id).await;
        }
        let Some(domain) = tenant_runtime::email::domain_of(email) else {
            return Ok(None);
        };
        match self.domain_owner(domain).await? {
            Some(id) => self.tenant(&id).await,
            None => Ok(None),
        }
    }
}
