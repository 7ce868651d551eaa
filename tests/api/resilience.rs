//! Through the real binaries: an invitation killed at each durable step and repaired (REL-02),
//! operator actions in the tenant's audit log, an SMTP outage (REL-10), and throttling that
//! ignores client-sent forwarding headers (AA-02).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tests::http::{self, emails_of, find, user_path};
use tests::inproc::{EMAIL_CHANGE_STEPS, INVITE_STEPS, SECURITY_STEPS};
use tests::mail::{Mail, outbox_mail};
use tests::process::{Tenantd, free_port};
use tests::{Ctl, PASSWORD, Person, poll};

/// The public URL of every server and `tenantctl` here: links in the outbox start with it.
const PUBLIC_URL: &str = "http://login.tenantd.test";

/// Starts `tenantd` on the data directory `data` (mail to its outbox), with `env`.
fn start(data: &Path, env: &[(&str, &str)]) -> Tenantd {
    let data = data.to_string_lossy();
    let base = [
        ("TENANTD_DATA_DIR", data.as_ref()),
        ("TENANTD_PUBLIC_URL", PUBLIC_URL),
    ];
    Tenantd::start("", base.into_iter().chain(env.iter().copied()))
}

/// `tenantctl` on `data`, with the servers' public URL.
fn ctl(data: &Path) -> Ctl {
    Ctl::new(data).with_env("TENANTD_PUBLIC_URL", PUBLIC_URL)
}

/// Runs `tenantctl` on `data`: whether it succeeded, and everything it printed.
fn tenantctl(data: &Path, args: &[&str]) -> (bool, String) {
    let out = ctl(data).run(args);
    (out.ok(), out.text())
}

/// The newest mail to `to` in the outbox whose link's path starts with `path`; waits for it.
async fn wait_for_mail(data: &Path, to: &str, path: &str) -> Mail {
    poll(
        Duration::from_secs(20),
        &format!("no {path} link to {to}"),
        || async { outbox_mail(data, to, path).ok_or_else(String::new) },
    )
    .await
}

/// Creates a company with `tenantctl` (domain `<slug>.test`, admin `ada@<slug>.test`).
fn create_company(data: &Path, slug: &str) {
    let (domain, admin) = (format!("{slug}.test"), format!("ada@{slug}.test"));
    ctl(data).tenant_create(slug, slug, Some(&domain), &admin, &[]);
}

/// A fresh data directory (in the returned temp dir) holding company `slug`.
fn with_company(slug: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    create_company(&data, slug);
    (dir, data)
}

