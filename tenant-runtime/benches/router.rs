//! Benchmarks of the tenant router, printed as one markdown table (progress goes to stderr).
//!
//! ```text
//! cargo bench -p tenant-runtime --bench router                 # full run, 1 to 2 minutes on 2 cores
//! BENCH_QUICK=1 cargo bench -p tenant-runtime --bench router   # smaller counts, about 10 seconds
//! BENCH_ONLY=23 cargo bench -p tenant-runtime --bench router    # only sections 2 and 3
//! ```
//!
//! Every figure is set against a baseline measured in the same run, on the same files:
//! 1. a point read of a user by email through `read_blocking` vs. the same prepared query on a
//!    raw rusqlite connection;
//! 2. cold open (median, p99) of a tenant that is not open: one that was open before (its `-wal`
//!    and `-shm` exist) and one never opened since its creation, vs. opening such a file with raw
//!    rusqlite and reading one row; also cold opens at a full cap, which first evict;
//! 3. throughput of point reads by email (2 threads through `read_blocking`, uniform random
//!    tenant) over 10,000 tenants with a cap of 256 open connections vs. over 50 tenants;
//! 4. resident memory (`VmRSS` in `/proc/self/status`) and open descriptors (`/proc/self/fd`) of
//!    a fresh process after 1,000 and 10,000 tenants were each touched once through a default
//!    router (cap 512), vs. the same process before it touched any.
//!
//! Tenant files live in a temporary folder under `$TMPDIR`; the OS page cache is warm, as on a
//! busy server. The figures depend on the filesystem (SQLite creates, truncates and locks files
//! at every open) and on other load: the run prints the load average. A missed target prints
//! `MISS`; nothing is tuned to the targets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Statement};
use tenant_runtime::store::users::{self, NewUser, Role, Status, User};
use tenant_runtime::{RouterConfig, TenantId, TenantRouter};

const OWNER: &str = "owner@acme.test";
const CHILD_ENV: &str = "TENANT_ROUTER_BENCH_CHILD";

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Scale {
    quick: bool,
    read_users: usize,
    read_rounds: usize,
    read_iters: usize,
    cold_tenants: usize,
    many_tenants: usize,
    few_tenants: usize,
    cap: usize,
    run_for: Duration,
    memory_points: [usize; 2],
}

impl Scale {
    fn from_env() -> Self {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Self {
                quick,
                read_users: 200,
                read_rounds: 3,
                read_iters: 5_000,
                cold_tenants: 200,
                many_tenants: 1_000,
                few_tenants: 50,
                cap: 256,
                run_for: Duration::from_millis(500),
                memory_points: [100, 1_000],
            }
        } else {
            Self {
                quick,
                read_users: 1_000,
                read_rounds: 7,
                read_iters: 50_000,
                cold_tenants: 2_000,
                many_tenants: 10_000,
                few_tenants: 50,
                cap: 256,
                run_for: Duration::from_secs(10),
                memory_points: [1_000, 10_000],
            }
        }
    }
}

fn main() -> BenchResult {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return memory_child(&spec);
    }
    // `cargo bench` passes `--bench`; a filter argument would not apply to this table.
    let scale = Scale::from_env();
    let started = Instant::now();
    let load_before = load_average();
    let dir = tempfile::tempdir()?;
    let mut table = Table::default();

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |section: char| only.is_empty() || only.contains(section);

    if run('1') {
        eprintln!("[1/4] point read by email, routed vs. raw");
        point_read(&scale, &dir.path().join("read"), &mut table)?;
    }
    if run('2') {
        eprintln!("[2/4] cold open of {} tenants", scale.cold_tenants);
        cold_open(&scale, &dir.path().join("cold"), &mut table)?;
    }
    if run('3') || run('4') {
        eprintln!(
            "[3/4] creating {} tenants for throughput and memory",
            scale.many_tenants
        );
        let many_dir = dir.path().join("many");
        let t = Instant::now();
        let ids = create_tenants(&many_dir, "m", scale.many_tenants, true)?;
        eprintln!("      created in {:.1?}", t.elapsed());
        if run('3') {
            throughput(&scale, &many_dir, &ids, &mut table)?;
        }
        if run('4') {
            eprintln!("[4/4] memory and descriptors in a fresh process");
            memory(&scale, &many_dir, &mut table)?;
        }
    }

    println!();
    println!(
        "## tenant-runtime router benchmark{}",
        if scale.quick {
            " (BENCH_QUICK: reduced counts)"
        } else {
            ""
        }
    );
    println!();
    table.print();
    for note in &table.notes {
        println!();
        println!("{note}");
    }
    let t = Instant::now();
    remove_files_in_parallel(dir.path())?;
    dir.close()?;
    let cleanup = t.elapsed();
    println!();
    println!(
        "Total run time: {:.1?} (removing the temporary files took {cleanup:.1?}). Load average before / after: {} / {} ({} CPUs); \
         other work on the machine inflates every figure.",
        started.elapsed(),
        load_before,
        load_average(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    Ok(())
}

/// Removing tens of thousands of files waits on the filesystem journal; four threads overlap
/// the waits.
fn remove_files_in_parallel(root: &Path) -> BenchResult {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root)? {
        let dir = dir?.path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir)? {
                files.push(f?.path());
            }
        }
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let _ = std::fs::remove_file(f);
                }
            });
        }
    });
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// 1. Point read by email

