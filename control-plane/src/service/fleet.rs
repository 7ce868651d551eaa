//! Operating the fleet of tenants (`tenantctl`): per-tenant operation locks, the trash, delete
//! and undelete, and rebuilding a tenant's part of the user index from its file.
//!
//! The directory and a tenant file are never written in one transaction, so every operation
//! here is a sequence of idempotent steps ordered so that a crash between any two leaves a
//! state that `doctor` recognises and repairs, and that never routes a user to the
//! wrong tenant:
//! - a tenant is `provisioning` (never routed to) from its first row until its file and index
//!   are complete; doctor rolls an unfinished one back;
//! - nothing is removed before a copy of it is complete in the trash;
//! - a tenant id is never reused for a new file (undelete gives the tenant a fresh id), so a
//!   server still holding an old file open can never mix it with a new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenant_runtime::{Clock, TenantId, TenantRouter, ops};

use crate::cluster::client::NodeError;
use crate::config::Config;
use crate::directory::{Directory, DirectoryError, Tenant, TenantStatus};

/// How long deleted tenants stay in the trash, ready for `tenantctl tenant undelete`.
pub const TRASH_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// How long a running server may keep serving a tenant after its row changed (it caches tenant
/// rows for 500 ms); delete waits this long after suspending.
pub const SERVER_CACHE_GRACE: Duration = Duration::from_millis(1100);

/// A hook called after each durable step of an operation, with the step's name; `tenantctl`
/// uses it for its crash tests (`TENANTCTL_CRASH_AT=<step>`).
pub type Checkpoint<'a> = &'a (dyn Fn(&'static str) + Send + Sync);

/// A tenant's slug: 3 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn valid_slug(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Errors of operator commands (creating, deleting, restoring, repairing tenants). Each
/// message says what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no tenant with slug {0:?}; `tenantctl tenant list` shows the tenants")]
    UnknownTenant(String),
    #[error("invalid slug {0:?}: use 3 to 63 of a-z, 0-9 and '-', not starting or ending with '-'")]
    InvalidSlug(String),
    #[error("invalid domain {0:?}: give a domain name such as acme.example")]
    InvalidDomain(String),
    #[error("invalid name: give 1 to 100 characters without control characters")]
    InvalidName,
    #[error("invalid email {0:?}: give an address such as ann@acme.example")]
    InvalidEmail(String),
    #[error(
        "tenant {slug:?} is being created on node {node:?}; finish it there (without --node, or with --node {node})"
    )]
    OtherNode { slug: String, node: String },
    #[error("slug {0:?} is already in use; pick another slug or delete that tenant first")]
    SlugTaken(String),
    #[error(
        "domain {domain:?} already maps to tenant {owner:?}; remove it there first (`tenantctl domain remove {owner} {domain}`)"
    )]
    DomainTaken { domain: String, owner: String },
    #[error(
        "domain {domain:?} is not mapped to tenant {slug:?}; `tenantctl tenant show {slug}` lists its domains"
    )]
    DomainNotMapped { domain: String, slug: String },
    #[error(
        "email {0:?} already belongs to a user of another tenant (`tenantctl user find {0}`); choose another address or remove that user first"
    )]
    EmailTaken(String),
    #[error("no user with email {0} in any tenant")]
    UnknownUser(String),
    #[error("{0} is indexed to a tenant that does not exist; run `tenantctl doctor`")]
    IndexedToNothing(String),
    #[error(
        "{email} belongs to tenant {slug}, whose database cannot be read ({cause}); run `tenantctl doctor`"
    )]
    TenantUnreadable {
        email: String,
        slug: String,
        cause: String,
    },
    #[error(
        "another tenantctl command is working on tenant {0:?}; wait for it to finish and try again"
    )]
    Busy(String),
    #[error(
        "tenant {0:?} did not finish provisioning; re-run the same `tenantctl tenant create`, or run `tenantctl doctor --repair` to roll it back"
    )]
    Provisioning(String),
    #[error("no deleted tenant {0:?} in the trash; deleted tenants are kept for 30 days")]
    NotInTrash(String),
    #[error(
        "tenant {slug:?} was deleted {days} days ago, past the 30-day retention; restore it from a backup instead"
    )]
    TrashExpired { slug: String, days: i64 },
    #[error("{0}")]
    Backup(String),
    #[error("{} already exists and is not empty; give a new folder to --out", .0.display())]
    BackupExists(PathBuf),
    #[error(
        "the backup of {slug:?} has schema version {found}, newer than this tenantctl supports ({supported}); use a newer tenantctl"
    )]
    TooNew {
        slug: String,
        found: u32,
        supported: u32,
    },
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Runtime(#[from] tenant_runtime::Error),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::error::Fault> for FleetError {
    fn from(f: crate::error::Fault) -> Self {
        match f {
            crate::error::Fault::Directory(d) => Self::Directory(d),
            other => Self::Other(other.into()),
        }
    }
}

