//! `tenantctl`, run as the real binary against real data directories (and a real `tenantd`
//! where the server must notice): tenant lifecycle, backup and restore under load, migrating a
//! thousand tenants, doctor, crashes at every step, and bad input that must change nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenant_runtime::TenantId;
use tests::ctl::create_args;
use tests::inproc::{
    CREATE_STEPS, DELETE_STEPS, Tenant, UNDELETE_STEPS, directory_at, sha256_file,
};
use tests::seed::{add_user, old_tenant_file, router_at, tenant_row};
use tests::{Ctl, MAIL_WAIT, PASSWORD, TestApp, now, within};

fn kinds(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Everything an operator command could change, in comparable form: the directory's rows, the
/// names of the files in the tenants folder and the trash, and each tenant's users. (Operation
/// lock files carry no data and are left out.)
fn state(data: &Path) -> String {
    let mut out = String::new();
    let conn = rusqlite::Connection::open_with_flags(
        data.join("directory.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open directory");
    for table in ["tenants", "domains", "user_index"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        out.push_str(&format!("{table}: {rows:?}\n"));
    }
    let mut files = BTreeSet::new();
    for sub in ["tenants", "trash"] {
        if let Ok(d) = std::fs::read_dir(data.join(sub)) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.ends_with("-wal") && !name.ends_with("-shm") {
                    files.insert(format!("{sub}/{name}"));
                }
            }
        }
    }
    out.push_str(&format!("files: {files:?}\n"));
    for f in &files {
        if let Some(name) = f.strip_prefix("tenants/")
            && name.ends_with(".db")
        {
            let c = rusqlite::Connection::open(data.join(f)).expect("open tenant");
            let mut stmt = c
                .prepare("SELECT id, email, status, role FROM users ORDER BY email")
                .expect("users");
            let rows: Vec<(String, String, String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .expect("users")
                .collect::<Result<_, _>>()
                .expect("users");
            out.push_str(&format!("{name}: {rows:?}\n"));
        }
    }
    out
}

// ---- lifecycle with a running server ---------------------------------------------------------

#[tokio::test]
async fn tenants_are_created_listed_suspended_and_resumed_on_a_running_server() {
    // Arrange: a real tenantd, three companies made with `tenantctl tenant create`, each with
    // its first admin signed in through the mailed invitation.
    let app = TestApp::spawn().await;
    let ctl = app.ctl();
    let a = app.company("alpha").await;
    let b = app.company("bravo").await;
    let c = app.company("charlie").await;

    // list
    let list = ctl.json(&["tenant", "list"]);
    let slugs: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["alpha", "bravo", "charlie"]);
    for t in list.as_array().expect("array") {
        assert_eq!(t["status"], "active");
        assert_eq!(t["schema_version"], tenant_schema::TENANT_LATEST);
        assert_eq!(
            t["domains"],
            json!([format!("{}.test", t["slug"].as_str().unwrap_or(""))])
        );
    }
    let text = ctl.run(&["tenant", "list"]);
    assert!(text.ok() && text.stdout.contains("bravo") && text.stdout.contains("SLUG"));
    let shown = ctl.json(&["tenant", "show", "bravo"]);
    assert_eq!(shown["id"], b.tenant_id.as_str());
    assert_eq!(shown["users"][0]["email"], "admin@bravo.test");
    let found = ctl.json(&["user", "find", "ADMIN@Bravo.test"]);
    assert_eq!(found["tenant"]["slug"], "bravo");
    assert_eq!(found["user"]["role"], "admin");
    assert_eq!(found["user"]["status"], "active");

    // suspend: bravo's admin is refused within a second; the others are not.
    assert_eq!(b.admin.session_status().await, 200);
    let out = ctl.json(&["tenant", "suspend", "bravo"]);
    assert_eq!(out["status"], "suspended");
    let took = within(Duration::from_secs(1), "suspension", || async {
        let r = b.admin.get("/api/session").await;
        r.status == 403 && r.code() == "tenant_suspended"
    })
    .await;
    assert!(took < Duration::from_secs(1));
    let r = app.person().login("admin@bravo.test", PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (403, "tenant_suspended"));
    assert_eq!(a.admin.session_status().await, 200);
    assert_eq!(c.admin.session_status().await, 200);
    assert_eq!(ctl.json(&["tenant", "list"])[1]["status"], "suspended");

    // resume: the same session works again within a second.
    ctl.json(&["tenant", "resume", "bravo"]);
    within(Duration::from_secs(1), "resume", || async {
        b.admin.session_status().await == 200
    })
    .await;

    // The operator's mail and configuration checks use the same settings as the server.
    let ok = ctl.json(&["configtest"]);
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["directory"]["tenants"], 3);
    ctl.json(&["send-test-email", "ops@example.test"]);
    let m = app.wait_for_mail("ops@example.test", MAIL_WAIT).await;
    assert!(m.subject.contains("test message"), "{}", m.subject);
}

