//! The second hardening round, through the real binaries: what an outside review and a
//! multi-node attacker found, each with the attack that must now fail.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use tests::app::{Options, TestApp};
use tests::cluster::{self, Node, SECRET};
use tests::db::{Engine, TestDb};
use tests::http::{self, client, emails_of};
use tests::inproc::forwarded_headers;
use tests::process::Tenantd;
use tests::tls::TlsFront;
use tests::{METRICS_TOKEN, NEW_PASSWORD, PASSWORD, within};

// ---- invitations and look-alike addresses -----------------------------------------------------

#[tokio::test]
async fn an_admin_cannot_invite_into_another_companys_domain_nor_learn_who_holds_an_address() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    // Beta has a user at a mail provider nobody owns.
    let r = beta.admin.invite("kim@freemail.test", "member").await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Act: Acme's admin tries Beta's domain, Beta's user, and look-alikes of both.
    let in_domain = acme.admin.invite("carol@beta.test", "member").await;
    let held = acme.admin.invite("kim@freemail.test", "member").await;
    let full_width = acme
        .admin
        .invite("carol@\u{ff42}\u{ff45}\u{ff54}\u{ff41}.test", "member")
        .await;
    let invisible = acme.admin.invite("carol@beta\u{200b}.test", "member").await;
    let hidden_local = acme.admin.invite("eve\u{200b}@acme.test", "member").await;

    // Assert: one answer for "another company's domain" and "another company's user", naming
    // no company; look-alikes fold to the real domain or are refused as invalid.
    assert_eq!(
        (in_domain.status, in_domain.code().as_str()),
        (409, "email_taken")
    );
    assert_eq!(
        (held.status, held.body.as_str()),
        (409, in_domain.body.as_str())
    );
    assert_eq!(full_width.body, in_domain.body);
    assert!(
        !in_domain.body.to_lowercase().contains("beta"),
        "{}",
        in_domain.body
    );
    assert_eq!(
        (invisible.status, invisible.code().as_str()),
        (400, "invalid_email")
    );
    assert_eq!(
        (hidden_local.status, hidden_local.code().as_str()),
        (400, "invalid_email")
    );
    let users = acme.admin.get("/api/admin/users").await.json();
    assert_eq!(
        emails_of(&users),
        std::slice::from_ref(&acme.admin_email),
        "nothing was written"
    );
    // Signing in with the full-width domain reaches Beta's admin (one address, one account).
    let r = app
        .person()
        .login("admin@\u{ff42}\u{ff45}\u{ff54}\u{ff41}.test", PASSWORD)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tenant"]["slug"], "beta");

    // Doctor reports users that sit in another company's domain (here after the operator gives
    // Acme the provider's domain).
    let ctl = app.ctl();
    assert!(ctl.run(&["domain", "add", "acme", "freemail.test"]).ok());
    let (_, findings) = ctl.doctor(false);
    let foreign: Vec<_> = findings
        .iter()
        .filter(|f| f["kind"] == "foreign_domain_user")
        .collect();
    assert_eq!(foreign.len(), 1, "{findings:#?}");
    assert_eq!(foreign[0]["slug"], "beta");
    assert!(
        foreign[0]["detail"]
            .as_str()
            .unwrap()
            .contains("kim@freemail.test")
    );
}

// ---- lockouts ---------------------------------------------------------------------------------

