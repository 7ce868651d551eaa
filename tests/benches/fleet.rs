#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! Fleet benchmark: provision, migrate and back up many tenants; prints tenants per second.
//!
//! ```text
//! cargo build --release --bins                              # the tenantctl it runs
//! cargo bench -p tests --bench fleet                        # 10,000 tenants (a few minutes)
//! TENANTCTL_BENCH_N=300 cargo bench -p tests --bench fleet  # smoke run (so is BENCH_QUICK=1)
//! ```
//!
//! - provision: the library's tenant creation (what `tenantctl tenant create` runs, without the
//!   mail), 4 at a time, each with its domain and invited admin;
//! - migrate: the real `tenantctl migrate` over N tenant files at schema version 1, then again
//!   (every tenant current: the skip path);
//! - backup: the real `tenantctl backup` of the N provisioned tenants.
//!
//! Data goes to a temporary folder under `TENANTCTL_BENCH_DIR` (default: the system's).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tests::Ctl;
use tests::bench::quick;
use tests::inproc::{NewTenant, config, directory_at, provision as create};
use tests::seed::{old_tenant_file, router_at, tenant_row};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("TENANTCTL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 300 } else { 10_000 });
    let base = std::env::var_os("TENANTCTL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let root = tempfile::Builder::new()
        .prefix("tenantctl-bench-")
        .tempdir_in(base)?;
    println!(
        "fleet benchmark: {n} tenants in {}, with {}",
        root.path().display(),
        tests::process::binary("tenantctl").display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let fleet = root.path().join("fleet");
    let provision = rt.block_on(provision(&fleet, n));
    report("provision", n, provision);

    let old = root.path().join("old");
    rt.block_on(old_fleet(&old, n));
    let (secs, out) = Ctl::new(&old).timed_json(&["migrate"]);
    assert_eq!(out["migrated"].as_u64(), Some(n as u64), "{out}");
    report("migrate (v1 -> latest)", n, secs);
    let (secs, out) = Ctl::new(&old).timed_json(&["migrate"]);
    assert_eq!(out["current"].as_u64(), Some(n as u64), "{out}");
    report("migrate (all current)", n, secs);

    let out_dir = root.path().join("backup");
    let (secs, out) =
        Ctl::new(&fleet).timed_json(&["backup", "--out", &out_dir.display().to_string()]);
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

/// Provisions `n` tenants, 4 at a time; returns the seconds it took.
async fn provision(data: &Path, n: usize) -> f64 {
    let config = Arc::new(config(data, "http://127.0.0.1:8080", 512));
    std::fs::create_dir_all(data).expect("data dir");
    let directory = directory_at(data).await;
    let router = router_at(data);
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
                    return;
                }
                let slug = format!("bench-{i:06}");
                let req = NewTenant {
                    slug: slug.clone(),
                    name: format!("Bench {i}"),
                    domains: vec![format!("{slug}.test")],
                    admin_email: format!("admin@{slug}.test"),
                    admin_name: Some("Admin".to_owned()),
                };
                let p = create(&directory, &router, "local", &config, &req, tests::now()).await;
                let id = p.tenant.id.clone();
                // A fleet of 10,000 does not keep 10,000 pools open.
                let r = router.clone();
                tokio::task::spawn_blocking(move || r.close_blocking(&id))
                    .await
                    .expect("close");
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.expect("worker");
    }
    let secs = start.elapsed().as_secs_f64();
    directory.close().await;
    secs
}

/// N tenant files at schema version 1 and their directory rows, made directly.
async fn old_fleet(data: &Path, n: usize) {
    let tenants = data.join("tenants");
    std::fs::create_dir_all(&tenants).expect("tenants dir");
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let id = format!("old{i:06}");
            old_tenant_file(&tenants, &id, false);
            tenant_row(&id, &format!("old-{i:06}"), 1, "local", 1)
        })
        .collect();
    let directory = directory_at(data).await;
    for chunk in rows.chunks(1000) {
        directory.insert_tenants(chunk).await.expect("rows");
    }
    directory.close().await;
}
