//! Online backups and restores of the directory and of tenant files.
//!
//! A backup folder holds `directory.db` (SQLite directories), `tenants/<tenant-id>.db` and a
//! `manifest.json`, written last, listing each copy with its size, SHA-256 and schema version.
//! A folder without a manifest is an unfinished backup and is refused.
//!
//! A restore checks the manifest, the checksum, `integrity_check` and the schema version of a
//! copy before anything is swapped in. The copy gets an auth epoch above any the tenant had,
//! before it goes live, so sessions and links issued before the restore stay dead. Over an
//! existing tenant, the content it replaces is kept in the trash and the swap is one SQLite
//! transaction (see [`tenant_runtime::ops::install`]); into a missing tenant (a fresh data
//! directory), its directory rows come back from the manifest and its file.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tenant_runtime::ops::{self, Inspection};
use tenant_runtime::{TenantId, TenantRouter};

use super::fleet::{
    Checkpoint, Fleet, FleetError, FleetResult, NewRows, TrashKind, TrashSource, bring_in, lock,
    reindex, trash_list, trash_put, valid_slug,
};

use crate::directory::{Backend, Directory, Tenant, TenantStatus};

mod folder;
pub use folder::{BackupFailure, BackupReport, backup_folder, check_new_folder, new_folder};

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_FORMAT: u32 = 1;

/// `manifest.json` of a backup folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Version of the tool that wrote it.
    pub tool_version: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub directory: DirectoryCopy,
    pub tenants: Vec<TenantCopy>,
}

/// The directory's copy, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryCopy {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub schema_version: i64,
    pub file: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One tenant's copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantCopy {
    pub tenant_id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub domains: Vec<String>,
    /// Path of the copy inside the backup folder.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub schema_version: u32,
    pub auth_epoch: i64,
    pub backed_up_at: i64,
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies the directory into `out/directory.db` (SQLite), or says to use `pg_dump`.
pub async fn backup_directory(directory: &Directory, out: &Path) -> FleetResult<DirectoryCopy> {
    let schema_version = directory.version().await?;
    match directory.backend() {
        Backend::Postgres => Ok(DirectoryCopy {
            backend: "postgres".to_owned(),
            schema_version,
            file: None,
            size: None,
            sha256: None,
            note: Some(
                "a PostgreSQL directory is backed up with pg_dump (e.g. `pg_dump -Fc -f directory.dump <url>`)"
                    .to_owned(),
            ),
        }),
        Backend::Sqlite => {
            let dest = out.join("directory.db");
            directory.vacuum_into(&dest).await?;
            let d = dest.clone();
            let (size, sha256) = tokio::task::spawn_blocking(move || -> FleetResult<_> {
                std::fs::File::open(&d)?.sync_all()?;
                let problems = tenant_runtime::router::integrity_check(&d)?;
                if !problems.is_empty() {
                    return Err(FleetError::Backup(format!(
                        "the directory copy failed integrity_check: {}",
                        problems.join("; ")
                    )));
                }
                Ok((std::fs::metadata(&d)?.len(), sha256_file(&d)?))
            })
            .await
            .map_err(|e| FleetError::Other(anyhow::anyhow!("backup task failed: {e}")))??;
            Ok(DirectoryCopy {
                backend: "sqlite".to_owned(),
                schema_version,
                file: Some("directory.db".to_owned()),
                size: Some(size),
                sha256: Some(sha256),
                note: None,
            })
        }
    }
}

/// Copies one tenant into `out/tenants/<id>.db` while it stays in use (`VACUUM INTO` sees one
/// snapshot, and the copy is synced), checks the copy (`integrity_check`, identity) and
/// describes it. Blocking.
pub fn backup_tenant(
    router: &TenantRouter,
    tenant: &Tenant,
    domains: Vec<String>,
    out: &Path,
    now: i64,
) -> FleetResult<TenantCopy> {
    let id = tenant.id.clone();
    let file = format!("tenants/{id}.db");
    let dest = out.join(&file);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // One read transaction of a plain connection: no pool kept, no migration as a side effect.
    ops::snapshot(router, &id, &dest)?;
    let problems = tenant_runtime::router::integrity_check(&dest)?;
    if !problems.is_empty() {
        return Err(FleetError::Backup(format!(
            "the copy of {} failed integrity_check ({}); its live file may be damaged, run `tenantctl doctor`",
            tenant.slug,
            problems.join("; ")
        )));
    }
    let insp = ops::inspect_file(&dest)?;
    if insp.version == 0 || insp.tenant_id.as_deref() != Some(tenant.id.as_str()) {
        return Err(FleetError::Backup(format!(
            "the file of {} is not this tenant's database; run `tenantctl doctor`",
            tenant.slug
        )));
    }
    Ok(TenantCopy {
        tenant_id: tenant.id.to_string(),
        slug: tenant.slug.clone(),
        name: tenant.name.clone(),
        status: tenant.status.as_str().to_owned(),
        domains,
        file,
        size: std::fs::metadata(&dest)?.len(),
        sha256: sha256_file(&dest)?,
        schema_version: insp.version,
        auth_epoch: insp.auth_epoch,
        backed_up_at: now,
    })
}

