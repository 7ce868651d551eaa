#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! Scale benchmark: one `tenantd` holding 100,000 companies with skewed traffic.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p tests --bench scale   # 100,000 tenants
//! BENCH_QUICK=1 cargo bench -p tests --bench scale   # 1,000, a cap of 250, short phases
//! ```
//!
//! 1. provisions `BENCH_TENANTS` companies (100,000) of 5 active users, each with a session
//!    for its admin and one member: the first 500 with `tenantctl tenant create`'s code (8 at
//!    a time), the rest batched (files in parallel, directory rows 1,000 per transaction);
//!    time and disk use;
//! 2. starts the release `tenantd` on them (default connection cap) and measures, each against
//!    a baseline of the same run: the load test's mix (logins : session checks : admin reads =
//!    10 : 60 : 25) with a Zipf (s = 1) choice of company over all of them vs. the same mix
//!    over 50 companies; memory, descriptors and connections; a cold company's first request
//!    and what it costs the hot ones; password logins vs. the argon2 bound at 50 and at all;
//! 3. restarts it with housekeeping every second and runs the Zipf mix again (its cost), then
//!    checks that housekeeping opened no tenant while no request came.
//!
//! Data goes to a temporary folder under `BENCH_DIR` (default: the system's), removed after.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use control_plane::directory::IndexEntry;
use tenant_runtime::store::sessions::{self, Amr, Lifetimes, Origin};
use tenant_runtime::store::users::{self, NewUser, Role, Status};
use tenant_runtime::{TenantId, TenantRouter};
use tenant_schema::TENANT_LATEST;
use tests::bench::{Stats, client, quick, secs};
use tests::inproc::{NewTenant, config, directory_at, provision as create};
use tests::process::Tenantd;
use tests::seed::{activate_with_members, router_at, tenant_row};
use tests::{METRICS_TOKEN, PASSWORD};

/// Users per company (the first is its admin).
const PER: usize = 5;
/// Closed-loop clients of the mix, as in the load test of the `http` benchmark.
const CLIENTS: usize = 64;
/// Weights of logins, session checks and admin reads: the load test's, without invitations.
const MIX: [u32; 3] = [10, 60, 25];
const KINDS: [&str; 3] = ["login", "session check", "admin read"];

