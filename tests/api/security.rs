//! Abuse resistance, sessions, audit, headers and input limits (in-process, with a manual
//! clock and exact attempt counts).

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use tests::inproc::InProc;
use tests::{PASSWORD, Reply, join_all};

// ---- throttling ----

#[tokio::test]
async fn aa_04_fifty_parallel_failures_count_as_fifty() {
    let t = InProc::new().await;
    t.company("acme").await;
    let attempts = (0..50).map(|_| t.login("admin@acme.test", "wrong-password-123"));
    let answers = join_all(attempts).await;
    let unauthorized = answers.iter().filter(|a| a.status == 401).count();
    let throttled: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(
        unauthorized, 5,
        "only the allowed attempts reach the password check"
    );
    assert_eq!(throttled.len(), 45);
    for a in throttled {
        assert_eq!(a.code(), "too_many_requests");
        let retry: u64 = a.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1);
    }
    // Even the right password waits out the back-off.
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 429);
    t.clock.advance(31);
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn aa_03_unknown_email_is_throttled_exactly_like_a_known_one() {
    let t = InProc::new().await;
    t.company("acme").await;
    for email in ["admin@acme.test", "ghost@acme.test"] {
        let mut seen = Vec::new();
        for _ in 0..7 {
            let a = t.login(email, "wrong-password-123").await;
            seen.push((
                a.status,
                a.body.clone(),
                a.headers.get(header::RETRY_AFTER).cloned(),
            ));
        }
        let statuses: Vec<_> = seen.iter().map(|s| s.0).collect();
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429], "{email}");
    }
}

#[tokio::test]
async fn aa_03_a_throttled_account_can_still_reset_its_password() {
    let t = InProc::new().await;
    t.company("acme").await;
    for _ in 0..6 {
        t.login("admin@acme.test", "wrong-password-123").await;
    }
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 429);
    let a = t.forgot("admin@acme.test").await;
    assert_eq!(a.status, 202);
    let link = t.last_link_to("admin@acme.test").await;
    assert!(
        link.starts_with("http://tenantd.test/reset?token="),
        "{link}"
    );
}