/// Starts a server (with `env`) and accepts the company's admin invitation: the admin.
async fn admin_of(data: &Path, slug: &str, env: &[(&str, &str)]) -> (Tenantd, Person) {
    let invitation =
        outbox_mail(data, &format!("ada@{slug}.test"), "/invite?token=").expect("admin invitation");
    let server = start(data, env);
    let admin = server.person();
    let r = admin.accept_invite(&invitation.token, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (server, admin)
}

#[tokio::test]
async fn rel_02_an_invitation_killed_at_any_step_is_repaired_and_can_be_redone() {
    for step in INVITE_STEPS {
        // Two companies; the admin of acme invites bob.
        let (_dir, data) = with_company("acme");
        create_company(&data, "globex");
        let (server, admin) = admin_of(&data, "acme", &[("TENANTD_CRASH_AT", step)]).await;
        // The invitation dies with the server at `step`: no answer comes back.
        let r = admin
            .try_post(
                "/api/admin/users",
                json!({"email": "bob@acme.test", "role": "member"}),
            )
            .await;
        assert!(r.is_err(), "{step}: the server should have died, got {r:?}");
        drop(server);

        // Repair, then a clean report.
        let (ok, out) = tenantctl(&data, &["doctor", "--repair", "--grace", "0"]);
        assert!(ok, "{step}: doctor --repair: {out}");
        let (ok, out) = tenantctl(&data, &["doctor", "--grace", "0"]);
        assert!(ok, "{step}: drift left after repair: {out}");
        // Never routed anywhere but acme (or nowhere yet).
        let (_, found) = tenantctl(&data, &["user", "find", "bob@acme.test", "--json"]);
        assert!(!found.contains("globex"), "{step}: {found}");

        // Redo: invite again (or, if the user was kept, re-send), accept, sign in.
        let server = start(&data, &[]);
        let admin = server.person();
        let r = admin.login("ada@acme.test", PASSWORD).await;
        assert_eq!(r.status, 200);
        let r = admin.invite("bob@acme.test", "member").await;
        if r.status == 409 {
            assert_eq!(r.code(), "user_exists", "{step}");
            let list = admin.get("/api/admin/users").await.json();
            let bob = find(&list["users"], "email", "bob@acme.test");
            assert_eq!(bob["status"], "invited", "{step}");
            let r = admin
                .post(
                    &format!("{}/invitation", user_path(bob["id"].as_str().unwrap())),
                    json!({}),
                )
                .await;
            assert_eq!(r.status, 200, "{step}");
        } else {
            assert_eq!(r.status, 201, "{step}: {}", r.body);
        }
        let link = wait_for_mail(&data, "bob@acme.test", "/invite?token=").await;
        let r = server.person().accept_invite(&link.token, PASSWORD).await;
        assert_eq!(r.status, 200, "{step}: {}", r.body);
        assert_eq!(r.json()["tenant"]["slug"], "acme", "{step}");
        let r = server.person().login("bob@acme.test", PASSWORD).await;
        assert_eq!(
            (r.status, r.json()["tenant"]["slug"].clone()),
            (200, json!("acme")),
            "{step}"
        );
    }
}

/// An email change killed at each durable step of its confirmation: doctor repairs the
/// directory, the address ends up changed (at once, or by using the link again), and neither
/// address is ever routed to another company.
#[tokio::test]
async fn an_email_change_killed_at_any_step_is_repaired_and_completes() {
    for step in EMAIL_CHANGE_STEPS {
        let (_dir, data) = with_company("acme");
        create_company(&data, "globex");
        let (server, admin) = admin_of(&data, "acme", &[("TENANTD_CRASH_AT", step)]).await;
        let r = admin
            .patch("/api/account", json!({"email": "ada.new@acme.test"}))
            .await;
        assert_eq!(r.status, 200, "{step}: {}", r.body);
        let link = wait_for_mail(&data, "ada.new@acme.test", "/account/email/confirm?token=").await;
        // The confirmation dies with the server at `step`.
        let r = server
            .person()
            .try_post("/api/account/email/confirm", json!({"token": link.token}))
            .await;
        assert!(r.is_err(), "{step}: the server should have died, got {r:?}");
        drop(server);

        let (ok, out) = tenantctl(&data, &["doctor", "--repair", "--grace", "0"]);
        assert!(ok, "{step}: doctor --repair: {out}");
        let (ok, out) = tenantctl(&data, &["doctor", "--grace", "0"]);
        assert!(ok, "{step}: drift left after repair: {out}");
        for address in ["ada@acme.test", "ada.new@acme.test"] {
            let (_, found) = tenantctl(&data, &["user", "find", address, "--json"]);
            assert!(!found.contains("globex"), "{step}: {found}");
        }

        // Finish: before the tenant write the link still works; after it, it is used up and
        // the change has happened.
        let server = start(&data, &[]);
        let r = server
            .person()
            .post("/api/account/email/confirm", json!({"token": link.token}))
            .await;
        if *step == "email.reserved" {
            assert_eq!(r.status, 200, "{step}: {}", r.body);
        } else {
            assert_eq!(r.code(), "invalid_token", "{step}: {}", r.body);
        }
        let r = server.person().login("ada.new@acme.test", PASSWORD).await;
        assert_eq!(
            (r.status, r.json()["tenant"]["slug"].clone()),
            (200, json!("acme")),
            "{step}: {}",
            r.body
        );
        let r = server.person().login("ada@acme.test", PASSWORD).await;
        assert_eq!(r.status, 401, "{step}: the old address still signs in");
        let (ok, out) = tenantctl(&data, &["doctor", "--grace", "0"]);
        assert!(ok, "{step}: drift after finishing: {out}");
        let (ok, found) = tenantctl(&data, &["user", "find", "ada@acme.test", "--json"]);
        assert!(!ok, "{step}: the old address is still indexed: {found}");
    }
}

/// Operator actions on a tenant show in that tenant's audit log, for its admins.
#[tokio::test]
async fn operator_actions_are_in_the_tenants_audit_log() {
    let (_dir, data) = with_company("opsco");
    let (_server, admin) = admin_of(&data, "opsco", &[]).await;
    for args in [
        &["tenant", "suspend", "opsco"][..],
        &["tenant", "resume", "opsco"],
        &["domain", "add", "opsco", "ops.example"],
        &["domain", "remove", "opsco", "ops.example"],
    ] {
        let (ok, out) = tenantctl(&data, args);
        assert!(ok, "{args:?}: {out}");
    }
    // Resuming ended nothing: sign in again in case the suspension was seen, then read the log.
    assert_eq!(admin.login("ada@opsco.test", PASSWORD).await.status, 200);
    let log = admin.get("/api/admin/audit?limit=50").await.json();
    let ops: Vec<(String, String)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == "operator")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["details"]["domain"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("tenant.created", ""),
        ("tenant.suspended", ""),
        ("tenant.resumed", ""),
        ("domain.added", "ops.example"),
        ("domain.removed", "ops.example"),
    ] {
        assert!(
            ops.iter().any(|(a, d)| a == expected.0 && d == expected.1),
            "missing {expected:?} in {ops:?}"
        );
    }
}