// ---- backup and restore ----------------------------------------------------------------------

#[tokio::test]
async fn a_backup_taken_while_users_are_created_restores_every_earlier_user_elsewhere() {
    // Arrange: a company whose admin keeps inviting people through the running server.
    let app = TestApp::spawn().await;
    let ctl = app.ctl();
    let acme = app.company("acme").await;
    let _other = app.company("other").await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (admin, acked, stop) = (acme.admin.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let email = format!("user{i}@acme.test");
                let r = admin.invite(&email, "member").await;
                assert_eq!(r.status, 201, "invite: {}", r.body);
                acked.lock().expect("lock").push(email);
                i += 1;
            }
        })
    };
    within(Duration::from_secs(30), "first invitations", || async {
        acked.lock().expect("lock").len() >= 10
    })
    .await;

    // Act: back up while the invitations go on.
    let before: Vec<String> = acked.lock().expect("lock").clone();
    let out_dir = tempfile::tempdir().expect("tmp");
    let bk = out_dir.path().join("bk");
    let bk_arg = bk.to_str().expect("utf-8").to_owned();
    let c2 = ctl.clone();
    let backup = tokio::task::spawn_blocking(move || c2.json(&["backup", "--out", &bk_arg]))
        .await
        .expect("backup");
    let during = acked.lock().expect("lock").len();
    within(
        Duration::from_secs(30),
        "invitations after the backup",
        || async { acked.lock().expect("lock").len() > during + 3 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    // The manifest describes each copy.
    assert_eq!(backup["tenants"], 2);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(bk.join("manifest.json")).expect("manifest"))
            .expect("json");
    let copy = manifest["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["slug"] == "acme")
        .expect("acme in manifest")
        .clone();
    assert_eq!(copy["tenant_id"], acme.tenant_id.as_str());
    assert_eq!(copy["schema_version"], tenant_schema::TENANT_LATEST);
    assert_eq!(copy["sha256"].as_str().map(str::len), Some(64));
    let file = bk.join(copy["file"].as_str().expect("file"));
    assert_eq!(
        copy["size"].as_u64(),
        Some(std::fs::metadata(&file).expect("copy").len())
    );
    assert!(copy["backed_up_at"].as_i64().is_some());
    assert!(bk.join("directory.db").is_file());
    assert_eq!(manifest["directory"]["backend"], "sqlite");

    // Act: restore acme alone into a fresh data directory.
    let fresh = tempfile::tempdir().expect("tmp");
    let fresh_ctl = Ctl::new(fresh.path());
    let restored = fresh_ctl.json(&[
        "restore",
        "--from",
        bk.to_str().expect("utf-8"),
        "--tenant",
        "acme",
    ]);
    assert_eq!(restored["restored"][0]["mode"], "created");

    // Assert: every user acknowledged before the backup started is there, routed to acme.
    let shown = fresh_ctl.json(&["tenant", "show", "acme"]);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["domains"], json!(["acme.test"]));
    let indexed: BTreeSet<String> = shown["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect();
    for email in before.iter().chain(["admin@acme.test".to_owned()].iter()) {
        assert!(indexed.contains(email), "{email} missing after restore");
    }
    let found = fresh_ctl.json(&["user", "find", &before[0]]);
    assert_eq!(found["tenant"]["slug"], "acme");
    assert_eq!(found["user"]["status"], "invited");
    // Only acme came back, and the restored installation is consistent.
    assert_eq!(
        fresh_ctl.json(&["tenant", "list"]).as_array().map(Vec::len),
        Some(1)
    );
    fresh_ctl.assert_clean();
}

#[tokio::test]
async fn a_restore_over_a_live_tenant_ends_old_sessions_and_cannot_revive_used_links() {
    // Arrange: an invitation mailed before the backup and accepted after it.
    let app = TestApp::spawn().await;
    let ctl = app.ctl();
    let acme = app.company("acme").await;
    let other = app.company("other").await;
    app.invite(&acme.admin, "late@acme.test", "member").await;
    let invitation = app.wait_for_mail("late@acme.test", MAIL_WAIT).await;
    let dir = tempfile::tempdir().expect("tmp");
    let bk = dir.path().join("bk");
    ctl.json(&["backup", "--out", bk.to_str().expect("utf-8")]);
    let late = app.person();
    let r = late.accept_invite(&invitation.token, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.invite(&acme.admin, "after@acme.test", "member").await;

    // Act: restore acme over the live tenant while the server runs.
    let out = ctl.json(&[
        "restore",
        "--from",
        bk.to_str().expect("utf-8"),
        "--tenant",
        "acme",
    ]);
    assert_eq!(out["restored"][0]["mode"], "replaced");
    assert!(out["restored"][0]["previous"].as_str().is_some());

    // Assert: sessions from before the restore are dead, the used link is not revived, the
    // user added after the backup is gone (and unindexed), the other tenant is untouched.
    assert_eq!(acme.admin.session_status().await, 401);
    assert_eq!(late.session_status().await, 401);
    let r = app
        .person()
        .accept_invite(&invitation.token, PASSWORD)
        .await;
    assert_ne!(r.status, 200, "a used invitation came back: {}", r.body);
    assert_eq!(other.admin.session_status().await, 200);
    let admin = app.login("admin@acme.test", PASSWORD).await;
    assert_eq!(admin.session_status().await, 200);
    let gone = ctl.run(&["--json", "user", "find", "after@acme.test"]);
    gone.assert_fails_with("unknown_user");
    ctl.assert_clean();
}

// ---- migrate -----------------------------------------------------------------------------------

fn file_version(path: &Path) -> u32 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version")
}

#[tokio::test]
async fn migrate_brings_a_thousand_tenants_up_and_reports_the_corrupt_one() {
    // Arrange: 1,000 tenants at schema version 1, one of them corrupt.
    let data = tempfile::tempdir().expect("tmp");
    let tenants_dir = data.path().join("tenants");
    std::fs::create_dir_all(&tenants_dir).expect("mkdir");
    let dir = directory_at(data.path()).await;
    let ids: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    let rows: Vec<Tenant> = ids
        .iter()
        .map(|id| {
            old_tenant_file(&tenants_dir, id, true);
            tenant_row(id, &format!("s-{id}"), 1, "local", 1)
        })
        .collect();
    dir.insert_tenants(&rows).await.expect("rows");
    let corrupt = &ids[437];
    std::fs::write(
        tenants_dir.join(format!("{corrupt}.db")),
        b"this is not a database at all ".repeat(200),
    )
    .expect("corrupt");
    let ctl = Ctl::new(data.path());

    // A dry run changes nothing.
    let dry = ctl.run(&["--json", "migrate", "--dry-run"]);
    dry.assert_fails_with("migration_failed");
    assert_eq!(dry.json()["would_migrate"], 999);
    assert_eq!(file_version(&tenants_dir.join("t0000.db")), 1);

    // Act
    let start = Instant::now();
    let first = ctl.run(&["--json", "migrate"]);
    let first_took = start.elapsed();

    // Assert: the corrupt tenant is reported and the exit status says so; the others migrated.
    first.assert_fails_with("migration_failed");
    assert!(
        first.stderr.contains(&format!("s-{corrupt}")),
        "{}",
        first.stderr
    );
    let j = first.json();
    assert_eq!(
        (j["migrated"].as_u64(), j["failed"].as_u64()),
        (Some(999), Some(1))
    );
    let failed: Vec<&Value> = j["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["tenant_id"], corrupt.as_str());
    for id in ids.iter().filter(|id| *id != corrupt) {
        assert_eq!(
            file_version(&tenants_dir.join(format!("{id}.db"))),
            tenant_schema::TENANT_LATEST,
            "{id}"
        );
    }
    let recorded = dir.tenants().await.expect("tenants");
    for t in &recorded {
        let expected = if t.id.as_str() == corrupt {
            1
        } else {
            i64::from(tenant_schema::TENANT_LATEST)
        };
        assert_eq!(t.schema_version, expected, "{}", t.slug);
    }

    // A re-run skips the 999 quickly and still reports the corrupt one.
    let start = Instant::now();
    let again = ctl.run(&["--json", "migrate"]);
    let again_took = start.elapsed();
    again.assert_fails_with("migration_failed");
    let j = again.json();
    assert_eq!(
        (j["current"].as_u64(), j["migrated"].as_u64()),
        (Some(999), Some(0))
    );
    assert!(
        again_took < first_took,
        "re-run {again_took:?} vs first {first_took:?}"
    );
    // One tenant at a time works too.
    let one = ctl.json(&["migrate", "--tenant", "s-t0001"]);
    assert_eq!(one["tenants"], 1);
    dir.close().await;
}

// ---- doctor ------------------------------------------------------------------------------------

#[tokio::test]
async fn doctor_finds_and_repairs_every_kind_of_drift() {
    // Arrange: four healthy tenants, then one injected drift of each kind.
    let data = tempfile::tempdir().expect("tmp");
    let ctl = Ctl::new(data.path());
    let id_of = |v: &Value| TenantId::parse(v["tenant"]["id"].as_str().expect("id")).expect("id");
    let a = id_of(&ctl.create("alpha", Some("alpha.test"), "admin@alpha.test"));
    let b = id_of(&ctl.create("bravo", Some("bravo.test"), "admin@bravo.test"));
    let c = id_of(&ctl.create("charlie", None, "admin@charlie.test"));
    let d = id_of(&ctl.create("delta", None, "admin@delta.test"));
    ctl.assert_clean();
    let dir = directory_at(data.path()).await;
    let router = router_at(data.path());

    // index row for a user that does not exist
    dir.upsert_email("ghost@alpha.test", &a, "no-such-user")
        .await
        .expect("ghost");
    // user missing from the index
    let lost = add_user(&router, b.as_str(), "lost@bravo.test");
    // pending row whose user exists (an invitation interrupted before its confirmation)
    dir.reserve_email("half@bravo.test", &b, "reserved-id")
        .await
        .expect("reserve");
    let half = add_user(&router, b.as_str(), "half@bravo.test");
    // pending row without user (an invitation interrupted before the tenant write)
    dir.reserve_email("stale@charlie.test", &c, "x")
        .await
        .expect("reserve");
    // tenant row without file
    let d_id = d.clone();
    router.close_blocking(&d_id);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", router.path_of(&d_id).display()));
    }
    // file without tenant row
    let orphan = TenantId::generate();
    router
        .create_tenant_blocking(&orphan, now())
        .expect("orphan");
    // unfinished provisioning
    let prov = TenantId::generate();
    dir.insert_tenant(&prov, "echo", "Echo", "local")
        .await
        .expect("row");
    dir.add_domain(&prov, "echo.test").await.expect("domain");
    dir.reserve_email("admin@echo.test", &prov, "u")
        .await
        .expect("reserve");
    router.create_tenant_blocking(&prov, now()).expect("file");
    // schema versions that disagree
    dir.set_schema_version(&a, 1).await.expect("version");
    drop(router);

    // The default grace leaves a fresh pending row alone (it may be an invitation under way).
    let out = ctl.run(&["--json", "doctor"]);
    out.assert_fails_with("drift_found");
    assert!(
        !kinds(out.json()["findings"].as_array().expect("findings"))
            .contains("stale_pending_index")
    );

    // Act 1: find.
    let (out, findings) = ctl.doctor(false);
    out.assert_fails_with("drift_found");
    let expected: BTreeSet<String> = [
        "index_without_user",
        "user_not_indexed",
        "unconfirmed_index",
        "stale_pending_index",
        "missing_file",
        "orphan_file",
        "unfinished_provisioning",
        "schema_version_mismatch",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(kinds(&findings), expected, "{findings:#?}");
    let slug_of = |kind: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == kind)
            .map(|f| f["slug"].clone())
            .unwrap_or_default()
    };
    assert_eq!(slug_of("index_without_user"), "alpha");
    assert_eq!(slug_of("user_not_indexed"), "bravo");
    assert_eq!(slug_of("unconfirmed_index"), "bravo");
    assert_eq!(slug_of("stale_pending_index"), "charlie");
    assert_eq!(slug_of("missing_file"), "delta");
    assert_eq!(slug_of("unfinished_provisioning"), "echo");
    assert!(findings.iter().all(|f| f["repaired"] == false));

    // Act 2: repair.
    let (out, findings) = ctl.doctor(true);

    // Assert: all repaired but the missing file, which needs an operator.
    out.assert_fails_with("drift_remains");
    for f in &findings {
        assert_eq!(f["repaired"], f["kind"] != "missing_file", "{f:#}");
    }
    assert_eq!(dir.lookup_email("ghost@alpha.test").await.expect("q"), None);
    let e = dir
        .lookup_email("lost@bravo.test")
        .await
        .expect("q")
        .expect("indexed");
    assert_eq!(
        (e.tenant_id.as_str(), e.user_id.as_str(), e.state.as_str()),
        (b.as_str(), lost.as_str(), "active")
    );
    let e = dir
        .lookup_email("half@bravo.test")
        .await
        .expect("q")
        .expect("indexed");
    assert_eq!(
        (e.user_id.as_str(), e.state.as_str()),
        (half.as_str(), "active")
    );
    assert_eq!(
        dir.lookup_email("stale@charlie.test").await.expect("q"),
        None
    );
    assert_eq!(
        dir.tenant(&a).await.expect("q").expect("a").schema_version,
        i64::from(tenant_schema::TENANT_LATEST)
    );
    assert!(dir.tenant(&prov).await.expect("q").is_none());
    assert_eq!(dir.domain_owner("echo.test").await.expect("q"), None);
    let tenants_dir = data.path().join("tenants");
    assert!(!tenants_dir.join(format!("{orphan}.db")).exists());
    assert!(!tenants_dir.join(format!("{prov}.db")).exists());
    let trash: Vec<String> = std::fs::read_dir(data.path().join("trash"))
        .expect("trash")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        trash
            .iter()
            .any(|n| n.contains(orphan.as_str()) && n.ends_with("orphan")),
        "{trash:?}"
    );
    assert!(
        trash
            .iter()
            .any(|n| n.contains("echo") && n.ends_with("rolled_back")),
        "{trash:?}"
    );

    // Only the missing file remains; the operator deletes that tenant; all is clean. The rolled
    // back creation can run again.
    let (_, left) = ctl.doctor(false);
    assert_eq!(kinds(&left), BTreeSet::from(["missing_file".to_owned()]));
    ctl.json(&["tenant", "delete", "delta", "--yes"]);
    ctl.create("echo", Some("echo.test"), "admin@echo.test");
    ctl.assert_clean();
    dir.close().await;
}

