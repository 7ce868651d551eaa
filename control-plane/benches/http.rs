//! HTTP benchmarks and the load test of `tenantd`, against a real server on a loopback port.
//!
//! `cargo bench -p control-plane --bench http` prints, in one run:
//! 1. argon2id alone (the baseline) vs. login throughput through the server;
//! 2. session-checked `GET /api/session` vs. the static `GET /livez`, with p50/p99;
//! 3. session checks during a login flood at 10x capacity vs. unloaded;
//! 4. the load test: 64 clients for 60 s (BENCH_LOAD_SECS) over 50 tenants x 25 users, mixing
//!    logins, session checks, admin reads and invitations; 5xx count, lost writes, p50/p99.
//!
//! `BENCH_QUICK=1` shortens every phase (a smoke run, figures not meaningful).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use control_plane::config::{Config, ServerConfig};
use control_plane::mail::MemoryMailer;
use control_plane::service::provision::{NewTenant, create_tenant};
use control_plane::startup::{Application, Overrides};
use control_plane::state::AppState;
use tenant_runtime::store::users::{self, NewUser, Role, Status};

const PASSWORD: &str = "lantern-orchard-velvet-42";

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn secs(full: u64, quick_secs: u64) -> Duration {
    Duration::from_secs(if quick() { quick_secs } else { full })
}

struct Server {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn start(hash_queue: usize) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().to_owned(),
        public_url: "http://bench.test".parse().expect("url"),
        smtp_url: None,
        mail_from: "bench <bench@bench.test>".into(),
        product_name: "tenantd".into(),
        directory_url: None,
        max_connections: 512,
    };
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        session_idle_secs: 3600,
        session_absolute_secs: 12 * 3600,
        hash_concurrency: None,
        hash_queue,
        login_max_failures: 1_000_000,
        ip_max_failures: 1_000_000,
        ip_window_secs: 60,
    };
    let overrides = Overrides {
        mailer: Some(Arc::new(MemoryMailer::default())),
        clock: None,
    };
    let app = Application::build(config, server, overrides)
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port);
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    Server {
        base,
        state,
        _dir: dir,
    }
}

/// 50 companies x 25 active users (admin is user 0), written straight to the stores.
async fn seed(state: &AppState, tenants: usize, per: usize) -> Vec<(String, Vec<String>)> {
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let mut out = Vec::new();
    for t in 0..tenants {
        let slug = format!("co{t:03}");
        let p = create_tenant(
            &state.directory,
            &state.tenants,
            &state.config,
            &NewTenant {
                slug: slug.clone(),
                name: slug.clone(),
                domains: vec![],
                admin_email: format!("u0@{slug}.test"),
                admin_name: None,
            },
            state.now(),
        )
        .await
        .expect("provision");
        let id = p.tenant.tenant_id().expect("id");
        let (h, admin, now) = (hash.clone(), p.admin_user_id.clone(), state.now());
        let s = slug.clone();
        let created: Vec<(String, String)> = state
            .tenants
            .write(&id, move |tx| {
                users::set_password_hash(tx, &admin, &h, now)?;
                users::set_status(tx, &admin, Status::Active, now)?;
                let mut v = Vec::new();
                for u in 1..per {
                    let email = format!("u{u}@{s}.test");
                    let user = users::insert(
                        tx,
                        &NewUser {
                            email: &email,
                            name: "",
                            role: Role::Member,
                            status: Status::Active,
                            password_hash: Some(&h),
                        },
                        now,
                    )?;
                    v.push((email, user.id));
                }
                Ok(v)
            })
            .await
            .expect("seed users");
        let mut emails = vec![format!("u0@{slug}.test")];
        for (email, uid) in created {
            state
                .directory
                .upsert_email(&email, id.as_str(), &uid)
                .await
                .expect("index");
            emails.push(email);
        }
        out.push((id.to_string(), emails));
    }
    out
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

async fn login(c: &reqwest::Client, base: &str, email: &str) -> Option<String> {
    let r = c
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.headers()
        .get("set-cookie")?
        .to_str()
        .ok()?
        .split(';')
        .next()
        .map(str::to_owned)
}

/// Latencies in microseconds, with status counts.
#[derive(Default)]
struct Stats {
    lat: Vec<u64>,
    ok: u64,
    err4: u64,
    err5: u64,
}

impl Stats {
    fn add(&mut self, us: u64, status: u16) {
        self.lat.push(us);
        match status {
            500..=599 => self.err5 += 1,
            400..=499 => self.err4 += 1,
            _ => self.ok += 1,
        }
    }

    fn merge(&mut self, o: Stats) {
        self.lat.extend(o.lat);
        self.ok += o.ok;
        self.err4 += o.err4;
        self.err5 += o.err5;
    }

    fn pct(&mut self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return 0.0;
        }
        self.lat.sort_unstable();
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i] as f64 / 1000.0
    }
}

