#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]
//! The OpenID provider's hot paths against a real server on a loopback port, each as a ratio to
//! `GET /livez` of the same server in the same run:
//! 1. authorization-code exchanges (`POST /oauth2/token`: PKCE, one write, two RS256 signatures)
//!    spread over 16 companies;
//! 2. a whole sign-in round for one signed-in person (authorize + exchange: two writes in one
//!    company's file, which takes one write at a time);
//! 3. `GET /api/session` with a bearer access token vs. with the session cookie.
//!
//! `cargo bench -p tests --bench oidc`; `BENCH_QUICK=1` shortens every phase.

use std::sync::Arc;

use base64::Engine;
use parking_lot::Mutex;
use tests::PASSWORD;
use tests::bench::{Stats, get_status, hammer, quick, row, secs, signed_in};
use tests::inproc::{KeyPair, Server, init_logging, register_client};
use tests::oidc::{param, pkce};

const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// Companies the exchanges are spread over (each company's file takes one write at a time).
const COMPANIES: usize = 16;

struct Ctx {
    c: reqwest::Client,
    base: String,
    cookie: String,
    /// One signed-in person in each of several companies: codes spread over their files.
    cookies: Vec<String>,
    client_id: String,
    basic: String,
}

/// A code for the signed-in person, and its verifier (599: no answer).
async fn code(ctx: &Ctx) -> Result<(String, String), u16> {
    code_as(ctx, &ctx.cookie).await
}

async fn code_as(ctx: &Ctx, cookie: &str) -> Result<(String, String), u16> {
    let p = pkce();
    let url = format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&code_challenge={}&code_challenge_method=S256",
        ctx.base, ctx.client_id, p.challenge
    );
    let r = ctx
        .c
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .map_err(|_| 599u16)?;
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or(r.status().as_u16())?;
    Ok((param(to, "code").ok_or(500u16)?, p.verifier))
}

/// Exchanges a code: the status and the access token.
async fn exchange(ctx: &Ctx, code: &str, verifier: &str) -> (u16, Option<String>) {
    let r = ctx
        .c
        .post(format!("{}/oauth2/token", ctx.base))
        .header("authorization", &ctx.basic)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await;
    let Ok(r) = r else { return (599, None) };
    let status = r.status().as_u16();
    let token = r
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned));
    (status, token)
}

fn pct(s: &mut Stats) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, {} non-2xx",
        s.pct(0.5),
        s.pct(0.99),
        s.err4 + s.err5
    )
}