#[tokio::test]
async fn strangers_cannot_lock_the_owner_out_and_a_reset_lifts_their_lock() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let ann = app.add_user(&acme.admin, "ann@acme.test", "member").await;
    // Ann signs in on her laptop: it gets a device cookie.
    let laptop = app.person();
    let r = laptop.login("ann@acme.test", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.cookie_value("tenantd_device").is_some());

    // A stranger hammers her account until it locks.
    let stranger = app.person();
    let mut locked = false;
    for _ in 0..8 {
        let r = stranger.login("ann@acme.test", "not-anns-password-1").await;
        if r.status == 429 {
            locked = true;
            break;
        }
        assert_eq!(r.code(), "invalid_credentials");
    }
    assert!(locked, "the account should lock for strangers");
    // Even the right password is refused to a client without Ann's device cookie…
    let r = app.person().login("ann@acme.test", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // …but Ann's laptop signs in.
    let r = laptop.login("ann@acme.test", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A device cookie made for another account, or forged, is no way around the lock.
    let forged = app.person_with_cookie(&format!(
        "tenantd_device={}",
        r.cookie_value("tenantd_device")
            .unwrap_or_else(|| "0123456789abcdef0123456789abcdef.00".to_owned())
    ));
    assert_eq!(forged.login("ann@acme.test", PASSWORD).await.status, 429);
    let admins = app.person().login(&acme.admin_email, PASSWORD).await;
    assert_eq!(admins.status, 200, "the admin's own sign-in");
    let theirs = admins
        .cookie_value("tenantd_device")
        .expect("a device cookie");
    let with_admins_device = app.person_with_cookie(&format!("tenantd_device={theirs}"));
    assert_eq!(
        with_admins_device
            .login("ann@acme.test", PASSWORD)
            .await
            .status,
        429
    );

    // A completed reset lifts the strangers' lock: Ann signs in anywhere with the new password.
    let r = app.person().forgot("ann@acme.test").await;
    assert_eq!(r.status, 202);
    let mail = app.wait_for_mail("ann@acme.test", tests::MAIL_WAIT).await;
    let r = app.person().reset(&mail.token, NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.person().login("ann@acme.test", NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ann.person.session_status().await,
        401,
        "the reset ended her sessions"
    );
}

#[tokio::test]
async fn a_blocked_account_is_told_only_after_the_right_password_and_still_counts_as_failing() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let bo = app.add_user(&acme.admin, "bo@acme.test", "member").await;
    assert_eq!(acme.admin.set_blocked(&bo.id, true).await.status, 200);

    let wrong = app
        .person()
        .login("bo@acme.test", "not-bos-password-12")
        .await;
    assert_eq!(
        wrong.code(),
        "invalid_credentials",
        "nothing told without the password"
    );
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(app.person().login("bo@acme.test", PASSWORD).await.code());
    }
    // The right password is told "blocked", and those attempts count: the throttle engages.
    assert_eq!(codes[0], "account_blocked");
    assert!(
        codes.contains(&"too_many_requests".to_owned()),
        "blocked sign-ins must count as failures: {codes:?}"
    );
}

#[tokio::test]
async fn a_restore_can_make_every_user_choose_a_new_password_by_mailed_link() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let ann = app.add_user(&acme.admin, "ann@acme.test", "member").await;
    let ctl = app.ctl();
    let backups = app.data.path().join("backups");
    let backups = backups.to_str().unwrap();
    assert!(
        ctl.run(&["backup", "--out", backups, "--tenant", "acme"])
            .ok()
    );
    // After the backup, Ann changes her password (say the old one leaked).
    let r = ann
        .person
        .post(
            "/api/account/password",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let out = ctl.run(&[
        "--json",
        "restore",
        "--from",
        backups,
        "--tenant",
        "acme",
        "--require-password-reset",
    ]);
    assert!(out.ok(), "{}", out.stderr);

    // The leaked password came back with the backup, but does not sign in: a link is mailed.
    let r = app.person().login("ann@acme.test", PASSWORD).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "password_reset_required")
    );
    assert!(r.cookie_value("tenantd_session").is_none());
    let mail = app.wait_for_mail("ann@acme.test", tests::MAIL_WAIT).await;
    // A wrong password learns nothing of it.
    let r = app
        .person()
        .login("ann@acme.test", "not-the-password-1")
        .await;
    assert_eq!(r.code(), "invalid_credentials");
    // The link sets a new password, which signs in; the admin's too is required.
    let fresh = "a-brand-new-passphrase-9";
    assert_eq!(app.person().reset(&mail.token, fresh).await.status, 200);
    assert_eq!(app.person().login("ann@acme.test", fresh).await.status, 200);
    let r = app.person().login(&acme.admin_email, PASSWORD).await;
    assert_eq!(r.code(), "password_reset_required");
}