/// A provisioned company: its id, slug and the `Cookie` headers of its admin and a member.
#[derive(Clone)]
struct Co {
    id: String,
    slug: String,
    admin: String,
    member: String,
    /// Its users' ids in the order of their emails (`u0@…` first).
    users: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 1_000 } else { 100_000 });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let root = tempfile::Builder::new()
        .prefix("tenantd-scale-")
        .tempdir_in(base)?;
    let data = root.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "tenantd scale benchmark: {n} companies x {PER} users, {cores} cores (server and client share them), data in {}\n",
        root.path().display()
    );

    // 1. Provisioning.
    let (cos, prov) = rt.block_on(provision_all(&data, n));
    let disk = Disk::of(&data.join("tenants"))?;
    let dir_bytes = std::fs::metadata(data.join("directory.db")).map_or(0, |m| m.len());
    println!("| measure | figure | baseline (same run) | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    let rate = |(k, s): (usize, f64)| k as f64 / s.max(1e-9);
    info(
        "provision (5 users + 2 sessions each)",
        format!("{n} in {:.0} s", prov.secs()),
        format!(
            "one at a time (library, 8 in parallel): {:.0} companies/s over {}; batched ({BATCH} per directory transaction): {:.0} companies/s over {}",
            rate(prov.single),
            prov.single.0,
            rate(prov.batched),
            prov.batched.0
        ),
    );
    info(
        "disk: tenant files (allocated)",
        format!(
            "{:.2} GB, {:.1} KiB/company ({} files)",
            disk.total as f64 / 1e9,
            disk.total as f64 / 1024.0 / n as f64,
            disk.files
        ),
        format!(
            "of it .db {:.1} KiB, -shm {:.1} KiB, -wal {:.1} KiB per company; directory.db {:.1} MB",
            disk.db as f64 / 1024.0 / n as f64,
            disk.shm as f64 / 1024.0 / n as f64,
            disk.wal as f64 / 1024.0 / n as f64,
            dir_bytes as f64 / 1e6
        ),
    );

    // 2. The server, default connection cap (BENCH_MAX_CONNECTIONS to override).
    let cap = std::env::var("BENCH_MAX_CONNECTIONS")
        .ok()
        .or_else(|| quick().then(|| "250".to_owned()));
    let srv = start(&data, 600, cap.as_deref());
    let pid = srv.pid().expect("pid");
    let cos = Arc::new(cos);
    let load = |base: &str, pick: Pick| Load {
        c: client(),
        base: base.to_owned(),
        cos: cos.clone(),
        pick: Arc::new(pick),
    };
    let m0 = rt.block_on(metrics(&srv.address));
    let (mem0, fd0) = (Mem::of(pid), fds(pid));
    let rss0 = mem0.rss;
    info(
        "tenantd at start, no tenant open",
        format!(
            "RSS {:.1} MiB, {fd0} descriptors; load average {}",
            rss0 as f64 / 1024.0,
            load_average()
        ),
        format!(
            "connection cap {} (open-file limit {})",
            m0.get("tenantd_max_connections"),
            nofile_of(pid)
        ),
    );

    // Memory per open idle tenant: one session check each to `k` companies, nothing else.
    let k = (m0.get("tenantd_max_connections") as usize / 2)
        .min(n / 2)
        .min(4000);
    let touched = rt.block_on(touch_each(&load(&srv.address, Pick::First(k)), k));
    let m1 = rt.block_on(metrics(&srv.address));
    let (mem1, fd1) = (Mem::of(pid), fds(pid));
    let open1 = m1.get("tenantd_open_connections").max(1);
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / open1 as f64;
    let per_open = per(mem1.rss, mem0.rss);
    row(
        &format!("RSS per open idle tenant ({touched} touched once, {open1} open)"),
        format!(
            "{per_open:.1} KiB: heap {:.1} + mapped -shm and files {:.1}",
            per(mem1.anon, mem0.anon),
            per(mem1.rss - mem1.anon, mem0.rss - mem0.anon)
        ),
        format!("{:.1} MiB at start", rss0 as f64 / 1024.0),
        per_open / 100.0,
        "<= 100 KiB",
        per_open <= 100.0,
    );
    info(
        "descriptors per open connection",
        format!("{:.2}", (fd1 - fd0) as f64 / open1 as f64),
        format!("{fd0} at start, {fd1} with {open1} open"),
    );

    // The same mix over 50 companies, then over all with Zipf.
    let (d_mix, d_warm) = (secs(30, 4), secs(30, 4));
    let base50 = load(&srv.address, Pick::First(50.min(n)));
    rt.block_on(base50.run(CLIENTS, secs(5, 1), MIX));
    let (rate50, mut s50) = rt.block_on(base50.run(CLIENTS, d_mix, MIX));
    let zipf = load(&srv.address, Pick::zipf(n));
    rt.block_on(zipf.run(CLIENTS, d_warm, MIX));
    let (ratez, mut sz) = rt.block_on(zipf.run(CLIENTS, d_mix, MIX));
    let mz = rt.block_on(metrics(&srv.address));
    row(
        &format!("Zipf mix over {n} (req/s, {CLIENTS} clients)"),
        format!("{ratez:.0} ({} non-2xx)", errors(&sz)),
        format!("same mix over 50: {rate50:.0} ({} non-2xx)", errors(&s50)),
        ratez / rate50,
        ">= 0.80",
        ratez / rate50 >= 0.8,
    );
    for i in 0..3 {
        let (p50z, p99z, p50b, p99b) = (
            sz[i].pct(0.5),
            sz[i].pct(0.99),
            s50[i].pct(0.5),
            s50[i].pct(0.99),
        );
        row(
            &format!("  {} p50 / p99 (ms)", KINDS[i]),
            format!("{p50z:.2} / {p99z:.2}"),
            format!("over 50: {p50b:.2} / {p99b:.2}"),
            p99z / p99b,
            "p99 <= 2x",
            p99z <= 2.0 * p99b,
        );
    }
    let (rssz, fdz) = (Mem::of(pid).rss, fds(pid));
    info(
        &format!("after the Zipf mix over {n}"),
        format!(
            "RSS {:.1} MiB, {fdz} descriptors, {} connections / {} tenants open",
            rssz as f64 / 1024.0,
            mz.get("tenantd_open_connections"),
            mz.get("tenantd_open_tenants")
        ),
        format!(
            "{} tenant opens, {} evictions since start; RSS at start {:.1} MiB",
            mz.get("tenantd_tenant_opens_total"),
            mz.get("tenantd_tenant_evictions_total"),
            rss0 as f64 / 1024.0
        ),
    );

    // A cold company's first request: alone, then while the Zipf mix goes on (half the
    // clients).
    let d_cold = secs(20, 3);
    let open_now = open_tenant_ids(pid);
    let mut cold: Vec<usize> = zipf
        .pick
        .tail()
        .filter(|&i| !open_now.contains(&cos[i].id))
        .take(if quick() { 150 } else { 1400 })
        .collect();
    let mut alone = rt.block_on(zipf.cold_probe(&cold.split_off(cold.len() / 3 * 2), d_cold));
    let (alone50, alone99) = (alone.pct(0.5), alone.pct(0.99));
    let (_, mut hot_alone) = rt.block_on(zipf.run(CLIENTS / 2, d_cold, MIX));
    let (hot_run, cold_run) = rt.block_on(async {
        let z = zipf.clone();
        let hot = tokio::spawn(async move { z.run(CLIENTS / 2, d_cold, MIX).await });
        let cold = zipf.cold_probe(&cold, d_cold).await;
        (hot.await.expect("hot"), cold)
    });
    let (_, mut hot_with) = hot_run;
    let mut cold_stats = cold_run;

    let hot_alone50 = hot_alone[1].pct(0.5);
    let (hot_alone99, hot_with99) = (
        merged(&mut hot_alone).pct(0.99),
        merged(&mut hot_with).pct(0.99),
    );
    let (cold_n, cold_err) = (
        cold_stats.lat.len(),
        errors(std::slice::from_ref(&cold_stats)),
    );
    let (cold50, cold99) = (cold_stats.pct(0.5), cold_stats.pct(0.99));
    row(
        &format!(
            "cold company's first request (session check, {cold_n} probes, {cold_err} non-2xx)"
        ),
        format!("p50 {cold50:.2} ms, p99 {cold99:.2} ms"),
        format!(
            "with no other load: p50 {alone50:.2} ms, p99 {alone99:.2} ms ({} probes); hot session check p50 {hot_alone50:.2} ms",
            alone.lat.len()
        ),
        cold99 / 5.0,
        "p99 < 5 ms",
        cold99 < 5.0,
    );
    row(
        "hot p99 while cold companies open (all kinds)",
        format!("{hot_with99:.2} ms"),
        format!("without cold requests: {hot_alone99:.2} ms"),
        hot_with99 / hot_alone99,
        "report",
        true,
    );

    // Password logins at the argon2 bound, at 50 companies and at all.
    let hash = tenant_runtime::password::hash(PASSWORD)?;
    let reps = if quick() { 5 } else { 30 };
    let t = Instant::now();
    for _ in 0..reps {
        assert!(tenant_runtime::password::verify(PASSWORD, &hash));
    }
    let one = t.elapsed().as_secs_f64() / f64::from(reps);
    let bound = cores as f64 / one;
    let d_login = secs(20, 3);
    let (l50, s_l50) = rt.block_on(base50.run(cores * 4, d_login, [1, 0, 0]));
    let (lz, s_lz) = rt.block_on(zipf.run(cores * 4, d_login, [1, 0, 0]));
    let all = n.to_string();
    for (what, rate, s) in [("50", l50, &s_l50), (all.as_str(), lz, &s_lz)] {
        row(
            &format!("password logins/s over {what} companies"),
            format!("{rate:.1} ({} non-2xx)", errors(s)),
            format!(
                "argon2 bound {cores} cores / {:.1} ms = {bound:.1}/s",
                one * 1000.0
            ),
            rate / bound,
            ">= 0.95",
            rate / bound >= 0.95,
        );
    }
    drop(srv);

    // 3. Housekeeping every second (600 s by default): its cost, and that it opens no one.
    let srv = start(&data, 1, cap.as_deref());
    let hk = load(&srv.address, Pick::zipf(n));
    rt.block_on(hk.run(CLIENTS, d_warm, MIX));
    let (rate_hk, s_hk) = rt.block_on(hk.run(CLIENTS, d_mix, MIX));
    row(
        "Zipf mix with housekeeping every 1 s (req/s)",
        format!("{rate_hk:.0} ({} non-2xx)", errors(&s_hk)),
        format!("every 600 s (default): {ratez:.0}"),
        rate_hk / ratez,
        ">= 0.95",
        rate_hk / ratez >= 0.95,
    );
    let passes: Vec<(u64, u64)> = srv
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "housekeeping pass")
        .filter_map(|v| Some((v["tenants"].as_u64()?, v["elapsed_us"].as_u64()?)))
        .collect();
    let mut us: Vec<u64> = passes.iter().map(|p| p.1).collect();
    us.sort_unstable();
    let median = us.get(us.len() / 2).copied().unwrap_or(0) as f64;
    let tenants_per_pass = passes.last().map_or(0, |p| p.0);
    info(
        &format!(
            "housekeeping pass ({} passes, {tenants_per_pass} open tenants)",
            passes.len()
        ),
        format!("median {:.1} ms", median / 1000.0),
        format!(
            "every 600 s that is {:.4}% of the time, on one thread",
            median / 1e6 / 600.0 * 100.0
        ),
    );
    let before = rt.block_on(metrics(&srv.address));
    std::thread::sleep(Duration::from_secs(3)); // three housekeeping passes, no request
    let after = rt.block_on(metrics(&srv.address));
    let opened = after.get("tenantd_tenant_opens_total") - before.get("tenantd_tenant_opens_total");
    row(
        &format!(
            "tenants opened by 3 housekeeping passes over {} open",
            after.get("tenantd_open_tenants")
        ),
        format!("{opened}"),
        "-".into(),
        opened as f64,
        "0",
        opened == 0,
    );
    drop(srv);
    let t = Instant::now();
    drop(root);
    eprintln!("removed the data in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

// ---- provisioning ---------------------------------------------------------------------------

/// Companies made one at a time with `tenantctl tenant create`'s code before the batches: the
/// baseline of the provisioning rate.
const ONE_BY_ONE: usize = 500;
/// Companies per directory transaction in the batched part.
const BATCH: usize = 1_000;

/// How provisioning went: companies made one at a time and in batches, and their seconds.
struct Provisioning {
    single: (usize, f64),
    batched: (usize, f64),
}

impl Provisioning {
    fn secs(&self) -> f64 {
        self.single.1 + self.batched.1
    }
}

/// Provisions `n` companies: the first [`ONE_BY_ONE`] with the library's creation (8 at a
/// time), the rest batched: their files written in parallel through the router, then their
/// directory rows (tenant, domain, five index entries) in one transaction per [`BATCH`].
async fn provision_all(data: &Path, n: usize) -> (Vec<Co>, Provisioning) {
    let config = Arc::new(config(data, "http://bench.test", 256));
    std::fs::create_dir_all(data).expect("data dir");
    let directory = directory_at(data).await;
    let router = router_at(data);
    let hash: Arc<str> = tenant_runtime::password::hash(PASSWORD)
        .expect("hash")
        .into();
    let single = n.min(ONE_BY_ONE);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (directory, router, config, next, hash) = (
            directory.clone(),
            router.clone(),
            config.clone(),
            next.clone(),
            hash.clone(),
        );
        workers.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= single {
                    return made;
                }
                let slug = slug(i);
                let req = NewTenant {
                    slug: slug.clone(),
                    name: format!("Company {i}"),
                    domains: vec![format!("{slug}.test")],
                    admin_email: format!("u0@{slug}.test"),
                    admin_name: None,
                };
                let p = create(&directory, &router, "local", &config, &req, tests::now()).await;
                let (admin, s, h) = (p.admin_user_id.clone(), slug.clone(), hash.clone());
                let co = seed(&router, p.tenant.id, slug, move |tx, now| {
                    activate_with_members(tx, &admin, &h, &s, PER, now)
                        .map(|m| (admin.clone(), m[0].1.clone()))
                })
                .await;
                made.push((i, co));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = workers.join_next().await {
        all.extend(r.expect("worker"));
    }
    let single_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for first in (single..n).step_by(BATCH) {
        let last = (first + BATCH).min(n);
        let next = Arc::new(AtomicUsize::new(first));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (router, next, hash) = (router.clone(), next.clone(), hash.clone());
            workers.spawn(async move {
                let mut made = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= last {
                        return made;
                    }
                    let id = TenantId::generate();
                    let now = tests::now();
                    router.create_tenant(&id, now).await.expect("file");
                    let (s, h) = (slug(i), hash.clone());
                    let co = seed(&router, id, slug(i), move |tx, now| {
                        let admin = users::insert(
                            tx,
                            &NewUser {
                                email: &format!("u0@{s}.test"),
                                name: "",
                                role: Role::Admin,
                                status: Status::Active,
                                password_hash: Some(&h),
                            },
                            now,
                        )?;
                        let members = activate_with_members(tx, &admin.id, &h, &s, PER, now)?;
                        Ok((admin.id, members[0].1.clone()))
                    })
                    .await;
                    made.push((i, co));
                }
            });
        }
        let mut batch = Vec::with_capacity(last - first);
        while let Some(r) = workers.join_next().await {
            batch.extend(r.expect("worker"));
        }
        let now = tests::now();
        let rows: Vec<_> = batch
            .iter()
            .map(|(i, co)| {
                let mut t = tenant_row(&co.id, &co.slug, TENANT_LATEST.into(), "local", now);
                t.name = format!("Company {i}");
                t
            })
            .collect();
        let domains: Vec<_> = rows
            .iter()
            .map(|t| (format!("{}.test", t.slug), t.id.clone()))
            .collect();
        let emails: Vec<_> = batch
            .iter()
            .zip(&rows)
            .flat_map(|((_, co), t)| {
                co.users
                    .iter()
                    .enumerate()
                    .map(move |(u, user)| IndexEntry {
                        email: format!("u{u}@{}.test", t.slug),
                        tenant_id: t.id.clone(),
                        user_id: user.clone(),
                        state: "active".to_owned(),
                        created_at: now,
                    })
            })
            .collect();
        directory.insert_tenants(&rows).await.expect("tenant rows");
        directory
            .insert_index(&domains, &emails)
            .await
            .expect("index rows");
        all.extend(batch);
        if last / 10_000 > first / 10_000 {
            eprintln!(
                "provisioned {last} ({:.0} s batched)",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let batched_secs = start.elapsed().as_secs_f64();
    directory.close().await;
    all.sort_by_key(|(i, _)| *i);
    (
        all.into_iter().map(|(_, c)| c).collect(),
        Provisioning {
            single: (single, single_secs),
            batched: (n - single, batched_secs),
        },
    )
}

fn slug(i: usize) -> String {
    format!("co-{i:06}")
}

/// In one write of company `id`: `people` (which returns its admin's and a member's ids) and a
/// session for each of those two; then closes the company, at rest like any closed tenant
/// (WAL checkpointed and emptied).
async fn seed<F>(router: &TenantRouter, id: TenantId, slug: String, people: F) -> Co
where
    F: FnOnce(&tenant_runtime::WriteTx<'_>, i64) -> tenant_runtime::Result<(String, String)>
        + Send
        + 'static,
{
    let now = tests::now();
    let (admin, member, a, m, users) = router
        .write(&id, move |tx| {
            let (admin, member) = people(tx, now)?;
            let life = Lifetimes {
                idle: 30 * 86_400,
                absolute: 30 * 86_400,
            };
            let a = sessions::create(tx, &admin, life, &Origin::default(), &Amr::password(), now)?;
            let m = sessions::create(tx, &member, life, &Origin::default(), &Amr::password(), now)?;
            let users: Vec<String> = tx
                .prepare("SELECT id FROM users ORDER BY email")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok((admin, member, a, m, users))
        })
        .await
        .expect("seed");
    let _ = (admin, member);
    let r = router.clone();
    let closing = id.clone();
    tokio::task::spawn_blocking(move || r.close_blocking(&closing))
        .await
        .expect("close");
    Co {
        admin: cookie(&id, &a),
        member: cookie(&id, &m),
        id: id.to_string(),
        slug,
        users,
    }
}

fn cookie(id: &TenantId, token: &str) -> String {
    format!("tenantd_session={id}.{token}")
}

/// Bytes allocated on disk by the tenant files, by kind.
#[derive(Default)]
struct Disk {
    total: u64,
    db: u64,
    wal: u64,
    shm: u64,
    files: u64,
}

impl Disk {
    fn of(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let mut d = Self::default();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let bytes = e.metadata()?.blocks() * 512;
            let name = e.file_name().to_string_lossy().into_owned();
            d.total += bytes;
            d.files += 1;
            if name.ends_with("-wal") {
                d.wal += bytes;
            } else if name.ends_with("-shm") {
                d.shm += bytes;
            } else {
                d.db += bytes;
            }
        }
        Ok(d)
    }
}

// ---- the server and what it reports --------------------------------------------------------

fn start(data: &Path, housekeeping_secs: u64, cap: Option<&str>) -> Tenantd {
    let mut env = vec![
        ("TENANTD_DATA_DIR", data.display().to_string()),
        ("TENANTD_PUBLIC_URL", "http://bench.test".to_owned()),
        ("TENANTD_METRICS_TOKEN", METRICS_TOKEN.to_owned()),
        ("TENANTD_SESSION_IDLE_SECS", (30 * 86_400).to_string()),
        ("TENANTD_LOGIN_MAX_FAILURES", "1000000".to_owned()),
        ("TENANTD_IP_MAX_FAILURES", "1000000".to_owned()),
        ("TENANTD_HASH_QUEUE", "1024".to_owned()),
        ("TENANTD_HOUSEKEEPING_SECS", housekeeping_secs.to_string()),
        ("TENANTD_LOG_FORMAT", "json".to_owned()),
    ];
    if let Some(cap) = cap {
        env.push(("TENANTD_MAX_CONNECTIONS", cap.to_owned()));
    }
    Tenantd::start("scale", env)
}

/// The gauges and counters of `/metrics` without labels.
struct Metrics(Vec<(String, u64)>);

impl Metrics {
    fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    }
}

async fn metrics(base: &str) -> Metrics {
    let text = client()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    Metrics(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
            .collect(),
    )
}

/// Resident memory of a process in KiB: all of it, and the anonymous part (the heap; the rest
/// is mapped files, e.g. the tenants' `-shm`).
struct Mem {
    rss: u64,
    anon: u64,
}

impl Mem {
    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss: kib("VmRSS:"),
            anon: kib("RssAnon:"),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn nofile_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

/// The tenants whose database file the process has open now.
fn open_tenant_ids(pid: u32) -> HashSet<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            name.strip_suffix(".db").map(str::to_owned)
        })
        .collect()
}

