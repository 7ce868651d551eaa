//! The central directory: tenants, email domains and the user index (canonical email → tenant).
//!
//! One set of queries serves SQLite (the default, a file in the data directory) and PostgreSQL
//! through sqlx's `Any` driver. Parameters are written `$1, $2, …` in order of first use, which
//! both engines read the same way.
//!
//! # Layout
//! - this file: the connection, the schema runner, the row types and errors;
//! - [`tenants`]: tenant rows (status, schema version, auth epoch);
//! - [`clients`]: the vendor's apps (OpenID Connect clients);
//! - [`index`]: domains and the user index (email → tenant), and routing an email;
//! - [`domains`]: domain claims awaiting their DNS proof, the operator's social providers;
//! - [`nodes`]: nodes and placement;
//! - [`operator`]: bulk writes, repairs and backups for `tenantctl`;
//! - [`operator_api`]: operator keys, the operator audit log, idempotent creations;
//! - [`throttles`]: throttle counters shared by the nodes.

mod clients;
mod domains;
mod index;
mod nodes;
mod operator;
mod operator_api;
mod saml;
mod signing;
mod tenants;
mod throttles;

pub use clients::ClientRow;
pub use domains::{DomainClaim, SocialAttempt, SocialProviderRow};
pub use nodes::Node;
pub use operator_api::{IdempotencyRow, OperatorAuditRow, OperatorKeyRow};
pub use signing::SigningKeyRow;
pub use throttles::{LaneRow, WindowRow};

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tenant_runtime::{Clock, TenantId};

/// Directory errors.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory schema version {found} is newer than this binary supports ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error("slug is already in use")]
    SlugTaken,
    #[error("domain already maps to a tenant")]
    DomainTaken,
    #[error("email already belongs to a user")]
    EmailTaken,
    #[error("another process holds the directory migration lock")]
    Locked,
    /// The disk under an SQLite directory is full: the write was refused whole.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// A row the directory cannot read (e.g. a malformed tenant id).
    #[error("malformed directory row: {0}")]
    Corrupt(String),
    #[error("directory: {0}")]
    Sqlx(sqlx::Error),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // SQLITE_FULL: the only place its code is read.
            sqlx::Error::Database(d) if d.code().as_deref() == Some("13") => {
                Self::StorageFull(d.to_string())
            }
            _ => Self::Sqlx(e),
        }
    }
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Directory row written, database not yet confirmed.
    Provisioning,
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            // Unknown states fail closed: such a tenant is not served.
            _ => Self::Provisioning,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub schema_version: i64,
    pub node: String,
    pub placement_epoch: i64,
    pub auth_epoch: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An entry of the user index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexEntry {
    pub email: String,
    pub tenant_id: TenantId,
    pub user_id: String,
    /// `pending` while the tenant write is under way, `active` once confirmed.
    pub state: String,
    pub created_at: i64,
}

const TENANT_COLUMNS: &str = "id, slug, name, status, schema_version, node, placement_epoch, auth_epoch, created_at, updated_at";

fn tenant_id_from(r: &AnyRow, i: usize) -> Result<TenantId> {
    let raw: String = r.try_get(i)?;
    TenantId::parse(&raw).map_err(|_| DirectoryError::Corrupt(format!("tenant id {raw:?}")))
}