// ---- cross-site requests ----------------------------------------------------------------------

#[tokio::test]
async fn cookie_carrying_state_changes_from_other_sites_are_refused_on_the_api() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let session = app
        .person()
        .login(&acme.admin_email, PASSWORD)
        .await
        .cookie_value("tenantd_session")
        .expect("session");
    let as_browser = |headers: &[(&str, &str)]| {
        let mut req = client()
            .post(format!("{}/api/auth/logout-all", app.address))
            .header("cookie", format!("tenantd_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        http::read(req)
    };
    for attack in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.test")],
        vec![("origin", "null")],
    ] {
        let r = as_browser(&attack).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "cross_site_request"),
            "{attack:?}"
        );
    }
    // Nothing happened: the session is alive.
    assert_eq!(acme.admin.session_status().await, 200);
    // A bodiless admin action too.
    let ivy = app.invite(&acme.admin, "ivy@acme.test", "member").await;
    let r = http::read(
        client()
            .post(format!("{}/api/admin/users/{ivy}/invitation", app.address))
            .header("cookie", format!("tenantd_session={session}"))
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_eq!(r.code(), "cross_site_request");
    // Our own pages' requests go through.
    let r = as_browser(&[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(acme.admin.session_status().await, 401);
}

// ---- files, logs, metrics ---------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn secrets_on_disk_are_their_owners_alone_and_links_are_not_logged_outside_development() {
    for dev in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let data_s = data.to_string_lossy().into_owned();
        let mut env = vec![("TENANTD_DATA_DIR", data_s.as_str())];
        if dev {
            env.push(("TENANTD_DEV", "true"));
        }
        let server = Tenantd::start("files", env);
        let ctl = tests::ctl::Ctl::new(&data);
        let created = ctl.create("acme", Some("acme.test"), "ada@acme.test");
        let token = tests::mail::token_of(created["invite_link"].as_str().unwrap());
        let r = server.person().accept_invite(&token, PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server.person().forgot("ada@acme.test").await;
        assert_eq!(r.status, 202);
        let outbox = data.join("outbox");
        within(Duration::from_secs(20), "the reset mail", || {
            let outbox = outbox.clone();
            async move {
                std::fs::read_dir(&outbox)
                    .map(|d| d.count() >= 2)
                    .unwrap_or(false)
            }
        })
        .await;
        let logged_link = server.logs().iter().any(|l| l.contains("/reset?token="));
        assert_eq!(logged_link, dev, "links in the log only in development");
        if dev {
            continue;
        }
        let backups = tmp.path().join("backups");
        assert!(
            ctl.run(&["backup", "--out", backups.to_str().unwrap()])
                .ok()
        );
        // Every file is 0600, every folder 0700.
        let mut seen = 0;
        let mut todo = vec![data.clone(), backups.clone()];
        while let Some(dir) = todo.pop() {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
                    seen += 1;
                }
            }
        }
        assert!(data.join("secret.key").is_file());
        assert!(
            seen >= 6,
            "directory, tenant, key, mail and backup files: {seen}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_token_on_the_public_listener_and_node_endpoints_can_leave_it() {
    // Default: no /metrics on the public listener; with the token configured, only with it.
    let plain = TestApp::spawn().await;
    let r = plain.person().get("/metrics").await;
    assert_eq!(r.status, 404);

    let internal_port = tests::process::free_port();
    let internal = format!("127.0.0.1:{internal_port}");
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("TENANTD_METRICS_TOKEN".into(), METRICS_TOKEN.into()),
            ("TENANTD_INTERNAL_LISTEN".into(), internal.clone()),
            ("TENANTD_NODE_SECRET".into(), SECRET.into()),
        ],
        ..Options::default()
    })
    .await;
    let metrics = |base: &str, token: Option<&str>| {
        let mut req = client().get(format!("{base}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        http::read(req)
    };
    assert_eq!(metrics(&app.address, None).await.status, 401);
    assert_eq!(metrics(&app.address, Some("wrong-token")).await.status, 401);
    let ok = metrics(&app.address, Some(METRICS_TOKEN)).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("tenantd_http_requests_total"));
    // The internal listener serves /metrics without a token, and the node endpoints, which
    // the public listener no longer serves at all.
    let inside = format!("http://{internal}");
    assert_eq!(metrics(&inside, None).await.status, 200);
    let acme = app.company("acme").await;
    let path = format!("/internal/tenants/{}/thaw", acme.tenant_id);
    let public = http::read(client().post(format!("{}{path}", app.address))).await;
    assert_eq!(public.status, 404);
    let unsigned = http::read(client().post(format!("{inside}{path}"))).await;
    assert_eq!(unsigned.status, 403);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_forwarded_one_and_ipv6_counts_by_64() {
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("TENANTD_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
            ("TENANTD_IP_MAX_FAILURES".into(), "3".into()),
        ],
        ..Options::default()
    })
    .await;
    let attempt = |client_ip: &str, n: usize| {
        http::read(
            client()
                .post(format!("{}/api/auth/login", app.address))
                .header("x-forwarded-for", client_ip)
                .json(&json!({"email": format!("nobody{n}@nowhere.test"), "password": "wrong-password-123"})),
        )
    };
    for n in 0..3 {
        assert_eq!(
            attempt("203.0.113.9", n).await.code(),
            "invalid_credentials"
        );
    }
    assert_eq!(attempt("203.0.113.9", 3).await.status, 429);
    // Another client behind the same proxy is not affected.
    assert_eq!(
        attempt("198.51.100.4", 4).await.code(),
        "invalid_credentials"
    );
    // IPv6: a whole /64 is one client.
    for (n, ip) in ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff::3"]
        .iter()
        .enumerate()
    {
        assert_eq!(attempt(ip, 10 + n).await.code(), "invalid_credentials");
    }
    assert_eq!(attempt("2001:db8:7:7::99", 20).await.status, 429);
    assert_eq!(
        attempt("2001:db8:7:8::1", 21).await.code(),
        "invalid_credentials"
    );

    // Without the setting, the header is ignored: every attempt is the peer's own.
    let direct = TestApp::spawn_with(Options {
        env: vec![("TENANTD_IP_MAX_FAILURES".into(), "3".into())],
        ..Options::default()
    })
    .await;
    for n in 0..3 {
        let r = http::read(
            client()
                .post(format!("{}/api/auth/login", direct.address))
                .header("x-forwarded-for", format!("198.51.100.{n}"))
                .json(&json!({"email": format!("x{n}@nowhere.test"), "password": "wrong-password-123"})),
        )
        .await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let r = http::read(
        client()
            .post(format!("{}/api/auth/login", direct.address))
            .header("x-forwarded-for", "198.51.100.200")
            .json(&json!({"email": "y@nowhere.test", "password": "wrong-password-123"})),
    )
    .await;
    assert_eq!(r.status, 429);
}

