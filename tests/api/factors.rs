//! Second factors through the real binary: TOTP codes made independently by PyPI `pyotp`,
//! recovery codes, the MFA gate of the password sign-in and of invitations, the company's
//! policy (`all`, `admins`), an admin's reset, and each company's factors its own.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use tests::http::Person;
use tests::{PASSWORD, TestApp};

/// A TOTP code for `secret`, `steps` time steps from now, made by pyotp (not by tenantd).
pub(crate) fn totp(secret: &str, steps: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys, time; print(pyotp.TOTP(sys.argv[1]).at(int(time.time()) + 30 * int(sys.argv[2])))",
            secret,
            &steps.to_string(),
        ])
        .output()
        .expect("python3 with pyotp (pip install pyotp)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// Adds a TOTP factor to a signed-in person; returns its secret and id.
pub(crate) async fn add_totp(p: &Person) -> (String, String) {
    let r = p
        .post("/api/account/factors/totp", json!({"name": "Phone"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let secret = v["secret"].as_str().expect("secret").to_owned();
    let id = v["id"].as_str().expect("id").to_owned();
    let r = p
        .post(
            &format!("/api/account/factors/totp/{id}/confirm"),
            json!({"code": totp(&secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (secret, id)
}

/// Signs in with the password and expects a second step; returns the person and the answer.
async fn first_step(app: &TestApp, email: &str) -> (Person, Value) {
    let (p, r) = app.try_login(email, PASSWORD).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.session().is_none(), "no session before the second step");
    (p, r.json())
}

fn audit_actions(log: &Value) -> Vec<String> {
    log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_totp_factor_is_enrolled_then_asked_for_and_each_code_works_once() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;

    // Enrolling: a secret, its otpauth URI and a QR code made here; pending until confirmed.
    let r = mia.person.post_empty("/api/account/factors/totp").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let (secret, id) = (v["secret"].as_str().unwrap(), v["id"].as_str().unwrap());
    assert!(
        v["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/"),
        "{v}"
    );
    assert!(
        v["otpauth_uri"]
            .as_str()
            .unwrap()
            .contains(&format!("secret={secret}"))
    );
    assert!(v["qr_svg"].as_str().unwrap().starts_with("<svg"), "{v}");
    let listed = mia.person.get("/api/account/factors").await.json();
    assert_eq!(
        listed["factors"],
        json!([]),
        "a pending factor does not count"
    );
    let r = mia
        .person
        .post(
            &format!("/api/account/factors/totp/{id}/confirm"),
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_code"));
    // Computed once: read again later, the clock may have moved to the next step.
    let enrolled = totp(secret, 0);
    let r = mia
        .person
        .post(
            &format!("/api/account/factors/totp/{id}/confirm"),
            json!({"code": enrolled}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = mia.person.get("/api/account/factors").await.json();
    let factors = listed["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1, "{listed}");
    assert_eq!(factors[0]["kind"], "totp");
    assert_eq!(factors[0]["name"], "Authenticator app");
    assert!(factors[0]["created_at"].is_i64() && factors[0]["last_used_at"].is_i64());

    // The password alone no longer signs in: a second step, no session.
    let (p, v) = first_step(&app, "mia@acme.test").await;
    assert_eq!(v["error"], "mfa_required", "{v}");
    assert_eq!(v["methods"], json!(["totp"]));
    let token = v["mfa_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{}.", acme.tenant_id)));
    // A wrong code: refused, no session.
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": "123456"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid_code"),
        "{}",
        r.body
    );
    assert_eq!(p.session_status().await, 401);
    // The code of the step the enrolment used is spent: the next step's code signs in.
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": enrolled}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code", "a code works once: {}", r.body);
    let code = totp(secret, 1);
    let r = p
        .post("/api/auth/mfa", json!({"mfa_token": token, "code": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["user"]["email"], "mia@acme.test");
    assert_eq!(p.session_status().await, 200);
    // The token was used up; the same code again on a new sign-in is a replay.
    let r = p
        .post("/api/auth/mfa", json!({"mfa_token": token, "code": code}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_mfa_token"));
    let (p2, v) = first_step(&app, "mia@acme.test").await;
    let r = p2
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "code": code}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code", "replayed code: {}", r.body);

    // Forged tokens: another company's prefix, a made-up secret, garbage.
    let secret_part = token.split_once('.').unwrap().1;
    for forged in [
        format!("{}x.{secret_part}", acme.tenant_id),
        format!("{}.{}", acme.tenant_id, "A".repeat(43)),
        "nonsense".to_owned(),
    ] {
        let r = p2
            .post(
                "/api/auth/mfa",
                json!({"mfa_token": forged, "code": totp(secret, 1)}),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "invalid_mfa_token"),
            "{forged}"
        );
    }

    // Failed second steps and the enrolment are audited.
    let log = acme.admin.get("/api/admin/audit?limit=200").await.json();
    let actions = audit_actions(&log);
    assert!(
        actions.iter().any(|a| a == "factor.enrolled"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "mfa.failed"), "{actions:?}");
}

#[tokio::test]
async fn recovery_codes_are_shown_once_work_once_and_a_new_set_kills_the_old() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    add_totp(&mia.person).await;
    let r = mia.person.post_empty("/api/account/recovery-codes").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes: Vec<String> = serde_json::from_value(r.json()["codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        mia.person.get("/api/account/factors").await.json()["recovery_codes_left"],
        10
    );

    let (p, v) = first_step(&app, "mia@acme.test").await;
    assert_eq!(v["methods"], json!(["totp", "recovery_code"]));
    // Typed loosely (upper case, spaces): still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "recovery_code": typed}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (p, v) = first_step(&app, "mia@acme.test").await;
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "recovery_code": codes[0]}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code", "a recovery code works once");

    // A new set: the old codes die.
    let signed = app.person();
    let r = signed
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "recovery_code": codes[1]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = signed
        .post_empty("/api/account/recovery-codes")
        .await
        .json();
    let (p, v) = first_step(&app, "mia@acme.test").await;
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "recovery_code": codes[2]}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code");
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": v["mfa_token"], "recovery_code": fresh["codes"][0]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let actions = audit_actions(&acme.admin.get("/api/admin/audit?limit=200").await.json());
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "recovery_code.used")
            .count(),
        3,
        "{actions:?}"
    );
}

#[tokio::test]
async fn policy_admins_and_all_force_enrolment_and_the_last_factor_stays() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let r = acme
        .admin
        .patch("/api/admin/policy", json!({"mfa_required": "admins"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // `admins`: the member signs in with a password alone, the admin must enrol first.
    app.login("mia@acme.test", PASSWORD).await;
    let (p, v) = first_step(&app, &acme.admin_email).await;
    assert_eq!(v["error"], "mfa_enrollment_required", "{v}");
    assert!(v.get("methods").is_none());
    let token = v["mfa_token"].clone();
    // The enrolment token is not a second step: a code before enrolling is refused.
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": "123456"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code");
    let r = p
        .post("/api/auth/mfa/totp", json!({"mfa_token": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = r.json();
    assert!(e["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let secret = e["secret"].as_str().unwrap().to_owned();
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": totp(&secret, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = p.get("/api/account/factors").await.json();
    assert_eq!(listed["required"], true);
    let id = listed["factors"][0]["id"].as_str().unwrap().to_owned();

    // The last factor stays while the policy requires one; the password is checked first.
    let r = p
        .send(
            reqwest::Method::DELETE,
            &format!("/api/account/factors/{id}"),
            Some(json!({"password": "wrong-password-here"})),
        )
        .await;
    assert_eq!(r.code(), "wrong_password");
    let r = p
        .send(
            reqwest::Method::DELETE,
            &format!("/api/account/factors/{id}"),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "last_factor"),
        "{}",
        r.body
    );

    // `all`: the member too.
    acme.admin
        .patch("/api/admin/policy", json!({"mfa_required": "all"}))
        .await;
    let (_, v) = first_step(&app, "mia@acme.test").await;
    assert_eq!(v["error"], "mfa_enrollment_required");
    // So does a new person accepting an invitation: enrolment before any session.
    let _ = app.invite(&acme.admin, "noa@acme.test", "member").await;
    let mail = app.wait_for_mail("noa@acme.test", tests::MAIL_WAIT).await;
    let noa = app.person();
    let r = noa.accept_invite(&mail.token, PASSWORD).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "mfa_enrollment_required"),
        "{}",
        r.body
    );
    assert_eq!(noa.session_status().await, 401);

    // With the policy off, the factor may go.
    p.patch("/api/admin/policy", json!({"mfa_required": "off"}))
        .await;
    let r = p
        .send(
            reqwest::Method::DELETE,
            &format!("/api/account/factors/{id}"),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let actions = audit_actions(&p.get("/api/admin/audit?limit=200").await.json());
    assert!(actions.iter().any(|a| a == "factor.removed"), "{actions:?}");
    let _ = mia;
}

#[tokio::test]
async fn an_admin_resets_factors_and_one_company_never_sees_or_uses_anothers() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let (secret, id) = add_totp(&mia.person).await;

    // Another company's member and admin: the factor and the person do not exist for them.
    let bo = app.add_user(&beta.admin, "bo@beta.test", "member").await;
    let r = bo
        .person
        .send(
            reqwest::Method::DELETE,
            &format!("/api/account/factors/{id}"),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = beta
        .admin
        .delete(&format!("/api/admin/users/{}/factors", mia.id))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // An acme MFA token with beta's tenant in front finds nothing.
    let (p, v) = first_step(&app, "mia@acme.test").await;
    let token = v["mfa_token"].as_str().unwrap();
    let forged = format!("{}.{}", beta.tenant_id, token.split_once('.').unwrap().1);
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": forged, "code": totp(&secret, 1)}),
        )
        .await;
    assert_eq!(r.code(), "invalid_mfa_token");
    // Their own list shows none of acme's factors.
    assert_eq!(
        bo.person.get("/api/account/factors").await.json()["factors"],
        json!([])
    );

    // The admin's reset: factors gone, sessions ended, audited; a member may not.
    let r = mia
        .person
        .delete(&format!("/api/admin/users/{}/factors", mia.id))
        .await;
    assert_eq!(r.status, 403);
    let r = acme
        .admin
        .delete(&format!("/api/admin/users/{}/factors", mia.id))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["removed"], 1);
    assert_eq!(
        mia.person.session_status().await,
        401,
        "the person's sessions ended"
    );
    // The pending second step died with the factors.
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": totp(&secret, 1)}),
        )
        .await;
    assert_eq!(r.code(), "invalid_mfa_token");
    app.login("mia@acme.test", PASSWORD).await;
    let log = acme
        .admin
        .get("/api/admin/audit?action=factors.reset")
        .await
        .json();
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");
}

/// A range API on loopback that knows these passwords as breached.
struct RangeApi {
    child: std::process::Child,
    url: String,
}

impl RangeApi {
    fn start(breached: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/pwned_range.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(breached)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("port");
        Self {
            url: format!("http://127.0.0.1:{}", line.trim()),
            child,
        }
    }
}

impl Drop for RangeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BREACHED: &str = "correct-horse-battery-staple-1";

#[tokio::test]
async fn breached_passwords_are_refused_through_a_range_api_and_a_local_list() {
    let api = RangeApi::start(&[BREACHED]);
    let list = tempfile::tempdir().unwrap();
    let file = list.path().join("pwned.txt");
    let sha = |p: &str| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import hashlib,sys; print(hashlib.sha1(sys.argv[1].encode()).hexdigest().upper())",
                p,
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let mut lines = [sha("offline-breached-password-22"), sha("x"), sha("y")];
    lines.sort();
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}:7\n")).collect::<String>(),
    )
    .unwrap();
    let app = TestApp::spawn_with(tests::Options {
        env: vec![
            ("TENANTD_PWNED_URL".into(), api.url.clone()),
            ("TENANTD_PWNED_FILE".into(), file.display().to_string()),
        ],
        ..Default::default()
    })
    .await;
    let acme = app.company("acme").await;
    let _ = app.invite(&acme.admin, "mia@acme.test", "member").await;
    let mail = app.wait_for_mail("mia@acme.test", tests::MAIL_WAIT).await;
    let p = app.person();
    for breached in [BREACHED, "offline-breached-password-22"] {
        let r = p.accept_invite(&mail.token, breached).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "password_breached"),
            "{breached}: {}",
            r.body
        );
        assert!(r.json()["message"].as_str().unwrap().contains("breach"));
    }
    assert_eq!(p.accept_invite(&mail.token, PASSWORD).await.status, 200);
    // Changing a password is checked the same way.
    let r = p
        .post(
            "/api/account/password",
            json!({"current_password": PASSWORD, "new_password": BREACHED}),
        )
        .await;
    assert_eq!(r.code(), "password_breached", "{}", r.body);
}

#[tokio::test]
async fn an_unreachable_range_api_accepts_new_passwords_unless_told_to_refuse() {
    let dead = format!("http://127.0.0.1:{}", tests::process::free_port());
    for (fail_closed, expected) in [(false, 200), (true, 503)] {
        let mut env = vec![("TENANTD_PWNED_URL".to_owned(), dead.clone())];
        if fail_closed {
            env.push(("TENANTD_PWNED_FAIL_CLOSED".into(), "true".into()));
        }
        let app = TestApp::spawn_with(tests::Options {
            env,
            ..Default::default()
        })
        .await;
        app.tenant_create("acme", "Acme", "acme.test", "admin@acme.test");
        let mail = app.wait_for_mail("admin@acme.test", tests::MAIL_WAIT).await;
        let r = app.person().accept_invite(&mail.token, PASSWORD).await;
        assert_eq!(r.status, expected, "fail closed {fail_closed}: {}", r.body);
        if fail_closed {
            assert_eq!(r.code(), "password_check_unavailable");
        }
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_account_like_passwords() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let (secret, _) = add_totp(&mia.person).await;
    let (p, v) = first_step(&app, "mia@acme.test").await;
    let token = v["mfa_token"].clone();
    let mut throttled = None;
    for _ in 0..8 {
        let r = p
            .post(
                "/api/auth/mfa",
                json!({"mfa_token": token, "code": "000000"}),
            )
            .await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.code(), "invalid_code");
    }
    let r = throttled.expect("wrong codes end in 429");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Even the right code waits its turn.
    let r = p
        .post(
            "/api/auth/mfa",
            json!({"mfa_token": token, "code": totp(&secret, 1)}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
}

/// The value of a hidden field of a page.
pub(crate) fn hidden(body: &str, name: &str) -> String {
    body.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

#[tokio::test]
async fn an_apps_sign_in_resumes_after_the_second_step_with_amr_and_acr_in_the_id_token() {
    use tests::http::{csrf_of, form};
    use tests::oidc::{authorize_path, exchange, jwt_parts, param, pkce};

    let t = TestApp::spawn_with(tests::Options::at_own_address()).await;
    let acme = t.company("acme").await;
    let mia = t.add_user(&acme.admin, "mia@acme.test", "member").await;
    let (secret, _) = add_totp(&mia.person).await;
    let app = tests::oidc::register(&t, "http://127.0.0.1:9/callback", &[]);
    let browser = t.person();
    let p = pkce();

    // The app's request lands on the login page, which carries it through both steps.
    let r = browser
        .get(&authorize_path(
            &app,
            &p,
            &[("login_hint", "mia@acme.test")],
        ))
        .await;
    assert_eq!(r.status, 303);
    let page = browser.get(r.location()).await;
    let (pending, csrf) = (hidden(&page.body, "pending"), csrf_of(&page.body));
    let step = form(
        &browser,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "mia@acme.test"),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(step.status, 200);
    let second = form(
        &browser,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "mia@acme.test"),
            ("password", PASSWORD),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(
        second.status, 200,
        "the second step's page: {}",
        second.body
    );
    assert!(second.body.contains("Confirm it is you"));
    assert_eq!(
        hidden(&second.body, "pending"),
        pending,
        "the app's request travels on"
    );
    assert_eq!(browser.session_status().await, 401, "no session yet");
    let token = hidden(&second.body, "mfa_token");
    // A wrong code: the page again, still no session.
    let wrong = form(
        &browser,
        "/login/mfa",
        &[
            ("csrf", &csrf),
            ("mfa_token", &token),
            ("methods", "totp"),
            ("code", "000000"),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("The code is not correct"));
    let done = form(
        &browser,
        "/login/mfa",
        &[
            ("csrf", &csrf),
            ("mfa_token", &token),
            ("code", &totp(&secret, 1)),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.location().starts_with("/oauth2/authorize?pending="),
        "{}",
        done.location()
    );
    let back = browser.get(done.location()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let code = param(back.location(), "code").expect("code");
    let tokens = exchange(&t.address, &app, &code, &p.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let (_, claims) = jwt_parts(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:tenantd:acr:mfa");
}

#[tokio::test]
async fn passkeys_at_an_ip_address_are_refused_with_a_clear_code_not_an_error() {
    // A public URL with an IP address: WebAuthn has no relying party there.
    let mut opts = tests::Options::default();
    opts.env
        .push(("TENANTD_PUBLIC_URL".into(), "http://127.0.0.1:8080".into()));
    let app = TestApp::spawn_with(opts).await;
    let acme = app.company("acme").await;
    let r = acme
        .admin
        .post("/api/account/factors/webauthn/options", json!({}))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "passkeys_unavailable"),
        "{}",
        r.body
    );
    let r = app
        .person()
        .post(
            "/api/auth/passkey/options",
            json!({"email": acme.admin_email}),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "passkeys_unavailable"),
        "{}",
        r.body
    );
}