/// Runs `n` workers doing `op` until `dur` passes; returns requests/s and stats.
async fn hammer<F, Fut>(n: usize, dur: Duration, op: F) -> (f64, Stats)
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..n {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = Stats::default();
            while start.elapsed() < dur {
                let t = Instant::now();
                let status = op(w).await;
                s.add(t.elapsed().as_micros() as u64, status);
            }
            s
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await.expect("worker"));
    }
    let rate = all.lat.len() as f64 / start.elapsed().as_secs_f64();
    (rate, all)
}

async fn get_status(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> u16 {
    let mut r = c.get(url);
    if let Some(ck) = cookie {
        r = r.header("cookie", ck);
    }
    r.send().await.map_or(599, |r| r.status().as_u16())
}

/// Runs `wrk` (one thread, 64 connections) if installed: requests/s, p50 and p99 in ms. A C
/// client leaves more of the two cores to the server than the in-process one.
fn wrk(url: &str, cookie: Option<&str>, dur: Duration) -> Option<(f64, f64, f64)> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args([
        "-t1",
        "-c64",
        "--latency",
        &format!("-d{}s", dur.as_secs().max(1)),
    ]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    let out = cmd.arg(url).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        eprintln!("wrk saw non-2xx answers:\n{text}");
        return None;
    }
    let ms = |v: &str| -> Option<f64> {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p).map(str::trim))
            .and_then(ms)
    };
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    Some((rps, pct("50%")?, pct("99%")?))
}

fn row(what: &str, figure: String, baseline: String, ratio: f64, target: &str, pass: bool) {
    println!(
        "| {what} | {figure} | {baseline} | {ratio:.2} | {target} | {} |",
        if pass { "PASS" } else { "MISS" }
    );
}

