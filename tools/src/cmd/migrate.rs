use std::time::Instant;

use control_plane::directory::TenantStatus;
use control_plane::service::fleet::FleetError;
use serde::Serialize;
use serde_json::json;
use tenant_runtime::{RouterConfig, TenantId, TenantRouter, ops};
use tenant_schema::TENANT_LATEST;

use super::{Ctx, Report, default_jobs, parallel};
use crate::MigrateArgs;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Outcome {
    Current { version: u32 },
    Migrated { from: u32, to: u32 },
    WouldMigrate { from: u32, to: u32 },
    Failed { error: String },
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    slug: String,
    tenant_id: TenantId,
    #[serde(flatten)]
    outcome: Outcome,
}

pub(crate) async fn run(ctx: &Ctx, a: MigrateArgs) -> anyhow::Result<Report> {
    let started = Instant::now();
    std::fs::create_dir_all(&ctx.config.data_dir)?;
    let directory = ctx.directory_unmigrated().await?;
    let pending = directory.pending_migrations().await?;
    let dir_from = directory.version().await.unwrap_or(0);
    if !a.dry_run && !pending.is_empty() {
        directory.apply_migrations().await?;
    }
    let dir_to = if a.dry_run {
        pending.last().map_or(dir_from, |m| i64::from(m.version))
    } else {
        directory.version().await?
    };

    let mut tenants = if pending.iter().any(|m| m.version == 1) && a.dry_run {
        Vec::new() // a directory without tables has no tenants yet
    } else {
        directory.tenants().await?
    };
    if let Some(slug) = &a.tenant {
        tenants.retain(|t| &t.slug == slug);
        if tenants.is_empty() {
            return Err(FleetError::UnknownTenant(slug.clone()).into());
        }
    }
    let skipped_provisioning: Vec<String> = tenants
        .iter()
        .filter(|t| t.status == TenantStatus::Provisioning)
        .map(|t| t.slug.clone())
        .collect();
    tenants.retain(|t| t.status != TenantStatus::Provisioning);

    let mut rc = RouterConfig::new(ctx.config.tenants_dir());
    rc.max_connections = 8;
    rc.clock = ctx.clock.clone();
    let router = TenantRouter::new(rc)?;
    let jobs = default_jobs(a.jobs, 4, 16);
    let bar = ctx.progress(tenants.len(), "migrate");
    let now = ctx.now();
    let dry = a.dry_run;
    let outcomes = tokio::task::block_in_place(|| {
        parallel(&tenants, jobs, &bar, |t| {
            migrate_one(&router, &t.id, dry, now)
        })
    });

    let rows: Vec<Row> = tenants
        .iter()
        .zip(outcomes)
        .map(|(t, outcome)| Row {
            slug: t.slug.clone(),
            tenant_id: t.id.clone(),
            outcome,
        })
        .collect();
    // Record versions the directory does not know yet, in batches.
    let mut updates = Vec::new();
    for (t, r) in tenants.iter().zip(&rows) {
        let v = match r.outcome {
            Outcome::Current { version } => version,
            Outcome::Migrated { to, .. } => to,
            _ => continue,
        };
        if i64::from(v) != t.schema_version {
            updates.push((t.id.clone(), i64::from(v)));
        }
    }
    if !dry {
        for chunk in updates.chunks(500) {
            directory.set_schema_versions(chunk).await?;
        }
    }
    directory.close().await;

    let count = |f: fn(&Outcome) -> bool| rows.iter().filter(|r| f(&r.outcome)).count();
    let current = count(|o| matches!(o, Outcome::Current { .. }));
    let migrated = count(|o| matches!(o, Outcome::Migrated { .. }));
    let would = count(|o| matches!(o, Outcome::WouldMigrate { .. }));
    let failed: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();

    let mut text = String::new();
    if dry {
        text.push_str(&format!(
            "Dry run: nothing was changed.\nDirectory: schema {dir_from}{}\n",
            if pending.is_empty() {
                " (current)".to_owned()
            } else {
                format!(", would migrate to {dir_to}")
            }
        ));
        for r in &rows {
            if let Outcome::WouldMigrate { from, to } = r.outcome {
                text.push_str(&format!("  would migrate {} from {from} to {to}\n", r.slug));
            }
        }
        text.push_str(&format!(
            "Tenants: {would} would migrate, {current} current, {} unreadable.\n",
            failed.len()
        ));
    } else {
        text.push_str(&format!(
            "Directory: schema {dir_to}{}\nTenants: {migrated} migrated, {current} already current, {} failed ({} tenants in {elapsed:.1}s).\n",
            if dir_from == dir_to {
                " (current)".to_owned()
            } else {
                format!(" (from {dir_from})")
            },
            failed.len(),
            rows.len()
        ));
    }
    if !updates.is_empty() && !dry {
        text.push_str(&format!(
            "Recorded the schema version of {} tenants in the directory.\n",
            updates.len()
        ));
    }
    for slug in &skipped_provisioning {
        text.push_str(&format!(
            "Skipped {slug}: it did not finish provisioning (see `tenantctl doctor`).\n"
        ));
    }
    for r in &failed {
        if let Outcome::Failed { error } = &r.outcome {
            text.push_str(&format!("FAILED {} ({}): {error}\n", r.slug, r.tenant_id));
        }
    }
    let json = json!({
        "dry_run": dry,
        "directory": {"from": dir_from, "to": dir_to},
        "latest": TENANT_LATEST,
        "tenants": rows.len(),
        "migrated": migrated,
        "current": current,
        "would_migrate": would,
        "failed": failed.len(),
        "skipped_provisioning": skipped_provisioning,
        "recorded_versions": if dry { 0 } else { updates.len() },
        "elapsed_secs": elapsed,
        "tenants_per_sec": if elapsed > 0.0 { rows.len() as f64 / elapsed } else { 0.0 },
        "results": rows.iter().filter(|r| !matches!(r.outcome, Outcome::Current { .. })).collect::<Vec<_>>(),
    });
    let report = Report::new(text, json);
    Ok(if failed.is_empty() {
        report
    } else {
        let names: Vec<&str> = failed.iter().take(5).map(|r| r.slug.as_str()).collect();
        report.failed(
            "migration_failed",
            format!(
                "{} tenant(s) did not migrate ({}{}); the others did. Fix or restore them (`tenantctl doctor` tells more) and run `tenantctl migrate` again",
                failed.len(),
                names.join(", "),
                if failed.len() > names.len() { ", …" } else { "" }
            ),
        )
    })
}

fn migrate_one(router: &TenantRouter, id: &TenantId, dry: bool, now: i64) -> Outcome {
    // The cheap path: one open and one pragma for tenants already current.
    let version = match ops::schema_version(router, id) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
            };
        }
    };
    if version > TENANT_LATEST {
        return Outcome::Failed {
            error: format!(
                "schema version {version} is newer than this tenantctl supports ({TENANT_LATEST}); upgrade tenantctl"
            ),
        };
    }
    if version == TENANT_LATEST {
        return Outcome::Current { version };
    }
    if version == 0 {
        return Outcome::Failed {
            error: "not a tenant database (schema version 0)".to_owned(),
        };
    }
    if dry {
        return Outcome::WouldMigrate {
            from: version,
            to: TENANT_LATEST,
        };
    }
    match ops::migrate(router, id, now) {
        Ok(m) => Outcome::Migrated {
            from: m.from,
            to: m.to,
        },
        Err(e) => Outcome::Failed {
            error: e.to_string(),
        },
    }
}