// ---- load ---------------------------------------------------------------------------------

/// How a request picks its company.
enum Pick {
    /// Uniformly among the first `n`.
    First(usize),
    /// Zipf (s = 1) over all: rank r has weight 1/(r+1); ranks are spread over the companies
    /// by a stride, so the hot ones are not the first provisioned.
    Zipf { cdf: Vec<f64> },
}

/// Coprime with 2,000 and 100,000 (any count whose prime factors are 2 and 5).
const STRIDE: usize = 7_919;

impl Pick {
    fn zipf(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for r in 0..n {
            sum += 1.0 / (r as f64 + 1.0);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Self::Zipf { cdf }
    }

    fn index(&self) -> usize {
        match self {
            Self::First(n) => rand::random::<u32>() as usize % n,
            Self::Zipf { cdf } => {
                let u: f64 = rand::random();
                let r = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                (r * STRIDE) % cdf.len()
            }
        }
    }

    /// The coldest companies first.
    fn tail(&self) -> impl Iterator<Item = usize> + '_ {
        let n = match self {
            Self::First(n) => *n,
            Self::Zipf { cdf } => cdf.len(),
        };
        (0..n).rev().map(move |r| (r * STRIDE) % n)
    }
}

#[derive(Clone)]
struct Load {
    c: reqwest::Client,
    base: String,
    cos: Arc<Vec<Co>>,
    pick: Arc<Pick>,
}

