//! The SAML replay cache: every assertion accepted, kept until it could no longer be replayed,
//! in the directory so that a response posted to two nodes is accepted once.

use super::{Directory, Result, is_unique_violation};

impl Directory {
    /// Records an assertion (`digest` names its connection and ID) as accepted until
    /// `expires_at`; false when it was accepted before. Drops the expired ones.
    pub async fn accept_saml_assertion(&self, digest: &str, expires_at: i64) -> Result<bool> {
        sqlx::query("DELETE FROM saml_assertions WHERE expires_at <= $1")
            .bind(self.now())
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO saml_assertions (digest, expires_at, finished) VALUES ($1, $2, 0)",
        )
        .bind(digest)
        .bind(expires_at)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks an accepted assertion's sign-in as ended; true only for the first caller.
    pub async fn finish_saml_assertion(&self, digest: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE saml_assertions SET finished = 1 WHERE digest = $1 AND finished = 0",
        )
        .bind(digest)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
