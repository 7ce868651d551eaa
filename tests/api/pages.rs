//! The server-rendered pages: CSRF, redirects, escaping, access, the admin forms, and the
//! end-to-end flow in real headless Chromium (`tests/e2e/flow.mjs`, playwright-core).

use reqwest::Method;
use serde_json::json;

use tests::browser;
use tests::http::{csrf_of, find, form};
use tests::{MAIL_WAIT, PASSWORD, Person, Reply, TestApp, http};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// GETs a page and returns its CSRF token (the person's jar keeps the cookie).
async fn token(p: &Person, path: &str) -> String {
    let r = p.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    csrf_of(&r.body)
}

/// POSTs a form with this one extra header.
async fn form_with(p: &Person, path: &str, header: (&str, &str), fields: &[(&str, &str)]) -> Reply {
    http::read(
        p.request(Method::POST, path)
            .header(header.0, header.1)
            .form(fields),
    )
    .await
}

/// Signs in through the login form with the CSRF token `csrf` (and `extra` fields).
async fn login_form(
    p: &Person,
    csrf: &str,
    email: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut fields = vec![("csrf", csrf), ("email", email), ("password", password)];
    fields.extend_from_slice(extra);
    form(p, "/login", &fields).await
}

fn assert_page(r: &Reply, status: u16, contains: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.body.contains(contains),
        "expected {contains:?} in:\n{}",
        r.body
    );
}

#[tokio::test]
async fn a_browser_signs_in_invites_accepts_and_resets_a_password() {
    // Arrange: a company whose admin has a password; the invitee does not exist yet.
    let app = TestApp::spawn().await;
    let company = app.company("e2e").await;
    let artifacts = browser::artifacts_dir("E2E_ARTIFACTS_DIR", "pages");

    // Act and assert: the whole flow in Chromium, every step checked by the script; its
    // screenshots are kept.
    browser::run_flow(
        "tests/e2e/flow.mjs",
        &artifacts,
        &[
            ("E2E_BASE_URL", app.address.clone()),
            ("E2E_PUBLIC_URL", app.public_url.clone()),
            ("E2E_MAIL_DIR", app.smtp.maildir.display().to_string()),
            ("E2E_ADMIN_EMAIL", company.admin_email.clone()),
            ("E2E_ADMIN_PASSWORD", PASSWORD.to_owned()),
            ("E2E_COMPANY", company.name.clone()),
            ("E2E_INVITEE", "mia@e2e.test".to_owned()),
        ],
        "e2e flow passed",
    )
    .await;
    let shots = std::fs::read_dir(&artifacts)
        .expect("artifacts dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(
        shots >= 15,
        "only {shots} screenshots in {}",
        artifacts.display()
    );
    // The invitee really exists now, with the password set through /reset.
    app.login("mia@e2e.test", "violet-harbor-engine-58").await;
}

