//! The admin console in real headless Chromium (`tests/e2e/console.mjs`, playwright-core):
//! bulk invitation, search, export, a person's page with an email change confirmed from the
//! mail, the audit log and the account page. Its screenshots are the README's tour
//! (`docs/screenshots/`).

use tests::browser;
use tests::{PASSWORD, TestApp};

#[tokio::test]
async fn a_browser_runs_the_admin_console() {
    let app = TestApp::spawn().await;
    let company = app.company("console").await;
    let artifacts = browser::artifacts_dir("E2E_CONSOLE_ARTIFACTS_DIR", "console");
    browser::run_flow(
        "tests/e2e/console.mjs",
        &artifacts,
        &[
            ("E2E_BASE_URL", app.address.clone()),
            ("E2E_PUBLIC_URL", app.public_url.clone()),
            ("E2E_MAIL_DIR", app.smtp.maildir.display().to_string()),
            ("E2E_ADMIN_EMAIL", company.admin_email.clone()),
            ("E2E_ADMIN_PASSWORD", PASSWORD.to_owned()),
            ("E2E_COMPANY", company.name.clone()),
            ("E2E_DOMAIN", "console.test".to_owned()),
        ],
        "e2e console passed",
    )
    .await;
    // What the browser did is in the server: the moved address signs in nowhere yet (an
    // invitation), the old one is gone, the admin's new name is stored.
    let admin = app.login(&company.admin_email, PASSWORD).await;
    let list = admin.get("/api/admin/users?q=lee").await.json();
    assert_eq!(list["users"][0]["email"], "lee.kim@console.test", "{list}");
    assert_eq!(list["users"][0]["name"], "Lee Larsen-Kim");
    let me = admin.get("/api/session").await.json();
    assert_eq!(me["user"]["name"], "Ada Lovelace");
}
