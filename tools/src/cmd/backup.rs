use std::sync::Arc;

use anyhow::Context;
use control_plane::service::backup::{self, BackupReport};
use reqwest::Method;
use serde_json::json;

use super::remote::enc;
use super::{Ctx, Report, coded, default_jobs, parallel};
use crate::failpoint::crash_point;
use crate::{BackupArgs, RestoreArgs};

fn backup_report(r: &BackupReport) -> anyhow::Result<Report> {
    let mut text = format!(
        "Backed up {} tenant(s){} to {} ({:.1} MB in {:.1}s).\n",
        r.tenants,
        if r.manifest.directory.file.is_some() {
            " and the directory"
        } else {
            ""
        },
        r.out.display(),
        r.bytes as f64 / 1e6,
        r.elapsed_secs
    );
    if let Some(note) = &r.manifest.directory.note {
        text.push_str(&format!("Directory: {note}\n"));
    }
    for s in &r.skipped_provisioning {
        text.push_str(&format!(
            "Skipped {s}: it did not finish provisioning (see `tenantctl doctor`).\n"
        ));
    }
    for f in &r.failed {
        text.push_str(&format!("FAILED {}: {}\n", f.slug, f.error));
    }
    let report = Report::new(text, serde_json::to_value(r)?);
    Ok(if r.failed.is_empty() {
        report
    } else {
        report.failed(
            "backup_incomplete",
            format!(
                "{} tenant(s) could not be backed up (the manifest lists the others); see above, fix them and back up again",
                r.failed.len()
            ),
        )
    })
}

pub(crate) async fn backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<Report> {
    if let Some(remote) = &ctx.remote {
        // The server writes into its backup folder (TENANTD_BACKUP_DIR), one company at a time.
        let (Some(slug), None) = (&a.tenant, &a.out) else {
            return Err(coded(
                "not_remote",
                "through --server, back up one tenant with --tenant SLUG (the server writes into its TENANTD_BACKUP_DIR; --out is for tenantctl on the server)",
            ));
        };
        let r: BackupReport = remote
            .call(
                Method::POST,
                &format!("/api/operator/tenants/{}/backup", enc(slug)),
                None,
            )
            .await?;
        return backup_report(&r);
    }
    let out = a.out.ok_or_else(|| {
        coded(
            "out_required",
            "give the new folder to write the backup into with --out DIR",
        )
    })?;
    backup::check_new_folder(&out)?;
    let fleet = ctx.fleet().await?;
    if let Some(slug) = &a.tenant {
        fleet.tenant_by_slug(slug).await?;
    }
    let count = match &a.tenant {
        Some(_) => 1,
        None => fleet.directory.tenants().await?.len(),
    };
    let bar = ctx.progress(count, "backup");
    let ticker = bar.clone();
    let r = backup::backup_folder(
        &fleet,
        &out,
        a.tenant.as_deref(),
        default_jobs(a.jobs, 2, 8),
        Arc::new(move || ticker.inc(1)),
    )
    .await;
    bar.finish_and_clear();
    backup_report(&r.with_context(|| format!("cannot back up into {}", out.display()))?)
}

pub(crate) async fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<Report> {
    let from = a
        .from
        .ok_or_else(|| coded("invalid_arguments", "give --from DIR (or --from-replica)"))?;
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
