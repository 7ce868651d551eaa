//! The admin console in real headless Chromium (`tests/e2e/console.mjs`, playwright-core):
//! bulk invitation, search, export, a person's page with an email change confirmed from the
//! mail, the audit log and the account page. Its screenshots are the README's tour
//! (`docs/screenshots/`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tests::process::bin_dir;
use tests::{PASSWORD, TestApp};

#[tokio::test]
async fn a_browser_runs_the_admin_console() {
    let app = TestApp::spawn().await;
    let company = app.company("console").await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf();
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` at the repository root"
    );
    let artifacts = std::env::var_os("E2E_CONSOLE_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("../e2e-artifacts/console"));
    if let Ok(entries) = std::fs::read_dir(&artifacts) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "png") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    let child = tokio::process::Command::new("node")
        .arg("tests/e2e/console.mjs")
        .current_dir(&root)
        .env("E2E_BASE_URL", &app.address)
        .env("E2E_PUBLIC_URL", &app.public_url)
        .env("E2E_MAIL_DIR", &app.smtp.maildir)
        .env("E2E_ADMIN_EMAIL", &company.admin_email)
        .env("E2E_ADMIN_PASSWORD", PASSWORD)
        .env("E2E_COMPANY", &company.name)
        .env("E2E_DOMAIN", "console.test")
        .env("E2E_ARTIFACTS_DIR", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (is Node.js installed?)");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the console flow did not finish within 5 minutes")
        .expect("node output");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the console flow failed ({}); screenshots in {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
        artifacts.display()
    );
    assert!(stdout.contains("e2e console passed"), "{stdout}");
    // What the browser did is in the server: the moved address signs in nowhere yet (an
    // invitation), the old one is gone, the admin's new name is stored.
    let admin = app.login(&company.admin_email, PASSWORD).await;
    let list = admin.get("/api/admin/users?q=lee").await.json();
    assert_eq!(list["users"][0]["email"], "lee.kim@console.test", "{list}");
    assert_eq!(list["users"][0]["name"], "Lee Larsen-Kim");
    let me = admin.get("/api/session").await.json();
    assert_eq!(me["user"]["name"], "Ada Lovelace");
}
