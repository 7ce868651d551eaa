//! The company's sign-in policy (`/api/admin/policy`): defaults, partial changes, audit, and
//! each company's policy its own.

use serde_json::json;

use tests::{PASSWORD, TestApp};

#[tokio::test]
async fn an_admin_changes_some_rules_and_the_rest_keep_their_value() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;

    let r = acme.admin.get("/api/admin/policy").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"sso_required": false, "sso_required_except_admins": false,
               "social_login": false, "mfa_required": "off", "trust_idp_mfa": false})
    );

    let r = acme
        .admin
        .patch(
            "/api/admin/policy",
            json!({"mfa_required": "admins", "social_login": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["mfa_required"], "admins");
    assert_eq!(v["social_login"], true);
    assert_eq!(v["trust_idp_mfa"], false);
    assert_eq!(acme.admin.get("/api/admin/policy").await.json(), v);

    // The change is audited with what it was and what it became.
    let log = acme
        .admin
        .get("/api/admin/audit?action=policy.changed")
        .await
        .json();
    let entries = log["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(
        entries[0]["details"]["mfa_required"],
        json!({"from": "off", "to": "admins"})
    );
    assert!(entries[0]["details"].get("sso_required").is_none());

    // Another company's policy is untouched.
    assert_eq!(
        beta.admin.get("/api/admin/policy").await.json()["mfa_required"],
        "off"
    );
}

#[tokio::test]
async fn bad_changes_are_refused_and_members_may_not_read_or_change_the_policy() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;

    for bad in [
        json!({"mfa_required": "sometimes"}),
        json!({"sso_required": "yes"}),
        json!({"password_rules": true}),
    ] {
        let r = acme.admin.patch("/api/admin/policy", bad.clone()).await;
        assert!(
            matches!(r.status, 400 | 422),
            "{bad}: {} {}",
            r.status,
            r.body
        );
        assert!(!r.code().is_empty(), "{bad}: {}", r.body);
    }
    assert_eq!(
        acme.admin.get("/api/admin/policy").await.json()["mfa_required"],
        "off"
    );

    app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let member = app.login("mia@acme.test", PASSWORD).await;
    assert_eq!(member.get("/api/admin/policy").await.status, 403);
    let r = member
        .patch("/api/admin/policy", json!({"mfa_required": "off"}))
        .await;
    assert_eq!(r.status, 403);
}
