//! Every way in passes the second-factor gate: a sign-in through the company's identity
//! provider owes the second step to a person who has a factor, unless the company trusts its
//! provider's MFA (`trust_idp_mfa`); the session then says how the person signed in.

use serde_json::json;
use tests::http::{csrf_of, form};
use tests::sso::{Idp, account, sign_in};
use tests::{Options, TestApp};

use crate::factors::{add_totp, hidden, totp};
use crate::sso::connect;

#[tokio::test]
async fn an_idp_sign_in_owes_the_second_step_unless_the_company_trusts_its_idp() {
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let (secret, _) = add_totp(&mia.person).await;
    let idp = Idp::start(
        &format!("{}/sso/callback", app.public_url),
        json!({"sub-mia": account("mia@acme.test", true)}),
    );
    connect(&acme, &idp, &["acme.test"], false).await;

    // Back from the IdP: the second step's page, and no session yet.
    let p = app.person();
    let out = sign_in(&p, &app.address, "mia@acme.test", &idp.issuer, "sub-mia").await;
    assert_eq!(out.callback.status, 200, "{:?}", out.callback);
    assert!(
        out.callback.session().is_none(),
        "no session before the code"
    );
    assert_eq!(p.session_status().await, 401);
    let body = &out.callback.body;
    let (token, csrf) = (hidden(body, "mfa_token"), csrf_of(body));
    let done = form(
        &p,
        "/login/mfa",
        &[
            ("csrf", &csrf),
            ("mfa_token", &token),
            ("code", &totp(&secret, 1)),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(p.session_status().await, 200);
    let log = acme
        .admin
        .get("/api/admin/audit?action=login.succeeded")
        .await
        .json();
    let newest = &log["entries"][0]["details"];
    assert_eq!(newest["via"], "sso", "{log}");
    assert_eq!(newest["amr"], json!(["otp", "fed", "mfa"]), "{log}");

    // The company trusts its IdP's MFA: the IdP's word is enough.
    let r = acme
        .admin
        .patch("/api/admin/policy", json!({"trust_idp_mfa": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p2 = app.person();
    let out = sign_in(&p2, &app.address, "mia@acme.test", &idp.issuer, "sub-mia").await;
    assert_eq!(out.callback.status, 303, "{:?}", out.callback);
    assert_eq!(p2.session_status().await, 200);
}