/// Writes the manifest last: its presence marks a finished backup.
pub fn write_manifest(out: &Path, manifest: &Manifest) -> FleetResult<()> {
    if let Ok(tenants) = std::fs::File::open(out.join("tenants")) {
        tenants.sync_all()?;
    }
    let bytes = serde_json::to_vec_pretty(manifest).map_err(anyhow::Error::from)?;
    super::fleet::write_synced(&out.join(MANIFEST), &bytes)?;
    Ok(())
}

/// Reads a backup folder's manifest.
pub fn read_manifest(dir: &Path) -> FleetResult<Manifest> {
    if !dir.is_dir() {
        return Err(FleetError::Backup(format!(
            "backup folder {} does not exist; give the folder `tenantctl backup --out` wrote",
            dir.display()
        )));
    }
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        FleetError::Backup(format!(
            "{} has no {MANIFEST}: it is not a backup folder, or its backup did not finish",
            dir.display()
        ))
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        FleetError::Backup(format!(
            "{} is damaged ({e}); use another backup",
            path.display()
        ))
    })?;
    if m.format != MANIFEST_FORMAT {
        return Err(FleetError::Backup(format!(
            "{} has format {}, this tenantctl reads format {MANIFEST_FORMAT}; use a matching tenantctl",
            path.display(),
            m.format
        )));
    }
    Ok(m)
}

/// Checks a tenant's copy before it is used: a safe name, size, SHA-256, `integrity_check`,
/// identity and schema version. Blocking; changes nothing.
pub fn verify_copy(dir: &Path, copy: &TenantCopy) -> FleetResult<(PathBuf, Inspection)> {
    let bad = |what: String| {
        FleetError::Backup(format!(
            "the backup of {:?} {what}; the backup was changed or damaged, use another one",
            copy.slug
        ))
    };
    let id =
        TenantId::parse(&copy.tenant_id).map_err(|_| bad("has an invalid tenant id".into()))?;
    if copy.file != format!("tenants/{id}.db") {
        return Err(bad(format!("names an unexpected file {:?}", copy.file)));
    }
    if !valid_slug(&copy.slug) {
        return Err(bad(format!("has an invalid slug {:?}", copy.slug)));
    }
    if copy.schema_version > tenant_schema::TENANT_LATEST {
        return Err(FleetError::TooNew {
            slug: copy.slug.clone(),
            found: copy.schema_version,
            supported: tenant_schema::TENANT_LATEST,
        });
    }
    let path = dir.join(&copy.file);
    let meta =
        std::fs::metadata(&path).map_err(|_| bad(format!("misses its file {}", copy.file)))?;
    if meta.len() != copy.size {
        return Err(bad(format!(
            "has size {} instead of {}",
            meta.len(),
            copy.size
        )));
    }
    if sha256_file(&path)? != copy.sha256 {
        return Err(bad("does not match its SHA-256".into()));
    }
    let problems = tenant_runtime::router::integrity_check(&path)
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    if !problems.is_empty() {
        return Err(bad(format!(
            "fails integrity_check ({})",
            problems.join("; ")
        )));
    }
    let insp = ops::inspect_file(&path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    if insp.version > tenant_schema::TENANT_LATEST {
        return Err(FleetError::TooNew {
            slug: copy.slug.clone(),
            found: insp.version,
            supported: tenant_schema::TENANT_LATEST,
        });
    }
    if insp.version == 0 || insp.tenant_id.as_deref() != Some(copy.tenant_id.as_str()) {
        return Err(bad("holds another tenant's data".into()));
    }
    Ok((path, insp))
}

/// The steps of [`restore_tenant`] over an existing tenant, in order (a restore into a missing
/// tenant goes through [`super::fleet::UNDELETE_STEPS`]).
pub const RESTORE_STEPS: &[&str] = &[
    "previous_kept",
    "file_restored",
    "index_rebuilt",
    "epoch_raised",
];

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub slug: String,
    pub tenant_id: TenantId,
    /// `replaced` (over the live tenant) or `created` (the tenant was missing).
    pub mode: &'static str,
    pub users: usize,
    pub auth_epoch: i64,
    /// Where the replaced content was kept.
    pub previous: Option<PathBuf>,
    /// Users whose email another tenant holds now: they stay unindexed.
    pub conflicts: Vec<String>,
}

/// Restores one verified copy (see [`verify_copy`]).
/// How a restore goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Every restored user must choose a new password (by emailed link) before signing in:
    /// for backups older than a password change that must not come back.
    pub require_password_reset: bool,
}