#[tokio::test]
async fn aa_01_many_addresses_share_a_generous_window() {
    let t = InProc::with(|_, s| s.ip_max_failures = 20).await;
    t.company("acme").await;
    // Twenty different people fail once each from the same (empty, in-process) address...
    for i in 0..20 {
        assert_eq!(
            t.login(&format!("p{i}@acme.test"), "wrong-password-123")
                .await
                .status,
            401
        );
    }
    // ...then the address waits, whoever signs in.
    let a = t.login("admin@acme.test", PASSWORD).await;
    assert_eq!(a.status, 429);
    t.clock.advance(601);
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn aa_06_token_guessing_is_throttled_per_address() {
    let t = InProc::with(|_, s| s.ip_max_failures = 10).await;
    let (tenant, _) = t.company("acme").await;
    for i in 0..10 {
        let token = format!("{tenant}.{:0>43}", i);
        let a = t
            .post(
                "/api/auth/reset",
                None,
                json!({"token": token, "password": "whatever-long-enough"}),
            )
            .await;
        assert_eq!(a.code(), "invalid_token");
    }
    let a = t
        .post(
            "/api/auth/accept-invite",
            None,
            json!({"token": "x", "password": "whatever-long-enough"}),
        )
        .await;
    assert_eq!(a.status, 429);
}

#[tokio::test]
async fn aa_05_forgot_always_answers_202_and_mails_at_most_three_times() {
    let t = InProc::new().await;
    t.company("acme").await;
    for email in ["admin@acme.test", "ghost@acme.test"] {
        let statuses: Vec<u16> = join_all((0..6).map(|_| t.forgot(email)))
            .await
            .iter()
            .map(|a| a.status)
            .collect();
        assert_eq!(statuses, [202; 6], "{email}");
    }
    // Mail goes out in the background: wait for the allowed three, then check no more came.
    t.last_link("admin@acme.test", "/reset").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.mail_count("admin@acme.test") < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(t.mail_count("admin@acme.test"), 3);
    assert_eq!(t.mail_count("ghost@acme.test"), 0);
}

#[tokio::test]
async fn aa_05_a_forgot_flood_from_one_address_gets_429() {
    let t = InProc::with(|_, s| s.ip_max_failures = 10).await;
    for i in 0..10 {
        let a = t
            .post(
                "/api/auth/forgot",
                None,
                json!({"email": format!("p{i}@acme.test")}),
            )
            .await;
        assert_eq!(a.status, 202);
    }
    let a = t.forgot("p99@acme.test").await;
    assert_eq!((a.status, a.code().as_str()), (429, "too_many_requests"));
    assert!(a.headers.contains_key(header::RETRY_AFTER));
}

// ---- sessions ----

#[tokio::test]
async fn sess_06_idle_timeout_is_enforced_on_the_server() {
    let t = InProc::with(|_, s| s.session_idle_secs = 600).await;
    let (_, admin) = t.company("acme").await;
    t.clock.advance(599);
    assert_eq!(t.session_status(&admin).await, 200);
    // The check above counted as activity.
    t.clock.advance(599);
    assert_eq!(t.session_status(&admin).await, 200);
    t.clock.advance(601);
    let a = t.get("/api/session", Some(&admin)).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn sess_06_absolute_lifetime_ends_even_an_active_session() {
    let t = InProc::with(|_, s| {
        s.session_idle_secs = 600;
        s.session_absolute_secs = 3600;
    })
    .await;
    let (_, admin) = t.company("acme").await;
    for _ in 0..7 {
        t.clock.advance(500);
        assert_eq!(t.session_status(&admin).await, 200);
    }
    t.clock.advance(101);
    assert_eq!(t.session_status(&admin).await, 401);
}

#[tokio::test]
async fn sess_02_login_rotates_and_privilege_change_ends_sessions() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let (bob_id, bob1) = t.member(&admin, "bob@acme.test").await;
    let bob2 = t.login("bob@acme.test", PASSWORD).await.session().unwrap();
    assert_ne!(bob1, bob2, "a new session id at every login");
    let a = t
        .patch(
            &format!("/api/admin/users/{bob_id}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(a.status, 200);
    for c in [&bob1, &bob2] {
        assert_eq!(t.session_status(c).await, 401);
    }
    // Signing in again gives the new role.
    let bob3 = t.login("bob@acme.test", PASSWORD).await;
    assert_eq!(bob3.json()["user"]["role"], "admin");
}

#[tokio::test]
async fn sess_10_users_list_and_end_their_sessions_and_admins_end_a_users() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let (bob_id, bob1) = t.member(&admin, "bob@acme.test").await;
    let bob2 = t.login("bob@acme.test", PASSWORD).await.session().unwrap();
    let list = t.get("/api/sessions", Some(&bob2)).await;
    let sessions = list.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    // End the other one by its id.
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        t.delete(&format!("/api/sessions/{other}"), Some(&bob2))
            .await
            .status,
        204
    );
    assert_eq!(t.session_status(&bob1).await, 401);
    assert_eq!(t.session_status(&bob2).await, 200);
    // Someone else's session id is not found.
    let admin_sessions = t.get("/api/sessions", Some(&admin)).await;
    let admin_sid = admin_sessions.json()["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        t.delete(&format!("/api/sessions/{admin_sid}"), Some(&bob2))
            .await
            .status,
        404
    );
    // The admin sees and ends Bob's sessions.
    let seen = t
        .get(&format!("/api/admin/users/{bob_id}/sessions"), Some(&admin))
        .await;
    assert_eq!(seen.json()["sessions"].as_array().unwrap().len(), 1);
    let ended = t
        .delete(&format!("/api/admin/users/{bob_id}/sessions"), Some(&admin))
        .await;
    assert_eq!(ended.json()["sessions_ended"], 1);
    assert_eq!(t.session_status(&bob2).await, 401);
    // Sign out everywhere.
    let a1 = t.login("bob@acme.test", PASSWORD).await.session().unwrap();
    let a2 = t.login("bob@acme.test", PASSWORD).await.session().unwrap();
    let out = t
        .call(Method::POST, "/api/auth/logout-all", Some(&a1), None)
        .await;
    assert_eq!(out.json()["sessions_ended"], 2);
    for c in [&a1, &a2] {
        assert_eq!(t.session_status(c).await, 401);
    }
}

#[tokio::test]
async fn auth_06_changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let other = t
        .login("admin@acme.test", PASSWORD)
        .await
        .session()
        .unwrap();
    let change = |current: &str, new: &str| {
        t.post(
            "/api/account/password",
            Some(&admin),
            json!({"current_password": current, "new_password": new}),
        )
    };
    assert_eq!(
        change("not-the-password", "a-brand-new-passphrase")
            .await
            .code(),
        "wrong_password"
    );
    assert_eq!(change(PASSWORD, "short").await.code(), "password_too_short");
    assert_eq!(change(PASSWORD, "a-brand-new-passphrase").await.status, 200);
    assert_eq!(t.session_status(&admin).await, 200);
    assert_eq!(t.session_status(&other).await, 401);
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 401);
    assert_eq!(
        t.login("admin@acme.test", "a-brand-new-passphrase")
            .await
            .status,
        200
    );
}