impl FleetError {
    /// A stable code for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownTenant(_) => "unknown_tenant",
            Self::InvalidSlug(_) => "invalid_slug",
            Self::InvalidDomain(_) => "invalid_domain",
            Self::InvalidName => "invalid_name",
            Self::InvalidEmail(_) => "invalid_email",
            Self::OtherNode { .. } => "other_node",
            Self::Node(e) => e.code(),
            Self::SlugTaken(_) => "slug_taken",
            Self::DomainTaken { .. } => "domain_taken",
            Self::DomainNotMapped { .. } => "domain_not_mapped",
            Self::EmailTaken(_) => "email_taken",
            Self::UnknownUser(_) => "unknown_user",
            Self::IndexedToNothing(_) => "unknown_tenant",
            Self::TenantUnreadable { .. } => "tenant_unreadable",
            Self::Busy(_) => "tenant_busy",
            Self::Provisioning(_) => "tenant_provisioning",
            Self::NotInTrash(_) => "not_in_trash",
            Self::TrashExpired { .. } => "trash_expired",
            Self::Backup(_) => "backup_invalid",
            Self::BackupExists(_) => "backup_exists",
            Self::TooNew { .. } => "backup_too_new",
            Self::Directory(_) => "directory_error",
            Self::Runtime(e) => e.code(),
            Self::Io(_) => "io_error",
            Self::Other(_) => "error",
        }
    }
}

pub type FleetResult<T> = Result<T, FleetError>;

/// What operator commands work on: the same directory, tenant files and settings as the server.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub directory: Directory,
    pub router: TenantRouter,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The node whose tenants folder `router` holds: where a tenant brought in here is placed.
    pub node: String,
    /// Who acts through the operator API (its key or app), named in the tenant's audit log;
    /// `None` for `tenantctl` on the server.
    pub via: Option<String>,
}