fn point_read(scale: &Scale, root: &Path, table: &mut Table) -> BenchResult {
    let router = TenantRouter::new(RouterConfig::new(root))?;
    let id = TenantId::parse("reader")?;
    router.create_tenant_blocking(&id, 1)?;
    let emails: Vec<String> = (0..scale.read_users)
        .map(|i| format!("user{i}@acme.test"))
        .collect();
    {
        let emails = emails.clone();
        router.write_blocking(&id, move |tx| {
            for e in &emails {
                users::insert(tx, &new_user(e), 1)?;
            }
            Ok(())
        })?;
    }

    // The raw baseline: one connection, configured like the router's, one prepared statement.
    let raw = Connection::open_with_flags(
        router.path_of(&id),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -512; PRAGMA busy_timeout = 5000;",
    )?;
    let mut stmt = raw.prepare(
        "SELECT id, email, name, role, status, password_hash, created_at, updated_at, last_login_at, password_reset_required
         FROM users WHERE email = ?1",
    )?;

    let n = emails.len();
    let mut routed_ns = Vec::new();
    let mut raw_ns = Vec::new();
    // Warm both paths, then alternate rounds so drift hits both alike.
    run_routed(&router, &id, &emails, scale.read_iters / 4)?;
    run_raw(&mut stmt, &emails, scale.read_iters / 4)?;
    for _ in 0..scale.read_rounds {
        let t = Instant::now();
        run_raw(&mut stmt, &emails, scale.read_iters)?;
        raw_ns.push(t.elapsed().as_nanos() as f64 / scale.read_iters as f64);
        let t = Instant::now();
        run_routed(&router, &id, &emails, scale.read_iters)?;
        routed_ns.push(t.elapsed().as_nanos() as f64 / scale.read_iters as f64);
    }
    let routed = median_f(&mut routed_ns);
    let rawm = median_f(&mut raw_ns);
    let ratio = routed / rawm;
    table.row(Row {
        measure: format!(
            "1. point read by email ({n} users), per read, median of {} rounds",
            scale.read_rounds
        ),
        figure: format!("{} routed", fmt_ns(routed)),
        baseline: format!("{} raw prepared", fmt_ns(rawm)),
        ratio: format!("{ratio:.2}×"),
        target: "≤ 1.50×".into(),
        verdict: Verdict::of(ratio <= 1.5),
    });
    Ok(())
}

fn run_routed(
    router: &TenantRouter,
    id: &TenantId,
    emails: &[String],
    iters: usize,
) -> BenchResult {
    for i in 0..iters {
        let email = &emails[i % emails.len()];
        let user = router.read_blocking(id, |c| users::find_by_email(c, email))?;
        std::hint::black_box(user.ok_or("user missing")?);
    }
    Ok(())
}

fn run_raw(stmt: &mut Statement<'_>, emails: &[String], iters: usize) -> BenchResult {
    use rusqlite::OptionalExtension;
    for i in 0..iters {
        let email = &emails[i % emails.len()];
        let user = stmt.query_row([email], user_from_row).optional()?;
        std::hint::black_box(user.ok_or("user missing")?);
    }
    Ok(())
}

/// The same mapping as the store's (private) row reader.
fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    let status: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        status: Status::parse(&status).unwrap_or(Status::Blocked),
        password_hash: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        last_login_at: r.get(8)?,
        password_reset_required: r.get(9)?,
    })
}

// ---------------------------------------------------------------------------------------------
// 2. Cold open