#[tokio::main]
async fn main() {
    // Server errors (the causes of any 5xx) go to stderr.
    control_plane::telemetry::init_with_default("warn");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let srv = start(64).await;
    let tenants = seed(&srv.state, 50, 25).await;
    let c = client();
    let base = srv.base.clone();
    println!("tenantd HTTP benchmark ({cores} cores; server and client share them)\n");
    println!("| measure | figure | baseline (same run) | ratio | target | result |");
    println!("|---|---|---|---|---|---|");

    // 1. argon2 alone vs. login throughput.
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let n = if quick() { 5 } else { 30 };
    let t = Instant::now();
    for _ in 0..n {
        assert!(tenant_runtime::password::verify(PASSWORD, &hash));
    }
    let one = t.elapsed().as_secs_f64() / f64::from(n);
    let capacity = cores as f64 / one;
    let emails: Arc<Vec<String>> = Arc::new(tenants.iter().flat_map(|(_, e)| e.clone()).collect());
    let (login_rate, mut ls) = {
        let (c, base, emails) = (c.clone(), base.clone(), emails.clone());
        hammer(cores * 4, secs(10, 2), move |w| {
            let (c, base, emails) = (c.clone(), base.clone(), emails.clone());
            async move {
                let e = &emails[(w * 7919 + rand::random::<u32>() as usize) % emails.len()];
                let r = c
                    .post(format!("{base}/api/auth/login"))
                    .json(&serde_json::json!({"email": e, "password": PASSWORD}))
                    .send()
                    .await;
                r.map_or(599, |r| r.status().as_u16())
            }
        })
        .await
    };
    row(
        "login throughput (logins/s)",
        format!(
            "{login_rate:.1} (p99 {:.0} ms, {} non-2xx)",
            ls.pct(0.99),
            ls.err4 + ls.err5
        ),
        format!(
            "argon2 alone: {cores} cores / {:.1} ms = {capacity:.1}/s",
            one * 1000.0
        ),
        login_rate / capacity,
        ">= 0.90",
        login_rate / capacity >= 0.9,
    );

    // 2. Session checks vs. a static endpoint, 64 connections.
    let cookie = login(&c, &base, &emails[1]).await.expect("login");
    let (static_rate, _) = {
        let (c, url) = (c.clone(), format!("{base}/livez"));
        hammer(64, secs(8, 2), move |_| {
            let (c, url) = (c.clone(), url.clone());
            async move { get_status(&c, &url, None).await }
        })
        .await
    };
    let session_run = |dur| {
        let (c, url, cookie) = (c.clone(), format!("{base}/api/session"), cookie.clone());
        hammer(64, dur, move |_| {
            let (c, url, cookie) = (c.clone(), url.clone(), cookie.clone());
            async move { get_status(&c, &url, Some(&cookie)).await }
        })
    };
    let (session_rate, mut ss) = session_run(secs(8, 2)).await;
    row(
        "GET /api/session (req/s, 64 conns)",
        format!("{session_rate:.0}"),
        format!("GET /livez: {static_rate:.0}"),
        session_rate / static_rate,
        ">= 0.50",
        session_rate / static_rate >= 0.5,
    );
    let p99 = ss.pct(0.99);
    row(
        "GET /api/session p99 (ms, in-process client)",
        format!("{p99:.2} (p50 {:.2})", ss.pct(0.5)),
        "-".into(),
        p99 / 10.0,
        "< 10 ms",
        p99 < 10.0,
    );
    let d = secs(8, 2);
    if let (Some((s_rps, _, _)), Some((rps, p50, p99))) = (
        wrk(&format!("{base}/livez"), None, d),
        wrk(&format!("{base}/api/session"), Some(&cookie), d),
    ) {
        row(
            "GET /api/session via wrk (req/s, 64 conns)",
            format!("{rps:.0}"),
            format!("GET /livez via wrk: {s_rps:.0}"),
            rps / s_rps,
            ">= 0.50",
            rps / s_rps >= 0.5,
        );
        row(
            "GET /api/session p99 via wrk (ms)",
            format!("{p99:.2} (p50 {p50:.2})"),
            "-".into(),
            p99 / 10.0,
            "< 10 ms",
            p99 < 10.0,
        );
    } else {
        println!(
            "| (wrk not installed: `apt-get install wrk` for the C-client figures) | | | | | |"
        );
    }

    // 3. Session checks during a login flood offered at 10x capacity: each flood client paces
    // itself, so quick refusals do not turn into an unbounded request storm.
    let flood_clients = ((capacity * 10.0 * one * 2.0).ceil() as usize).clamp(32, 400);
    let period = Duration::from_secs_f64(flood_clients as f64 / (10.0 * capacity));
    let flood = {
        let (c, base) = (c.clone(), base.clone());
        tokio::spawn(hammer(flood_clients, secs(8, 2), move |w| {
            let (c, base) = (c.clone(), base.clone());
            async move {
                let sent = Instant::now();
                let r = c
                    .post(format!("{base}/api/auth/login"))
                    .json(&serde_json::json!({"email": format!("flood{w}@nowhere.test"), "password": "wrong-password-123"}))
                    .send()
                    .await;
                if let Some(rest) = period.checked_sub(sent.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                r.map_or(599, |r| r.status().as_u16())
            }
        }))
    };
    let (flooded_rate, _) = session_run(secs(8, 2)).await;
    let (_, fs) = flood.await.expect("flood");
    row(
        "GET /api/session during login flood (req/s)",
        format!(
            "{flooded_rate:.0} (flood: {} clients offering {:.0} logins/s, {} answered 503/429)",
            flood_clients,
            10.0 * capacity,
            fs.err5 + fs.err4
        ),
        format!("unloaded: {session_rate:.0}"),
        flooded_rate / session_rate,
        ">= 0.50",
        flooded_rate / session_rate >= 0.5,
    );

    // 4. Load test.
    load_test(&srv, &tenants).await;
}

async fn load_test(srv: &Server, tenants: &[(String, Vec<String>)]) {
    let dur = Duration::from_secs(
        std::env::var("BENCH_LOAD_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick() { 5 } else { 60 }),
    );
    let c = client();
    let base = srv.base.clone();
    // Each client signs in as one admin and one member of a tenant.
    let mut cookies = Vec::new();
    for (i, (_, emails)) in tenants.iter().enumerate() {
        let admin = login(&c, &base, &emails[0]).await.expect("admin login");
        let member = login(&c, &base, &emails[1 + i % (emails.len() - 1)])
            .await
            .expect("member login");
        cookies.push((admin, member));
    }
    let cookies = Arc::new(cookies);
    let tenants = Arc::new(tenants.to_vec());
    let invited = Arc::new(AtomicU64::new(0));
    let logins = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..64usize {
        let (c, base, cookies, tenants, invited, logins) = (
            c.clone(),
            base.clone(),
            cookies.clone(),
            tenants.clone(),
            invited.clone(),
            logins.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut kinds: [Stats; 4] = Default::default();
            let mut seq = 0u64;
            while start.elapsed() < dur {
                seq += 1;
                let t = (w + seq as usize * 13) % tenants.len();
                let (admin, member) = &cookies[t];
                let roll = rand::random::<u32>() % 100;
                let began = Instant::now();
                let (kind, status) = if roll < 10 {
                    let emails = &tenants[t].1;
                    let e = &emails[rand::random::<u32>() as usize % emails.len()];
                    let s = c
                        .post(format!("{base}/api/auth/login"))
                        .json(&serde_json::json!({"email": e, "password": PASSWORD}))
                        .send()
                        .await
                        .map_or(599, |r| r.status().as_u16());
                    if s == 200 {
                        logins.fetch_add(1, Ordering::Relaxed);
                    }
                    (0, s)
                } else if roll < 70 {
                    (
                        1,
                        get_status(&c, &format!("{base}/api/session"), Some(member)).await,
                    )
                } else if roll < 95 {
                    (
                        2,
                        get_status(&c, &format!("{base}/api/admin/users?limit=50"), Some(admin))
                            .await,
                    )
                } else {
                    let email = format!("load-{w}-{seq}@{}.test", tenants[t].0);
                    let s = match c
                        .post(format!("{base}/api/admin/users"))
                        .header("cookie", admin)
                        .json(&serde_json::json!({"email": email, "role": "member"}))
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            if s >= 500 {
                                eprintln!(
                                    "invitation answered {s}: {}",
                                    r.text().await.unwrap_or_default()
                                );
                            }
                            s
                        }
                        Err(e) => {
                            eprintln!("invitation failed: {e}");
                            599
                        }
                    };
                    if s == 201 {
                        invited.fetch_add(1, Ordering::Relaxed);
                    }
                    (3, s)
                };
                kinds[kind].add(began.elapsed().as_micros() as u64, status);
            }
            kinds
        }));
    }
    let mut totals: [Stats; 4] = Default::default();
    for t in tasks {
        for (i, s) in t.await.expect("worker").into_iter().enumerate() {
            totals[i].merge(s);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Count rows afterwards: every acknowledged invitation must be a user.
    let mut users_now = 0u64;
    for (id, _) in tenants.iter() {
        let id = tenant_runtime::TenantId::parse(id).expect("id");
        users_now += srv
            .state
            .tenants
            .read(&id, users::count)
            .await
            .expect("count");
    }
    let expected = (tenants.len() * 25) as u64 + invited.load(Ordering::Relaxed);
    println!(
        "\nLoad test: 64 clients, {secs:.0} s, {} tenants x 25 users\n",
        tenants.len()
    );
    println!("| kind | requests | req/s | p50 ms | p99 ms | 4xx | 5xx |");
    println!("|---|---|---|---|---|---|---|");
    let names = ["login", "session check", "admin read", "invitation"];
    let mut fives = 0;
    for (name, s) in names.iter().zip(totals.iter_mut()) {
        fives += s.err5;
        let n = s.lat.len();
        println!(
            "| {name} | {n} | {:.1} | {:.1} | {:.1} | {} | {} |",
            n as f64 / secs,
            s.pct(0.5),
            s.pct(0.99),
            s.err4,
            s.err5
        );
    }
    println!(
        "\n5xx: {fives} (target 0) {}; users after: {users_now}, expected {expected} (seeded + acknowledged invitations) {}; successful logins: {}",
        if fives == 0 { "PASS" } else { "MISS" },
        if users_now == expected {
            "PASS"
        } else {
            "MISS (lost or extra writes)"
        },
        logins.load(Ordering::Relaxed)
    );
}