impl Fleet {
    /// Records an operator action in the tenant's own audit log, so its admins see it. Best
    /// effort: a tenant whose file is on another node is logged, not failed.
    pub async fn audit(&self, tenant: &Tenant, action: &'static str, details: serde_json::Value) {
        let id = tenant.id.clone();
        if !self.router.exists(&id) {
            tracing::warn!(
                "{action} not written to the audit log of {}: its file is not on this node",
                tenant.slug
            );
            return;
        }
        let mut details = details;
        if let (Some(via), serde_json::Value::Object(m)) = (&self.via, &mut details) {
            m.insert("via".into(), serde_json::Value::String(via.clone()));
        }
        let now = self.clock.now();
        let written = self
            .router
            .write(&id, move |tx| {
                tenant_runtime::store::audit::record(
                    tx,
                    Some("operator"),
                    action,
                    None,
                    details,
                    now,
                )
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(
                "{action} not written to the audit log of {}: {e}",
                tenant.slug
            );
        }
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> FleetResult<Tenant> {
        self.directory
            .tenant_by_slug(slug)
            .await?
            .ok_or_else(|| FleetError::UnknownTenant(slug.to_owned()))
    }

    /// Runs file work on the blocking pool.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&TenantRouter) -> FleetResult<T> + Send + 'static,
    ) -> FleetResult<T> {
        let router = self.router.clone();
        tokio::task::spawn_blocking(move || f(&router))
            .await
            .map_err(|e| FleetError::Other(anyhow::anyhow!("file task failed: {e}")))?
    }
}

// ---- operation locks ---------------------------------------------------------------------------

/// Held by a command that changes one tenant, so that a concurrent command or `doctor` leaves
/// its work alone. An advisory lock on `<data>/locks/<slug>.lock`: the kernel drops it when the
/// process dies, whatever the way.
#[derive(Debug)]
pub struct OperationLock {
    _file: std::fs::File,
}

fn lock_path(config: &Config, slug: &str) -> FleetResult<PathBuf> {
    if !valid_slug(slug) {
        return Err(FleetError::InvalidSlug(slug.to_owned()));
    }
    let dir = config.data_dir.join("locks");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{slug}.lock")))
}

/// Takes the operation lock of a slug, or fails at once with [`FleetError::Busy`].
pub fn lock(config: &Config, slug: &str) -> FleetResult<OperationLock> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(config, slug)?)?;
    match file.try_lock() {
        Ok(()) => Ok(OperationLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(FleetError::Busy(slug.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Whether a live process holds the operation lock of a slug.
pub fn is_locked(config: &Config, slug: &str) -> bool {
    matches!(lock(config, slug), Err(FleetError::Busy(_)))
}

// ---- the trash ---------------------------------------------------------------------------------

/// Why a copy is in the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrashKind {
    /// `tenantctl tenant delete`: undelete brings it back.
    Deleted,
    /// An unfinished provisioning rolled back by doctor.
    RolledBack,
    /// A file without a directory row, moved away by doctor.
    Orphan,
    /// The content a restore replaced.
    Replaced,
}

/// One user of the index, as kept in a trash note.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexedUser {
    pub email: String,
    pub user_id: String,
    pub state: String,
}

/// `trash.json`, next to the copy: what undelete needs to bring the directory rows back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashNote {
    pub format: u32,
    pub kind: TrashKind,
    pub tenant_id: String,
    pub slug: String,
    pub name: String,
    /// The status before the operation (undelete restores it).
    pub status: String,
    pub domains: Vec<String>,
    pub user_index: Vec<IndexedUser>,
    pub schema_version: i64,
    pub auth_epoch: i64,
    pub deleted_at: i64,
    /// `tenant.db` when the folder holds a copy of the file.
    pub file: Option<String>,
    /// The copy is the raw file (SQLite could not read it), with its `-wal` if there was one.
    pub raw_copy: bool,
}

/// A folder of the trash.
#[derive(Debug, Clone)]
pub struct TrashEntry {
    pub path: PathBuf,
    pub note: TrashNote,
}

impl TrashEntry {
    pub fn file(&self) -> Option<PathBuf> {
        self.note.file.as_ref().map(|f| self.path.join(f))
    }
}

const NOTE: &str = "trash.json";
/// The name of the tenant file inside a trash entry.
pub const COPY: &str = "tenant.db";

/// The trash's content.
#[derive(Debug, Default)]
pub struct Trash {
    /// Complete entries, oldest first.
    pub entries: Vec<TrashEntry>,
    /// Leftovers of interrupted writes (`.…partial` folders) with their age in seconds.
    pub partial: Vec<(PathBuf, u64)>,
}

/// Reads the trash folder.
pub fn trash_list(config: &Config) -> FleetResult<Trash> {
    let dir = config.trash_dir();
    let mut entries = Vec::new();
    let mut partial = Vec::new();
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Trash { entries, partial });
        }
        Err(e) => return Err(e.into()),
    };
    for item in read {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if name.ends_with(".partial") {
                let age = item
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map_or(0, |d| d.as_secs());
                partial.push((item.path(), age));
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(item.path().join(NOTE)) else {
            continue;
        };
        if let Ok(note) = serde_json::from_str::<TrashNote>(&text) {
            entries.push(TrashEntry {
                path: item.path(),
                note,
            });
        }
    }
    entries.sort_by(|a, b| (a.note.deleted_at, &a.path).cmp(&(b.note.deleted_at, &b.path)));
    Ok(Trash { entries, partial })
}