#[tokio::main]
async fn main() {
    init_logging("warn");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let srv = Server::start("local", None, None, 64).await;
    let hash = tenant_runtime::password::hash(PASSWORD).expect("hash");
    let (_, emails) = srv.seed_company("bench", 5, &hash, false).await;
    let mut others = Vec::new();
    for i in 0..COMPANIES {
        let (_, e) = srv
            .seed_company(&format!("co{i:02}"), 1, &hash, false)
            .await;
        others.push(e[0].clone());
    }
    // The app's side: redirects are read, not followed.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let (client_id, secret) = register_client(&srv.state.directory, REDIRECT, 0).await;
    let ctx = Arc::new(Ctx {
        cookie: signed_in(&c, &srv.base, &emails[0]).await,
        cookies: {
            let mut v = Vec::new();
            for e in &others {
                v.push(signed_in(&c, &srv.base, e).await);
            }
            v
        },
        c,
        base: srv.base.clone(),
        basic: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        ),
        client_id,
    });
    println!("tenantd OpenID provider benchmark ({cores} cores; server and client share them)\n");
    println!("| measure | figure | baseline (same run) | ratio | target | result |");
    println!("|---|---|---|---|---|---|");

    let conns = 64;
    let (livez, _) = {
        let ctx = ctx.clone();
        hammer(conns, secs(8, 2), move |_, _| {
            let ctx = ctx.clone();
            async move { get_status(&ctx.c, &format!("{}/livez", ctx.base), None).await }
        })
        .await
    };

    // 1. Exchanges of codes made beforehand (a code lives 60 s: make only what the run uses).
    let n = if quick() { 300 } else { 3000 };
    let codes = Arc::new(Mutex::new(Vec::with_capacity(n)));
    for i in 0..n {
        let made = code_as(&ctx, &ctx.cookies[i % COMPANIES])
            .await
            .expect("code");
        codes.lock().push(made);
    }
    // Workers take codes until none is left; the rate is over the time that took.
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..cores * 4 {
        let (ctx, codes) = (ctx.clone(), codes.clone());
        workers.push(tokio::spawn(async move {
            let mut s = Stats::default();
            loop {
                let next = codes.lock().pop();
                let Some((code, verifier)) = next else { break };
                let t = std::time::Instant::now();
                let status = exchange(&ctx, &code, &verifier).await.0;
                s.add(t.elapsed().as_micros() as u64, status);
            }
            s
        }));
    }
    let mut es = Stats::default();
    for w in workers {
        es.merge(w.await.expect("worker"));
    }
    let exchanges = n as f64 / started.elapsed().as_secs_f64();
    let used = n;
    // The bound: two RS256 signatures per exchange on every core.
    let (key, _) = KeyPair::generate().expect("key");
    let claims = serde_json::json!({"sub": "x", "aud": "y", "exp": 1});
    let m = if quick() { 50 } else { 500 };
    let t = std::time::Instant::now();
    for _ in 0..m {
        key.sign("JWT", &claims).expect("sign");
    }
    let one = t.elapsed().as_secs_f64() / f64::from(m);
    let bound = cores as f64 / (2.0 * one);
    row(
        "code exchanges vs two RS256 signatures per core",
        format!("{exchanges:.0}/s"),
        format!(
            "{cores} cores / (2 x {:.2} ms) = {bound:.0}/s",
            one * 1000.0
        ),
        exchanges / bound,
        "-",
        true,
    );
    row(
        "code exchanges over 16 companies (POST /oauth2/token per s)",
        format!("{exchanges:.0} ({used} codes; {})", pct(&mut es)),
        format!("GET /livez: {livez:.0}/s"),
        exchanges / livez,
        "-",
        es.err4 + es.err5 == 0,
    );

    // 2. A whole round: authorize (a write) and exchange.
    let (rounds, mut rs) = {
        let ctx = ctx.clone();
        hammer(cores * 4, secs(8, 2), move |_, _| {
            let ctx = ctx.clone();
            async move {
                match code(&ctx).await {
                    Ok((code, verifier)) => exchange(&ctx, &code, &verifier).await.0,
                    Err(s) => s,
                }
            }
        })
        .await
    };
    row(
        "sign-in rounds (authorize + exchange per s)",
        format!("{rounds:.0} ({})", pct(&mut rs)),
        format!("GET /livez: {livez:.0}/s"),
        rounds / livez,
        "-",
        rs.err4 + rs.err5 == 0,
    );

    // 3. Bearer vs cookie session checks.
    let (code, verifier) = code(&ctx).await.expect("code");
    let access = exchange(&ctx, &code, &verifier)
        .await
        .1
        .expect("access token");
    let bearer = format!("Bearer {access}");
    let (cookie_rate, mut cs) = {
        let ctx = ctx.clone();
        hammer(conns, secs(8, 2), move |_, _| {
            let ctx = ctx.clone();
            async move {
                get_status(
                    &ctx.c,
                    &format!("{}/api/session", ctx.base),
                    Some(&ctx.cookie),
                )
                .await
            }
        })
        .await
    };
    let (bearer_rate, mut bs) = {
        let (ctx, bearer) = (ctx.clone(), bearer.clone());
        hammer(conns, secs(8, 2), move |_, _| {
            let (ctx, bearer) = (ctx.clone(), bearer.clone());
            async move {
                ctx.c
                    .get(format!("{}/api/session", ctx.base))
                    .header("authorization", bearer)
                    .send()
                    .await
                    .map_or(599, |r| r.status().as_u16())
            }
        })
        .await
    };
    row(
        "GET /api/session with the cookie (req/s)",
        format!("{cookie_rate:.0} ({})", pct(&mut cs)),
        format!("GET /livez: {livez:.0}/s"),
        cookie_rate / livez,
        "-",
        cs.err4 + cs.err5 == 0,
    );
    row(
        "GET /api/session with a bearer token (req/s)",
        format!("{bearer_rate:.0} ({})", pct(&mut bs)),
        format!("with the cookie: {cookie_rate:.0}/s"),
        bearer_rate / cookie_rate,
        ">= 0.90 (no dearer than the cookie)",
        bearer_rate / cookie_rate >= 0.9 && bs.err4 + bs.err5 == 0,
    );
}