fn cold_open(scale: &Scale, root: &Path, table: &mut Table) -> BenchResult {
    let n = scale.cold_tenants;
    let ids = create_tenants(root, "c", n, false)?;
    let (first, second) = ids.split_at(n / 2);
    let big = n + 16;

    // First open ever, right after creation: SQLite creates the `-wal` and `-shm` files.
    // Baseline: raw rusqlite on one half, the router on the other.
    let mut raw_first = Vec::with_capacity(first.len());
    for id in first {
        raw_first.push(raw_open(root, id)?);
    }
    let router = router_with_cap(root, big)?;
    let mut first_ever = Vec::with_capacity(second.len());
    for id in second {
        let t = Instant::now();
        router.read_blocking(id, |_| Ok(()))?;
        first_ever.push(t.elapsed());
    }
    drop(router); // closes every tenant

    // Cold open of a tenant that was open before and is closed now (the steady state: files
    // exist). Tenants alternate between raw and router, so drift hits both alike.
    let router = router_with_cap(root, big)?;
    let mut raw = Vec::with_capacity(n / 2);
    let mut cold = Vec::with_capacity(n / 2);
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            raw.push(raw_open(root, id)?);
        } else {
            let t = Instant::now();
            router.read_blocking(id, |_| Ok(()))?;
            cold.push(t.elapsed());
        }
    }
    drop(router);

    // Router at its cap: every cold open first closes idle tenants (batches of cap/16).
    let router = router_with_cap(root, 64)?;
    for id in &ids[..64] {
        router.read_blocking(id, |_| Ok(()))?;
    }
    let mut at_cap = Vec::with_capacity(n);
    for id in &ids[64..] {
        let t = Instant::now();
        router.read_blocking(id, |_| Ok(()))?;
        at_cap.push(t.elapsed());
    }
    let stats = router.stats();
    drop(router);

    let target = Duration::from_micros(300);
    let (raw_med, raw_p99) = (percentile(&mut raw, 50.0), percentile(&mut raw, 99.0));
    let (med, p99) = (percentile(&mut cold, 50.0), percentile(&mut cold, 99.0));
    table.row(Row {
        measure: format!(
            "2. cold open, median ({} tenants opened before, now closed)",
            cold.len()
        ),
        figure: fmt_dur(med),
        baseline: format!("{} raw open + 1 row", fmt_dur(raw_med)),
        ratio: format!("{:.2}×", ratio(med, raw_med)),
        target: "median < 300 µs".into(),
        verdict: Verdict::of(med < target),
    });
    table.row(Row {
        measure: "2. cold open, p99".into(),
        figure: fmt_dur(p99),
        baseline: format!("{} raw open + 1 row", fmt_dur(raw_p99)),
        ratio: format!("{:.2}×", ratio(p99, raw_p99)),
        target: "report".into(),
        verdict: Verdict::Info,
    });
    let (raw_fmed, raw_fp99) = (
        percentile(&mut raw_first, 50.0),
        percentile(&mut raw_first, 99.0),
    );
    let (fmed, fp99) = (
        percentile(&mut first_ever, 50.0),
        percentile(&mut first_ever, 99.0),
    );
    table.row(Row {
        measure: format!(
            "2. first open ever, just after creation (creates -wal/-shm), median / p99 ({} tenants each)",
            second.len()
        ),
        figure: format!("{} / {}", fmt_dur(fmed), fmt_dur(fp99)),
        baseline: format!("{} / {} raw open + 1 row", fmt_dur(raw_fmed), fmt_dur(raw_fp99)),
        ratio: format!("{:.2}× / {:.2}×", ratio(fmed, raw_fmed), ratio(fp99, raw_fp99)),
        target: "median < 300 µs".into(),
        verdict: Verdict::of(fmed < target),
    });
    let (cap_med, cap_p99) = (percentile(&mut at_cap, 50.0), percentile(&mut at_cap, 99.0));
    table.row(Row {
        measure: format!(
            "2. cold open at a cap of 64 (each closes idle tenants; {} evictions), median / p99",
            stats.evictions
        ),
        figure: format!("{} / {}", fmt_dur(cap_med), fmt_dur(cap_p99)),
        baseline: format!("{} / {} below the cap", fmt_dur(med), fmt_dur(p99)),
        ratio: format!("{:.2}× / {:.2}×", ratio(cap_med, med), ratio(cap_p99, p99)),
        target: "report".into(),
        verdict: Verdict::Info,
    });
    Ok(())
}

