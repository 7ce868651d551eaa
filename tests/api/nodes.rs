//! Several real `tenantd` nodes on random ports sharing one PostgreSQL directory, each with
//! its own data directory: tenants spread over them, every node serves every tenant (by
//! forwarding to the owner), a tenant moves between nodes under load without losing an
//! acknowledged write, and a stopped node takes down only its own tenants.
//!
//! Each test creates its own PostgreSQL database (see `directory.rs`); without PostgreSQL the
//! tests fail under CI and are skipped otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use tests::cluster::{self, Node, SECRET};
use tests::db::{Engine, TestDb};
use tests::http::{self, client, emails_of};
use tests::inproc::internal_headers;
use tests::{METRICS_TOKEN, PASSWORD, poll, within};

/// Three nodes n1, n2, n3 on one fresh PostgreSQL directory, or `None` (skipped).
async fn three_nodes() -> Option<(TestDb, Vec<Node>)> {
    let db = TestDb::new(Engine::Postgres).await?;
    let nodes = ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            Node::start(
                id,
                &[
                    ("TENANTD_DIRECTORY_URL", db.url.as_str()),
                    ("TENANTD_NODE_SECRET", SECRET),
                ],
            )
        })
        .collect();
    Some((db, nodes))
}

/// `tenantd_forwarded_requests_total` of a node, summed over targets, for one result.
async fn forwarded(node: &Node, result: &str) -> f64 {
    let text = client()
        .get(node.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| {
            l.starts_with("tenantd_forwarded_requests_total{")
                && l.contains(&format!("result=\"{result}\""))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_spread_tenants_and_each_serves_all_of_them() {
    let Some((_db, nodes)) = three_nodes().await else {
        return;
    };
    // Arrange: six companies created through n1's tenantctl without --node: least loaded
    // first, so two per node, the files written by the node each lands on.
    let mut companies = Vec::new();
    for (i, slug) in ["co-a", "co-b", "co-c", "co-d", "co-e", "co-f"]
        .iter()
        .enumerate()
    {
        let via = &nodes[i % 3];
        let (tenant, _) = cluster::company(&nodes[0], &via.address, slug, &[]).await;
        companies.push((slug.to_string(), tenant));
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for (_, t) in &companies {
        *per_node
            .entry(t["node"].as_str().expect("node").to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        per_node,
        BTreeMap::from([("n1".into(), 2), ("n2".into(), 2), ("n3".into(), 2)])
    );
    // Each file lives on its node only.
    for (_, t) in &companies {
        let id = t["id"].as_str().expect("id");
        for n in &nodes {
            let has = n.data.join("tenants").join(format!("{id}.db")).exists();
            assert_eq!(has, t["node"] == n.id.as_str(), "{id} on {}", n.id);
        }
    }
    // --node places explicitly.
    let (pinned, _) =
        cluster::company(&nodes[0], &nodes[1].address, "pinned", &["--node", "n3"]).await;
    assert_eq!(pinned["node"], "n3");

    // Act + Assert: every node serves sign-in, session checks, admin actions and pages of
    // every company.
    let c = client();
    for (slug, t) in &companies {
        let admin_email = format!("admin@{slug}.test");
        for (k, via) in nodes.iter().enumerate() {
            let session = via.login(&admin_email).await;
            for check in &nodes {
                let s = check.session(&session).await;
                assert_eq!(
                    s.status, 200,
                    "session of {slug} via {}: {}",
                    check.id, s.body
                );
                assert_eq!(s.json()["tenant"]["id"], t["id"]);
                assert_eq!(s.json()["user"]["email"], admin_email.as_str());
            }
            let member = format!("m{k}@{slug}.test");
            let invited = via.invite(&session, &member, "member").await;
            assert_eq!(
                invited.status, 201,
                "invite via {}: {}",
                via.id, invited.body
            );
            let other = &nodes[(k + 1) % 3];
            let list = other
                .call(Method::GET, "/api/admin/users", Some(&session), None)
                .await;
            assert_eq!(list.status, 200);
            let emails = emails_of(&list.json());
            assert!(emails.contains(&member), "{member} in {emails:?}");
            // A page, through a node that does not hold the company.
            let page = other
                .call(Method::GET, "/admin", Some(&session), None)
                .await;
            assert_eq!(page.status, 200, "admin page via {}", other.id);
            assert!(page.body.contains(&member), "the page lists {member}");
            // Signing out through yet another node ends the session everywhere.
            let out = nodes[(k + 2) % 3]
                .call(Method::POST, "/api/auth/logout", Some(&session), None)
                .await;
            assert_eq!(out.status, 200);
            for check in &nodes {
                let s = check.session(&session).await;
                assert_eq!(s.status, 401, "signed out everywhere");
            }
        }
    }
    // A wrong password is the same answer through any node, and unknown addresses too.
    for via in &nodes {
        let bad = via.sign_in("admin@co-a.test", "wrong-password-123").await;
        assert_eq!(
            (bad.status, bad.code().as_str()),
            (401, "invalid_credentials")
        );
    }
    // Forwarding happened, and is counted.
    for n in &nodes {
        assert!(forwarded(n, "ok").await > 0.0, "{} forwarded nothing", n.id);
    }
    // A forged forwarding header is refused.
    let forged = http::read(
        c.get(nodes[0].url("/api/session"))
            .header("x-tenantd-forwarded", "v1 1 n2 1.2.3.4 00"),
    )
    .await;
    assert_eq!(forged.status, 403);
    // Internal endpoints need the secret.
    let internal = http::read(c.post(nodes[0].url(&format!(
        "/internal/tenants/{}/freeze?epoch=1",
        companies[0].1["id"].as_str().expect("id")
    ))))
    .await;
    assert_eq!(internal.status, 403);
}

/// Counts of what concurrent clients saw during a move.
#[derive(Default, Debug)]
struct Seen {
    acknowledged: Vec<String>,
    refused: BTreeMap<String, usize>,
    read_failures: Vec<String>,
    slowest_write: Duration,
    reads: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_under_reads_and_writes_loses_no_acknowledged_write() {
    let Some((_db, nodes)) = three_nodes().await else {
        return;
    };
    let nodes = Arc::new(nodes);
    let (tenant, admin) =
        cluster::company(&nodes[0], &nodes[0].address, "moveco", &["--node", "n1"]).await;
    assert_eq!(tenant["node"], "n1");
    let tenant_id = tenant["id"].as_str().expect("id").to_owned();
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));

    // Writers: invitations through every node, each acknowledged one recorded.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (nodes, seen, stop, admin) = (nodes.clone(), seen.clone(), stop.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 150 {
                let email = format!("w{w}-{i}@moveco.test");
                let via = &nodes[(w + i) % 3];
                let started = Instant::now();
                let a = via.invite(&admin, &email, "member").await;
                let took = started.elapsed();
                let mut s = seen.lock().expect("seen");
                s.slowest_write = s.slowest_write.max(took);
                if a.status == 201 {
                    s.acknowledged.push(email);
                } else {
                    *s.refused
                        .entry(format!("{} {}", a.status, a.code()))
                        .or_default() += 1;
                }
                drop(s);
                i += 1;
            }
        }));
    }
    // Readers: session checks and user lists through every node.
    for r in 0..3 {
        let (nodes, seen, stop, admin) = (nodes.clone(), seen.clone(), stop.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let via = &nodes[(r + i) % 3];
                let path = if i % 2 == 0 {
                    "/api/session"
                } else {
                    "/api/admin/users?limit=5"
                };
                let a = via.call(Method::GET, path, Some(&admin), None).await;
                let mut s = seen.lock().expect("seen");
                s.reads += 1;
                if a.status != 200 {
                    s.read_failures
                        .push(format!("{} via {}: {} {}", path, via.id, a.status, a.body));
                }
                drop(s);
                i += 1;
            }
        }));
    }
    // Let some writes land before the move.
    within(
        Duration::from_secs(30),
        "writes do not go through",
        || async { seen.lock().expect("seen").acknowledged.len() >= 20 },
    )
    .await;

    // Act: move the tenant from n1 to n2 while the clients go on.
    let mover = nodes.clone();
    let moved = tokio::task::spawn_blocking(move || {
        mover[2].tenantctl_json(&["tenant", "move", "moveco", "--to", "n2"])
    })
    .await
    .expect("move task");
    // Writes after the move, then stop.
    let after = seen.lock().expect("seen").acknowledged.len();
    poll(
        Duration::from_secs(30),
        "writes stopped after the move",
        || async {
            let s = seen.lock().expect("seen");
            if s.acknowledged.len() >= after + 20 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }

    // Assert: the move, as reported.
    assert_eq!(moved["moved"], true, "{moved}");
    assert_eq!(moved["move"]["from"], "n1");
    assert_eq!(moved["move"]["to"], "n2");
    assert_eq!(moved["move"]["epoch"], 2);
    let paused = moved["move"]["writes_paused_ms"].as_u64().expect("pause");
    assert!(paused < 5_000, "writes paused {paused} ms");
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    eprintln!(
        "move: {} ; acknowledged {} writes, refused {:?}, slowest write {:?}, {} reads, failed {:?}",
        moved["move"],
        seen.acknowledged.len(),
        seen.refused,
        seen.slowest_write,
        seen.reads,
        seen.read_failures
    );
    assert!(
        seen.read_failures.is_empty(),
        "reads failed during the move: {:?}",
        seen.read_failures
    );
    assert!(seen.reads > 20, "readers ran: {}", seen.reads);
    assert!(
        seen.slowest_write < Duration::from_secs(8),
        "a write waited {:?}",
        seen.slowest_write
    );
    // Every acknowledged write is there, read through every node.
    let c = client();
    for n in nodes.iter() {
        let mut listed = BTreeSet::new();
        let mut offset = 0;
        loop {
            let page = n
                .call(
                    Method::GET,
                    &format!("/api/admin/users?limit=200&offset={offset}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            let v: Value = page.json();
            let users = v["users"].as_array().expect("users");
            listed.extend(emails_of(&v));
            offset += users.len();
            if users.is_empty() || offset >= v["total"].as_u64().expect("total") as usize {
                break;
            }
        }
        let missing: Vec<&String> = seen
            .acknowledged
            .iter()
            .filter(|e| !listed.contains(*e))
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged but lost (via {}): {missing:?}",
            n.id
        );
    }
    // The placement flipped, and the old node refuses the tenant: it sends no snapshot, and
    // its file left the tenants folder.
    let status = nodes[0].tenantctl_json(&["tenant", "show", "moveco"]);
    assert_eq!(status["node"], "n2");
    let path = format!("/internal/tenants/{tenant_id}/snapshot");
    let mut req = c.get(nodes[0].url(&path));
    for (name, value) in internal_headers(SECRET, &Method::GET, &path) {
        req = req.header(name, value);
    }
    let refused = http::read(req).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (409, "not_owner")
    );
    let old_file = nodes[0]
        .data
        .join("tenants")
        .join(format!("{tenant_id}.db"));
    within(
        Duration::from_secs(20),
        "the old node kept the file in place",
        || async { !old_file.exists() },
    )
    .await;
    assert!(
        nodes[1]
            .data
            .join("tenants")
            .join(format!("{tenant_id}.db"))
            .exists()
    );
    // Sessions survive the move.
    for n in nodes.iter() {
        let s = n.session(&admin).await;
        assert_eq!(s.status, 200, "session via {} after the move", n.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_takes_down_only_its_own_tenants() {
    let Some((_db, mut nodes)) = three_nodes().await else {
        return;
    };
    let mut sessions = Vec::new();
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        let slug = format!("down{}", i + 1);
        let (t, s) = cluster::company(&nodes[0], &nodes[i].address, &slug, &["--node", node]).await;
        assert_eq!(t["node"], *node);
        sessions.push((slug, s));
    }

    // Act: n3 goes away.
    nodes[2].stop();

    // Assert: n1's and n2's companies work through both remaining nodes.
    for (slug, session) in &sessions[..2] {
        for via in &nodes[..2] {
            let s = via.session(session).await;
            assert_eq!(s.status, 200, "{slug} via {}", via.id);
            via.login(&format!("admin@{slug}.test")).await;
        }
    }
    // n3's company answers a clear 503 through the others.
    let (slug, session) = &sessions[2];
    for via in &nodes[..2] {
        let s = via.session(session).await;
        assert_eq!(
            (s.status, s.code().as_str()),
            (503, "tenant_unavailable"),
            "{}",
            s.body
        );
        assert!(s.headers.contains_key("retry-after"));
        let l = via.sign_in(&format!("admin@{slug}.test"), PASSWORD).await;
        assert_eq!((l.status, l.code().as_str()), (503, "tenant_unavailable"));
        // A reset request answers as always: it tells nothing about the account.
        let f = via
            .call(
                Method::POST,
                "/api/auth/forgot",
                None,
                Some(json!({"email": format!("admin@{slug}.test")})),
            )
            .await;
        assert_eq!(f.status, 202);
        assert!(forwarded(via, "unavailable").await > 0.0);
    }
}

#[tokio::test]
async fn an_app_signs_in_and_calls_the_api_through_any_node() {
    let Some(db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    let env = [
        ("TENANTD_DIRECTORY_URL", db.url.as_str()),
        ("TENANTD_NODE_SECRET", SECRET),
    ];
    let (n1, n2) = (Node::start("n1", &env), Node::start("n2", &env));
    let (_, session) = cluster::company(&n1, &n1.address, "oidcco", &["--node", "n1"]).await;
    let redirect = "http://127.0.0.1:9/cb";
    let app = n1.tenantctl_json(&[
        "client",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        redirect,
    ]);
    let (id, secret) = (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    );
    let p = tests::oidc::pkce();

    // The browser reaches n2, the tenant lives on n1: the request follows its session.
    let authorize = format!(
        "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri={redirect}&scope=openid&code_challenge={}&code_challenge_method=S256",
        p.challenge
    );
    let r = n2.call(Method::GET, &authorize, Some(&session), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let code = tests::oidc::param(r.location(), "code").expect("code");

    // The app reaches n2 too: the code names its company, so n1 redeems it.
    let r = http::read(
        client()
            .post(n2.url("/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &p.verifier),
            ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    for node in [&n1, &n2] {
        let s = http::read(client().get(node.url("/api/session")).bearer_auth(&access)).await;
        assert_eq!(s.status, 200, "via {}: {}", node.id, s.body);
    }
    // Both nodes publish the same keys.
    let jwks = |n: &Node| http::read(client().get(n.url("/oauth2/jwks")));
    assert_eq!(jwks(&n1).await.json(), jwks(&n2).await.json());
}

#[tokio::test]
async fn a_saml_post_forwarded_to_its_node_has_the_same_size_limit_as_there() {
    let Some((_db, nodes)) = three_nodes().await else {
        return;
    };
    let (tenant, _) =
        cluster::company(&nodes[0], &nodes[0].address, "samlco", &["--node", "n1"]).await;
    let holder = nodes.iter().find(|n| n.id == "n1").expect("n1");
    let other = nodes.iter().find(|n| n.id != "n1").expect("another node");
    let acs = format!(
        "/saml/{}.nosuchconnection/acs",
        tenant["id"].as_str().expect("id")
    );
    let post = |node: &Node, size: usize| {
        let response = "A".repeat(size);
        let request = client()
            .post(node.url(&acs))
            .form(&[("SAMLResponse", response.as_str()), ("RelayState", "x")]);
        http::read(request)
    };
    // 100 KiB: more than other routes take (64 KiB), within what the ACS takes (320 KiB). The
    // node holding the company answers the same whichever node the IdP's post reached.
    let direct = post(holder, 100 * 1024).await;
    assert_ne!(direct.status, 413, "{}", direct.body);
    let before = forwarded(other, "ok").await;
    let via_other = post(other, 100 * 1024).await;
    assert_eq!(
        (via_other.status, via_other.location()),
        (direct.status, direct.location()),
        "{}",
        via_other.body
    );
    assert_eq!(
        forwarded(other, "ok").await,
        before + 1.0,
        "sent on to its node"
    );
    // Over the ACS's limit: refused alike, with a page or a JSON error, never a bare text.
    for via in [holder, other] {
        let r = post(via, 400 * 1024).await;
        assert_eq!(r.status, 413, "via {}: {}", via.id, r.body);
        let kind = r.header("content-type");
        assert!(
            kind.starts_with("text/html") || kind.starts_with("application/json"),
            "via {}: {kind}: {}",
            via.id,
            r.body
        );
    }
}
