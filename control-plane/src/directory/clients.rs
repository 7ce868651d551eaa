//! The vendor's apps (OpenID Connect clients).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Directory, DirectoryError, Result};

/// A registered app, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    /// SHA-256 (hex) of a confidential client's secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub web_origins: Vec<String>,
    /// Operator scopes the client may obtain with the client-credentials grant.
    pub operator_scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("public", &self.secret_hash.is_none())
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, web_origins, created_at, updated_at, operator_scopes";

fn list_of(r: &AnyRow, i: usize) -> Result<Vec<String>> {
    let raw: String = r.try_get(i)?;
    serde_json::from_str(&raw).map_err(|_| DirectoryError::Corrupt(format!("client list {raw:?}")))
}

fn json_of(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn client_from(r: &AnyRow) -> Result<ClientRow> {
    Ok(ClientRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        secret_hash: r.try_get(2)?,
        redirect_uris: list_of(r, 3)?,
        post_logout_redirect_uris: list_of(r, 4)?,
        backchannel_logout_uri: r.try_get(5)?,
        web_origins: list_of(r, 6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        operator_scopes: r
            .try_get::<String, _>(9)?
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}

impl Directory {
    pub async fn insert_client(&self, c: &ClientRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris,
                 backchannel_logout_uri, web_origins, created_at, updated_at, operator_scopes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.secret_hash.as_deref())
        .bind(json_of(&c.redirect_uris))
        .bind(json_of(&c.post_logout_redirect_uris))
        .bind(c.backchannel_logout_uri.as_deref())
        .bind(json_of(&c.web_origins))
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.operator_scopes.join(" "))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>> {
        let q = format!("SELECT {COLUMNS} FROM oidc_clients WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| client_from(&r))
            .transpose()
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let q = format!("SELECT {COLUMNS} FROM oidc_clients ORDER BY created_at, id");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_from)
            .collect()
    }

    pub async fn delete_client(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM oidc_clients WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Replaces a confidential client's secret hash; false when no such confidential client.
    pub async fn set_client_secret(&self, id: &str, secret_hash: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE oidc_clients SET secret_hash = $1, updated_at = $2
             WHERE id = $3 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(self.now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}
