use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use control_plane::directory::TenantStatus;
use control_plane::service::backup::{self, MANIFEST_FORMAT, Manifest};
use control_plane::service::fleet::FleetError;
use serde_json::json;
use tenant_runtime::TenantId;

use super::{Ctx, Report, coded, default_jobs, parallel};
use crate::failpoint::crash_point;
use crate::{BackupArgs, RestoreArgs};

pub(crate) async fn backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<Report> {
    let started = Instant::now();
    let out = a.out;
    if out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(coded(
            "backup_exists",
            format!(
                "{} already exists and is not empty; give a new folder to --out",
                out.display()
            ),
        ));
    }
    let fleet = ctx.fleet().await?;
    let mut tenants = fleet.directory.tenants().await?;
    if let Some(slug) = &a.tenant {
        tenants.retain(|t| &t.slug == slug);
        if tenants.is_empty() {
            return Err(FleetError::UnknownTenant(slug.clone()).into());
        }
    }
    let unfinished: Vec<String> = tenants
        .iter()
        .filter(|t| t.status == TenantStatus::Provisioning)
        .map(|t| t.slug.clone())
        .collect();
    tenants.retain(|t| t.status != TenantStatus::Provisioning);
    let mut domains: HashMap<TenantId, Vec<String>> = HashMap::new();
    for (t, d) in fleet.directory.all_domains().await? {
        domains.entry(t).or_default().push(d);
    }
    std::fs::create_dir_all(out.join("tenants"))
        .with_context(|| format!("cannot create the backup folder {}", out.display()))?;
    let started_at = ctx.now();
    let directory = backup::backup_directory(&fleet.directory, &out).await?;

    let bar = ctx.progress(tenants.len(), "backup");
    let jobs = default_jobs(a.jobs, 2, 8);
    let router = fleet.router.clone();
    let results = tokio::task::block_in_place(|| {
        parallel(&tenants, jobs, &bar, |t| {
            let d = domains.get(&t.id).cloned().unwrap_or_default();
            backup::backup_tenant(&router, t, d, &out, ctx.now())
        })
    });
    let mut copies = Vec::new();
    let mut failed = Vec::new();
    for (t, r) in tenants.iter().zip(results) {
        match r {
            Ok(c) => copies.push(c),
            Err(e) => failed.push((t.slug.clone(), e.to_string())),
        }
    }
    let bytes: u64 = copies.iter().map(|c| c.size).sum::<u64>() + directory.size.unwrap_or(0);
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        finished_at: ctx.now(),
        directory,
        tenants: copies,
    };
    backup::write_manifest(&out, &manifest)?;
    let elapsed = started.elapsed().as_secs_f64();
    let n = manifest.tenants.len();
    let mut text = format!(
        "Backed up {n} tenant(s){} to {} ({:.1} MB in {elapsed:.1}s).\n",
        if manifest.directory.file.is_some() {
            " and the directory"
        } else {
            ""
        },
        out.display(),
        bytes as f64 / 1e6
    );
    if let Some(note) = &manifest.directory.note {
        text.push_str(&format!("Directory: {note}\n"));
    }
    for s in &unfinished {
        text.push_str(&format!(
            "Skipped {s}: it did not finish provisioning (see `tenantctl doctor`).\n"
        ));
    }
    for (s, e) in &failed {
        text.push_str(&format!("FAILED {s}: {e}\n"));
    }
    let report = Report::new(
        text,
        json!({
            "out": out,
            "tenants": n,
            "bytes": bytes,
            "failed": failed.iter().map(|(s, e)| json!({"slug": s, "error": e})).collect::<Vec<_>>(),
            "skipped_provisioning": unfinished,
            "elapsed_secs": elapsed,
            "tenants_per_sec": if elapsed > 0.0 { n as f64 / elapsed } else { 0.0 },
            "manifest": manifest,
        }),
    );
    Ok(if failed.is_empty() {
        report
    } else {
        report.failed(
            "backup_incomplete",
            format!(
                "{} tenant(s) could not be backed up (the manifest lists the others); see above, fix them and back up again",
                failed.len()
            ),
        )
    })
}

pub(crate) async fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<Report> {
    let from = a.from;
    // Everything is checked before the data directory is even opened.
    let manifest = backup::read_manifest(&from)?;
    let mut selected = manifest.tenants.clone();
    if let Some(slug) = &a.tenant {
        selected.retain(|c| &c.slug == slug);
        if selected.is_empty() {
            let names: Vec<&str> = manifest
                .tenants
                .iter()
                .take(10)
                .map(|c| c.slug.as_str())
                .collect();
            return Err(coded(
                "not_in_backup",
                format!(
                    "the backup in {} has no tenant {slug:?} (it has: {}{})",
                    from.display(),
                    names.join(", "),
                    if manifest.tenants.len() > names.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let bar = ctx.progress(selected.len(), "verify");
    let checked = tokio::task::block_in_place(|| {
        parallel(&selected, default_jobs(None, 2, 8), &bar, |c| {
            backup::verify_copy(&from, c)
        })
    });
    let mut sources = Vec::new();
    for r in checked {
        sources.push(r?.0);
    }

    let fleet = ctx.fleet().await?;
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for (copy, src) in selected.iter().zip(sources) {
        let options = backup::RestoreOptions {
            require_password_reset: a.require_password_reset,
        };
        match backup::restore_tenant(&fleet, src, copy, options, ctx.now(), &crash_point).await {
            Ok(r) => restored.push(r),
            Err(e) => failed.push((copy.slug.clone(), e)),
        }
    }
    let mut text = String::new();
    for r in &restored {
        text.push_str(&format!(
            "Restored {} ({}, {} users): sessions and links issued before now no longer work.\n",
            r.slug,
            if r.mode == "replaced" {
                "over the live tenant"
            } else {
                "created"
            },
            r.users
        ));
        if let Some(p) = &r.previous {
            text.push_str(&format!(
                "  the replaced content is kept in {}\n",
                p.display()
            ));
        }
        for e in &r.conflicts {
            text.push_str(&format!(
                "  {e} belongs to another tenant now: that user stays unindexed (see `tenantctl doctor`)\n"
            ));
        }
    }
    for (s, e) in &failed {
        text.push_str(&format!("FAILED {s}: {e}\n"));
    }
    let report = Report::new(
        text,
        json!({
            "from": from,
            "restored": restored,
            "failed": failed.iter().map(|(s, e)| json!({"slug": s, "error": e.code(), "message": e.to_string()})).collect::<Vec<_>>(),
        }),
    );
    Ok(match failed.as_slice() {
        [] => report,
        [(slug, e)] if restored.is_empty() => {
            report.failed(e.code(), format!("cannot restore {slug}: {e}"))
        }
        _ => report.failed(
            "restore_incomplete",
            format!(
                "{} tenant(s) were not restored (see above); the others were",
                failed.len()
            ),
        ),
    })
}
