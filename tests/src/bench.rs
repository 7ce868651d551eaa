//! What the benchmarks share: how long to run (`BENCH_QUICK=1` for a smoke run), latency
//! statistics, a pooled client, workers that keep a server busy, `wrk`, and table rows.

use std::time::{Duration, Instant};

use crate::PASSWORD;

/// Whether this is a smoke run (`BENCH_QUICK=1`): every phase short, figures not meaningful.
pub fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// `full` seconds, or `quick_secs` in a smoke run.
pub fn secs(full: u64, quick_secs: u64) -> Duration {
    Duration::from_secs(if quick() { quick_secs } else { full })
}

/// Latencies in microseconds, with status counts.
#[derive(Default)]
pub struct Stats {
    pub lat: Vec<u64>,
    pub ok: u64,
    pub err4: u64,
    pub err5: u64,
}

impl Stats {
    pub fn add(&mut self, us: u64, status: u16) {
        self.lat.push(us);
        match status {
            500..=599 => self.err5 += 1,
            400..=499 => self.err4 += 1,
            _ => self.ok += 1,
        }
    }

    pub fn merge(&mut self, o: Stats) {
        self.lat.extend(o.lat);
        self.ok += o.ok;
        self.err4 += o.err4;
        self.err5 += o.err5;
    }

    /// The `p` quantile (0 to 1) in microseconds.
    pub fn pct_us(&mut self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return 0.0;
        }
        self.lat.sort_unstable();
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i] as f64
    }

    /// The `p` quantile (0 to 1) in milliseconds.
    pub fn pct(&mut self, p: f64) -> f64 {
        self.pct_us(p) / 1000.0
    }
}

/// Runs `n` workers doing `op(worker, seq)` (`seq` counts each worker's calls from 0) until
/// `dur` passes; `op` answers a status (599: no answer). Returns operations per second and
/// the statistics.
pub async fn hammer<F, Fut>(n: usize, dur: Duration, op: F) -> (f64, Stats)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = u16> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..n {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = Stats::default();
            let mut seq = 0;
            while start.elapsed() < dur {
                let t = Instant::now();
                let status = op(w, seq).await;
                s.add(t.elapsed().as_micros() as u64, status);
                seq += 1;
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

/// A client without cookie jar that keeps many connections open.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

async fn post_login(
    c: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Result<reqwest::Response> {
    c.post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
}

/// A sign-in's status (599: no answer).
pub async fn login_status(c: &reqwest::Client, base: &str, email: &str, password: &str) -> u16 {
    post_login(c, base, email, password)
        .await
        .map_or(599, |r| r.status().as_u16())
}

/// Signs `email` in with [`PASSWORD`]: the status (599: no answer) and the `name=value` of the
/// cookie set.
pub async fn login(c: &reqwest::Client, base: &str, email: &str) -> (u16, Option<String>) {
    let Ok(r) = post_login(c, base, email, PASSWORD).await else {
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

/// Signs `email` in, asserting success: the `Cookie` header value of the session.
pub async fn signed_in(c: &reqwest::Client, base: &str, email: &str) -> String {
    let (status, cookie) = login(c, base, email).await;
    assert_eq!(status, 200, "login {email}");
    cookie.expect("session cookie")
}

/// A GET's status with an optional `Cookie` header (599: no answer).
pub async fn get_status(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> u16 {
    let mut r = c.get(url);
    if let Some(ck) = cookie {
        r = r.header("cookie", ck);
    }
    r.send().await.map_or(599, |r| r.status().as_u16())
}

/// Runs `wrk` (one thread, 64 connections) if installed: requests/s, p50 and p99 in ms. A C
/// client leaves more of the cores to the server than the in-process one.
pub fn wrk(url: &str, cookie: Option<&str>, dur: Duration) -> Option<(f64, f64, f64)> {
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

/// A row of a measure-against-baseline table.
pub fn row(what: &str, figure: String, baseline: String, ratio: f64, target: &str, pass: bool) {
    println!(
        "| {what} | {figure} | {baseline} | {ratio:.2} | {target} | {} |",
        if pass { "PASS" } else { "MISS" }
    );
}
