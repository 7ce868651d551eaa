//! Passkeys in real Chromium (a CDP virtual authenticator): register, sign in with password
//! and passkey, with the passkey alone, remove (`tests/e2e/passkeys.mjs`).

use tests::process::free_port;
use tests::{Options, PASSWORD, TestApp, browser};

#[tokio::test]
async fn a_browser_registers_a_passkey_and_signs_in_with_it() {
    // WebAuthn needs a domain (not an IP) as relying party: the public URL is localhost.
    let port = free_port();
    let app = TestApp::spawn_with(Options {
        public_url: format!("http://localhost:{port}"),
        env: Vec::new(),
        port: Some(port),
    })
    .await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let artifacts = browser::artifacts_dir("E2E_PASSKEYS_ARTIFACTS_DIR", "passkeys");
    browser::run_flow(
        "tests/e2e/passkeys.mjs",
        &artifacts,
        &[
            ("E2E_BASE_URL", app.public_url.clone()),
            ("E2E_MAIL_DIR", app.smtp.maildir.display().to_string()),
            ("E2E_EMAIL", mia.email.clone()),
            ("E2E_PASSWORD", PASSWORD.to_owned()),
        ],
        "e2e passkeys passed",
    )
    .await;
    // What the browser did is in the server's audit log.
    let log = acme.admin.get("/api/admin/audit?limit=200").await.json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"factor.enrolled"), "{actions:?}");
    assert!(actions.contains(&"factor.removed"), "{actions:?}");
    let amrs: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login.succeeded")
        .map(|e| e["details"]["amr"].to_string())
        .collect();
    assert!(
        amrs.iter().any(|a| a.contains("pwd") && a.contains("mfa")),
        "{amrs:?}"
    );
    assert!(
        amrs.iter()
            .any(|a| !a.contains("pwd") && (a.contains("hwk") || a.contains("swk"))),
        "{amrs:?}"
    );
}
