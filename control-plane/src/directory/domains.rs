//! Domain claims awaiting their DNS proof, and the operator's social providers with the
//! social sign-ins on their way (the company is known only when the provider answers).

use sqlx::Row;
use tenant_runtime::TenantId;

use super::{Directory, DirectoryError, Result, is_unique_violation};

/// A company's claim on a domain, with the TXT value that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainClaim {
    pub domain: String,
    pub txt_value: String,
    pub created_at: i64,
}

/// A social provider as stored (its client secret sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct SocialProviderRow {
    pub name: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: String,
}

impl std::fmt::Debug for SocialProviderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialProviderRow")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A social sign-in sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialAttempt {
    pub provider: String,
    /// Hex SHA-256 of the browser cookie it is bound to.
    pub browser: String,
    pub nonce: String,
    pub verifier: String,
    pub pending: Option<String>,
    pub expires_at: i64,
}

impl Directory {
    /// Claims `domain` for `tenant_id` (or returns the existing claim of that company).
    pub async fn claim_domain(
        &self,
        tenant_id: &TenantId,
        domain: &str,
        txt_value: &str,
    ) -> Result<DomainClaim> {
        if let Some(c) = self
            .domain_claims(tenant_id)
            .await?
            .into_iter()
            .find(|c| c.domain == domain)
        {
            return Ok(c);
        }
        let now = self.now();
        let r = sqlx::query(
            "INSERT INTO domain_claims (domain, tenant_id, txt_value, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(domain)
        .bind(tenant_id.as_str())
        .bind(txt_value)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(DomainClaim {
                domain: domain.to_owned(),
                txt_value: txt_value.to_owned(),
                created_at: now,
            }),
            Err(e) if is_unique_violation(&e) => Err(DirectoryError::DomainTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn domain_claims(&self, tenant_id: &TenantId) -> Result<Vec<DomainClaim>> {
        let rows = sqlx::query(
            "SELECT domain, txt_value, created_at FROM domain_claims WHERE tenant_id = $1 ORDER BY domain",
        )
        .bind(tenant_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DomainClaim {
                    domain: r.try_get(0)?,
                    txt_value: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The proven claim becomes the company's domain, in one transaction; a domain another
    /// company holds meanwhile is [`DirectoryError::DomainTaken`].
    pub async fn verify_claim(&self, tenant_id: &TenantId, domain: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        super::index::insert_domain(&mut tx, domain, tenant_id, self.now()).await?;
        sqlx::query("DELETE FROM domain_claims WHERE domain = $1 AND tenant_id = $2")
            .bind(domain)
            .bind(tenant_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the company's claim on `domain`; whether there was one.
    pub async fn remove_claim(&self, tenant_id: &TenantId, domain: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM domain_claims WHERE domain = $1 AND tenant_id = $2")
            .bind(domain)
            .bind(tenant_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ---- social providers ----

    pub async fn add_social_provider(&self, p: &SocialProviderRow) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO social_providers (name, label, issuer, client_id, client_secret_sealed, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.name)
        .bind(&p.label)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.client_secret_sealed)
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(DirectoryError::SlugTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn social_providers(&self) -> Result<Vec<SocialProviderRow>> {
        let rows = sqlx::query(
            "SELECT name, label, issuer, client_id, client_secret_sealed FROM social_providers ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SocialProviderRow {
                    name: r.try_get(0)?,
                    label: r.try_get(1)?,
                    issuer: r.try_get(2)?,
                    client_id: r.try_get(3)?,
                    client_secret_sealed: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub async fn remove_social_provider(&self, name: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM social_providers WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a social sign-in under the hex SHA-256 of its `state`; drops expired ones.
    pub async fn begin_social(&self, hash: &str, a: &SocialAttempt) -> Result<()> {
        let now = self.now();
        sqlx::query("DELETE FROM social_attempts WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO social_attempts (hash, provider, browser, nonce, verifier, pending, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hash)
        .bind(&a.provider)
        .bind(&a.browser)
        .bind(&a.nonce)
        .bind(&a.verifier)
        .bind(a.pending.as_deref())
        .bind(now)
        .bind(a.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes a social sign-in out (single use: only the caller whose delete removed the row
    /// gets it), if it has not expired.
    pub async fn take_social(&self, hash: &str) -> Result<Option<SocialAttempt>> {
        let row = sqlx::query(
            "SELECT provider, browser, nonce, verifier, pending, expires_at FROM social_attempts WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let gone = sqlx::query("DELETE FROM social_attempts WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        let a = SocialAttempt {
            provider: r.try_get(0)?,
            browser: r.try_get(1)?,
            nonce: r.try_get(2)?,
            verifier: r.try_get(3)?,
            pending: r.try_get(4)?,
            expires_at: r.try_get(5)?,
        };
        Ok((a.expires_at > self.now()).then_some(a))
    }
}