/// Opens a closed tenant file with raw rusqlite and reads the row the router checks; closes it
/// (untimed) without SQLite's checkpoint-on-close, as the router does, so the files stay.
fn raw_open(root: &Path, id: &TenantId) -> BenchResult<Duration> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let path = root.join(format!("{id}.db"));
    let t = Instant::now();
    let conn = Connection::open_with_flags(&path, flags)?;
    let found: String =
        conn.query_row("SELECT tenant_id FROM tenant_meta WHERE id = 1", [], |r| {
            r.get(0)
        })?;
    let took = t.elapsed();
    std::hint::black_box(found);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    drop(conn);
    Ok(took)
}

// ---------------------------------------------------------------------------------------------
// 3. Throughput

fn throughput(scale: &Scale, root: &Path, ids: &[TenantId], table: &mut Table) -> BenchResult {
    let few = &ids[..scale.few_tenants];
    let many = ids;
    // Warm both, then alternate halves of the run so drift hits both alike.
    let half = scale.run_for / 2;
    let mut few_r = Vec::new();
    let mut many_r = Vec::new();
    let few_router = router_with_cap(root, scale.cap)?;
    let many_router = router_with_cap(root, scale.cap)?;
    run_uniform(&few_router, few, half / 2)?;
    run_uniform(&many_router, many, half / 2)?;
    for _ in 0..2 {
        few_r.push(run_uniform(&few_router, few, half)?);
        many_r.push(run_uniform(&many_router, many, half)?);
    }
    let few_t = Run::sum(&few_r);
    let many_t = Run::sum(&many_r);
    let r = many_t.per_sec() / few_t.per_sec();
    let hit = 1.0 - many_t.opens as f64 / many_t.ops.max(1) as f64;
    table.row(Row {
        measure: format!(
            "3. throughput, 2 threads, point reads, {} tenants uniform, cap {} (hit rate {:.1}%, {} open at the end)",
            many.len(),
            scale.cap,
            hit * 100.0,
            many_router.stats().open_connections
        ),
        figure: format!("{:.0} reads/s", many_t.per_sec()),
        baseline: format!("{:.0} reads/s, {} tenants", few_t.per_sec(), few.len()),
        ratio: format!("{r:.3}"),
        target: "≥ 0.70".into(),
        verdict: Verdict::of(r >= 0.70),
    });
    // What the target would take: per-thread cost of a hit (h) and of a miss (c), and the hit
    // rate at which the mix reaches 70% of the all-hits rate.
    let h = 2.0 / few_t.per_sec();
    let per_op = 2.0 / many_t.per_sec();
    let miss = 1.0 - hit;
    let c = (per_op - hit * h) / miss.max(1e-9);
    let max_miss = (h / 0.70 - h) / (c - h);
    table.notes.push(format!(
        "Note on 3: under uniform access a read finds its tenant open with probability about \
         cap/tenants = {:.1}% (measured {:.1}%). A read of an open tenant costs {} per thread, one \
         that must open it about {} (open, and close another). Reaching 0.70 would need a hit \
         rate of at least {:.1}%, i.e. about {:.0} of the {} tenants open at once, against a cap \
         of {}: with a cap this far below the tenant count, no router can meet this target.",
        100.0 * scale.cap as f64 / many.len() as f64,
        hit * 100.0,
        fmt_ns(h * 1e9),
        fmt_ns(c * 1e9),
        100.0 * (1.0 - max_miss),
        (1.0 - max_miss) * many.len() as f64,
        many.len(),
        scale.cap
    ));
    let errors = many_t.errors + few_t.errors;
    table.row(Row {
        measure: "3. errors during the throughput runs (e.g. too many open files)".into(),
        figure: format!("{errors}"),
        baseline: "0".into(),
        ratio: "–".into(),
        target: "0".into(),
        verdict: Verdict::of(errors == 0),
    });
    Ok(())
}

fn router_with_cap(root: &Path, cap: usize) -> BenchResult<TenantRouter> {
    let mut cfg = RouterConfig::new(root);
    cfg.max_connections = cap;
    Ok(TenantRouter::new(cfg)?)
}

#[derive(Default, Clone, Copy)]
struct Run {
    ops: u64,
    errors: u64,
    opens: u64,
    elapsed: Duration,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn sum(runs: &[Run]) -> Run {
        runs.iter().fold(Run::default(), |a, r| Run {
            ops: a.ops + r.ops,
            errors: a.errors + r.errors,
            opens: a.opens + r.opens,
            elapsed: a.elapsed + r.elapsed,
        })
    }
}