// ---- audit ----

#[tokio::test]
async fn audit_records_every_event_and_stays_in_its_tenant() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let (_, other_admin) = t.company("globex").await;
    t.login("admin@acme.test", "wrong-password-123").await;
    assert_eq!(t.login("admin@acme.test", PASSWORD).await.status, 200);
    let (bob_id, _) = t.member(&admin, "bob@acme.test").await;
    let patch = |body| t.patch(&format!("/api/admin/users/{bob_id}"), Some(&admin), body);
    patch(json!({"role": "admin"})).await;
    patch(json!({"blocked": true})).await;
    patch(json!({"blocked": false})).await;
    t.forgot("bob@acme.test").await;
    let link = t.last_link("bob@acme.test", "/reset").await;
    let token = link.split("token=").nth(1).unwrap();
    let reset = t
        .post(
            "/api/auth/reset",
            None,
            json!({"token": token, "password": "a-brand-new-passphrase"}),
        )
        .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    let carol = t
        .post(
            "/api/admin/users",
            Some(&admin),
            json!({"email": "carol@acme.test", "role": "member"}),
        )
        .await;
    let carol_id = carol.json()["id"].as_str().unwrap().to_owned();
    t.delete(
        &format!("/api/admin/users/{carol_id}/invitation"),
        Some(&admin),
    )
    .await;
    t.delete(&format!("/api/admin/users/{carol_id}"), Some(&admin))
        .await;

    let log = t
        .get("/api/admin/audit?limit=200", Some(&admin))
        .await
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "tenant.created",
        "invitation.accepted",
        "login.failed",
        "invitation.sent",
        "login.succeeded",
        "user.role_changed",
        "user.blocked",
        "user.unblocked",
        "password.reset_requested",
        "password.reset",
        "invitation.revoked",
        "user.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "missing {expected} in {actions:?}"
        );
    }
    // Filters.
    let by_action = t
        .get("/api/admin/audit?action=user.blocked", Some(&admin))
        .await
        .json();
    let entries = by_action["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target"], bob_id.as_str());
    let by_user = t
        .get(
            &format!("/api/admin/audit?user={bob_id}&limit=200"),
            Some(&admin),
        )
        .await;
    assert!(
        by_user.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == bob_id.as_str() || e["target"] == bob_id.as_str())
    );
    // Paging: two at a time, newest first, no overlap.
    let p1 = t.get("/api/admin/audit?limit=2", Some(&admin)).await;
    let next = p1.json()["next_before"].as_i64().unwrap();
    let p2 = t
        .get(
            &format!("/api/admin/audit?limit=2&before={next}"),
            Some(&admin),
        )
        .await;
    let ids = |p: &Reply| {
        p.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b) = (ids(&p1), ids(&p2));
    assert!(a[0] > a[1] && a[1] > b[0] && b[0] > b[1]);
    // The other company's admin sees none of it, and a member sees nothing at all.
    let other = t
        .get("/api/admin/audit?limit=200", Some(&other_admin))
        .await
        .json();
    let other_entries = other["entries"].as_array().unwrap();
    assert!(other_entries.iter().all(|e| e["target"] != bob_id.as_str()));
    assert!(other_entries.len() <= 3, "{other_entries:?}");
    let member = t
        .login("bob@acme.test", "a-brand-new-passphrase")
        .await
        .session()
        .unwrap();
    // Bob was made admin above; demote first to check a member's view.
    t.patch(
        &format!("/api/admin/users/{bob_id}"),
        Some(&admin),
        json!({"role": "member"}),
    )
    .await;
    let member = t
        .login("bob@acme.test", "a-brand-new-passphrase")
        .await
        .session()
        .unwrap_or(member);
    assert_eq!(t.get("/api/admin/audit", Some(&member)).await.status, 403);
}

