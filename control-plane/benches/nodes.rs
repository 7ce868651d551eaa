//! Benchmarks of the multi-node setup: the directory on SQLite vs PostgreSQL, one node vs
//! three, and what forwarding a request to the tenant's node costs.
//!
//! `cargo bench -p control-plane --bench nodes` prints, in one run:
//! 1. directory lookups (tenant by id, email routed through the index, email routed by its
//!    domain): p50/p99 one at a time, and throughput with 16 at once, on SQLite and PostgreSQL;
//! 2. login and session-check throughput: one node holding every tenant; three nodes with the
//!    tenants spread, each request sent to a random node (2 in 3 forwarded); the same with
//!    every request sent through one entry node; and with every request sent to its tenant's
//!    node (none forwarded);
//! 3. a session check answered by the tenant's node vs. forwarded by another node, one at a
//!    time: p50/p99 and the difference.
//!
//! PostgreSQL: `TENANTD_TEST_POSTGRES_URL` or postgres://postgres@127.0.0.1:5432/postgres; each
//! run creates and drops its own databases. Nodes run in this process on loopback ports (each
//! with its own data directory, hashing pool and directory pool), so they share the machine's
//! cores with each other and with the clients: the figures compare set-ups on one machine, not
//! the capacity of three machines. `BENCH_QUICK=1` shortens every phase.

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::config::{Config, NodeConfig, ServerConfig};
use control_plane::directory::{Directory, Tenant, TenantStatus};
use control_plane::mail::MemoryMailer;
use control_plane::service::provision::{Files, NewTenant, create_tenant_placed};
use control_plane::startup::{Application, Overrides};
use control_plane::state::AppState;
use sqlx::Connection;
use tenant_runtime::TenantId;
use tenant_runtime::store::users::{self, NewUser, Role, Status};

const PASSWORD: &str = "lantern-orchard-velvet-42";
const SECRET: &str = "bench-node-secret-0123456789";

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn phase() -> Duration {
    Duration::from_secs(if quick() { 1 } else { 8 })
}

