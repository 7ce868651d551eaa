#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! Benchmarks of the multi-node setup: the directory on SQLite vs PostgreSQL, one node vs
//! three, and what forwarding a request to the tenant's node costs.
//!
//! `cargo bench -p tests --bench nodes` prints, in one run:
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

use tenant_runtime::TenantId;
use tests::PASSWORD;
use tests::bench::{Stats, client, get_status, hammer, login, quick, signed_in};
use tests::db::{TestDb, sqlite_url};
use tests::inproc::{Directory, Server, system_clock};
use tests::seed::tenant_row;

const SECRET: &str = "bench-node-secret-0123456789";

fn phase() -> Duration {
    Duration::from_secs(if quick() { 1 } else { 8 })
}

// ---- 1. directory lookups ------------------------------------------------------------------

async fn seed_directory(dir: &Directory, n: usize) -> Vec<(TenantId, String, String)> {
    let now = 1_700_000_000;
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let id = TenantId::generate().to_string();
            tenant_row(&id, &format!("t{i:05}"), 3, &format!("n{}", i % 3 + 1), now)
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
        .bind(t.id.as_str())
        .bind(format!("user-{i}"))
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("index");
        let domain = format!("d{i:05}.test");
        sqlx::query("INSERT INTO domains (domain, tenant_id, created_at) VALUES ($1, $2, $3)")
            .bind(&domain)
            .bind(t.id.as_str())
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
    let dir = Directory::connect(url, system_clock())
        .await
        .expect("directory");
    let n = if quick() { 300 } else { 3000 };
    let rows = Arc::new(seed_directory(&dir, n).await);
    // Warm up the pool and caches.
    for (id, _, _) in rows.iter().take(100) {
        dir.tenant(id).await.expect("warm");
    }
    type Op = fn(
        Directory,
        (TenantId, String, String),
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
        let mut lat = Stats::default();
        for i in 0..n {
            let r = rows[(i * 7919) % rows.len()].clone();
            let t = Instant::now();
            op(dir.clone(), r).await;
            lat.add(t.elapsed().as_micros() as u64, 200);
        }
        // 16 at once.
        let (rate, _) = {
            let (dir, rows) = (dir.clone(), rows.clone());
            hammer(16, phase() / 2, move |w, k| {
                let (dir, r) = (dir.clone(), rows[(w * 31 + k * 17) % rows.len()].clone());
                async move {
                    op(dir, r).await;
                    200
                }
            })
            .await
        };
        println!(
            "| {label} | {what} | {:.0} | {:.0} | {rate:.0} |",
            lat.pct_us(0.5),
            lat.pct_us(0.99)
        );
    }
    dir.close().await;
}

// ---- 2. and 3. nodes -----------------------------------------------------------------------

/// A user of a tenant: (email, index of the node holding the tenant).
#[derive(Clone)]
struct User {
    email: String,
    owner: usize,
}

/// `tenants` companies, round robin over `nodes`, each with `per` active users routed by the
/// company's domain.
async fn seed(nodes: &[Server], tenants: usize, per: usize) -> Vec<User> {
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let mut out = Vec::new();
    for t in 0..tenants {
        let owner = t % nodes.len();
        let (_, emails) = nodes[owner]
            .seed_company(&format!("co{t:03}"), per, &hash, true)
            .await;
        out.extend(emails.into_iter().map(|email| User { email, owner }));
    }
    out
}

async fn session(c: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    get_status(c, &format!("{base}/api/session"), Some(cookie)).await
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

/// Requests per second and the number of non-2xx answers.
async fn throughput(
    bases: &Arc<Vec<String>>,
    users: &Arc<Vec<User>>,
    cookies: &Arc<Vec<String>>,
    e: Entry,
    logins: bool,
    workers: usize,
) -> (f64, u64) {
    let c = client();
    let (bases, users, cookies) = (bases.clone(), users.clone(), cookies.clone());
    let (rate, stats) = hammer(workers, phase(), move |w, seq| {
        let (c, bases, users, cookies) = (c.clone(), bases.clone(), users.clone(), cookies.clone());
        async move {
            let k = w * 7919 + seq;
            let i = k % users.len();
            let base = &bases[entry(e, users[i].owner, bases.len(), k)];
            if logins {
                login(&c, base, &users[i].email).await.0
            } else {
                session(&c, base, &cookies[i]).await
            }
        }
    })
    .await;
    (rate, stats.err4 + stats.err5)
}

async fn http_phases(nodes: &[Server], users: Vec<User>, label: &str, entries: &[(Entry, &str)]) {
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let c = client();
    let mut cookies = Vec::new();
    for u in &users {
        cookies.push(signed_in(&c, &bases[u.owner], &u.email).await);
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

async fn forwarding_cost(nodes: &[Server], users: &[User]) {
    let c = client();
    let u = &users[0];
    let cookie = signed_in(&c, &nodes[u.owner].base, &u.email).await;
    let other = (u.owner + 1) % nodes.len();
    let n = if quick() { 300 } else { 3000 };
    for _ in 0..50 {
        session(&c, &nodes[u.owner].base, &cookie).await;
        session(&c, &nodes[other].base, &cookie).await;
    }
    // Interleaved, so both see the same conditions.
    let (mut local, mut forwarded) = (Stats::default(), Stats::default());
    for _ in 0..n {
        for (node, lat) in [(u.owner, &mut local), (other, &mut forwarded)] {
            let t = Instant::now();
            assert_eq!(session(&c, &nodes[node].base, &cookie).await, 200);
            lat.add(t.elapsed().as_micros() as u64, 200);
        }
    }
    let (l50, l99, f50, f99) = (
        local.pct_us(0.5),
        local.pct_us(0.99),
        forwarded.pct_us(0.5),
        forwarded.pct_us(0.99),
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
    lookups("SQLite", &sqlite_url(sqlite_dir.path())).await;
    {
        let pg = TestDb::postgres().await;
        lookups("PostgreSQL", &pg.url).await;
    }

    let (tenants, per) = if quick() { (6, 3) } else { (30, 5) };
    println!(
        "\n## Login and session-check throughput ({tenants} tenants x {per} users; PostgreSQL directory)\n"
    );
    println!(
        "| set-up | requests sent to | logins/s (16 clients) | session checks/s (32 clients) | non-2xx |"
    );
    println!("|---|---|---|---|---|");
    let one = TestDb::postgres().await;
    {
        let nodes = vec![start_node("n1", &one.url).await];
        let users = seed(&nodes, tenants, per).await;
        http_phases(&nodes, users, "one node", &[(Entry::First, "the node")]).await;
    }
    let three = TestDb::postgres().await;
    {
        let mut nodes = Vec::new();
        for id in ["n1", "n2", "n3"] {
            nodes.push(start_node(id, &three.url).await);
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
    drop(one);
    drop(three);
}

/// Node `id` of a multi-node installation on the directory at `directory_url`.
async fn start_node(id: &str, directory_url: &str) -> Server {
    Server::start(id, Some(SECRET), Some(directory_url), 256).await
}