/// REL-10 / ERR-06: with the mail server down, invitations and reset requests still get their
/// normal answers (mail is retried in the background), never a 5xx.
#[tokio::test]
async fn rel_10_an_smtp_outage_never_fails_the_api() {
    let (_dir, data) = with_company("mailless");
    // A port nothing listens on.
    let smtp = format!("smtp://127.0.0.1:{}", free_port());
    let (server, admin) = admin_of(&data, "mailless", &[("TENANTD_SMTP_URL", &smtp)]).await;
    let r = admin.invite("bob@mailless.test", "member").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = server.person().forgot("ada@mailless.test").await;
    assert_eq!(r.status, 202);
    let list = admin.get("/api/admin/users").await;
    assert_eq!(list.status, 200);
}

/// AA-02: the address a throttle counts is the peer's; a client-sent X-Forwarded-For changes
/// nothing, so rotating it does not escape the per-account back-off.
#[tokio::test]
async fn aa_02_rotating_x_forwarded_for_does_not_escape_throttling() {
    let (_dir, data) = with_company("xffco");
    let server = start(&data, &[]);
    let p = server.person();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = http::read(
            p.request(Method::POST, "/api/auth/login")
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .header("x-real-ip", format!("198.51.100.{i}"))
                .json(&json!({"email": "ada@xffco.test", "password": "wrong-password-123"})),
        )
        .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
}

