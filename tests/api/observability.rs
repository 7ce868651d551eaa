//! Operability: Prometheus metrics at `/metrics`, one JSON log line per request, and the
//! request id echoed in a header.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tenant_runtime::TenantId;
use tests::cluster::{self, Node};
use tests::http::{self, client};
use tests::inproc::{InProc, TenantStatus};
use tests::{METRICS_TOKEN, PASSWORD, poll};

/// `name{labels} value` lines of a text exposition, keyed by `name{labels}`.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            (k.to_owned(), v.parse::<f64>().expect("sample value"))
        })
        .collect()
}

fn sample(all: &HashMap<String, f64>, key: &str) -> f64 {
    *all.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:?}", all.keys().collect::<Vec<_>>()))
}

async fn scrape(app: &InProc) -> (String, HashMap<String, f64>) {
    let a = app
        .send(
            axum::http::Request::builder()
                .uri("/metrics")
                .header("authorization", format!("Bearer {METRICS_TOKEN}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(a.status, 200);
    let ctype = a.headers["content-type"].to_str().expect("ascii");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = a.body;
    let s = samples(&text);
    (text, s)
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_logins_by_outcome() {
    // Arrange: a company with an admin and a member.
    let app = InProc::new().await;
    let (tenant_id, admin) = app.company("acme").await;
    let (bob, _) = app.member(&admin, "bob@acme.test").await;

    // Act: one sign-in of each outcome the harness can cause.
    assert_eq!(app.login("admin@acme.test", PASSWORD).await.status, 200);
    assert_eq!(
        app.login("admin@acme.test", "wrong-password-1")
            .await
            .status,
        401
    );
    let blocked = app
        .patch(
            &format!("/api/admin/users/{bob}"),
            Some(&admin),
            json!({"blocked": true}),
        )
        .await;
    assert_eq!(blocked.status, 200);
    assert_eq!(
        app.login("bob@acme.test", PASSWORD).await.code(),
        "account_blocked"
    );
    for _ in 0..5 {
        assert_eq!(
            app.login("ghost@nowhere.test", "wrong-password-2")
                .await
                .code(),
            "invalid_credentials"
        );
    }
    assert_eq!(
        app.login("ghost@nowhere.test", "wrong-password-2")
            .await
            .code(),
        "too_many_requests"
    );
    app.state
        .directory
        .set_tenant_status(
            &TenantId::parse(&tenant_id).unwrap(),
            TenantStatus::Suspended,
        )
        .await
        .expect("suspend");
    app.state
        .tenant_cache
        .forget(&TenantId::parse(&tenant_id).unwrap());
    assert_eq!(
        app.login("admin@acme.test", PASSWORD).await.code(),
        "tenant_suspended"
    );
    assert_eq!(app.get("/no/such/page", None).await.status, 404);

    // Assert
    let (text, s) = scrape(&app).await;
    for (outcome, n) in [
        ("success", 1.0),
        ("invalid", 6.0),
        ("blocked", 1.0),
        ("suspended", 1.0),
        ("throttled", 1.0),
        ("busy", 0.0),
    ] {
        assert_eq!(
            sample(
                &s,
                &format!("tenantd_logins_total{{outcome=\"{outcome}\"}}")
            ),
            n,
            "{outcome}"
        );
    }
    let login = |status: u16| {
        format!(
            "tenantd_http_requests_total{{route=\"/api/auth/login\",method=\"POST\",status=\"{status}\"}}"
        )
    };
    assert_eq!(sample(&s, &login(200)), 1.0);
    assert_eq!(sample(&s, &login(401)), 6.0);
    assert_eq!(sample(&s, &login(403)), 2.0);
    assert_eq!(sample(&s, &login(429)), 1.0);
    // The route template, never the path with the user's id in it.
    assert_eq!(
        sample(
            &s,
            "tenantd_http_requests_total{route=\"/api/admin/users/{id}\",method=\"PATCH\",status=\"200\"}"
        ),
        1.0
    );
    assert!(!text.contains(&bob), "a user id leaked into a label");
    assert!(
        !text.contains("@acme.test") && !text.contains("ghost"),
        "an email leaked"
    );
    assert_eq!(
        sample(
            &s,
            "tenantd_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        1.0
    );
    // The latency histogram of sign-ins: cumulative buckets ending in the count.
    let h = "tenantd_http_request_duration_seconds";
    let labels = "route=\"/api/auth/login\",method=\"POST\"";
    let count = sample(&s, &format!("{h}_count{{{labels}}}"));
    assert_eq!(count, 10.0);
    assert_eq!(
        sample(&s, &format!("{h}_bucket{{{labels},le=\"+Inf\"}}")),
        count
    );
    let mut last = 0.0;
    for le in ["0.001", "0.01", "0.1", "1", "10"] {
        let v = sample(&s, &format!("{h}_bucket{{{labels},le=\"{le}\"}}"));
        assert!(v >= last, "buckets must be cumulative");
        last = v;
    }
    assert!(sample(&s, &format!("{h}_sum{{{labels}}}")) > 0.0);
    // Gauges read at scrape time.
    assert_eq!(sample(&s, "tenantd_hash_queue_depth"), 0.0);
    assert!(sample(&s, "tenantd_open_tenants") >= 1.0);
    assert!(sample(&s, "tenantd_open_connections") >= 1.0);
    assert_eq!(sample(&s, "tenantd_tenant_evictions_total"), 0.0);
    assert_eq!(sample(&s, "tenantd_node_info{node=\"local\"}"), 1.0);
    for family in [
        "tenantd_forwarded_requests_total",
        "tenantd_tenant_opens_total",
        "tenantd_open_connections",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

#[tokio::test]
async fn metrics_count_evictions_past_the_connection_cap() {
    let app = InProc::with(|cfg, _| cfg.max_connections = Some(2)).await;
    let mut sessions = Vec::new();
    for slug in ["ev-one", "ev-two", "ev-three", "ev-four"] {
        sessions.push(app.company(slug).await.1);
    }
    for s in &sessions {
        assert_eq!(app.session_status(s).await, 200);
    }
    let (_, s) = scrape(&app).await;
    let evictions = sample(&s, "tenantd_tenant_evictions_total");
    assert!(evictions >= 2.0, "evictions: {evictions}");
    assert_eq!(evictions, app.state.tenants.stats().evictions as f64);
    assert!(sample(&s, "tenantd_open_connections") <= 2.0);
}

/// JSON lines the node printed whose message is `request`.
fn request_lines(node: &Node) -> Vec<Value> {
    node.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect()
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_without_secrets() {
    // Arrange: a real tenantd logging JSON, and a company.
    let node = Node::start("local", &[("TENANTD_LOG_FORMAT", "json")]);
    let (_, session) = cluster::company(&node, &node.address, "logco", &[]).await;

    // Act: a sign-in with our own request id, a failed one, a session check.
    let mine = "req-4f1c2a-test";
    let ok = http::read(
        client()
            .post(node.url("/api/auth/login"))
            .header("x-request-id", mine)
            .json(&json!({"email": "admin@logco.test", "password": PASSWORD})),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let new_session = ok.session().expect("session");
    let bad = node.sign_in("admin@logco.test", "not-the-password-9").await;
    assert_eq!(bad.status, 401);
    let check = node.session(&session).await;
    assert_eq!(check.status, 200);

    // Assert: the request id is echoed, generated when absent.
    assert_eq!(ok.headers["x-request-id"], mine);
    let generated = check.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // One line per request, found by request id (the log is written after the answer).
    let (login_line, check_line) = poll(Duration::from_secs(10), "request lines", || async {
        let lines = request_lines(&node);
        let by_id = |id: &str| lines.iter().find(|l| l["request_id"] == id).cloned();
        match (by_id(mine), by_id(&generated)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(format!("no request lines in {:?}", node.logs())),
        }
    })
    .await;
    assert_eq!(login_line["method"], "POST");
    assert_eq!(login_line["route"], "/api/auth/login");
    assert_eq!(login_line["status"], 200);
    assert!(login_line["latency_ms"].as_f64().expect("latency") > 0.0);
    assert_eq!(login_line["level"], "INFO");
    assert_eq!(check_line["route"], "/api/session");
    assert_eq!(check_line["status"], 200);
    let lines = request_lines(&node);
    assert_eq!(lines.iter().filter(|l| l["request_id"] == mine).count(), 1);
    assert!(lines.iter().any(|l| l["status"] == 401));
    // Nothing secret or personal anywhere in the output.
    let all = node.logs().join("\n");
    for secret in [
        "admin@logco.test",
        PASSWORD,
        "not-the-password-9",
        session.as_str(),
        new_session.as_str(),
        session.split('.').nth(1).expect("secret part"),
    ] {
        assert!(!all.contains(secret), "{secret:?} appears in the logs");
    }
}

/// `/metrics` of a `tenantd` started with `env` (and a data directory, a metrics token), and
/// its soft open-file limit as the kernel reports it.
async fn cap_of_tenantd(env: &[(&str, &str)]) -> (HashMap<String, f64>, u64) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut all = vec![
        (
            "TENANTD_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
        ("TENANTD_METRICS_TOKEN".to_owned(), METRICS_TOKEN.to_owned()),
    ];
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let server = tests::process::Tenantd::start("cap", all);
    let text = client()
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let pid = server.pid().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("soft open-file limit");
    (samples(&text), soft)
}

#[tokio::test]
async fn the_connection_cap_is_sized_from_the_raised_open_file_limit() {
    // The child inherits this process's hard limit.
    let hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .expect("hard open-file limit");
    let (s, soft) = cap_of_tenantd(&[]).await;
    assert_eq!(soft, hard, "tenantd raises its soft limit to the hard one");
    let cap = sample(&s, "tenantd_max_connections");
    assert_eq!(
        cap,
        tenant_runtime::router::connection_cap(soft) as f64,
        "soft limit {soft}"
    );
    // Three descriptors per connection and a quarter (at least 1,024) kept back.
    assert!(cap * 3.0 + 1024.0 <= soft as f64, "{cap} for {soft}");
}

#[tokio::test]
async fn a_configured_connection_cap_wins() {
    let (s, _) = cap_of_tenantd(&[("TENANTD_MAX_CONNECTIONS", "77")]).await;
    assert_eq!(sample(&s, "tenantd_max_connections"), 77.0);
}