/// Two threads doing point reads by email on uniformly random tenants for `run_for`.
fn run_uniform(router: &TenantRouter, ids: &[TenantId], run_for: Duration) -> BenchResult<Run> {
    const THREADS: usize = 2;
    let ops = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_error = parking_lot::Mutex::new(None::<String>);
    let start = Barrier::new(THREADS + 1);
    let opens_before = router.stats().tenant_opens;
    let t0 = std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ops, errors, first_error, start) = (&ops, &errors, &first_error, &start);
            s.spawn(move || {
                let mut rng = SplitMix(0x9e37_79b9 + t as u64 * 7919 + ids.len() as u64);
                start.wait();
                let deadline = Instant::now() + run_for;
                let mut n = 0u64;
                loop {
                    for _ in 0..32 {
                        let id = &ids[rng.below(ids.len())];
                        match router.read_blocking(id, |c| users::find_by_email(c, OWNER)) {
                            Ok(u) => {
                                std::hint::black_box(u);
                            }
                            Err(e) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                first_error.lock().get_or_insert_with(|| format!("{e}"));
                            }
                        }
                        n += 1;
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                ops.fetch_add(n, Ordering::Relaxed);
            });
        }
        start.wait();
        Instant::now()
    });
    // The scope joined every thread, so this spans the whole run.
    let elapsed = t0.elapsed();
    if let Some(e) = first_error.lock().take() {
        eprintln!("      first error: {e}");
    }
    Ok(Run {
        ops: ops.into_inner(),
        errors: errors.into_inner(),
        opens: router.stats().tenant_opens - opens_before,
        elapsed,
    })
}

// ---------------------------------------------------------------------------------------------
// 4. Memory and descriptors, in a fresh process per point

fn memory(scale: &Scale, root: &Path, table: &mut Table) -> BenchResult {
    let exe = std::env::current_exe()?;
    for n in scale.memory_points {
        let out = Command::new(&exe)
            .env(CHILD_ENV, format!("{n}:{}", root.display()))
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "memory child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let text = String::from_utf8(out.stdout)?;
        let v: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [rss0, fd0, rss1, fd1, open, errors] = v[..] else {
            return Err(format!("bad child output {text:?}").into());
        };
        table.row(Row {
            measure: format!(
                "4. resident memory, {n} tenants touched once, default router (cap 512; {open} connections open)"
            ),
            figure: format!("{:.1} MiB", rss1 as f64 / 1024.0),
            baseline: format!("{:.1} MiB before any tenant", rss0 as f64 / 1024.0),
            ratio: format!(
                "{:.2}× (+{:.1} KiB/open connection)",
                rss1 as f64 / rss0 as f64,
                (rss1.saturating_sub(rss0)) as f64 / open.max(1) as f64
            ),
            target: "report".into(),
            verdict: Verdict::Info,
        });
        table.row(Row {
            measure: format!("4. open descriptors, {n} tenants touched once ({errors} errors)"),
            figure: format!("{fd1}"),
            baseline: format!("{fd0} before any tenant"),
            ratio: format!(
                "{:.2} per open connection",
                (fd1 - fd0) as f64 / open.max(1) as f64
            ),
            target: "no EMFILE".into(),
            verdict: Verdict::of(errors == 0),
        });
    }
    Ok(())
}

/// Runs in a child process: touches the first `n` tenants once through a default router and
/// prints `rss_before fds_before rss_after fds_after open_connections errors`.
fn memory_child(spec: &str) -> BenchResult {
    let (n, root) = spec.split_once(':').ok_or("bad child spec")?;
    let n: usize = n.parse()?;
    let router = TenantRouter::new(RouterConfig::new(root))?;
    let ids: Vec<TenantId> = (0..n)
        .map(|i| tenant_id("m", i))
        .collect::<BenchResult<_>>()?;
    let (rss0, fd0) = (vm_rss_kib()?, open_fds()?);
    let mut errors = 0;
    for id in &ids {
        if router
            .read_blocking(id, |c| users::find_by_email(c, OWNER))
            .is_err()
        {
            errors += 1;
        }
    }
    let (rss1, fd1) = (vm_rss_kib()?, open_fds()?);
    let open = router.stats().open_connections;
    println!("{rss0} {fd0} {rss1} {fd1} {open} {errors}");
    Ok(())
}

