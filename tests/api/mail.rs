//! Password reset and invitations through a real SMTP server: every link is read from the
//! message that arrived.
//!
//! Not covered here: expiry (reset links after 30 minutes, invitations after 7 days). The real
//! binary runs on the system clock and has no way to move it, so expiry is left to in-process
//! tests with a `ManualClock`.

use tests::mail::Mail;
use tests::{Company, MAIL_WAIT, NEW_PASSWORD, PASSWORD, TestApp};

/// Company acme, whose admin invited ivy@acme.test: the company, Ivy's id, her invitation.
async fn ivy_invited(app: &TestApp) -> (Company, String, Mail) {
    let acme = app.company("acme").await;
    let id = app.invite(&acme.admin, "ivy@acme.test", "member").await;
    let mail = app.wait_for_mail("ivy@acme.test", MAIL_WAIT).await;
    (acme, id, mail)
}

#[tokio::test]
async fn password_reset_through_the_mailed_link() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mo = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    let other_browser = app.login(&mo.email, PASSWORD).await;

    let r = app.person().forgot("  MO@Acme.test ").await;
    assert_eq!(r.status, 202);
    let mail = app.wait_for_mail("mo@acme.test", MAIL_WAIT).await;

    assert_eq!(mail.subject, "Reset your tenantd password");
    assert!(
        mail.link
            .starts_with(&format!("{}/reset?token=", app.public_url)),
        "{}",
        mail.link
    );
    assert!(mail.text.contains("30 minutes"), "{}", mail.text);
    let reset = |password: &str| app.person().reset(&mail.token, password);

    // Rejected passwords leave the token usable.
    let r = reset("short").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_short"));
    let r = reset("fourteen chars").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_short"));
    let r = reset("mo@acme.test is me, mo").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_is_email"));
    let r = reset("my company acme secret").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "password_has_company_name")
    );
    let r = reset("qwertyuiopasdfgh").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_common"));
    let r = app.person().reset(&mail.token, &"x1".repeat(65)).await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_long"));
    assert_eq!(
        mo.person.session_status().await,
        200,
        "a refused reset ends nothing"
    );

    let r = reset(NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Every session of that user ended; the old password is gone; the new one works.
    assert_eq!(mo.person.session_status().await, 401);
    assert_eq!(other_browser.session_status().await, 401);
    assert_eq!(
        acme.admin.session_status().await,
        200,
        "other users keep theirs"
    );
    let old = app.person().login("mo@acme.test", PASSWORD).await;
    assert_eq!(old.status, 401);
    app.login("mo@acme.test", NEW_PASSWORD).await;

    // The link is single use.
    let again = reset("another-fine-password-9").await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (400, "invalid_token")
    );
    app.login("mo@acme.test", NEW_PASSWORD).await;

    // Unknown and mangled tokens get the same answer.
    let mut forged = mail.token.clone();
    let last = forged.pop().expect("token");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for token in [forged.as_str(), "nonsense", ""] {
        let r = app.person().reset(token, "another-fine-password-9").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_token"),
            "{token}"
        );
    }
}

