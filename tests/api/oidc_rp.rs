//! tenantd as an OpenID Connect provider, tested by real relying-party libraries against a real
//! server: openid-client and jose in Node (`tests/oidc/rp.mjs`: the code flow through the
//! login pages, tokens, refusals, RP-initiated and back-channel logout for every way a session
//! ends) and Authlib in Python (`tests/oidc/rp_authlib.py`: a second, independent
//! implementation of the code flow, with a secret and as a public client). The expiry of codes,
//! which needs a clock the test moves, runs in-process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine;
use serde_json::{Value, json};
use tests::ctl::Ctl;
use tests::inproc::InProc;
use tests::{Company, MAIL_WAIT, NEW_PASSWORD, Options, PASSWORD, TestApp};

/// How long one relying-party script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(600);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A person as the scripts take them: who they are and where they belong.
fn person(company: &Company, email: &str, id: &str, name: &str, role: &str) -> Value {
    json!({
        "email": email,
        "id": id,
        "name": name,
        "role": role,
        "org": {"id": company.tenant_id, "slug": company.slug, "name": company.name},
    })
}

/// The first admin of a new company (named "Ada Admin" by the kit).
async fn company_admin(app: &TestApp, slug: &str) -> (Company, Value) {
    let company = app.company(slug).await;
    let admin = person(
        &company,
        &company.admin_email,
        &company.admin_id,
        "Ada Admin",
        "admin",
    );
    (company, admin)
}

/// Invites `email` into the company and accepts under `name`: an active user with
/// [`PASSWORD`].
async fn named_user(
    app: &TestApp,
    company: &Company,
    email: &str,
    role: &str,
    name: &str,
) -> Value {
    let id = app.invite(&company.admin, email, role).await;
    let mail = app.wait_for_mail(email, MAIL_WAIT).await;
    let r = app
        .person()
        .accept_invite_named(&mail.token, PASSWORD, name)
        .await;
    assert_eq!(r.status, 200, "accept invitation of {email}: {}", r.body);
    person(company, email, &id, name, role)
}

/// Runs a relying-party script to its end; asserts it succeeded and printed `done` last.
async fn run_script(mut cmd: tokio::process::Command, what: &str, done: &str) {
    let child = cmd
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("run the {what} relying party: {e}"));
    let out = tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("the {what} relying party did not finish within {SCRIPT_LIMIT:?}")
        })
        .expect("script output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some(done),
        "the {what} relying party failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
}

#[tokio::test]
async fn openid_client_signs_in_refreshes_and_is_logged_out_whenever_a_session_ends() {
    let root = repo_root();
    for module in ["openid-client", "jose"] {
        assert!(
            root.join("node_modules").join(module).exists(),
            "{module} is missing: run `npm ci` at the repository root"
        );
    }

    // Arrange: the issuer at its own address; one company with an admin and a user for each
    // way a session ends, a second company (for cross-company requests), and one company each
    // to restore and to suspend.
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let (acme, admin) = company_admin(&app, "acme").await;
    let mut people = serde_json::Map::new();
    people.insert("admin".into(), admin);
    for (key, name) in [
        ("member", "Mia Member"),
        ("all", "Alex Everywhere"),
        ("blocked", "Bo Blocked"),
        ("deleted", "Dee Deleted"),
        ("promoted", "Pat Promoted"),
        ("reset", "Remy Reset"),
    ] {
        let email = format!("{key}@acme.test");
        let p = named_user(&app, &acme, &email, "member", name).await;
        people.insert(key.into(), p);
    }
    for (key, slug) in [
        ("other", "globex"),
        ("restored", "restored"),
        ("suspended", "paused"),
    ] {
        let (_, admin) = company_admin(&app, slug).await;
        people.insert(key.into(), admin);
    }

    // Act: the relying party runs tenantctl with the server's settings (it registers its own
    // apps once its back-channel receiver listens).
    let ctl = app.ctl().command(&[]);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("tests/oidc/rp.mjs");
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("TENANTD_") || name.starts_with("TENANTCTL_") {
            cmd.env_remove(&k);
        }
    }
    for (k, v) in ctl.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("RP_ISSUER", &app.public_url)
        .env("RP_PEOPLE", Value::Object(people).to_string())
        .env("RP_PASSWORD", PASSWORD)
        .env("RP_NEW_PASSWORD", NEW_PASSWORD)
        .env("RP_MAIL_DIR", &app.smtp.maildir)
        .env("RP_TENANTCTL", ctl.get_program());

    // Assert: the script checked every step.
    run_script(cmd, "openid-client", "oidc rp passed").await;
}

