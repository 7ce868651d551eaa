//! The SSO and social sign-ins in real headless Chromium (`tests/e2e/sso.mjs`), against real
//! `oidc-provider` instances.

use serde_json::json;
use tests::sso::{Idp, account};
use tests::{Options, PASSWORD, TestApp, browser};

#[tokio::test]
async fn a_browser_signs_in_through_the_company_idp_and_a_social_provider() {
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let acme = app.company("acme").await;
    app.add_user(&acme.admin, "member@acme.test", "member")
        .await;
    app.invite(&acme.admin, "invited@acme.test", "member").await;
    let callback = format!("{}/sso/callback", app.public_url);
    let idp = Idp::start(
        &callback,
        json!({
            "sub-member": account("member@acme.test", true),
            "sub-jit": account("jit@acme.test", true),
        }),
    );
    let social = Idp::start(
        &callback,
        json!({"g-invited": account("invited@acme.test", true)}),
    );
    let r = acme
        .admin
        .post(
            "/api/admin/sso/connections",
            json!({"name": "Acme IdP", "issuer": idp.issuer,
        "client_id": idp.client_id, "client_secret": idp.client_secret, "domains": ["acme.test"],
        "jit": {"enabled": true, "role": "member"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.ctl().json(&[
        "social",
        "add",
        "--name",
        "testsocial",
        "--issuer",
        &social.issuer,
        "--client-id",
        &social.client_id,
        "--client-secret",
        &social.client_secret,
        "--label",
        "Test Social",
    ]);

    let artifacts = browser::artifacts_dir("E2E_SSO_ARTIFACTS_DIR", "sso");
    browser::run_flow(
        "tests/e2e/sso.mjs",
        &artifacts,
        &[
            ("E2E_BASE_URL", app.address.clone()),
            ("E2E_PUBLIC_URL", app.public_url.clone()),
            ("E2E_MAIL_DIR", app.smtp.maildir.display().to_string()),
            ("E2E_IDP", idp.issuer.clone()),
            ("E2E_SOCIAL_IDP", social.issuer.clone()),
            ("E2E_SOCIAL_LABEL", "Test Social".to_owned()),
            ("E2E_ADMIN_EMAIL", acme.admin_email.clone()),
            ("E2E_ADMIN_PASSWORD", PASSWORD.to_owned()),
            ("E2E_MEMBER_EMAIL", "member@acme.test".to_owned()),
            ("E2E_MEMBER_PASSWORD", PASSWORD.to_owned()),
            ("E2E_JIT_EMAIL", "jit@acme.test".to_owned()),
            ("E2E_INVITED_EMAIL", "invited@acme.test".to_owned()),
        ],
        "e2e sso passed",
    )
    .await;
    // What the browser did is in the server.
    let users = acme.admin.get("/api/admin/users?q=jit").await.json();
    assert_eq!(users["users"][0]["email"], "jit@acme.test", "{users}");
    let policy = acme.admin.get("/api/admin/policy").await.json();
    assert_eq!(policy["sso_required"], true, "{policy}");
    assert_eq!(policy["social_login"], true);
}