fn admin_url() -> String {
    std::env::var("TENANTD_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database; dropped by [`drop_database`].
async fn create_database() -> (String, String) {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).expect("postgres url");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// Latencies in microseconds.
#[derive(Default)]
struct Lat(Vec<u64>);

impl Lat {
    fn pct(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i] as f64
    }
}

// ---- 1. directory lookups ------------------------------------------------------------------

async fn seed_directory(dir: &Directory, n: usize) -> Vec<(String, String, String)> {
    let now = 1_700_000_000;
    let rows: Vec<Tenant> = (0..n)
        .map(|i| Tenant {
            id: TenantId::generate().to_string(),
            slug: format!("t{i:05}"),
            name: format!("T {i}"),
            status: TenantStatus::Active,
            schema_version: 3,
            node: format!("n{}", i % 3 + 1),
            placement_epoch: 1,
            auth_epoch: 1,
            created_at: now,
            updated_at: now,
        })
        .collect();
    dir.insert_tenants(&rows).await.expect("tenants");
    let mut tx = dir.pool().begin().await.expect("tx");
    let mut out = Vec::new();
    for (i, t) in rows.iter().enumerate() {
        let email = format!("u@t{i:05}.test");
        sqlx::query(
            "INSERT INTO user_index (email, tenant_id, user_id, state, created_at) VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(&email)
        .bind(&t.id)
        .bind(format!("user-{i}"))
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("index");
        let domain = format!("d{i:05}.test");
        sqlx::query("INSERT INTO domains (domain, tenant_id, created_at) VALUES ($1, $2, $3)")
            .bind(&domain)
            .bind(&t.id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("domain");
        out.push((t.id.clone(), email, format!("someone@{domain}")));
    }
    tx.commit().await.expect("commit");
    out
}

async fn lookups(label: &str, url: &str) {
    let dir = Directory::connect(url).await.expect("directory");
    let n = if quick() { 300 } else { 3000 };
    let rows = seed_directory(&dir, n).await;
    // Warm up the pool and caches.
    for (id, _, _) in rows.iter().take(100) {
        dir.tenant(id).await.expect("warm");
    }
    type Op = fn(
        Directory,
        (String, String, String),
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
    let ops: [(&str, Op); 3] = [
        ("tenant by id", |d, r| {
            Box::pin(async move {
                assert!(d.tenant(&r.0).await.expect("lookup").is_some());
            })
        }),
        ("route email (index)", |d, r| {
            Box::pin(async move {
                assert!(d.route_email(&r.1).await.expect("route").is_some());
            })
        }),
        ("route email (domain)", |d, r| {
            Box::pin(async move {
                assert!(d.route_email(&r.2).await.expect("route").is_some());
            })
        }),
    ];
    for (what, op) in ops {
        let mut lat = Lat::default();
        for i in 0..n {
            let r = rows[(i * 7919) % rows.len()].clone();
            let t = Instant::now();
            op(dir.clone(), r).await;
            lat.0.push(t.elapsed().as_micros() as u64);
        }
        // 16 at once.
        let started = Instant::now();
        let dur = phase() / 2;
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (dir, rows) = (dir.clone(), rows.clone());
            tasks.push(tokio::spawn(async move {
                let mut k = 0usize;
                let mut i = w * 31;
                while started.elapsed() < dur {
                    op(dir.clone(), rows[i % rows.len()].clone()).await;
                    i += 17;
                    k += 1;
                }
                k
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task");
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {label} | {what} | {:.0} | {:.0} | {rate:.0} |",
            lat.pct(0.5),
            lat.pct(0.99)
        );
    }
    dir.close().await;
}

// ---- 2. and 3. nodes -----------------------------------------------------------------------

struct BenchNode {
    id: String,
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn start_node(id: &str, directory_url: &str) -> BenchNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().to_owned(),
        public_url: "http://bench.test".parse().expect("url"),
        smtp_url: None,
        mail_from: "bench <bench@bench.test>".into(),
        product_name: "tenantd".into(),
        directory_url: Some(directory_url.to_owned()),
        max_connections: 512,
    };
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        session_idle_secs: 3600,
        session_absolute_secs: 12 * 3600,
        hash_concurrency: None,
        hash_queue: 256,
        login_max_failures: 1_000_000,
        ip_max_failures: 1_000_000,
        ip_window_secs: 60,
    };
    let node = NodeConfig {
        node_id: id.to_owned(),
        node_url: None,
        node_secret: Some(SECRET.to_owned()),
    };
    let overrides = Overrides {
        mailer: Some(Arc::new(MemoryMailer::default())),
        clock: None,
    };
    let app = Application::build_node(config, server, &node, overrides)
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port);
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    // Registered once serving starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.directory.node(id).await.ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "node {id} did not register");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    BenchNode {
        id: id.to_owned(),
        base,
        state,
        _dir: dir,
    }
}

/// A user of a tenant: (email, index of the node holding the tenant).
#[derive(Clone)]
struct User {
    email: String,
    owner: usize,
}

/// `tenants` companies, round robin over `nodes`, each with `per` active users.
async fn seed(nodes: &[BenchNode], tenants: usize, per: usize) -> Vec<User> {
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let mut out = Vec::new();
    for t in 0..tenants {
        let owner = t % nodes.len();
        let node = &nodes[owner];
        let slug = format!("co{t:03}");
        let p = create_tenant_placed(
            &node.state.directory,
            Files::Local(&node.state.tenants),
            &node.id,
            &node.state.config,
            &NewTenant {
                slug: slug.clone(),
                name: slug.clone(),
                domains: vec![format!("{slug}.test")],
                admin_email: format!("u0@{slug}.test"),
                admin_name: None,
            },
            node.state.now(),
            &|_| {},
        )
        .await
        .expect("provision");
        let id = p.tenant.tenant_id().expect("id");
        let (h, admin, now, s) = (
            hash.clone(),
            p.admin_user_id,
            node.state.now(),
            slug.clone(),
        );
        node.state
            .tenants
            .write(&id, move |tx| {
                users::set_password_hash(tx, &admin, &h, now)?;
                users::set_status(tx, &admin, Status::Active, now)?;
                for u in 1..per {
                    let email = format!("u{u}@{s}.test");
                    users::insert(
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
                }
                Ok(())
            })
            .await
            .expect("seed users");
        // Members route by their domain.
        for u in 0..per {
            out.push(User {
                email: format!("u{u}@{slug}.test"),
                owner,
            });
        }
    }
    out
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

async fn login(c: &reqwest::Client, base: &str, email: &str) -> (u16, Option<String>) {
    let Ok(r) = c
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
    else {
        return (599, None);
    };
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (status, cookie)
}

async fn session(c: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    c.get(format!("{base}/api/session"))
        .header("cookie", cookie)
        .send()
        .await
        .map_or(599, |r| r.status().as_u16())
}

/// Which node a request goes to.
#[derive(Clone, Copy)]
enum Entry {
    /// A random node.
    Random,
    /// Always the first node.
    First,
    /// The node holding the tenant.
    Owner,
}

fn entry(e: Entry, owner: usize, nodes: usize, k: usize) -> usize {
    match e {
        Entry::Random => k.wrapping_mul(2_654_435_761) % nodes,
        Entry::First => 0,
        Entry::Owner => owner,
    }
}

/// Requests per second and the share of non-2xx answers.
async fn throughput(
    bases: &Arc<Vec<String>>,
    users: &Arc<Vec<User>>,
    cookies: &Arc<Vec<String>>,
    e: Entry,
    logins: bool,
    workers: usize,
) -> (f64, u64) {
    let started = Instant::now();
    let dur = phase();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (bases, users, cookies) = (bases.clone(), users.clone(), cookies.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let (mut n, mut bad, mut k) = (0u64, 0u64, w * 7919);
            while started.elapsed() < dur {
                let i = k % users.len();
                let base = &bases[entry(e, users[i].owner, bases.len(), k)];
                let status = if logins {
                    login(&c, base, &users[i].email).await.0
                } else {
                    session(&c, base, &cookies[i]).await
                };
                n += 1;
                if !(200..300).contains(&status) {
                    bad += 1;
                }
                k += 1;
            }
            (n, bad)
        }));
    }
    let (mut n, mut bad) = (0, 0);
    for t in tasks {
        let (a, b) = t.await.expect("worker");
        n += a;
        bad += b;
    }
    (n as f64 / started.elapsed().as_secs_f64(), bad)
}

async fn http_phases(
    nodes: &[BenchNode],
    users: Vec<User>,
    label: &str,
    entries: &[(Entry, &str)],
) {
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let c = client();
    let mut cookies = Vec::new();
    for u in &users {
        let (status, cookie) = login(&c, &bases[u.owner], &u.email).await;
        assert_eq!(status, 200, "seed login {}", u.email);
        cookies.push(cookie.expect("cookie"));
    }
    let users = Arc::new(users);
    let cookies = Arc::new(cookies);
    for (e, how) in entries {
        let (logins, bad_l) = throughput(&bases, &users, &cookies, *e, true, 16).await;
        let (checks, bad_s) = throughput(&bases, &users, &cookies, *e, false, 32).await;
        println!(
            "| {label} | {how} | {logins:.0} | {checks:.0} | {} |",
            bad_l + bad_s
        );
    }
}

async fn forwarding_cost(nodes: &[BenchNode], users: &[User]) {
    let c = client();
    let u = &users[0];
    let (status, cookie) = login(&c, &nodes[u.owner].base, &u.email).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("cookie");
    let other = (u.owner + 1) % nodes.len();
    let n = if quick() { 300 } else { 3000 };
    for _ in 0..50 {
        session(&c, &nodes[u.owner].base, &cookie).await;
        session(&c, &nodes[other].base, &cookie).await;
    }
    // Interleaved, so both see the same conditions.
    let (mut local, mut forwarded) = (Lat::default(), Lat::default());
    for _ in 0..n {
        for (node, lat) in [(u.owner, &mut local), (other, &mut forwarded)] {
            let t = Instant::now();
            assert_eq!(session(&c, &nodes[node].base, &cookie).await, 200);
            lat.0.push(t.elapsed().as_micros() as u64);
        }
    }
    let (l50, l99, f50, f99) = (
        local.pct(0.5),
        local.pct(0.99),
        forwarded.pct(0.5),
        forwarded.pct(0.99),
    );
    println!("| session check at its node (local) | {l50:.0} | {l99:.0} |");
    println!("| session check at another node (forwarded) | {f50:.0} | {f99:.0} |");
    println!("| forwarding adds | {:.0} | {:.0} |", f50 - l50, f99 - l99);
}

#[tokio::main]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "tenantd multi-node benchmark ({cores} cores shared by every node and the clients{})\n",
        if quick() {
            "; BENCH_QUICK: figures not meaningful"
        } else {
            ""
        }
    );

    println!("## Directory lookups (µs one at a time; lookups/s with 16 at once)\n");
    println!("| backend | lookup | p50 µs | p99 µs | 16 at once /s |");
    println!("|---|---|---|---|---|");
    let sqlite_dir = tempfile::tempdir().expect("tempdir");
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        sqlite_dir.path().join("directory.db").display()
    );
    lookups("SQLite", &sqlite_url).await;
    let (pg_url, pg_name) = create_database().await;
    lookups("PostgreSQL", &pg_url).await;
    drop_database(&pg_name).await;

    let (tenants, per) = if quick() { (6, 3) } else { (30, 5) };
    println!(
        "\n## Login and session-check throughput ({tenants} tenants x {per} users; PostgreSQL directory)\n"
    );
    println!(
        "| set-up | requests sent to | logins/s (16 clients) | session checks/s (32 clients) | non-2xx |"
    );
    println!("|---|---|---|---|---|");
    let (one_url, one_name) = create_database().await;
    {
        let nodes = vec![start_node("n1", &one_url).await];
        let users = seed(&nodes, tenants, per).await;
        http_phases(&nodes, users, "one node", &[(Entry::First, "the node")]).await;
    }
    let (three_url, three_name) = create_database().await;
    {
        let mut nodes = Vec::new();
        for id in ["n1", "n2", "n3"] {
            nodes.push(start_node(id, &three_url).await);
        }
        let users = seed(&nodes, tenants, per).await;
        http_phases(
            &nodes,
            users.clone(),
            "three nodes",
            &[
                (Entry::Random, "a random node (2 in 3 forwarded)"),
                (Entry::First, "n1 only (2 in 3 forwarded)"),
                (Entry::Owner, "the tenant's node (none forwarded)"),
            ],
        )
        .await;
        println!("\n## A forwarded request vs a local one (session check, one at a time)\n");
        println!("| request | p50 µs | p99 µs |");
        println!("|---|---|---|");
        forwarding_cost(&nodes, &users).await;
    }
    drop_database(&one_name).await;
    drop_database(&three_name).await;
}