// ---- headers ----

#[tokio::test]
async fn hdr_01_security_headers_on_every_answer() {
    let t = InProc::new().await;
    for path in [
        "/api/session",
        "/login",
        "/healthz",
        "/api/nope",
        "/reset?token=x",
    ] {
        let a = t.get(path, None).await;
        let h = &a.headers;
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        // Scripts only from our own files (the passkey helper), never inline or elsewhere.
        assert!(
            csp.contains("script-src 'self';") && csp.matches("script-src").count() == 1,
            "scripts only from 'self': {csp}"
        );
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(h.get("x-request-id").is_some());
        assert!(
            h.get(header::STRICT_TRANSPORT_SECURITY).is_none(),
            "no HSTS over http"
        );
    }
    let https =
        InProc::with(|c, _| c.public_url = "https://login.vendor.test".parse().unwrap()).await;
    let a = https.get("/api/session", None).await;
    assert!(
        a.headers[header::STRICT_TRANSPORT_SECURITY]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
}

#[tokio::test]
async fn sess_03_https_cookies_are_secure_and_host_prefixed() {
    let t = InProc::with(|c, _| c.public_url = "https://login.vendor.test".parse().unwrap()).await;
    t.company("acme").await;
    let a = t.login("admin@acme.test", PASSWORD).await;
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("__Host-tenantd_session="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Domain="));
}

// ---- input limits ----

#[tokio::test]
async fn inp_03_bad_input_gets_a_stable_code_never_a_500() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let raw = |method: Method, path: &str, ct: Option<&str>, body: &[u8]| {
        InProc::request(method, path, Some(&admin), ct, body.to_vec())
    };
    let json = |path: &str, body: &[u8]| raw(Method::POST, path, Some("application/json"), body);
    let get = |path: &str| raw(Method::GET, path, None, b"");
    let (long_email, long_name) = (
        format!(
            r#"{{"email":"{}@acme.test","role":"member"}}"#,
            "a".repeat(2000)
        ),
        format!(
            r#"{{"email":"x@acme.test","role":"member","name":"{}"}}"#,
            "n".repeat(101)
        ),
    );
    let login = "/api/auth/login";
    let users = "/api/admin/users";
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (
            raw(
                Method::POST,
                login,
                None,
                br#"{"email":"a","password":"b"}"#,
            ),
            415,
            "unsupported_media_type",
        ),
        (
            raw(Method::POST, login, Some("text/plain"), br#"{}"#),
            415,
            "unsupported_media_type",
        ),
        (json(login, b"{not json"), 400, "invalid_json"),
        (
            json(login, br#"{"email":1,"password":"x"}"#),
            422,
            "invalid_body",
        ),
        (json(login, br#"{"email":"a@b.c"}"#), 422, "invalid_body"),
        (
            json(
                users,
                br#"{"email":"x@acme.test","role":"member","role":"admin"}"#,
            ),
            422,
            "invalid_body",
        ),
        (
            json(
                users,
                br#"{"email":"x@acme.test","role":"member","status":"active"}"#,
            ),
            422,
            "invalid_body",
        ),
        (
            json(users, br#"{"email":"x@acme.test","role":"owner"}"#),
            400,
            "invalid_role",
        ),
        (
            json(
                users,
                br#"{"email":"x@acme.test\r\nBcc: evil@x.test","role":"member"}"#,
            ),
            400,
            "invalid_email",
        ),
        (json(users, long_email.as_bytes()), 400, "field_too_long"),
        (json(users, long_name.as_bytes()), 400, "invalid_name"),
        (json(login, &[b' '; 70 * 1024]), 413, "payload_too_large"),
        (get("/api/admin/users?limit=abc"), 400, "invalid_query"),
        (get("/api/admin/audit?before=x"), 400, "invalid_query"),
        (
            raw(Method::PUT, users, None, b""),
            405,
            "method_not_allowed",
        ),
        (get("/api/does-not-exist"), 404, "not_found"),
        (
            json(
                "/api/auth/reset",
                br#"{"token":"../../etc/passwd","password":"x"}"#,
            ),
            400,
            "invalid_token",
        ),
    ];
    for (i, a) in answers_with_codes(&t, "", cases).await.iter().enumerate() {
        assert!(
            a.json()["message"].as_str().is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
    }
}

/// Sends each request and asserts its status and error code (`what` and the case's index name
/// it in messages); returns the answers.
async fn answers_with_codes(
    t: &InProc,
    what: &str,
    cases: Vec<(Request<Body>, u16, &str)>,
) -> Vec<Reply> {
    let mut answers = Vec::new();
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let a = t.send(req).await;
        assert_eq!(
            (a.status, a.code().as_str()),
            (status, code),
            "{what} case {i}: {:?}",
            a.body.as_str()
        );
        answers.push(a);
    }
    answers
}

#[tokio::test]
async fn hash_flood_is_refused_quickly_while_session_checks_go_on() {
    let t = InProc::with(|_, s| {
        s.hash_concurrency = Some(1);
        s.hash_queue = 2;
        s.login_max_failures = 1000;
        s.ip_max_failures = 100_000;
    })
    .await;
    let (_, admin) = t.company("acme").await;
    let flood =
        join_all((0..40).map(|i| t.login(&format!("u{i}@acme.test"), "wrong-password-123")));
    let check = async {
        let mut ok = 0;
        for _ in 0..20 {
            if t.session_status(&admin).await == 200 {
                ok += 1;
            }
        }
        ok
    };
    let (answers, ok) = tokio::join!(flood, check);
    assert_eq!(ok, 20, "session checks are served during the flood");
    let busy = answers.iter().filter(|a| a.status == 503).count();
    assert!(busy >= 30, "most of the flood is refused: {busy}");
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 503)
            .all(|a| a.code() == "busy" && a.headers.contains_key(header::RETRY_AFTER))
    );
}

/// Every endpoint with a JSON body refuses a missing content type, broken JSON, the wrong shape
/// and an oversize body, each with its stable code; every endpoint with an id refuses a huge id
/// without a 5xx.
#[tokio::test]
async fn inp_03_every_json_endpoint_refuses_malformed_and_oversize_bodies() {
    let t = InProc::new().await;
    let (_, admin) = t.company("acme").await;
    let json_ops = [
        (Method::POST, "/api/auth/login"),
        (Method::POST, "/api/auth/forgot"),
        (Method::POST, "/api/auth/reset"),
        (Method::POST, "/api/auth/accept-invite"),
        (Method::POST, "/api/account/password"),
        (Method::POST, "/api/admin/users"),
        (Method::PATCH, "/api/admin/users/some-id"),
    ];
    for (method, path) in json_ops {
        let req = |ct: Option<&str>, body: Vec<u8>| {
            InProc::request(method.clone(), path, Some(&admin), ct, body)
        };
        let cases = vec![
            (req(None, b"{}".to_vec()), 415, "unsupported_media_type"),
            (
                req(Some("application/json"), b"{not json".to_vec()),
                400,
                "invalid_json",
            ),
            (
                req(Some("application/json"), b"[1,2,3]".to_vec()),
                422,
                "invalid_body",
            ),
            (
                req(Some("application/json"), b"{\"unexpected\":true}".to_vec()),
                422,
                "invalid_body",
            ),
            (
                req(Some("application/json"), vec![b'{'; 80 * 1024]),
                413,
                "payload_too_large",
            ),
        ];
        answers_with_codes(&t, &format!("{method} {path}"), cases).await;
    }
    let huge = "x".repeat(8 * 1024);
    for path in [
        format!("/api/admin/users/{huge}"),
        format!("/api/admin/users/{huge}/invitation"),
        format!("/api/admin/users/{huge}/sessions"),
        format!("/api/sessions/{huge}"),
    ] {
        for m in [Method::GET, Method::DELETE] {
            let a = t.call(m.clone(), &path, Some(&admin), None).await;
            assert!(
                (400..500).contains(&a.status),
                "{m} {}: {}",
                &path[..30],
                a.status
            );
            assert!(!a.code().is_empty());
        }
    }
}

/// INP-01: SQL is parameterised. SQL text built with `format!` may only splice in constants
/// (column lists, a configured number); this ratchet lists every such place, so a new one has
/// to be reviewed and added here.
#[test]
fn inp_01_sql_is_never_built_from_input() {
    const REVIEWED: &[(&str, usize)] = &[
        // TENANT_COLUMNS, a constant column list.
        ("control-plane/src/directory/clients.rs", 2),
        // KEY_COLUMNS, a constant column list.
        ("control-plane/src/directory/operator_api.rs", 2),
        ("control-plane/src/directory/tenants.rs", 3),
        // cache_size from configuration (a number).
        ("tenant-runtime/src/router/connection.rs", 1),
        // email_changes::LIVE, a constant condition.
        ("tenant-runtime/src/store/email_changes.rs", 2),
        // users::COLUMNS_OF_U, a constant column list.
        ("tenant-runtime/src/store/oidc.rs", 1),
        // The people list: filter clauses, sort expressions and directions chosen from
        // constants by enum; every value from the request is a bound parameter.
        ("tenant-runtime/src/store/people.rs", 2),
        ("tenant-runtime/src/store/sessions.rs", 1),
        // COLUMNS, a constant column list.
        ("tenant-runtime/src/store/users.rs", 3),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found: Vec<(String, usize)> = Vec::new();
    let mut stack = vec![
        root.join("control-plane/src"),
        root.join("tenant-runtime/src"),
        root.join("tenant-schema/src"),
        root.join("tools/src"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let src = std::fs::read_to_string(&path).expect("read source");
            // Only production code: stop at the unit tests of the file.
            let src = src.split("#[cfg(test)]").next().unwrap_or("");
            let mut n = 0;
            for piece in src.split("format!(").skip(1) {
                let lit = piece.trim_start();
                let Some(lit) = lit.strip_prefix('"') else {
                    continue;
                };
                let end = [lit.find("\","), lit.find("\")")]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(lit.len());
                // Our SQL keywords are upper case; prose is not.
                let text = &lit[..end];
                if [
                    "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "PRAGMA ", "VACUUM ",
                ]
                .iter()
                .any(|k| text.contains(k))
                {
                    n += 1;
                }
            }
            if n > 0 {
                let rel = path
                    .strip_prefix(&root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                found.push((rel, n));
            }
        }
    }
    found.sort();
    let reviewed: Vec<(String, usize)> = REVIEWED
        .iter()
        .map(|(f, n)| ((*f).to_owned(), *n))
        .collect();
    assert_eq!(
        found, reviewed,
        "SQL built with format!: review each new place, then list it here"
    );
}

/// ERR-01 / REL-06: a tenant whose file went bad answers a generic 503 that names its request
/// id (as in the log), and every other tenant keeps working.
#[tokio::test]
async fn err_01_a_broken_tenant_gets_a_generic_503_with_its_request_id_and_others_go_on() {
    let t = InProc::new().await;
    let (acme_id, acme_admin) = t.company("acme").await;
    let (_, globex_admin) = t.company("globex").await;
    let id = tenant_runtime::TenantId::parse(&acme_id).unwrap();
    t.state.tenants.close_blocking(&id);
    let path = t.state.tenants.path_of(&id);
    std::fs::write(&path, b"this is not a database, and certainly not acme's").unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    let req = Request::builder()
        .uri("/api/session")
        .header(header::COOKIE, format!("tenantd_session={acme_admin}"))
        .header("x-request-id", "support-ticket-4711")
        .body(Body::empty())
        .unwrap();
    let a = t.send(req).await;
    assert_eq!((a.status, a.code().as_str()), (503, "tenant_unavailable"));
    assert_eq!(a.json()["request_id"], "support-ticket-4711");
    assert_eq!(a.headers["x-request-id"], "support-ticket-4711");
    let text = a.body.as_str();
    assert!(
        !text.contains("database") && !text.contains(&acme_id),
        "{text}"
    );
    // The other company is untouched.
    assert_eq!(t.session_status(&globex_admin).await, 200);
    assert_eq!(t.login("admin@globex.test", PASSWORD).await.status, 200);
}

/// AA-07: one company's sign-in flood takes at most its share of the hashing queue, so another
/// company's people can still sign in.
#[tokio::test]
async fn aa_07_a_flood_on_one_tenant_leaves_room_for_the_others() {
    let t = InProc::with(|_, s| {
        s.hash_concurrency = Some(1);
        s.hash_queue = 11; // twelve slots: three per tenant
        s.login_max_failures = 1000;
        s.ip_max_failures = 100_000;
    })
    .await;
    t.company("acme").await;
    t.company("globex").await;
    let app = t.app.clone();
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/auth/login")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"email": format!("u{i}@acme.test"), "password": "wrong-password-123"}).to_string(),
                    ))
                    .unwrap();
                tower::ServiceExt::oneshot(app, req)
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // Wait until acme holds its whole share of the queue.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.state.hasher.depth() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flood never reached the hasher"
        );
        tokio::task::yield_now().await;
    }
    let a = t.login("admin@globex.test", PASSWORD).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let mut busy = 0;
    for f in flood {
        if f.await.unwrap() == 503 {
            busy += 1;
        }
    }
    assert!(busy >= 30, "acme's excess is refused: {busy}");
}

/// Browsers get pages for unknown addresses and wrong methods; API clients get JSON.
#[tokio::test]
async fn pages_and_api_answer_404_and_405_in_their_own_format() {
    let t = InProc::with(|c, _| c.product_name = "Acme Cloud".into()).await;
    for (method, path, status) in [
        (Method::GET, "/no-such-page", 404),
        (Method::GET, "/logout", 405),
        (Method::GET, "/admin/invite", 405),
    ] {
        let a = t.call(method.clone(), path, None, None).await;
        assert_eq!(a.status, status, "{method} {path}");
        assert!(
            a.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(a.body.as_str().contains("Acme Cloud"), "{path}");
    }
    for (method, path, status, code) in [
        (Method::GET, "/api/no-such-thing", 404, "not_found"),
        (Method::GET, "/api/auth/login", 405, "method_not_allowed"),
    ] {
        let a = t.call(method, path, None, None).await;
        assert_eq!((a.status, a.code().as_str()), (status, code), "{path}");
    }
}