fn vm_rss_kib() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

fn open_fds() -> BenchResult<u64> {
    // Minus the descriptor read_dir itself holds.
    Ok(std::fs::read_dir("/proc/self/fd")?.count() as u64 - 1)
}

// ---------------------------------------------------------------------------------------------
// Setup

fn tenant_id(prefix: &str, i: usize) -> BenchResult<TenantId> {
    Ok(TenantId::parse(&format!("{prefix}{i:06}"))?)
}

fn new_user(email: &str) -> NewUser<'_> {
    NewUser {
        email,
        name: "Bench",
        role: Role::Member,
        status: Status::Active,
        password_hash: None,
    }
}

/// Creates `n` tenants, each with one user when `with_owner`, all closed when this returns.
///
/// A setup shortcut: one template tenant is created through the router (and its user written
/// through it); the others are copies of its file, each stamped with its own id through raw
/// SQLite with `synchronous = OFF`. That skips the two fsyncs per tenant of a real creation
/// (which on this kind of machine would take most of the time budget) and leaves every file as
/// a real creation does: only `<id>.db`, never opened by a router. All measuring goes through
/// the router.
fn create_tenants(
    root: &Path,
    prefix: &str,
    n: usize,
    with_owner: bool,
) -> BenchResult<Vec<TenantId>> {
    let ids: Vec<TenantId> = (0..n)
        .map(|i| tenant_id(prefix, i))
        .collect::<BenchResult<_>>()?;
    let template_dir = root.with_extension("template");
    let template = {
        let router = router_with_cap(&template_dir, 4)?;
        let id = TenantId::parse("template")?;
        router.create_tenant_blocking(&id, 1)?;
        if with_owner {
            router.write_blocking(&id, |tx| users::insert(tx, &new_user(OWNER), 1).map(drop))?;
        }
        router.close_blocking(&id);
        router.path_of(&id)
    };
    std::fs::create_dir_all(root)?;
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| -> BenchResult {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> BenchResult {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(id) = ids.get(i) else { return Ok(()) };
                        let path = root.join(format!("{id}.db"));
                        std::fs::copy(&template, &path)?;
                        let conn =
                            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                        conn.execute_batch("PRAGMA synchronous = OFF")?;
                        conn.execute(
                            "UPDATE tenant_meta SET tenant_id = ?1 WHERE id = 1",
                            [id.as_str()],
                        )?;
                        // SQLite's default close checkpoints and deletes the -wal and -shm.
                        conn.close().map_err(|(_, e)| e)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| "setup thread panicked")??;
        }
        Ok(())
    })?;
    // Every copy is the tenant it claims to be.
    let router = router_with_cap(root, 4)?;
    for id in [&ids[0], &ids[n - 1]] {
        let found = router.read_blocking(id, tenant_runtime::store::meta::tenant_id)?;
        if found != id.as_str()
            || (with_owner
                && router
                    .read_blocking(id, |c| users::find_by_email(c, OWNER))?
                    .is_none())
        {
            return Err(format!("setup of {id} went wrong").into());
        }
        router.close_blocking(id);
    }
    // Those two were opened: make them like the others again.
    for id in [&ids[0], &ids[n - 1]] {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(root.join(format!("{id}.db{suffix}")));
        }
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// A tiny deterministic generator, so the random choice costs next to nothing.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn median_f(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn fmt_ns(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1000.0)
    }
}

fn fmt_dur(d: Duration) -> String {
    fmt_ns(d.as_nanos() as f64)
}

#[derive(Clone, Copy)]
enum Verdict {
    Pass,
    Miss,
    Info,
}

impl Verdict {
    fn of(ok: bool) -> Self {
        if ok { Self::Pass } else { Self::Miss }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::Info => "–",
        }
    }
}

struct Row {
    measure: String,
    figure: String,
    baseline: String,
    ratio: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    fn row(&mut self, r: Row) {
        eprintln!(
            "      {}: {} vs {} → {} {}",
            r.measure,
            r.figure,
            r.baseline,
            r.ratio,
            r.verdict.as_str()
        );
        self.rows.push(r);
    }

    fn print(&self) {
        println!("| measure | figure | baseline (same run) | ratio | target | result |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.measure,
                r.figure,
                r.baseline,
                r.ratio,
                r.target,
                r.verdict.as_str()
            );
        }
    }
}