fn tenant_from(r: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: tenant_id_from(r, 0)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        status: TenantStatus::parse(&r.try_get::<String, _>(3)?),
        schema_version: r.try_get(4)?,
        node: r.try_get(5)?,
        placement_epoch: r.try_get(6)?,
        auth_epoch: r.try_get(7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

fn index_from(r: &AnyRow) -> Result<IndexEntry> {
    Ok(IndexEntry {
        email: r.try_get(0)?,
        tenant_id: tenant_id_from(r, 1)?,
        user_id: r.try_get(2)?,
        state: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Two PostgreSQL sessions running the same `CREATE TABLE IF NOT EXISTS` at once: one fails
/// with a unique violation on the catalog, or with "type already exists" (42710) or
/// "relation already exists" (42P07).
fn is_concurrent_create(e: &sqlx::Error) -> bool {
    is_unique_violation(e)
        || matches!(e, sqlx::Error::Database(d)
            if matches!(d.code().as_deref(), Some("42710" | "42P07")))
}

/// A handle to the directory; cheap to clone.
#[derive(Debug, Clone)]
pub struct Directory {
    pool: AnyPool,
    backend: Backend,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Directory {
    /// Connects and brings the schema to the newest version. Row times come from `clock`.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::connect_with(url, true, clock).await
    }

    /// Connects, migrating the schema only when `migrate` is set (`tenantctl migrate
    /// --dry-run` looks without changing anything).
    pub async fn connect_with(url: &str, migrate: bool, clock: Arc<dyn Clock>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(url)
                && let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await?;
        let dir = Self {
            pool,
            backend,
            clock,
        };
        if migrate {
            dir.migrate().await?;
        }
        Ok(dir)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Applies missing steps under a lock row (not an advisory lock, so PostgreSQL-compatible
    /// engines without them can serve too). Each step is one transaction.
    async fn migrate(&self) -> Result<()> {
        self.create_if_missing(tenant_schema::SCHEMA_MIGRATIONS_TABLE)
            .await?;
        self.create_if_missing(
            "CREATE TABLE IF NOT EXISTS schema_lock (
                id          BIGINT PRIMARY KEY,
                holder      TEXT   NOT NULL,
                acquired_at BIGINT NOT NULL
            )",
        )
        .await?;
        let latest = i64::from(tenant_schema::DIRECTORY_LATEST);
        if self.version().await? >= latest {
            return self.check_version().await;
        }
        let holder = uuid::Uuid::new_v4().to_string();
        self.lock(&holder).await?;
        let result = self.apply_steps().await;
        sqlx::query("DELETE FROM schema_lock WHERE id = 1 AND holder = $1")
            .bind(&holder)
            .execute(&self.pool)
            .await?;
        result
    }

    /// `CREATE TABLE IF NOT EXISTS`, retried: on PostgreSQL two sessions creating the same
    /// table at once can both pass the existence check, and one then fails with a unique
    /// violation in the catalog although the table is there.
    async fn create_if_missing(&self, sql: &'static str) -> Result<()> {
        let mut attempts = 0;
        loop {
            match sqlx::raw_sql(sql).execute(&self.pool).await {
                Ok(_) => return Ok(()),
                Err(e) if is_concurrent_create(&e) && attempts < 5 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempts)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn lock(&self, holder: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.now();
            // A lock older than ten minutes belongs to a process that died.
            sqlx::query("DELETE FROM schema_lock WHERE id = 1 AND acquired_at < $1")
                .bind(now - 600)
                .execute(&self.pool)
                .await?;
            match sqlx::query(
                "INSERT INTO schema_lock (id, holder, acquired_at) VALUES (1, $1, $2)",
            )
            .bind(holder)
            .bind(now)
            .execute(&self.pool)
            .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    if std::time::Instant::now() > deadline {
                        return Err(DirectoryError::Locked);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn apply_steps(&self) -> Result<()> {
        self.check_version().await?;
        let current = self.version().await?;
        for step in tenant_schema::DIRECTORY_MIGRATIONS {
            if i64::from(step.version) <= current {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(step.sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(i64::from(step.version))
            .bind(step.name)
            .bind(self.now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn check_version(&self) -> Result<()> {
        let found = self.version().await?;
        let supported = i64::from(tenant_schema::DIRECTORY_LATEST);
        if found > supported {
            return Err(DirectoryError::TooNew { found, supported });
        }
        Ok(())
    }

    /// The directory's schema version.
    pub async fn version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(v.unwrap_or(0))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}
