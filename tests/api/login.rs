//! Sign-in, sessions and cookies, and answers that must not tell whether an account exists.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::json;

use tests::{MAIL_WAIT, Options, PASSWORD, Person, Reply, TestApp, http};

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_lowercase())
        .collect()
}

#[tokio::test]
async fn login_returns_the_login_shape_and_a_lax_http_only_cookie() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;

    let (person, r) = app.try_login(&acme.admin_email, PASSWORD).await;

    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(keys(&v), ["tenant", "user"]);
    assert_eq!(keys(&v["user"]), ["email", "id", "name", "role"]);
    assert_eq!(keys(&v["tenant"]), ["id", "name", "slug"]);
    assert_eq!(v["user"]["email"], acme.admin_email);
    assert_eq!(v["user"]["id"], acme.admin_id.as_str());
    assert_eq!(v["user"]["name"], "Ada Admin");
    assert_eq!(v["user"]["role"], "admin");
    assert_eq!(v["tenant"]["slug"], acme.slug.as_str());
    assert_eq!(v["tenant"]["name"], acme.name);
    assert_eq!(v["tenant"]["id"], acme.tenant_id.as_str());

    // The session, and a device cookie that gives this browser its own throttle lane.
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("tenantd_session="), "{}", cookies[0]);
    assert!(cookies[1].starts_with("tenantd_device="), "{}", cookies[1]);
    for cookie in &cookies {
        let attrs = attributes(cookie);
        for want in ["httponly", "samesite=lax", "path=/"] {
            assert!(attrs.iter().any(|a| a == want), "{want} in {attrs:?}");
        }
        assert!(!attrs.iter().any(|a| a == "secure"), "http: no Secure");
        assert!(!attrs.iter().any(|a| a.starts_with("domain")), "host-only");
    }

    // The session answers with the same shape.
    let s = person.get("/api/session").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json(), v);

    // Logout ends the session on the server, not only in the browser.
    let value = r.cookie_value("tenantd_session").expect("cookie");
    let out = person.post_empty("/api/auth/logout").await;
    assert_eq!(out.status, 200);
    assert_eq!(out.cookie_value("tenantd_session").as_deref(), Some(""));
    let s = person.get("/api/session").await;
    assert_eq!((s.status, s.code().as_str()), (401, "unauthenticated"));
    let replay = app.person_with_cookie(&format!("tenantd_session={value}"));
    assert_eq!(
        replay.session_status().await,
        401,
        "a logged-out cookie must not work"
    );
}

#[tokio::test]
async fn cookies_are_secure_and_host_prefixed_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(Options {
        public_url: "https://login.example.test".to_owned(),
        ..Options::default()
    })
    .await;
    let acme = app.company("acme").await;

    let r = app.person().login(&acme.admin_email, PASSWORD).await;

    assert_eq!(r.status, 200, "{}", r.body);
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies[0].starts_with("__Host-tenantd_session="),
        "{}",
        cookies[0]
    );
    assert!(
        cookies[1].starts_with("__Host-tenantd_device="),
        "{}",
        cookies[1]
    );
    let attrs = attributes(&cookies[1]);
    for want in ["httponly", "samesite=lax", "path=/", "secure"] {
        assert!(attrs.iter().any(|a| a == want), "{want} in {attrs:?}");
    }
    let attrs = attributes(&cookies[0]);
    for want in ["httponly", "samesite=lax", "path=/", "secure"] {
        assert!(attrs.iter().any(|a| a == want), "{want} in {attrs:?}");
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "__Host- forbids Domain"
    );
    assert_eq!(
        r.headers
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap_or("")),
        Some("max-age=31536000; includeSubDomains")
    );

    // The prefixed cookie is the one that works (sent by hand: the jar keeps Secure cookies
    // off plain http).
    let value = r.cookie_value("__Host-tenantd_session").expect("cookie");
    let with = |name: &str| app.person_with_cookie(&format!("{name}={value}"));
    assert_eq!(with("__Host-tenantd_session").session_status().await, 200);
    assert_eq!(with("tenantd_session").session_status().await, 401);

    // Mailed links use the configured https URL.
    let by_hand = app.person_with_cookie(&format!("__Host-tenantd_session={value}"));
    app.invite(&by_hand, "mo@acme.test", "member").await;
    let mail = app.wait_for_mail("mo@acme.test", MAIL_WAIT).await;
    assert!(
        mail.link
            .starts_with("https://login.example.test/invite?token="),
        "{}",
        mail.link
    );
}

