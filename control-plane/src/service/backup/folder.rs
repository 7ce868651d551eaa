//! Writing a whole backup folder (`tenantctl backup`, and the operator API's backup of one
//! company): the directory, each tenant's copy in parallel, the manifest last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{MANIFEST_FORMAT, Manifest, backup_directory, backup_tenant, write_manifest};
use crate::directory::TenantStatus;
use crate::service::fleet::{Fleet, FleetError, FleetResult};

/// A tenant that could not be copied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupFailure {
    pub slug: String,
    pub error: String,
}

/// What a backup wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    pub out: PathBuf,
    pub tenants: usize,
    pub bytes: u64,
    pub failed: Vec<BackupFailure>,
    pub skipped_provisioning: Vec<String>,
    pub elapsed_secs: f64,
    pub tenants_per_sec: f64,
    pub manifest: Manifest,
}

/// Whether `out` can take a new backup: absent, or an empty folder.
pub fn check_new_folder(out: &Path) -> FleetResult<()> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(FleetError::BackupExists(out.to_owned()));
    }
    Ok(())
}

/// Backs up the directory and every tenant (or the one named `only`) into `out`, online,
/// copying `jobs` tenants at once and calling `tick` after each. Tenants that did not finish
/// provisioning are skipped; tenants that fail are listed and the others still copied.
pub async fn backup_folder(
    fleet: &Fleet,
    out: &Path,
    only: Option<&str>,
    jobs: usize,
    tick: Arc<dyn Fn() + Send + Sync>,
) -> FleetResult<BackupReport> {
    let started = Instant::now();
    check_new_folder(out)?;
    let mut tenants = fleet.directory.tenants().await?;
    if let Some(slug) = only {
        tenants.retain(|t| t.slug == slug);
        if tenants.is_empty() {
            return Err(FleetError::UnknownTenant(slug.to_owned()));
        }
    }
    let unfinished: Vec<String> = tenants
        .iter()
        .filter(|t| t.status == TenantStatus::Provisioning)
        .map(|t| t.slug.clone())
        .collect();
    tenants.retain(|t| t.status != TenantStatus::Provisioning);
    let mut domains: std::collections::HashMap<_, Vec<String>> = Default::default();
    for (t, d) in fleet.directory.all_domains().await? {
        domains.entry(t).or_default().push(d);
    }
    std::fs::create_dir_all(out.join("tenants"))?;
    let started_at = fleet.clock.now();
    let directory = backup_directory(&fleet.directory, out).await?;

    let work: Vec<_> = tenants
        .iter()
        .map(|t| (t.clone(), domains.remove(&t.id).unwrap_or_default()))
        .collect();
    let (router, clock, dest) = (fleet.router.clone(), fleet.clock.clone(), out.to_owned());
    let results = tokio::task::spawn_blocking(move || {
        let next = AtomicUsize::new(0);
        let slots = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, work.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((t, d)) = work.get(i) else { break };
                        let r = backup_tenant(&router, t, d.clone(), &dest, clock.now());
                        if let Ok(mut v) = slots.lock() {
                            v.push((i, t.slug.clone(), r));
                        }
                        tick();
                    }
                });
            }
        });
        let mut v = slots.into_inner().unwrap_or_default();
        v.sort_by_key(|(i, _, _)| *i);
        v
    })
    .await
    .map_err(|e| FleetError::Other(anyhow::anyhow!("backup task failed: {e}")))?;
    let mut copies = Vec::new();
    let mut failed = Vec::new();
    for (_, slug, r) in results {
        match r {
            Ok(c) => copies.push(c),
            Err(e) => failed.push(BackupFailure {
                slug,
                error: e.to_string(),
            }),
        }
    }
    let bytes: u64 = copies.iter().map(|c| c.size).sum::<u64>() + directory.size.unwrap_or(0);
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        finished_at: fleet.clock.now(),
        directory,
        tenants: copies,
    };
    write_manifest(out, &manifest)?;
    let elapsed = started.elapsed().as_secs_f64();
    let n = manifest.tenants.len();
    Ok(BackupReport {
        out: out.to_owned(),
        tenants: n,
        bytes,
        failed,
        skipped_provisioning: unfinished,
        elapsed_secs: elapsed,
        tenants_per_sec: if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        },
        manifest,
    })
}

/// A new folder for a backup of one company under the configured backup folder:
/// `<backups>/<unix time>-<slug>`, never one that holds anything.
pub fn new_folder(fleet: &Fleet, slug: &str) -> PathBuf {
    let base = fleet.config.backups_dir();
    let now = fleet.clock.now();
    let mut path = base.join(format!("{now}-{slug}"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = base.join(format!("{now}-{slug}-{n}"));
    }
    path
}