// ---- crashes -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_crash_at_any_step_of_create_is_repaired_by_doctor_and_the_create_reruns() {
    let data = tempfile::tempdir().expect("tmp");
    let ctl = Ctl::new(data.path());
    ctl.create("bystander", Some("bystander.test"), "admin@bystander.test");
    let steps: Vec<&str> = CREATE_STEPS.iter().copied().chain(["mail_sent"]).collect();
    for (i, step) in steps.iter().enumerate() {
        let slug = format!("crash{i}");
        let domain = format!("crash{i}.test");
        let admin = format!("admin@crash{i}.test");
        let mut args = vec!["--json"];
        args.extend(create_args(&slug, "Crash", Some(&domain), &admin));
        // Act: die right after the step.
        let out = ctl.clone().with_env("TENANTCTL_CRASH_AT", step).run(&args);
        out.assert_crashed(step);
        // Whatever the step, the admin is never routed to another tenant.
        let found = ctl.run(&["--json", "user", "find", &admin]);
        if found.ok() {
            assert_eq!(found.json()["tenant"]["slug"], slug.as_str(), "{step}");
        }
        // Assert: doctor brings it back to a consistent state, and the command runs again.
        ctl.assert_repaired(step);
        let out = ctl.run(&args);
        assert!(
            out.ok(),
            "re-run after {step}: {}\n{}",
            out.stdout,
            out.stderr
        );
        let created = out.json();
        assert_eq!(created["tenant"]["status"], "active", "{step}");
        assert!(
            created["invite_link"]
                .as_str()
                .is_some_and(|l| l.contains("token="))
        );
        let found = ctl.json(&["user", "find", &admin]);
        assert_eq!(found["tenant"]["slug"], slug.as_str(), "{step}");
        assert_eq!(
            (
                found["user"]["role"].as_str(),
                found["user"]["status"].as_str()
            ),
            (Some("admin"), Some("invited")),
            "{step}"
        );
        assert_eq!(
            ctl.json(&["tenant", "show", &slug])["domains"],
            json!([domain]),
            "{step}"
        );
        ctl.assert_clean();
    }
    assert_eq!(
        ctl.json(&["tenant", "list"]).as_array().map(Vec::len),
        Some(steps.len() + 1)
    );
}