/// What is known of a tenant when it goes to the trash.
#[derive(Debug, Clone)]
pub struct TrashSource {
    pub tenant_id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub domains: Vec<String>,
    pub user_index: Vec<IndexedUser>,
    pub schema_version: i64,
    pub auth_epoch: i64,
}

impl TrashSource {
    /// The source for a tenant of the directory, with its domains and index rows.
    pub async fn of(directory: &Directory, t: &Tenant) -> FleetResult<Self> {
        Ok(Self {
            tenant_id: t.id.clone(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            status: t.status.as_str().to_owned(),
            domains: directory.domains_of(&t.id).await?,
            user_index: directory
                .index_of(&t.id)
                .await?
                .into_iter()
                .map(|e| IndexedUser {
                    email: e.email,
                    user_id: e.user_id,
                    state: e.state,
                })
                .collect(),
            schema_version: t.schema_version,
            auth_epoch: t.auth_epoch,
        })
    }

    /// The source for a file that has no directory row.
    pub fn orphan(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            slug: String::new(),
            name: String::new(),
            status: String::new(),
            domains: Vec::new(),
            user_index: Vec::new(),
            schema_version: 0,
            auth_epoch: 0,
        }
    }
}

/// Puts a consistent copy of a tenant's file (if it has one) and a note in a new trash folder.
/// The folder is written under a hidden name and renamed when complete, so an entry is whole or
/// absent. Blocking.
pub fn trash_put(
    router: &TenantRouter,
    config: &Config,
    src: &TrashSource,
    kind: TrashKind,
    now: i64,
) -> FleetResult<TrashEntry> {
    let trash = config.trash_dir();
    std::fs::create_dir_all(&trash)?;
    let kind_name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let label = if src.slug.is_empty() {
        "orphan"
    } else {
        &src.slug
    };
    let mut name = format!("{now}-{label}-{}-{kind_name}", src.tenant_id);
    let mut n = 1;
    while trash.join(&name).exists() {
        n += 1;
        name = format!("{now}-{label}-{}-{kind_name}-{n}", src.tenant_id);
    }
    let partial = trash.join(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    let (file, raw_copy) = if router.exists(&src.tenant_id) {
        let dest = partial.join(COPY);
        match ops::snapshot(router, &src.tenant_id, &dest) {
            Ok(()) => (Some(COPY.to_owned()), false),
            Err(e) => {
                tracing::warn!(tenant_id = %src.tenant_id, error = %e, "file unreadable; keeping a raw copy");
                let _ = std::fs::remove_file(&dest);
                ops::copy_raw(router, &src.tenant_id, &dest)?;
                (Some(COPY.to_owned()), true)
            }
        }
    } else {
        (None, false)
    };
    let note = TrashNote {
        format: 1,
        kind,
        tenant_id: src.tenant_id.to_string(),
        slug: src.slug.clone(),
        name: src.name.clone(),
        status: src.status.clone(),
        domains: src.domains.clone(),
        user_index: src.user_index.clone(),
        schema_version: src.schema_version,
        auth_epoch: src.auth_epoch,
        deleted_at: now,
        file,
        raw_copy,
    };
    write_synced(
        &partial.join(NOTE),
        &serde_json::to_vec_pretty(&note).map_err(anyhow::Error::from)?,
    )?;
    ops::sync_dir(&partial)?;
    let path = trash.join(&name);
    std::fs::rename(&partial, &path)?;
    ops::sync_dir(&trash)?;
    Ok(TrashEntry { path, note })
}

/// Writes a file under a temporary name, syncs it and renames it into place.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

// ---- delete and undelete -----------------------------------------------------------------------

/// The steps of [`delete`], in order.
pub const DELETE_STEPS: &[&str] = &["suspended", "trashed", "rows_removed", "file_removed"];

/// Deletes a tenant: suspends it (a running server stops serving it within a second), puts a
/// copy of its file and a note with its directory rows in the trash, removes its directory rows
/// and then its file.
pub async fn delete(
    fleet: &Fleet,
    slug: &str,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<TrashEntry> {
    let t = fleet.tenant_by_slug(slug).await?;
    let _lock = lock(&fleet.config, &t.slug)?;
    let id = t.id.clone();
    if t.status == TenantStatus::Active {
        fleet
            .directory
            .set_tenant_status(&t.id, TenantStatus::Suspended)
            .await?;
        checkpoint("suspended");
        // Let a running server's tenant cache expire, so no write it acknowledges is missed by
        // the copy.
        tokio::time::sleep(SERVER_CACHE_GRACE).await;
    }
    // The note keeps the status from before the delete.
    let src = TrashSource::of(&fleet.directory, &t).await?;
    let config = fleet.config.clone();
    let entry = fleet
        .blocking(move |r| trash_put(r, &config, &src, TrashKind::Deleted, now))
        .await?;
    checkpoint("trashed");
    fleet.directory.delete_tenant(&t.id).await?;
    checkpoint("rows_removed");
    fleet.blocking(move |r| Ok(ops::remove(r, &id)?)).await?;
    checkpoint("file_removed");
    Ok(entry)
}

/// The steps of [`undelete`] and of a restore into a missing tenant, in order.
pub const UNDELETE_STEPS: &[&str] = &[
    "tenant_row",
    "domains",
    "file_restored",
    "index_rebuilt",
    "activated",
];

/// The newest `deleted` trash entry of a slug.
pub fn find_deleted(config: &Config, slug: &str) -> FleetResult<Option<TrashEntry>> {
    Ok(trash_list(config)?
        .entries
        .into_iter()
        .filter(|e| e.note.kind == TrashKind::Deleted && e.note.slug == slug)
        .max_by_key(|e| e.note.deleted_at))
}

/// Brings a deleted tenant back from the trash, under a fresh internal id: its directory rows
/// from the note, its user index rebuilt from its file. Sessions and links from before the
/// delete stay dead.
pub async fn undelete(
    fleet: &Fleet,
    slug: &str,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Tenant> {
    if !valid_slug(slug) {
        return Err(FleetError::InvalidSlug(slug.to_owned()));
    }
    if fleet.directory.tenant_by_slug(slug).await?.is_some() {
        return Err(FleetError::SlugTaken(slug.to_owned()));
    }
    let entry = find_deleted(&fleet.config, slug)?
        .ok_or_else(|| FleetError::NotInTrash(slug.to_owned()))?;
    let age = now - entry.note.deleted_at;
    if age > TRASH_RETENTION_SECS {
        return Err(FleetError::TrashExpired {
            slug: slug.to_owned(),
            days: age / 86_400,
        });
    }
    let Some(copy) = entry.file().filter(|_| !entry.note.raw_copy) else {
        return Err(FleetError::Backup(format!(
            "the trash holds no readable database for {slug:?} ({}); recover it by hand or restore a backup",
            entry.path.display()
        )));
    };
    let _lock = lock(&fleet.config, slug)?;
    let id = TenantId::generate();
    let note = entry.note.clone();
    let target = id.clone();
    let prepared = fleet
        .blocking(move |r| {
            Ok(ops::prepare_restore(
                r,
                &target,
                &copy,
                &note.tenant_id,
                note.auth_epoch + 1,
                false,
                now,
            )?)
        })
        .await?;
    let status = match entry.note.status.as_str() {
        "suspended" => TenantStatus::Suspended,
        _ => TenantStatus::Active,
    };
    let name = entry.note.name.clone();
    let t = bring_in(
        fleet,
        NewRows {
            id: &id,
            slug,
            name: &name,
            domains: &entry.note.domains,
            status,
        },
        prepared,
        checkpoint,
    )
    .await?;
    std::fs::remove_dir_all(&entry.path)?;
    ops::sync_dir(&fleet.config.trash_dir())?;
    Ok(t)
}

/// Directory rows of a tenant that comes back (undelete, restore into a missing tenant).
#[derive(Debug)]
pub struct NewRows<'a> {
    pub id: &'a TenantId,
    pub slug: &'a str,
    pub name: &'a str,
    pub domains: &'a [String],
    pub status: TenantStatus,
}

/// Checks that rows and users of a returning tenant collide with nothing, before any write.
pub async fn check_free(
    directory: &Directory,
    slug: &str,
    domains: &[String],
    users: &[(String, String)],
) -> FleetResult<()> {
    if directory.tenant_by_slug(slug).await?.is_some() {
        return Err(FleetError::SlugTaken(slug.to_owned()));
    }
    for d in domains {
        if let Some(owner) = directory.domain_owner(d).await? {
            let owner = match directory.tenant(&owner).await? {
                Some(t) => t.slug,
                None => owner.to_string(),
            };
            return Err(FleetError::DomainTaken {
                domain: d.clone(),
                owner,
            });
        }
    }
    for (_, email) in users {
        if directory.lookup_email(email).await?.is_some() {
            return Err(FleetError::EmailTaken(email.clone()));
        }
    }
    Ok(())
}

/// Writes the rows of a returning tenant around its prepared file, `provisioning` until the
/// file and index are in place (doctor rolls back an interrupted one).
pub async fn bring_in(
    fleet: &Fleet,
    rows: NewRows<'_>,
    prepared: ops::Prepared,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Tenant> {
    check_free(
        &fleet.directory,
        rows.slug,
        rows.domains,
        &prepared.inspection.users,
    )
    .await?;
    let users = prepared.inspection.users.clone();
    let epoch = prepared.auth_epoch;
    match fleet
        .directory
        .insert_tenant(rows.id, rows.slug, rows.name, &fleet.node)
        .await
    {
        Ok(_) => {}
        Err(DirectoryError::SlugTaken) => return Err(FleetError::SlugTaken(rows.slug.to_owned())),
        Err(e) => return Err(e.into()),
    }
    checkpoint("tenant_row");
    for d in rows.domains {
        match fleet.directory.add_domain(rows.id, d).await {
            Ok(()) => {}
            Err(DirectoryError::DomainTaken) => {
                return Err(FleetError::DomainTaken {
                    domain: d.clone(),
                    owner: "another tenant".to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    checkpoint("domains");
    let target = rows.id.clone();
    fleet
        .blocking(move |r| Ok(ops::install(r, &target, prepared)?))
        .await?;
    checkpoint("file_restored");
    let conflicts = reindex(&fleet.directory, rows.id, &users).await?;
    if let Some(email) = conflicts.into_iter().next() {
        return Err(FleetError::EmailTaken(email));
    }
    checkpoint("index_rebuilt");
    fleet.directory.raise_auth_epoch_to(rows.id, epoch).await?;
    fleet
        .directory
        .set_schema_version(rows.id, i64::from(tenant_schema::TENANT_LATEST))
        .await?;
    fleet
        .directory
        .set_tenant_status(rows.id, rows.status)
        .await?;
    checkpoint("activated");
    Ok(fleet
        .directory
        .tenant(rows.id)
        .await?
        .ok_or(DirectoryError::Sqlx(sqlx::Error::RowNotFound))?)
}

/// Makes a tenant's index rows match its users `(id, email)`: rows of emails it no longer has
/// go, every user gets a confirmed row. Returns emails held by another tenant (left alone: a
/// user is never routed to a tenant that is not theirs).
pub async fn reindex(
    directory: &Directory,
    tenant_id: &TenantId,
    users: &[(String, String)],
) -> FleetResult<Vec<String>> {
    let present: std::collections::HashSet<&str> = users.iter().map(|(_, e)| e.as_str()).collect();
    for e in directory.index_of(tenant_id).await? {
        if !present.contains(e.email.as_str()) {
            directory.remove_email(&e.email, tenant_id).await?;
        }
    }
    let mut conflicts = Vec::new();
    for (user_id, email) in users {
        match directory.upsert_email(email, tenant_id, user_id).await {
            Ok(()) => {}
            Err(DirectoryError::EmailTaken) => conflicts.push(email.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(conflicts)
}