#[tokio::test]
async fn every_login_gets_a_new_session_id() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let person = app.person();

    let first = person.login(&acme.admin_email, PASSWORD).await;
    let second = person.login(&acme.admin_email, PASSWORD).await; // sends the first cookie

    let a = first.cookie_value("tenantd_session").expect("first");
    let b = second.cookie_value("tenantd_session").expect("second");
    assert_ne!(a, b);
    assert_eq!(person.session_status().await, 200);

    // A session id planted before sign-in (fixation) is never adopted.
    let (tenant, _) = a.split_once('.').expect("tenant.secret");
    let planted = format!("{tenant}.{}", "A".repeat(43));
    let r = http::read(
        app.person()
            .request(Method::POST, "/api/auth/login")
            .header(COOKIE, format!("tenantd_session={planted}"))
            .json(&json!({"email": acme.admin_email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200);
    let c = r.cookie_value("tenantd_session").expect("cookie");
    assert_ne!(c, planted);
    assert_ne!(c, a);
    assert_ne!(c, b);
    let planted_session = app.person_with_cookie(&format!("tenantd_session={planted}"));
    assert_eq!(planted_session.session_status().await, 401);
}

/// The fastest of the samples: the work a request cannot skip, whatever else the machine does
/// (other tests run in parallel on two cores).
fn fastest(v: &[Duration]) -> Duration {
    v.iter().copied().min().expect("samples")
}

#[tokio::test]
async fn failed_logins_are_byte_identical_and_take_the_same_time() {
    // Enough failures allowed for the timing samples (throttling has its own tests).
    let app = TestApp::spawn_with(Options {
        env: vec![("TENANTD_LOGIN_MAX_FAILURES".to_owned(), "1000".to_owned())],
        ..Options::default()
    })
    .await;
    let acme = app.company("acme").await;
    app.invite(&acme.admin, "invited@acme.test", "member").await;
    let p = app.person();

    let unknown = p.login("nobody@nowhere.test", PASSWORD).await;
    let unknown_in_domain = p.login("nobody@acme.test", PASSWORD).await;
    let wrong_password = p.login(&acme.admin_email, "not-the-password-123").await;
    let invited = p.login("invited@acme.test", PASSWORD).await;
    let invited_empty = p.login("invited@acme.test", "").await;
    let not_an_email = p.login("not an email", PASSWORD).await;

    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.code(), "invalid_credentials");
    assert!(unknown.set_cookies().is_empty());
    for (what, r) in [
        ("unknown email in a known domain", &unknown_in_domain),
        ("wrong password", &wrong_password),
        ("invitation not accepted", &invited),
        ("invitation not accepted, empty password", &invited_empty),
        ("not an email", &not_an_email),
    ] {
        assert_eq!(r.fingerprint(), unknown.fingerprint(), "{what}");
    }
    assert_eq!(p.session_status().await, 401);

    // Timing: an unknown email costs a password hash too. Without the dummy hash the unknown
    // case answers about ten times faster; the bound leaves room for a busy machine.
    let mut t_unknown = Vec::new();
    let mut t_wrong = Vec::new();
    for i in 0..9 {
        let start = Instant::now();
        let r = p.login(&format!("ghost{i}@nowhere.test"), PASSWORD).await;
        t_unknown.push(start.elapsed());
        assert_eq!(r.status, 401);
        let start = Instant::now();
        let r = p
            .login(&acme.admin_email, &format!("wrong-password-{i}"))
            .await;
        t_wrong.push(start.elapsed());
        assert_eq!(r.status, 401);
    }
    let (u, w) = (fastest(&t_unknown), fastest(&t_wrong));
    assert!(
        u * 3 >= w && w * 3 >= u,
        "fastest unknown {u:?} vs wrong password {w:?}: {t_unknown:?} / {t_wrong:?}"
    );
}

/// Signs `email` in with the right password, which is refused with `code` (403, no cookie),
/// and with a wrong one, which gets exactly the `baseline` answer.
async fn told_only_with_the_password(
    app: &TestApp,
    email: &str,
    code: &str,
    baseline: &Reply,
    what: &str,
) {
    let right = app.person().login(email, PASSWORD).await;
    assert_eq!((right.status, right.code().as_str()), (403, code));
    assert!(right.set_cookies().is_empty());
    let wrong = app.person().login(email, "wrong-password-123").await;
    assert_eq!(
        wrong.fingerprint(),
        baseline.fingerprint(),
        "{what}, wrong password"
    );
}

#[tokio::test]
async fn blocked_and_suspended_are_told_only_after_the_password_is_verified() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mo = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    let baseline = app.person().login("nobody@acme.test", PASSWORD).await;

    let r = acme.admin.set_blocked(&mo.id, true).await;
    assert_eq!(r.status, 200, "{}", r.body);

    told_only_with_the_password(
        &app,
        "mo@acme.test",
        "account_blocked",
        &baseline,
        "blocked",
    )
    .await;

    // Suspension: the operator's switch (`tenantctl tenant suspend`).
    let open = app.login(&acme.admin_email, PASSWORD).await;
    app.set_tenant_status("acme", true);
    told_only_with_the_password(
        &app,
        &acme.admin_email,
        "tenant_suspended",
        &baseline,
        "suspended",
    )
    .await;
    // Open sessions stop working within the tenant cache's lifetime (under a second).
    tests::poll(Duration::from_secs(5), "suspension", || async {
        let s = open.get("/api/session").await;
        if s.status == 403 {
            assert_eq!(s.code(), "tenant_suspended");
            return Ok(());
        }
        Err(format!("session still works: {}", s.status))
    })
    .await;
    let admin_list = open.get("/api/admin/users").await;
    assert_eq!(admin_list.status, 403);

    app.set_tenant_status("acme", false);
    let r = app.person().login(&acme.admin_email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn forgot_answers_are_byte_identical_whether_or_not_the_account_exists() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mo = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    app.invite(&acme.admin, "invited@acme.test", "member").await;
    let blocked = acme.admin.set_blocked(&mo.id, true).await;
    assert_eq!(blocked.status, 200);
    let p = app.person();
    let forgot = |email: &str| p.forgot(email);

    let unknown = forgot("nobody@nowhere.test").await;
    let known = forgot(&acme.admin_email).await;
    let known_other_case = forgot(&acme.admin_email.to_uppercase()).await;
    let unknown_in_domain = forgot("nobody@acme.test").await;
    let blocked = forgot("mo@acme.test").await;
    let invited = forgot("invited@acme.test").await;
    let not_an_email = forgot("not an email").await;

    assert_eq!(unknown.status, 202);
    assert!(unknown.set_cookies().is_empty());
    for (what, r) in [
        ("known", &known),
        ("known, other case", &known_other_case),
        ("unknown in a known domain", &unknown_in_domain),
        ("blocked", &blocked),
        ("invited", &invited),
        ("not an email", &not_an_email),
    ] {
        assert_eq!(r.fingerprint(), unknown.fingerprint(), "{what}");
    }
    // The known address did get its link (twice: both spellings).
    let a = app.wait_for_mail(&acme.admin_email, MAIL_WAIT).await;
    let b = app.wait_for_mail(&acme.admin_email, MAIL_WAIT).await;
    assert!(a.link.contains("/reset?token=") && b.link.contains("/reset?token="));
}

async fn raw(who: &Person, method: Method, path: &str, ct: Option<&str>) -> Reply {
    let mut req = who.request(method, path).body(
        json!({"email": "a@b.test", "password": PASSWORD, "token": "x", "role": "member"})
            .to_string(),
    );
    if let Some(ct) = ct {
        req = req.header(CONTENT_TYPE, ct);
    }
    http::read(req).await
}

#[tokio::test]
async fn state_changing_json_endpoints_require_the_json_content_type() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mo = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    let before = acme.admin.get("/api/admin/users").await.body;
    let user = format!("/api/admin/users/{}", mo.id);
    let cases = [
        (Method::POST, "/api/auth/login"),
        (Method::POST, "/api/auth/forgot"),
        (Method::POST, "/api/auth/reset"),
        (Method::POST, "/api/auth/accept-invite"),
        (Method::POST, "/api/admin/users"),
        (Method::PATCH, user.as_str()),
    ];
    for (method, path) in &cases {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let r = raw(&acme.admin, method.clone(), path, ct).await;
            assert_eq!(r.status, 415, "{method} {path} {ct:?}: {}", r.body);
            assert_eq!(r.code(), "unsupported_media_type");
        }
    }
    // Malformed JSON and unexpected fields get their own stable codes.
    let r = http::read(
        acme.admin
            .request(Method::POST, "/api/auth/login")
            .header(CONTENT_TYPE, "application/json")
            .body("{\"email\":"),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_json"));
    let r = acme
        .admin
        .post(
            "/api/auth/login",
            json!({"email": acme.admin_email, "password": PASSWORD, "admin": true}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_body"));
    let r = acme.admin.patch(&user, json!({"role": "owner"})).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_role"));

    // Nothing of that changed anything.
    assert_eq!(acme.admin.get("/api/admin/users").await.body, before);
    assert_eq!(mo.person.session_status().await, 200);
}