pub async fn restore_tenant(
    fleet: &Fleet,
    src: PathBuf,
    copy: &TenantCopy,
    options: RestoreOptions,
    now: i64,
    checkpoint: Checkpoint<'_>,
) -> FleetResult<Restored> {
    let reset = options.require_password_reset;
    let dir = &fleet.directory;
    let copy_id = TenantId::parse(&copy.tenant_id)?;
    match dir.tenant(&copy_id).await? {
        Some(t) => {
            if t.status == TenantStatus::Provisioning {
                return Err(FleetError::Provisioning(t.slug));
            }
            let _lock = lock(&fleet.config, &t.slug)?;
            let id = t.id.clone();
            let source = TrashSource::of(dir, &t).await?;
            let config = fleet.config.clone();
            let (previous, live_epoch) = fleet
                .blocking(move |r| {
                    if !r.exists(&source.tenant_id) {
                        return Ok((None, 0));
                    }
                    let epoch = ops::inspect(r, &source.tenant_id)
                        .map(|i| i.auth_epoch)
                        .unwrap_or(0);
                    let kept = trash_put(r, &config, &source, TrashKind::Replaced, now)?;
                    Ok((Some(kept.path), epoch))
                })
                .await?;
            checkpoint("previous_kept");
            let min_epoch = t.auth_epoch.max(live_epoch) + 1;
            let target = id.clone();
            let source_id = copy.tenant_id.clone();
            let prepared = fleet
                .blocking(move |r| {
                    let p =
                        ops::prepare_restore(r, &target, &src, &source_id, min_epoch, reset, now)?;
                    let users = p.inspection.users.clone();
                    let epoch = p.auth_epoch;
                    let mode = ops::install(r, &target, p)?;
                    Ok((users, epoch, mode))
                })
                .await;
            let (users, epoch, mode) = prepared?;
            checkpoint("file_restored");
            let conflicts = reindex(dir, &t.id, &users).await?;
            checkpoint("index_rebuilt");
            let epoch = dir.raise_auth_epoch_to(&t.id, epoch).await?;
            dir.set_schema_version(&t.id, i64::from(tenant_schema::TENANT_LATEST))
                .await?;
            checkpoint("epoch_raised");
            // Sessions of both the replaced file and the copy are over: tell the apps.
            let replaced = previous
                .as_deref()
                .map(|kept| super::backchannel::grants_in_copy(&kept.join(super::fleet::COPY)))
                .unwrap_or_default();
            super::backchannel::end_all_grants(dir, &fleet.router, &t.id, replaced, now).await?;
            fleet
                .audit(
                    &t,
                    "tenant.restored",
                    serde_json::json!({"auth_epoch": epoch}),
                )
                .await;
            Ok(Restored {
                slug: t.slug,
                tenant_id: t.id,
                mode: match mode {
                    ops::Installed::Replaced => "replaced",
                    ops::Installed::Created => "created",
                },
                users: users.len(),
                auth_epoch: epoch,
                previous,
                conflicts,
            })
        }
        None => {
            if let Some(other) = dir.tenant_by_slug(&copy.slug).await? {
                return Err(FleetError::Backup(format!(
                    "tenant {:?} here is not the one in the backup (id {} here, {} in the backup: it was recreated or undeleted since); delete it first (`tenantctl tenant delete {} --yes`) to restore the backup's copy",
                    copy.slug, other.id, copy.tenant_id, copy.slug
                )));
            }
            let status = match copy.status.as_str() {
                "suspended" => TenantStatus::Suspended,
                _ => TenantStatus::Active,
            };
            // Keep the id, unless this data directory already used it: a server may still hold
            // a file of that id open, and ids are never reused for a new file.
            let probe = copy_id.clone();
            let file_exists = fleet.blocking(move |r| Ok(r.exists(&probe))).await?;
            let trash = trash_list(&fleet.config)?.entries;
            let used = file_exists || trash.iter().any(|e| e.note.tenant_id == copy.tenant_id);
            let id = if used { TenantId::generate() } else { copy_id };
            let _lock = lock(&fleet.config, &copy.slug)?;
            let target = id.clone();
            let source_id = copy.tenant_id.clone();
            let min_epoch = copy.auth_epoch + 1;
            let prepared = fleet
                .blocking(move |r| {
                    Ok(ops::prepare_restore(
                        r, &target, &src, &source_id, min_epoch, reset, now,
                    )?)
                })
                .await?;
            let users = prepared.inspection.users.len();
            let t = bring_in(
                fleet,
                NewRows {
                    id: &id,
                    slug: &copy.slug,
                    name: &copy.name,
                    domains: &copy.domains,
                    status,
                },
                prepared,
                checkpoint,
            )
            .await?;
            Ok(Restored {
                slug: t.slug,
                tenant_id: t.id,
                mode: "created",
                users,
                auth_epoch: t.auth_epoch,
                previous: None,
                conflicts: Vec::new(),
            })
        }
    }
}
