//! Fleet benchmark: provision, migrate and back up many tenants; prints tenants per second.
//!
//! ```text
//! cargo bench -p tools --bench fleet                       # 10,000 tenants (a few minutes)
//! TENANTCTL_BENCH_N=300 cargo bench -p tools --bench fleet # smoke run
//! ```
//!
//! - provision: `control_plane::service::provision::create_tenant` (what `tenantctl tenant
//!   create` runs, without the mail), 4 at a time, each with its domain and invited admin;
//! - migrate: the real `tenantctl migrate` over N tenant files at schema version 1, then again
//!   (every tenant current: the skip path);
//! - backup: the real `tenantctl backup` of the N provisioned tenants.
//!
//! Data goes to a temporary folder under `TENANTCTL_BENCH_DIR` (default: the system's).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use control_plane::config::Config;
use control_plane::directory::{Directory, Tenant, TenantStatus};
use control_plane::service::provision::{NewTenant, create_tenant};
use serde_json::Value;
use tenant_runtime::{RouterConfig, TenantRouter};

const TENANTCTL: &str = env!("CARGO_BIN_EXE_tenantctl");

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("TENANTCTL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let base = std::env::var_os("TENANTCTL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let root = tempfile::Builder::new()
        .prefix("tenantctl-bench-")
        .tempdir_in(base)?;
    println!("fleet benchmark: {n} tenants in {}", root.path().display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let fleet = root.path().join("fleet");
    let provision = rt.block_on(provision(&fleet, n))?;
    report("provision", n, provision);

    let old = root.path().join("old");
    rt.block_on(old_fleet(&old, n))?;
    let (secs, out) = tenantctl(&old, &["migrate"])?;
    assert_eq!(out["migrated"].as_u64(), Some(n as u64), "{out}");
    report("migrate (v1 -> latest)", n, secs);
    let (secs, out) = tenantctl(&old, &["migrate"])?;
    assert_eq!(out["current"].as_u64(), Some(n as u64), "{out}");
    report("migrate (all current)", n, secs);

    let out_dir = root.path().join("backup");
    let (secs, out) = tenantctl(&fleet, &["backup", "--out", &out_dir.display().to_string()])?;
    assert_eq!(out["tenants"].as_u64(), Some(n as u64), "{out}");
    report("backup", n, secs);
    println!(
        "  backup size: {:.1} MB",
        out["bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    Ok(())
}

fn report(what: &str, n: usize, secs: f64) {
    println!(
        "{what:<24} {n:>7} tenants in {secs:>8.2} s = {:>9.1} tenants/s",
        n as f64 / secs
    );
}

fn config(data: &Path) -> anyhow::Result<Config> {
    Ok(Config {
        data_dir: data.to_owned(),
        public_url: "http://127.0.0.1:8080".parse()?,
        smtp_url: None,
        mail_from: "tenantd <no-reply@localhost>".to_owned(),
        product_name: "tenantd".to_owned(),
        directory_url: None,
        max_connections: 512,
    })
}

async fn provision(data: &Path, n: usize) -> anyhow::Result<f64> {
    let config = Arc::new(config(data)?);
    std::fs::create_dir_all(data)?;
    let directory = Directory::connect(&config.directory_url()).await?;
    let router = TenantRouter::new(RouterConfig::new(config.tenants_dir()))?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (directory, router, config, next) = (
            directory.clone(),
            router.clone(),
            config.clone(),
            next.clone(),
        );
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let slug = format!("bench-{i:06}");
                let req = NewTenant {
                    slug: slug.clone(),
                    name: format!("Bench {i}"),
                    domains: vec![format!("{slug}.test")],
                    admin_email: format!("admin@{slug}.test"),
                    admin_name: Some("Admin".to_owned()),
                };
                let now = tenant_runtime::Clock::now(&tenant_runtime::SystemClock);
                let p = create_tenant(&directory, &router, &config, &req, now).await?;
                let id = p.tenant.tenant_id()?;
                // A fleet of 10,000 does not keep 10,000 pools open.
                let r = router.clone();
                tokio::task::spawn_blocking(move || r.close_blocking(&id)).await?;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    directory.close().await;
    Ok(secs)
}

/// N tenant files at schema version 1 and their directory rows, made directly.
async fn old_fleet(data: &Path, n: usize) -> anyhow::Result<()> {
    let config = config(data)?;
    let tenants = config.tenants_dir();
    std::fs::create_dir_all(&tenants)?;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("old{i:06}");
        let mut conn = rusqlite::Connection::open(tenants.join(format!("{id}.db")))?;
        conn.execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")?;
        tenant_schema::migrate_tenant_to(&mut conn, 1, 1)?;
        conn.execute(
            "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, ?1, 1)",
            [&id],
        )?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        rows.push(Tenant {
            id: id.clone(),
            slug: format!("old-{i:06}"),
            name: id,
            status: TenantStatus::Active,
            schema_version: 1,
            node: "local".to_owned(),
            placement_epoch: 1,
            auth_epoch: 1,
            created_at: 1,
            updated_at: 1,
        });
    }
    let directory = Directory::connect(&config.directory_url()).await?;
    for chunk in rows.chunks(1000) {
        directory.insert_tenants(chunk).await?;
    }
    directory.close().await;
    Ok(())
}

/// Runs the real tenantctl with `--json`; returns its wall time and output.
fn tenantctl(data: &Path, args: &[&str]) -> anyhow::Result<(f64, Value)> {
    let start = Instant::now();
    let out = Command::new(TENANTCTL)
        .env("TENANTD_DATA_DIR", data)
        .env_remove("TENANTD_DIRECTORY_URL")
        .env_remove("TENANTD_SMTP_URL")
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "tenantctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((secs, serde_json::from_slice(&out.stdout)?))
}