#[tokio::test]
async fn only_the_newest_reset_link_works() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let forgot = || app.person().forgot(&acme.admin_email);
    assert_eq!(forgot().await.status, 202);
    let older = app.wait_for_mail(&acme.admin_email, MAIL_WAIT).await;
    assert_eq!(forgot().await.status, 202);
    let newer = app.wait_for_mail(&acme.admin_email, MAIL_WAIT).await;
    assert_ne!(older.token, newer.token);

    let r = app.person().reset(&older.token, NEW_PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));
    let r = app.person().reset(&newer.token, NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .person()
        .reset(&newer.token, "another-fine-password-9")
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));
    app.login(&acme.admin_email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn forgot_sends_nothing_for_blocked_invited_or_unknown_addresses() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mo = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    app.invite(&acme.admin, "ivy@acme.test", "member").await;
    app.wait_for_mail("ivy@acme.test", MAIL_WAIT).await;
    let r = acme.admin.set_blocked(&mo.id, true).await;
    assert_eq!(r.status, 200);
    let before = app.mails().len();

    for email in [
        "mo@acme.test",
        "ivy@acme.test",
        "nobody@acme.test",
        "x@y.test",
    ] {
        let r = app.person().forgot(email).await;
        assert_eq!(r.status, 202);
    }
    app.mail_barrier(&acme.admin_email).await;

    let after = app.mails();
    assert_eq!(
        after.len(),
        before + 1,
        "only the sentinel arrived: {:?}",
        after
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    // And the blocked user cannot come back through a reset.
    assert_eq!(app.mails_to("mo@acme.test").len(), 1, "only the invitation");
}

#[tokio::test]
async fn invitation_acceptance_through_the_mailed_link() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;

    let id = app
        .invite(&acme.admin, "New.Person@ACME.test", "member")
        .await;
    let mail = app.wait_for_mail("new.person@acme.test", MAIL_WAIT).await;

    assert_eq!(
        mail.subject,
        format!("You are invited to {} on tenantd", acme.name)
    );
    assert!(
        mail.link
            .starts_with(&format!("{}/invite?token=", app.public_url)),
        "{}",
        mail.link
    );
    let accept = |password: &str| {
        app.person()
            .accept_invite_named(&mail.token, password, "Nia Person")
    };
    // Not yet accepted: cannot sign in, with the generic answer.
    let r = app.person().login("new.person@acme.test", PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_credentials"));

    // A refused password does not use the invitation up.
    let r = accept("short").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_short"));
    let r = accept("new.person@acme.test").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_is_email"));
    let r = accept("abcdefghijklmnop").await;
    assert_eq!((r.status, r.code().as_str()), (400, "password_too_common"));

    let person = app.person();
    let r = person
        .accept_invite_named(&mail.token, PASSWORD, "Nia Person")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["user"]["id"], id.as_str());
    assert_eq!(v["user"]["email"], "new.person@acme.test");
    assert_eq!(v["user"]["name"], "Nia Person");
    assert_eq!(v["user"]["role"], "member");
    assert_eq!(v["tenant"]["slug"], "acme");
    assert!(r.cookie_value("tenantd_session").is_some());
    assert_eq!(person.get("/api/session").await.json(), v);

    // Single use.
    let r = accept("another-fine-password-9").await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));
    app.login("new.person@acme.test", PASSWORD).await;
    let user = acme
        .admin
        .get(&format!("/api/admin/users/{id}"))
        .await
        .json();
    assert_eq!(user["status"], "active");
}

#[tokio::test]
async fn a_resent_invitation_makes_the_old_link_invalid() {
    let app = TestApp::spawn().await;
    let (acme, id, old) = ivy_invited(&app).await;

    let r = acme
        .admin
        .post_empty(&format!("/api/admin/users/{id}/invitation"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new = app.wait_for_mail("ivy@acme.test", MAIL_WAIT).await;
    assert_ne!(old.token, new.token);

    let r = app.person().accept_invite(&old.token, PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));
    let r = app.person().accept_invite(&new.token, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Once accepted there is nothing to resend.
    let r = acme
        .admin
        .post_empty(&format!("/api/admin/users/{id}/invitation"))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "not_invited"));
}

#[tokio::test]
async fn a_revoked_invitation_link_is_invalid() {
    let app = TestApp::spawn().await;
    let (acme, id, mail) = ivy_invited(&app).await;

    let r = acme
        .admin
        .delete(&format!("/api/admin/users/{id}/invitation"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = app.person().accept_invite(&mail.token, PASSWORD).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));
    let user = acme
        .admin
        .get(&format!("/api/admin/users/{id}"))
        .await
        .json();
    assert_eq!(user["status"], "invited");
    let r = app.person().login("ivy@acme.test", PASSWORD).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn inviting_an_email_of_another_company_gives_email_taken_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let globex = app.company("globex").await;
    let before_acme = acme.admin.get("/api/admin/users").await.json();
    let before_globex = globex.admin.get("/api/admin/users").await.json();
    let mails = app.mails().len();

    let r = acme.admin.invite(&globex.admin_email, "member").await;
    assert_eq!((r.status, r.code().as_str()), (409, "email_taken"));
    let r = acme
        .admin
        .invite(&globex.admin_email.to_uppercase(), "admin")
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "email_taken"));
    // Inviting one's own user is a different conflict.
    let r = acme.admin.invite(&acme.admin_email, "member").await;
    assert_eq!((r.status, r.code().as_str()), (409, "user_exists"));
    // Bad input is refused before anything happens.
    let r = acme.admin.invite("not-an-email", "member").await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_email"));
    let r = acme.admin.invite("x@acme.test", "owner").await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_role"));

    assert_eq!(acme.admin.get("/api/admin/users").await.json(), before_acme);
    assert_eq!(
        globex.admin.get("/api/admin/users").await.json(),
        before_globex
    );
    app.mail_barrier(&acme.admin_email).await;
    assert_eq!(app.mails().len(), mails + 1, "only the sentinel arrived");
    // The other company's user still signs in to their own company.
    let (_, r) = app.try_login(&globex.admin_email, PASSWORD).await;
    assert_eq!(r.json()["tenant"]["slug"], "globex");
}