/// REL-03: a server killed in the middle of a reset or a block leaves no half change: the
/// password, the sessions and the link are as before, and the action can be done again.
#[tokio::test]
async fn rel_03_security_writes_are_all_or_nothing_under_a_crash() {
    for step in SECURITY_STEPS {
        let (_dir, data) = with_company("secco");
        let (server, admin) = admin_of(&data, "secco", &[("TENANTD_CRASH_AT", step)]).await;
        let r = admin.invite("bob@secco.test", "member").await;
        assert_eq!(r.status, 201, "{}", r.body);
        let bob_id = r.json()["id"].as_str().expect("id").to_owned();
        let invitation = wait_for_mail(&data, "bob@secco.test", "/invite?token=").await;
        let bob = server.person();
        let r = bob.accept_invite(&invitation.token, PASSWORD).await;
        assert_eq!(r.status, 200);

        // The action that dies half-way.
        let reset_token = if *step == "reset.password_set" {
            let r = server.person().forgot("bob@secco.test").await;
            assert_eq!(r.status, 202);
            let token = wait_for_mail(&data, "bob@secco.test", "/reset?token=")
                .await
                .token;
            let r = server
                .person()
                .try_post(
                    "/api/auth/reset",
                    json!({"token": token, "password": "fresh-granite-lantern-8"}),
                )
                .await;
            assert!(r.is_err(), "{step}: the server should have died");
            Some(token)
        } else {
            let r = admin
                .try_send(
                    Method::PATCH,
                    &user_path(&bob_id),
                    Some(json!({"blocked": true})),
                )
                .await;
            assert!(r.is_err(), "{step}: the server should have died");
            None
        };
        drop(server);

        // Nothing of it happened: Bob's session lives, his old password works.
        let server = start(&data, &[]);
        let bob = bob.at(&server.address);
        assert_eq!(
            bob.session_status().await,
            200,
            "{step}: bob's session survived the crash"
        );
        let r = server.person().login("bob@secco.test", PASSWORD).await;
        assert_eq!(r.status, 200, "{step}: the old password still works");

        // Done again, it is all there.
        match reset_token {
            Some(token) => {
                let r = server
                    .person()
                    .reset(&token, "fresh-granite-lantern-8")
                    .await;
                assert_eq!(
                    r.status, 200,
                    "{step}: the unused link still works: {}",
                    r.body
                );
                let r = server.person().login("bob@secco.test", PASSWORD).await;
                assert_eq!(r.status, 401);
            }
            None => {
                let admin = server.person();
                let r = admin.login("ada@secco.test", PASSWORD).await;
                assert_eq!(r.status, 200);
                let r = admin.set_blocked(&bob_id, true).await;
                assert_eq!(r.status, 200);
            }
        }
        assert_eq!(
            bob.session_status().await,
            401,
            "{step}: done again, the session ends"
        );
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Self { path, _dir: dir }
    }

    /// Writes a filler file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        for chunk in [1 << 16, 4096, 512] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).and_then(|()| f.flush()).is_ok() {}
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// REL-05: on a full disk, reads and sessions keep working, writes are refused whole with a
/// generic 503 `storage_full` (never a 500), and once space is back everything is consistent
/// and works.
#[tokio::test]
async fn rel_05_a_full_disk_refuses_writes_whole_and_recovers() {
    let disk = SmallDisk::mount(24);
    let data = disk.path.join("data");
    create_company(&data, "fullco");
    let (server, admin) = admin_of(&data, "fullco", &[]).await;

    let filler = disk.fill();
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for i in 0..60 {
        let email = format!("p{i}@fullco.test");
        let r = admin.invite(&email, "member").await;
        match r.status {
            201 => acknowledged.push(email),
            503 => {
                assert_eq!(r.code(), "storage_full", "{}", r.body);
                refused.push(email);
            }
            other => panic!("invitation on a full disk answered {other}: {}", r.body),
        }
        // Reads keep working throughout.
        assert_eq!(admin.session_status().await, 200);
    }
    eprintln!(
        "full disk: {} invitations acknowledged, {} refused",
        acknowledged.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "the disk never filled up: {} invitations went through",
        acknowledged.len()
    );

    // Signing in writes a session: it works or is refused the same clean way.
    let r = server.person().login("ada@fullco.test", PASSWORD).await;
    assert!(
        r.status == 200 || (r.status == 503 && r.code() == "storage_full"),
        "{} {}",
        r.status,
        r.body
    );

    // Space is back: the same server takes writes again.
    std::fs::remove_file(&filler).expect("free space");
    let r = admin.invite("after@fullco.test", "member").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let emails = emails_of(&admin.get("/api/admin/users?limit=200").await.json());
    for e in &acknowledged {
        assert!(emails.contains(e), "acknowledged {e} lost");
    }
    for e in &refused {
        assert!(!emails.contains(e), "refused {e} half-written");
    }
    drop(server);
    let (ok, out) = tenantctl(&data, &["doctor", "--grace", "0"]);
    assert!(ok, "drift after the disk filled up: {out}");
}

/// SESS-06 through the real binary (the manual-clock tests in security.rs cover the exact
/// boundaries): with a 2-second absolute lifetime, a session in steady use still ends.
#[tokio::test]
async fn sess_06_the_binary_ends_sessions_at_their_absolute_lifetime() {
    let (_dir, data) = with_company("lifeco");
    let (_server, admin) =
        admin_of(&data, "lifeco", &[("TENANTD_SESSION_ABSOLUTE_SECS", "2")]).await;
    let started = Instant::now();
    assert_eq!(admin.session_status().await, 200);
    // Keep using it; it must end between 2 s and a generous deadline.
    loop {
        let status = admin.session_status().await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the session never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "ended too early"
    );
}