impl Load {
    /// `workers` closed-loop clients for `dur`, each request a login, session check or admin
    /// read by `weights`: requests per second and the statistics of each kind.
    async fn run(&self, workers: usize, dur: Duration, weights: [u32; 3]) -> (f64, [Stats; 3]) {
        let start = Instant::now();
        let total: u32 = weights.iter().sum();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut kinds: [Stats; 3] = Default::default();
                while start.elapsed() < dur {
                    let co = &this.cos[this.pick.index()];
                    let roll = rand::random::<u32>() % total;
                    let kind = if roll < weights[0] {
                        0
                    } else if roll < weights[0] + weights[1] {
                        1
                    } else {
                        2
                    };
                    let t = Instant::now();
                    let status = this.request(co, kind).await;
                    kinds[kind].add(t.elapsed().as_micros() as u64, status);
                }
                kinds
            }));
        }
        let mut all: [Stats; 3] = Default::default();
        for t in tasks {
            for (a, s) in all.iter_mut().zip(t.await.expect("worker")) {
                a.merge(s);
            }
        }
        let n: usize = all.iter().map(|s| s.lat.len()).sum();
        (n as f64 / start.elapsed().as_secs_f64(), all)
    }

    async fn request(&self, co: &Co, kind: usize) -> u16 {
        let r = match kind {
            0 => {
                let u = rand::random::<u32>() as usize % PER;
                self.c
                    .post(format!("{}/api/auth/login", self.base))
                    .json(&serde_json::json!({
                        "email": format!("u{u}@{}.test", co.slug),
                        "password": PASSWORD,
                    }))
                    .send()
                    .await
            }
            1 => {
                self.c
                    .get(format!("{}/api/session", self.base))
                    .header("cookie", &co.member)
                    .send()
                    .await
            }
            _ => {
                self.c
                    .get(format!("{}/api/admin/users?limit=50", self.base))
                    .header("cookie", &co.admin)
                    .send()
                    .await
            }
        };
        match r {
            Ok(r) => {
                let s = r.status().as_u16();
                if s >= 400 {
                    eprintln!("{} of {} answered {s}", KINDS[kind], co.slug);
                }
                s
            }
            Err(e) => {
                eprintln!("{} of {} failed: {e}", KINDS[kind], co.slug);
                599
            }
        }
    }

    /// One session check to each of `cold` (companies whose file is not open), one at a time,
    /// 50 a second, until `dur` passes or they run out.
    async fn cold_probe(&self, cold: &[usize], dur: Duration) -> Stats {
        let start = Instant::now();
        let mut s = Stats::default();
        let mut every = tokio::time::interval(Duration::from_millis(20));
        for &i in cold {
            every.tick().await;
            if start.elapsed() >= dur {
                break;
            }
            let t = Instant::now();
            let status = self.request(&self.cos[i], 1).await;
            s.add(t.elapsed().as_micros() as u64, status);
        }
        s
    }
}

/// One session check to each of the first `k` companies, 8 at a time; returns how many.
async fn touch_each(load: &Load, k: usize) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (load, next) = (load.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= k {
                    return;
                }
                load.request(&load.cos[i], 1).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("toucher");
    }
    k
}

fn merged(kinds: &mut [Stats; 3]) -> Stats {
    let mut all = Stats::default();
    for s in kinds.iter_mut() {
        all.merge(std::mem::take(s));
    }
    all
}

fn errors(s: &[Stats]) -> u64 {
    s.iter().map(|s| s.err4 + s.err5).sum()
}

fn row(what: &str, figure: String, baseline: String, ratio: f64, target: &str, pass: bool) {
    tests::bench::row(what, figure, baseline, ratio, target, pass);
}

fn info(what: &str, figure: String, baseline: String) {
    println!("| {what} | {figure} | {baseline} | - | report | - |");
}