#[tokio::test]
async fn a_crash_at_any_step_of_delete_or_undelete_is_repaired_by_doctor() {
    let data = tempfile::tempdir().expect("tmp");
    let ctl = Ctl::new(data.path());
    let router = router_at(data.path());
    let steps = DELETE_STEPS;
    for (i, step) in steps.iter().enumerate() {
        let slug = format!("del{i}");
        let created = ctl.create(
            &slug,
            Some(&format!("del{i}.test")),
            &format!("admin@del{i}.test"),
        );
        let id = created["tenant"]["id"].as_str().expect("id").to_owned();
        add_user(&router, &id, &format!("member@del{i}.test"));
        ctl.doctor(true);
        ctl.assert_clean();

        let out = ctl
            .clone()
            .with_env("TENANTCTL_CRASH_AT", step)
            .run(&["--json", "tenant", "delete", &slug, "--yes"]);
        out.assert_crashed(step);
        ctl.assert_repaired(step);

        // Either the delete did not happen (and runs again), or it did (and undelete works).
        let exists = ctl.run(&["--json", "tenant", "show", &slug]).ok();
        if exists {
            ctl.json(&["tenant", "delete", &slug, "--yes"]);
        }
        assert_eq!(exists, i < 2, "{step}");
        ctl.run(&["--json", "tenant", "show", &slug])
            .assert_fails_with("unknown_tenant");
        ctl.assert_clean();
        let back = ctl.json(&["tenant", "undelete", &slug]);
        assert_eq!(back["users"], 2, "{step}");
        assert_eq!(
            ctl.json(&["user", "find", &format!("member@del{i}.test")])["tenant"]["slug"],
            slug.as_str()
        );
        ctl.assert_clean();
    }

    // Undelete, interrupted at each step, is rolled back by doctor and runs again.
    ctl.create("undel", Some("undel.test"), "admin@undel.test");
    ctl.json(&["tenant", "delete", "undel", "--yes"]);
    for step in UNDELETE_STEPS {
        let out = ctl
            .clone()
            .with_env("TENANTCTL_CRASH_AT", step)
            .run(&["--json", "tenant", "undelete", "undel"]);
        out.assert_crashed(step);
        ctl.assert_repaired(step);
        if ctl.run(&["--json", "tenant", "show", "undel"]).ok() {
            // Only a crash after the last step leaves it back.
            assert_eq!(*step, "activated");
            ctl.json(&["tenant", "delete", "undel", "--yes"]);
        }
    }
    let back = ctl.json(&["tenant", "undelete", "undel"]);
    assert_eq!(back["tenant"]["status"], "active");
    assert_eq!(
        ctl.json(&["user", "find", "admin@undel.test"])["tenant"]["slug"],
        "undel"
    );
    ctl.assert_clean();
}

