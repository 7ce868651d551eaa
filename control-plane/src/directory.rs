//! The central directory: tenants, email domains and the user index (canonical email → tenant).
//!
//! One set of queries serves SQLite (the default, a file in the data directory) and PostgreSQL
//! through sqlx's `Any` driver. Parameters are written `$1, $2, …` in order of first use, which
//! both engines read the same way.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tenant_runtime::TenantId;

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
    #[error("directory: {0}")]
    Sqlx(#[from] sqlx::Error),
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
    pub id: String,
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

impl Tenant {
    pub fn tenant_id(&self) -> tenant_runtime::Result<TenantId> {
        TenantId::parse(&self.id)
    }
}

/// An entry of the user index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexEntry {
    pub email: String,
    pub tenant_id: String,
    pub user_id: String,
    /// `pending` while the tenant write is under way, `active` once confirmed.
    pub state: String,
    pub created_at: i64,
}

const TENANT_COLUMNS: &str = "id, slug, name, status, schema_version, node, placement_epoch, auth_epoch, created_at, updated_at";

fn tenant_from(r: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: r.try_get(0)?,
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
        tenant_id: r.try_get(1)?,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Directory {
    /// Connects and brings the schema to the newest version.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, true).await
    }

    /// Connects, migrating the schema only when `migrate` is set (`tenantctl migrate
    /// --dry-run` looks without changing anything).
    pub async fn connect_with(url: &str, migrate: bool) -> Result<Self> {
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
        let dir = Self { pool, backend };
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
            let now = now();
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
            .bind(now())
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

    // ---- tenants ----

    /// Inserts a tenant in `provisioning` state.
    pub async fn insert_tenant(
        &self,
        id: &TenantId,
        slug: &str,
        name: &str,
        node: &str,
    ) -> Result<Tenant> {
        let now = now();
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
        self.tenant(id.as_str())
            .await?
            .ok_or(DirectoryError::Sqlx(sqlx::Error::RowNotFound))
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        let q = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(id)
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

    pub async fn set_tenant_status(&self, id: &str, status: TenantStatus) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_schema_version(&self, id: &str, version: i64) -> Result<()> {
        sqlx::query("UPDATE tenants SET schema_version = $1, updated_at = $2 WHERE id = $3")
            .bind(version)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn auth_epoch(&self, id: &str) -> Result<i64> {
        Ok(sqlx::query("SELECT auth_epoch FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Raises a tenant's auth epoch (after a restore) and returns the new value.
    pub async fn bump_auth_epoch(&self, id: &str) -> Result<i64> {
        sqlx::query(
            "UPDATE tenants SET auth_epoch = auth_epoch + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.auth_epoch(id).await
    }

    /// Removes a tenant with its domains and index rows, in one transaction.
    pub async fn delete_tenant(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM user_index WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM domains WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    // ---- domains ----

    pub async fn add_domain(&self, tenant_id: &str, domain: &str) -> Result<()> {
        let r =
            sqlx::query("INSERT INTO domains (domain, tenant_id, created_at) VALUES ($1, $2, $3)")
                .bind(domain)
                .bind(tenant_id)
                .bind(now())
                .execute(&self.pool)
                .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(DirectoryError::DomainTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn remove_domain(&self, tenant_id: &str, domain: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM domains WHERE domain = $1 AND tenant_id = $2")
            .bind(domain)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn domains_of(&self, tenant_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT domain FROM domains WHERE tenant_id = $1 ORDER BY domain")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn domain_owner(&self, domain: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT tenant_id FROM domains WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    // ---- user index ----

    /// Reserves an email for a user of a tenant (`pending`). An email held by another tenant is
    /// [`DirectoryError::EmailTaken`]; a row of the same tenant is returned for the caller to
    /// reconcile.
    pub async fn reserve_email(
        &self,
        email: &str,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<IndexEntry>> {
        let r = sqlx::query(
            "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, 'pending', $4)",
        )
        .bind(email)
        .bind(tenant_id)
        .bind(user_id)
        .bind(now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) if is_unique_violation(&e) => match self.lookup_email(email).await? {
                Some(existing) if existing.tenant_id == tenant_id => Ok(Some(existing)),
                _ => Err(DirectoryError::EmailTaken),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Marks an index row as confirmed by the tenant database.
    pub async fn confirm_email(&self, email: &str, tenant_id: &str, user_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE user_index SET state = 'active', user_id = $1 WHERE email = $2 AND tenant_id = $3",
        )
        .bind(user_id)
        .bind(email)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inserts or fixes an index row as confirmed (used by repair).
    pub async fn upsert_email(&self, email: &str, tenant_id: &str, user_id: &str) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(email)
        .bind(tenant_id)
        .bind(user_id)
        .bind(now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let existing = self.lookup_email(email).await?;
                match existing {
                    Some(x) if x.tenant_id == tenant_id => {
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
        tenant_id: &str,
        user_id: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM user_index WHERE email = $1 AND tenant_id = $2 AND user_id = $3 AND state = 'pending'",
        )
        .bind(email)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Removes an index row, only if it points at this tenant.
    pub async fn remove_email(&self, email: &str, tenant_id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM user_index WHERE email = $1 AND tenant_id = $2")
            .bind(email)
            .bind(tenant_id)
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

    pub async fn index_of(&self, tenant_id: &str) -> Result<Vec<IndexEntry>> {
        sqlx::query(
            "SELECT email, tenant_id, user_id, state, created_at FROM user_index WHERE tenant_id = $1 ORDER BY email",
        )
        .bind(tenant_id)
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

/// Nodes and placement: which node holds which tenant.
impl Directory {
    /// Records a node and its address (again at every start), with a fresh heartbeat.
    pub async fn register_node(&self, id: &str, url: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, url, registered_at, heartbeat_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(url)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a node alive now; false when the node is not registered.
    pub async fn heartbeat(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
            .bind(now())
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
        let since = now() - live_secs;
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
        id: &str,
        from: &str,
        epoch: i64,
        to: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE tenants SET node = $1, placement_epoch = placement_epoch + 1, updated_at = $2
             WHERE id = $3 AND node = $4 AND placement_epoch = $5",
        )
        .bind(to)
        .bind(now())
        .bind(id)
        .bind(from)
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let e: i64 = sqlx::query("SELECT placement_epoch FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(Some(e))
    }
}

/// Operator tools: bulk writes, repairs and backups (`tenantctl`).
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
            .bind(&t.id)
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

    /// Records the schema version of many tenants in one transaction.
    pub async fn set_schema_versions(&self, versions: &[(String, i64)]) -> Result<()> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        for (id, v) in versions {
            sqlx::query("UPDATE tenants SET schema_version = $1, updated_at = $2 WHERE id = $3")
                .bind(*v)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Raises a tenant's auth epoch to at least `at_least` and returns it.
    pub async fn raise_auth_epoch_to(&self, id: &str, at_least: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE tenants SET auth_epoch = $1, updated_at = $2 WHERE id = $3 AND auth_epoch < $1",
        )
        .bind(at_least)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.auth_epoch(id).await
    }

    /// Every domain mapping as `(tenant id, domain)`.
    pub async fn all_domains(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT tenant_id, domain FROM domains ORDER BY tenant_id, domain")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
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

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

fn now() -> i64 {
    tenant_runtime::Clock::now(&tenant_runtime::SystemClock)
}