// ---- several nodes ----------------------------------------------------------------------------

/// Three nodes on one fresh PostgreSQL directory with `env`, or `None` (skipped).
async fn three_nodes(env: &[(&str, &str)]) -> Option<(TestDb, Vec<Node>)> {
    let db = TestDb::new(Engine::Postgres).await?;
    let nodes = ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            let mut all = vec![
                ("TENANTD_DIRECTORY_URL", db.url.as_str()),
                ("TENANTD_NODE_SECRET", SECRET),
            ];
            all.extend_from_slice(env);
            Node::start(id, &all)
        })
        .collect();
    Some((db, nodes))
}

#[tokio::test]
async fn forwarded_requests_cannot_be_replayed_or_given_another_body() {
    let Some((_db, nodes)) = three_nodes(&[]).await else {
        return;
    };
    let (_, _) = cluster::company(&nodes[0], &nodes[0].address, "acme", &["--node", "n1"]).await;
    let login = |body: &serde_json::Value, headers: &[(&'static str, String)]| {
        let mut req = client()
            .post(nodes[0].url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        http::read(req)
    };
    let body = json!({"email": "admin@acme.test", "password": PASSWORD});
    let signed = forwarded_headers(
        SECRET,
        &Method::POST,
        "/api/auth/login",
        body.to_string().as_bytes(),
        "application/json",
        "n2",
        "203.0.113.5",
    );
    // Another body under the same signature: refused, nothing happens.
    let other = json!({"email": "admin@acme.test", "password": "guess-number-one-1"});
    let r = login(&other, &signed).await;
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    // The genuine request goes through once…
    let r = login(&body, &signed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // …and never again, on this node or another.
    let r = login(&body, &signed).await;
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let replay_elsewhere = {
        let mut req = client()
            .post(nodes[1].url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in &signed {
            req = req.header(*k, v);
        }
        http::read(req).await
    };
    assert_eq!(replay_elsewhere.status, 403);
    // A signature of the old kind (no nonce, no body) is refused.
    let r = login(
        &body,
        &[(
            "x-tenantd-forwarded",
            format!("v1 {} n2 203.0.113.5 00", tests::now()),
        )],
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_company_created_on_another_node_works_with_the_invitation_made_where_tenantctl_runs() {
    let Some((_db, nodes)) = three_nodes(&[]).await else {
        return;
    };
    // tenantctl on n1's machine creates a company on n3: n3 writes the file and the admin, and
    // only the invitation's hash goes there; the link printed here works.
    let (tenant, session) =
        cluster::company(&nodes[0], &nodes[2].address, "remote", &["--node", "n3"]).await;
    assert_eq!(tenant["node"], "n3");
    assert_eq!(nodes[2].session(&session).await.status, 200);
}

#[tokio::test]
async fn nodes_reach_each_other_over_https_trusting_the_configured_ca() {
    let Some(db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    // n2's internal listener sits behind TLS, with a certificate of the installation's own CA.
    let internal = format!("127.0.0.1:{}", tests::process::free_port());
    let front = TlsFront::start(internal.clone()).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &front.ca_pem).unwrap();
    let ca_path = ca.path().to_str().unwrap();
    let n2_url = format!("https://127.0.0.1:{}", front.port);
    let common = [
        ("TENANTD_DIRECTORY_URL", db.url.as_str()),
        ("TENANTD_NODE_SECRET", SECRET),
    ];
    let n2 = Node::start(
        "n2",
        &[
            common[0],
            common[1],
            ("TENANTD_INTERNAL_LISTEN", internal.as_str()),
            ("TENANTD_NODE_URL", n2_url.as_str()),
        ],
    );
    let n1 = Node::start("n1", &[common[0], common[1], ("TENANTD_NODE_CA", ca_path)]);
    let n3 = Node::start("n3", &common);
    let (tenant, _) = cluster::company(&n2, &n2.address, "tls", &["--node", "n2"]).await;
    assert_eq!(tenant["node"], "n2");

    // n1 trusts the CA: a sign-in there is forwarded to n2 over https.
    let r = n1.sign_in("admin@tls.test", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // n3 does not: it cannot reach n2, and says so for n2's tenants only.
    let r = n3.sign_in("admin@tls.test", PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (503, "tenant_unavailable"));
}

#[tokio::test]
async fn failures_spread_over_three_nodes_count_together() {
    let Some((_db, nodes)) = three_nodes(&[("TENANTD_LOGIN_MAX_FAILURES", "6")]).await else {
        return;
    };
    // An address nobody has: each node answers it itself (nothing to forward).
    let attempt = |i: usize| {
        http::read(
            client()
                .post(nodes[i % 3].url("/api/auth/login"))
                .json(&json!({"email": "victim@nowhere.test", "password": "guess-1234567890"})),
        )
    };
    for i in 0..6 {
        assert_eq!(
            attempt(i).await.code(),
            "invalid_credentials",
            "attempt {i}"
        );
    }
    // The seventh attempt is refused on every node: they counted the six together.
    for i in 0..3 {
        let r = attempt(i).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (429, "too_many_requests"),
            "node {i}"
        );
    }
}