#[tokio::test]
async fn forms_refuse_cross_site_and_tokenless_posts() {
    let app = TestApp::spawn().await;
    let company = app.company("csrf").await;
    let p = app.person();
    let t = token(&p, "/login").await;

    // With the cookie and the matching field, the email step answers.
    let ok = form(&p, "/login", &[("csrf", &t), ("email", "x@csrf.test")]).await;
    assert_page(&ok, 200, "Enter your password");

    // A wrong or missing field, or no cookie, is refused (CSRF-03: login forms too).
    let wrong = form(
        &p,
        "/login",
        &[("csrf", "A".repeat(43).as_str()), ("email", "x@csrf.test")],
    )
    .await;
    assert_page(&wrong, 403, "The form has expired");
    let missing = form(&p, "/login", &[("email", "x@csrf.test")]).await;
    assert_eq!(missing.status, 403);
    let stranger = app.person();
    let no_cookie = form(
        &stranger,
        "/login",
        &[("csrf", &t), ("email", "x@csrf.test")],
    )
    .await;
    assert_page(&no_cookie, 403, "security cookie");

    // Fetch metadata and Origin: a cross-site POST fails even with a valid token pair.
    let fields = [("csrf", t.as_str()), ("email", "x@csrf.test")];
    let cross = form_with(&p, "/login", ("sec-fetch-site", "cross-site"), &fields).await;
    assert_page(&cross, 403, "another website");
    let evil = form_with(&p, "/login", ("origin", "https://evil.test"), &fields).await;
    assert_eq!(evil.status, 403);
    let plain = http::read(
        p.request(Method::POST, "/login")
            .header("content-type", "text/plain")
            .body(format!("csrf={t}&email=x@csrf.test")),
    )
    .await;
    assert_eq!(plain.status, 415);
    let repeated = form(
        &p,
        "/login",
        &[("csrf", &t), ("csrf", &t), ("email", "x@csrf.test")],
    )
    .await;
    assert_eq!(repeated.status, 400);

    // A signed-in admin's invite without the token changes nothing (CSRF-02).
    let admin = &company.admin;
    let at = token(admin, "/admin").await;
    let refused = form(
        admin,
        "/admin/invite",
        &[("email", "eve@csrf.test"), ("role", "admin")],
    )
    .await;
    assert_eq!(refused.status, 403);
    let users = admin.get("/api/admin/users").await.json();
    assert_eq!(users["total"], 1, "{users}");
    let invited = form(
        admin,
        "/admin/invite",
        &[
            ("csrf", &at),
            ("email", "eve@csrf.test"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    assert_eq!(invited.location(), "/admin?done=invited");
    let users = admin.get("/api/admin/users").await.json();
    assert_eq!(users["total"], 2, "{users}");

    // Signing in replaces the token: the one from before no longer works.
    let before = token(&p, "/login").await;
    let signed = login_form(&p, &before, &company.admin_email, PASSWORD, &[]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let after = signed
        .cookie_value("tenantd_csrf")
        .expect("a new csrf cookie");
    assert_ne!(after, before);
    let stale = form(&p, "/logout", &[("csrf", &before)]).await;
    assert_eq!(stale.status, 403);
    assert_eq!(
        p.session_status().await,
        200,
        "a refused sign-out signs nobody out"
    );
    let out = form(&p, "/logout", &[("csrf", &after)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/login?done=signed_out");
    assert_eq!(p.session_status().await, 401);
}

#[tokio::test]
async fn sign_in_redirects_only_to_allowlisted_pages() {
    let app = TestApp::spawn().await;
    let company = app.company("nexts").await;
    for (next, expected) in [
        ("//evil.test", "/admin"),
        ("https://evil.test/admin", "/admin"),
        ("/\\evil.test", "/admin"),
        ("javascript:alert(1)", "/admin"),
        ("/account", "/account"),
    ] {
        let p = app.person();
        let t = token(&p, "/login").await;
        let r = login_form(&p, &t, &company.admin_email, PASSWORD, &[("next", next)]).await;
        assert_eq!(r.status, 303, "{next}: {}", r.body);
        assert_eq!(r.location(), expected, "next={next}");
        let cookies = r.set_cookies().join("\n");
        assert!(cookies.contains("tenantd_session="), "{cookies}");
        // Already signed in: /login sends the user on, again only to allowlisted pages.
        let again = p.get("/login?next=%2F%2Fevil.test").await;
        assert_eq!(again.location(), "/admin");
    }
}

#[tokio::test]
async fn the_email_step_is_the_same_for_every_address() {
    let app = TestApp::spawn().await;
    let company = app.company("same").await;
    let p = app.person();
    let t = token(&p, "/login").await;
    let known = form(
        &p,
        "/login",
        &[("csrf", &t), ("email", &company.admin_email)],
    )
    .await;
    let unknown = form(
        &p,
        "/login",
        &[("csrf", &t), ("email", "nobody@nowhere.test")],
    )
    .await;
    assert_eq!(known.status, 200);
    assert_eq!(unknown.status, 200);
    assert_eq!(
        known.body.replace(&company.admin_email, "EMAIL"),
        unknown.body.replace("nobody@nowhere.test", "EMAIL")
    );
    // Malformed input gets a clear message and keeps what was typed (escaped).
    let bad = form(
        &p,
        "/login",
        &[("csrf", &t), ("email", "not-an-email\"<b>")],
    )
    .await;
    assert_page(&bad, 400, "Enter a valid email address");
    assert!(
        bad.body.contains("value=\"not-an-email&quot;&lt;b&gt;\""),
        "{}",
        bad.body
    );
    // A wrong password: 401, the service's message, the email kept.
    let wrong = login_form(&p, &t, &company.admin_email, "wrong-password-1", &[]).await;
    assert_page(&wrong, 401, "The email or password is not correct.");
    assert!(
        wrong
            .body
            .contains(&format!("value=\"{}\"", company.admin_email))
    );
}

#[tokio::test]
async fn pages_escape_user_data_and_carry_no_inline_code() {
    let app = TestApp::spawn().await;
    let company = app.company("xss").await;
    let admin = &company.admin;
    let r = admin
        .post(
            "/api/admin/users",
            json!({"email": "x@xss.test", "role": "member", "name": "<script>alert(\"x\")</script>"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let page = admin.get("/admin").await;
    assert_page(
        &page,
        200,
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;",
    );
    assert_eq!(page.headers["content-security-policy"], CSP);
    assert_eq!(page.headers["cache-control"], "no-store");
    let nobody = app.person();
    for (who, path) in [
        (admin, "/admin"),
        (admin, "/account"),
        (&nobody, "/login"),
        (&nobody, "/forgot"),
        (&nobody, "/reset?token=x"),
        (&nobody, "/invite?token=x"),
        (&nobody, "/nope"),
    ] {
        let r = who.get(path).await;
        let lower = r.body.to_lowercase();
        // The one script allowed is the passkey helper, served as a file from /assets.
        let lower = match lower.find("<script src=\"/assets/passkey.js?v=") {
            Some(at) => {
                let end = at + lower[at..].find("</script>").unwrap_or(0) + "</script>".len();
                format!("{}{}", &lower[..at], &lower[end..])
            }
            None => lower,
        };
        assert!(!lower.contains("<script"), "{path}: {}", r.body);
        assert!(
            !lower.contains("<style") && !lower.contains(" style="),
            "{path}"
        );
        assert!(lower.starts_with("<!doctype html>"), "{path}");
        assert_eq!(r.headers["content-security-policy"], CSP, "{path}");
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{path}");
    }

    // The stylesheet the pages link to is served, as CSS, cacheable for a year.
    let href = page
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("stylesheet link")
        .to_owned();
    assert!(href.starts_with("/assets/app.css?v="), "{href}");
    let css = admin.get(&href).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("max-age=31536000")
    );
    assert!(css.body.contains(".card"));
}

#[tokio::test]
async fn pages_send_each_person_where_they_belong() {
    let app = TestApp::spawn().await;
    let company = app.company("where").await;
    let member = app
        .add_user(&company.admin, "mo@where.test", "member")
        .await;
    let nobody = app.person();

    assert_eq!(nobody.get("/").await.location(), "/login");
    assert_eq!(nobody.get("/admin").await.location(), "/login?next=/admin");
    assert_eq!(
        nobody.get("/account").await.location(),
        "/login?next=/account"
    );
    assert_eq!(company.admin.get("/").await.location(), "/admin");
    assert_eq!(member.person.get("/").await.location(), "/account");
    assert_page(&member.person.get("/admin").await, 403, "Only your company");
    let account = member.person.get("/account").await;
    assert_page(&account, 200, "mo@where.test");
    assert!(account.body.contains(&company.name) && account.body.contains("Member"));

    // No state change on GET (CSRF-01): the mutating routes only take POST.
    for path in [
        "/logout",
        "/admin/invite",
        &format!("/admin/users/{}/delete", member.id),
    ] {
        assert_eq!(company.admin.get(path).await.status, 405, "{path}");
    }
    assert_eq!(member.person.session_status().await, 200);
    let r = company
        .admin
        .get(&format!("/api/admin/users/{}", member.id))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn admin_forms_block_change_role_resend_and_delete() {
    let app = TestApp::spawn().await;
    let company = app.company("forms").await;
    let admin = &company.admin;
    let member = app.add_user(admin, "bo@forms.test", "member").await;
    let t = token(admin, "/admin").await;
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let t = t.clone();
        async move {
            let mut all: Vec<(&str, String)> = vec![("csrf", t)];
            all.extend(fields);
            let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(admin, &path, &all).await
        }
    };
    let user = |id: &str| format!("/admin/users/{id}");

    // Block: the member is signed out and cannot sign in; unblock lets them back.
    let r = post(
        format!("{}/block", user(&member.id)),
        vec![("page", "1".into())],
    )
    .await;
    assert_eq!(
        (r.status, r.location()),
        (303, "/admin?page=1&done=blocked")
    );
    assert_eq!(member.person.session_status().await, 401);
    assert_eq!(app.try_login("bo@forms.test", PASSWORD).await.1.status, 403);
    assert_page(&admin.get("/admin?done=blocked").await, 200, "User blocked");
    let r = post(format!("{}/unblock", user(&member.id)), vec![]).await;
    assert_eq!(r.location(), "/admin?page=1&done=unblocked");
    app.login("bo@forms.test", PASSWORD).await;

    // Role change.
    let r = post(
        format!("{}/role", user(&member.id)),
        vec![("role", "admin".into())],
    )
    .await;
    assert_eq!(r.location(), "/admin?page=1&done=role_changed");
    let v = admin
        .get(&format!("/api/admin/users/{}", member.id))
        .await
        .json();
    assert_eq!(v["role"], "admin");
    let bad = post(
        format!("{}/role", user(&member.id)),
        vec![("role", "owner".into())],
    )
    .await;
    assert_page(&bad, 400, "Role must be admin or member.");

    // The last admin cannot block themselves once the other admin is gone.
    let r = post(
        format!("{}/role", user(&member.id)),
        vec![("role", "member".into())],
    )
    .await;
    assert_eq!(r.status, 303);
    let r = post(format!("{}/block", user(&company.admin_id)), vec![]).await;
    assert_page(&r, 409, "at least one active admin");

    // Invitations: re-send mails a new link; revoke kills it.
    let r = post(
        "/admin/invite".into(),
        vec![
            ("email", "cy@forms.test".into()),
            ("role", "member".into()),
            ("name", "Cy".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    let first = app.wait_for_mail("cy@forms.test", MAIL_WAIT).await;
    let users = admin.get("/api/admin/users?limit=200").await.json();
    let cy = find(&users["users"], "email", "cy@forms.test")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = post(format!("{}/resend", user(&cy)), vec![]).await;
    assert_eq!(r.location(), "/admin?page=1&done=resent");
    let second = app.wait_for_mail("cy@forms.test", MAIL_WAIT).await;
    assert_ne!(first.token, second.token);
    let old = app
        .person()
        .get(&format!("/invite?token={}", first.token))
        .await;
    assert_page(&old, 400, "This invitation does not work");
    let live = app
        .person()
        .get(&format!("/invite?token={}", second.token))
        .await;
    assert_page(&live, 200, "Join ");
    let r = post(format!("{}/revoke", user(&cy)), vec![]).await;
    assert_eq!(r.location(), "/admin?page=1&done=revoked");
    let dead = app
        .person()
        .get(&format!("/invite?token={}", second.token))
        .await;
    assert_eq!(dead.status, 400);

    // Delete needs the confirmation box.
    let r = post(format!("{}/delete", user(&member.id)), vec![]).await;
    assert_page(&r, 400, "tick");
    assert_eq!(
        admin
            .get(&format!("/api/admin/users/{}", member.id))
            .await
            .status,
        200
    );
    let r = post(
        format!("{}/delete", user(&member.id)),
        vec![("confirm", "yes".into())],
    )
    .await;
    assert_eq!(r.location(), "/admin?page=1&done=deleted");
    assert_eq!(
        admin
            .get(&format!("/api/admin/users/{}", member.id))
            .await
            .status,
        404
    );
    let gone = post(format!("{}/block", user(&member.id)), vec![]).await;
    assert_page(&gone, 404, "This user no longer exists.");
}

#[tokio::test]
async fn dead_links_get_a_clear_page() {
    let app = TestApp::spawn().await;
    let p = app.person();
    for path in [
        "/reset",
        "/reset?token=",
        "/reset?token=garbage",
        "/invite?token=01.abc",
    ] {
        let r = p.get(path).await;
        assert_page(&r, 400, "does not work");
        assert!(r.body.contains("<h1>"), "{path}");
    }
    // Posting a dead token is refused the same way (after the CSRF check).
    let t = token(&p, "/forgot").await;
    let r = form(
        &p,
        "/reset",
        &[
            ("csrf", &t),
            ("token", "x.y"),
            ("password", "a-fine-long-password"),
            ("password2", "a-fine-long-password"),
        ],
    )
    .await;
    assert_page(&r, 400, "does not work");
    // /forgot answers the same for everyone, and explains bad input.
    let r = form(
        &p,
        "/forgot",
        &[("csrf", &t), ("email", "nobody@nowhere.test")],
    )
    .await;
    assert_page(&r, 200, "Check your email");
    let r = form(&p, "/forgot", &[("csrf", &t), ("email", "")]).await;
    assert_page(&r, 400, "Enter your email address.");
}

#[tokio::test]
async fn account_page_changes_the_password_with_the_current_one() {
    let app = TestApp::spawn().await;
    let company = app.company("pwchange").await;
    let member = app
        .add_user(&company.admin, "pat@pwchange.test", "member")
        .await;
    let other = app.person();
    assert_eq!(other.login("pat@pwchange.test", PASSWORD).await.status, 200);

    let csrf = token(&member.person, "/account").await;
    let change = |current: &'static str| {
        let (p, csrf) = (member.person.clone(), csrf.clone());
        async move {
            let new = "sunlit-copper-kettle-19";
            let fields = [
                ("csrf", csrf.as_str()),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", new),
            ];
            form(&p, "/account/password", &fields).await
        }
    };
    let wrong = change("not-my-password").await;
    assert_page(&wrong, 400, "current password is not correct");
    let ok = change(PASSWORD).await;
    assert_eq!(ok.location(), "/account?done=password_changed");
    assert_page(
        &member.person.get("/account?done=password_changed").await,
        200,
        "Your password was changed",
    );
    // This session stays; the other one ended; only the new password signs in.
    assert_eq!(member.person.session_status().await, 200);
    assert_eq!(other.session_status().await, 401);
    assert_eq!(
        app.person()
            .login("pat@pwchange.test", PASSWORD)
            .await
            .status,
        401
    );
    assert_eq!(
        app.person()
            .login("pat@pwchange.test", "sunlit-copper-kettle-19")
            .await
            .status,
        200
    );
}