// ---- bad input ---------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_gives_one_clear_line_and_changes_nothing() {
    // Arrange
    let data = tempfile::tempdir().expect("tmp");
    let ctl = Ctl::new(data.path());
    ctl.create("acme", Some("acme.test"), "ann@acme.test");
    ctl.create("beta", Some("beta.test"), "bob@beta.test");
    let work = tempfile::tempdir().expect("tmp");
    let bk = work.path().join("bk");
    let bk_s = bk.to_str().expect("utf-8").to_owned();
    ctl.json(&["backup", "--out", &bk_s]);
    let before = state(data.path());
    let missing = work.path().join("missing");
    let missing_s = missing.to_str().expect("utf-8").to_owned();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["tenant", "show", "nope"], "unknown_tenant"),
        (vec!["tenant", "suspend", "nope"], "unknown_tenant"),
        (vec!["tenant", "resume", "nope"], "unknown_tenant"),
        (vec!["tenant", "delete", "nope", "--yes"], "unknown_tenant"),
        (vec!["tenant", "delete", "acme"], "confirmation_required"),
        (vec!["domain", "add", "nope", "x.test"], "unknown_tenant"),
        (vec!["domain", "add", "beta", "acme.test"], "domain_taken"),
        (
            vec!["domain", "add", "beta", "not a domain"],
            "invalid_domain",
        ),
        (
            vec!["domain", "remove", "beta", "acme.test"],
            "domain_not_mapped",
        ),
        (
            create_args("Bad_Slug", "X", None, "x@x.test"),
            "invalid_slug",
        ),
        (create_args("ab", "X", None, "x@x.test"), "invalid_slug"),
        (
            create_args("gamma", "G", Some("acme.test"), "g@gamma.test"),
            "domain_taken",
        ),
        (
            create_args("gamma", "G", None, "ann@acme.test"),
            "email_taken",
        ),
        (
            create_args("acme", "Another", None, "x@x.test"),
            "slug_taken",
        ),
        (
            create_args("gamma", "G", None, "not-an-email"),
            "invalid_email",
        ),
        (vec!["tenant", "undelete", "acme"], "slug_taken"),
        (vec!["tenant", "undelete", "zulu"], "not_in_trash"),
        (vec!["user", "find", "nobody@acme.test"], "unknown_user"),
        (vec!["migrate", "--tenant", "nope"], "unknown_tenant"),
        (
            vec!["backup", "--out", &missing_s, "--tenant", "nope"],
            "unknown_tenant",
        ),
        (vec!["backup", "--out", &bk_s], "backup_exists"),
        (vec!["restore", "--from", &missing_s], "backup_invalid"),
        (
            vec!["restore", "--from", &bk_s, "--tenant", "nope"],
            "not_in_backup",
        ),
    ];
    for (args, code) in &cases {
        ctl.fails(args, code);
        assert_eq!(state(data.path()), before, "{args:?} changed something");
    }
    assert!(!missing.exists());

    // A tampered copy, a tampered manifest, a backup without manifest and one from a newer
    // schema are refused before anything is swapped in.
    let manifest_path = bk.join("manifest.json");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read"))
            .expect("json");
    let copy = manifest["tenants"][0].clone();
    let copy_path = bk.join(copy["file"].as_str().expect("file"));
    let original = std::fs::read(&copy_path).expect("copy");
    let mut tampered = original.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0xff;
    std::fs::write(&copy_path, &tampered).expect("tamper");
    let out = ctl.fails(&["restore", "--from", &bk_s], "backup_invalid");
    assert!(out.stderr.contains("SHA-256"), "{}", out.stderr);
    assert_eq!(state(data.path()), before);
    std::fs::write(&copy_path, &original).expect("untamper");

    let mut m2 = manifest.clone();
    m2["tenants"][0]["sha256"] = json!("0".repeat(64));
    std::fs::write(&manifest_path, serde_json::to_vec(&m2).expect("json")).expect("write");
    ctl.fails(&["restore", "--from", &bk_s], "backup_invalid");
    assert_eq!(state(data.path()), before);

    std::fs::write(&manifest_path, b"{ not json").expect("write");
    ctl.fails(&["restore", "--from", &bk_s], "backup_invalid");
    std::fs::remove_file(&manifest_path).expect("rm");
    let out = ctl.fails(&["restore", "--from", &bk_s], "backup_invalid");
    assert!(out.stderr.contains("manifest.json"), "{}", out.stderr);
    assert_eq!(state(data.path()), before);

    // A copy written by a newer schema, with a consistent checksum.
    {
        let conn = rusqlite::Connection::open(&copy_path).expect("open copy");
        conn.pragma_update(None, "user_version", tenant_schema::TENANT_LATEST + 1)
            .expect("bump");
    }
    let mut m3 = manifest.clone();
    m3["tenants"][0]["sha256"] = json!(sha256_file(&copy_path).expect("sha"));
    m3["tenants"][0]["size"] = json!(std::fs::metadata(&copy_path).expect("meta").len());
    std::fs::write(&manifest_path, serde_json::to_vec(&m3).expect("json")).expect("write");
    let out = ctl.fails(&["restore", "--from", &bk_s], "backup_too_new");
    assert!(out.stderr.contains("newer"), "{}", out.stderr);
    m3["tenants"][0]["schema_version"] = json!(tenant_schema::TENANT_LATEST + 1);
    std::fs::write(&manifest_path, serde_json::to_vec(&m3).expect("json")).expect("write");
    ctl.fails(&["restore", "--from", &bk_s], "backup_too_new");
    assert_eq!(state(data.path()), before);

    // The text output carries the same single line.
    let out = ctl.run(&["tenant", "show", "nope"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1);
    assert!(
        out.stderr.contains("nope") && out.stderr.contains("tenant list"),
        "{}",
        out.stderr
    );
}
