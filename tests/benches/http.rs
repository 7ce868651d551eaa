#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! HTTP benchmarks and the load test of `tenantd`, against a real server on a loopback port.
//!
//! `cargo bench -p tests --bench http` prints, in one run:
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

use tenant_runtime::store::users;
use tests::PASSWORD;
use tests::bench::{
    Stats, client, get_status, hammer, login_status, quick, row, secs, signed_in, wrk,
};
use tests::inproc::{Server, init_logging};

/// `tenants` companies x `per` active users (admin is user 0), written straight to the stores;
/// every address indexed. Returns each company's id and emails.
async fn seed(srv: &Server, tenants: usize, per: usize) -> Vec<(String, Vec<String>)> {
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let mut out = Vec::new();
    for t in 0..tenants {
        let (id, emails) = srv
            .seed_company(&format!("co{t:03}"), per, &hash, false)
            .await;
        out.push((id.to_string(), emails));
    }
    out
}

#[tokio::main]
async fn main() {
    // Server errors (the causes of any 5xx) go to stderr.
    init_logging("warn");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let srv = Server::start("local", None, None, 64).await;
    let tenants = seed(&srv, 50, 25).await;
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
        hammer(cores * 4, secs(10, 2), move |w, _| {
            let (c, base, emails) = (c.clone(), base.clone(), emails.clone());
            async move {
                let e = &emails[(w * 7919 + rand::random::<u32>() as usize) % emails.len()];
                login_status(&c, &base, e, PASSWORD).await
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
    let cookie = signed_in(&c, &base, &emails[1]).await;
    let (static_rate, _) = {
        let (c, url) = (c.clone(), format!("{base}/livez"));
        hammer(64, secs(8, 2), move |_, _| {
            let (c, url) = (c.clone(), url.clone());
            async move { get_status(&c, &url, None).await }
        })
        .await
    };
    let session_run = |dur| {
        let (c, url, cookie) = (c.clone(), format!("{base}/api/session"), cookie.clone());
        hammer(64, dur, move |_, _| {
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
        tokio::spawn(hammer(flood_clients, secs(8, 2), move |w, _| {
            let (c, base) = (c.clone(), base.clone());
            async move {
                let sent = Instant::now();
                let email = format!("flood{w}@nowhere.test");
                let status = login_status(&c, &base, &email, "wrong-password-123").await;
                if let Some(rest) = period.checked_sub(sent.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                status
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
        let admin = signed_in(&c, &base, &emails[0]).await;
        let member = signed_in(&c, &base, &emails[1 + i % (emails.len() - 1)]).await;
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
                    let s = login_status(&c, &base, e, PASSWORD).await;
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