#[tokio::test]
async fn authlib_signs_in_with_a_secret_and_as_a_public_client() {
    let python = std::env::var("RP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import authlib, requests"])
        .output()
        .unwrap_or_else(|e| panic!("run {python}: {e}"));
    assert!(
        probe.status.success(),
        "Authlib is missing: run `{python} -m pip install 'authlib>=1.3,<2' requests`\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // Arrange: a company with a member; a confidential and a public app.
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let (acme, _) = company_admin(&app, "acme").await;
    let member = named_user(&app, &acme, "mia@acme.test", "member", "Mia Member").await;
    let redirect = "http://127.0.0.1/authlib/callback";
    let register = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "Authlib App",
            "--redirect-uri",
            redirect,
        ];
        args.extend_from_slice(extra);
        app.ctl().json(&args)
    };
    let confidential = register(&[]);
    let public = register(&["--public"]);

    // Act
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg("tests/oidc/rp_authlib.py")
        .env("RP_ISSUER", &app.public_url)
        .env(
            "RP_CLIENT_ID",
            confidential["client_id"].as_str().expect("id"),
        )
        .env(
            "RP_CLIENT_SECRET",
            confidential["client_secret"].as_str().expect("secret"),
        )
        .env(
            "RP_PUBLIC_CLIENT_ID",
            public["client_id"].as_str().expect("id"),
        )
        .env("RP_REDIRECT_URI", redirect)
        .env("RP_PERSON", member.to_string())
        .env("RP_PASSWORD", PASSWORD);

    // Assert
    run_script(cmd, "Authlib", "authlib rp passed").await;
}

/// The PKCE example of RFC 7636 (appendix B): a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `application/x-www-form-urlencoded` of these fields.
fn form(fields: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://form.invalid/").expect("url");
    u.query_pairs_mut().extend_pairs(fields);
    u.query().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_code_expires_sixty_seconds_after_it_is_issued() {
    // Arrange: a signed-in admin and a registered app, on a clock the test moves.
    let h = InProc::new().await;
    let (_, cookie) = h.company("acme").await;
    let redirect = "https://app.example/callback";
    let made = Ctl::new(&h.state.config.data_dir).json(&[
        "client",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        redirect,
    ]);
    let id = made["client_id"].as_str().expect("client_id").to_owned();
    let secret = made["client_secret"].as_str().expect("client_secret");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let code = || async {
        let path = format!(
            "/oauth2/authorize?{}",
            form(&[
                ("client_id", &id),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
        );
        let r = h.get(&path, Some(&cookie)).await;
        assert_eq!(r.status, 303, "authorize: {}", r.body);
        let to = reqwest::Url::parse(r.location()).expect("redirect");
        assert_eq!(to.as_str().split('?').next(), Some(redirect), "{to}");
        to.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code in {to}"))
            .1
            .into_owned()
    };
    let exchange = |code: String| {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ])))
            .expect("request");
        h.send(req)
    };
    let (fresh, stale) = (code().await, code().await);

    // Act: one code is used within its minute, the other just after.
    h.clock.advance(59);
    let in_time = exchange(fresh).await;
    h.clock.advance(2);
    let late = exchange(stale).await;

    // Assert
    assert_eq!(in_time.status, 200, "{}", in_time.body);
    assert!(in_time.json()["id_token"].is_string(), "{}", in_time.body);
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(late.json()["error"], "invalid_grant", "{}", late.body);
    for k in ["access_token", "id_token", "refresh_token"] {
        assert!(late.json().get(k).is_none(), "{k} issued: {}", late.body);
    }
}
