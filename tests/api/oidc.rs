//! The OpenID provider through the real binary: discovery, the code flow through the shared
//! login page, every validation rule with the forged input that must fail, refresh rotation,
//! revocation, introspection, bearer tokens on the API, RP-initiated and back-channel logout
//! (durable across a restart), key rotation and CORS.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::Method;
use serde_json::{Value, json};
use tests::app::Options;
use tests::http::{csrf_of, form, read};
use tests::oidc::{
    self, App, Receiver, authorize_path, code_for, exchange, jwt_parts, param, pkce, post_form,
    tokens_for,
};
use tests::{PASSWORD, Person, TestApp};

const LOGOUT_WAIT: Duration = Duration::from_secs(30);

async fn server() -> TestApp {
    TestApp::spawn_with(Options::at_own_address()).await
}

fn app_of(t: &TestApp, extra: &[&str]) -> App {
    oidc::register(t, "http://127.0.0.1:9/callback", extra)
}

#[tokio::test]
async fn discovery_names_every_endpoint_and_the_jwks_holds_an_rs256_key() {
    let t = server().await;
    let d = t.person().get("/.well-known/openid-configuration").await;
    assert_eq!(d.status, 200);
    let d = d.json();
    assert_eq!(d["issuer"], t.public_url.as_str());
    for (k, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("end_session_endpoint", "/oauth2/logout"),
    ] {
        assert_eq!(d[k], format!("{}{path}", t.public_url), "{k}");
    }
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    let jwks = t.person().get("/oauth2/jwks").await.json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
}

/// Follows the login page's forms for `email` and `password`; returns the final redirect.
async fn sign_in_on_login_page(p: &Person, to_login: &str, email: &str) -> String {
    let page = p.get(to_login).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let pending = page
        .body
        .split("name=\"pending\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login page carries the pending request")
        .to_owned();
    let csrf = csrf_of(&page.body);
    let step = form(
        p,
        "/login",
        &[("csrf", &csrf), ("email", email), ("pending", &pending)],
    )
    .await;
    assert_eq!(step.status, 200, "{}", step.body);
    let done = form(
        p,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", email),
            ("password", PASSWORD),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = p.get(done.location()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    back.location().to_owned()
}

#[tokio::test]
async fn an_app_signs_a_person_in_through_the_shared_login_page() {
    // Arrange: a company with an admin; an app; a fresh browser.
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let browser = t.person();
    let p = pkce();

    // Act: the app sends the browser to tenantd with a login hint.
    let r = browser
        .get(&authorize_path(&app, &p, &[("login_hint", &c.admin_email)]))
        .await;
    assert_eq!(r.status, 303);
    assert!(
        r.location().starts_with("/login?pending="),
        "{}",
        r.location()
    );
    let page = browser.get(r.location()).await;
    assert!(
        page.body.contains(&format!("value=\"{}\"", c.admin_email)),
        "login_hint pre-fills"
    );
    let back = sign_in_on_login_page(&browser, r.location(), &c.admin_email).await;

    // Assert: back at the app with a code, the state and the issuer; the code buys tokens.
    assert!(back.starts_with(&app.redirect_uri), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(t.public_url.as_str()));
    let code = param(&back, "code").expect("code");
    let tokens = exchange(&t.address, &app, &code, &p.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), "no-store");
    let v = tokens.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 300);
    assert!(
        v["refresh_token"].is_string(),
        "offline_access gives a refresh token"
    );
    let (h, id) = jwt_parts(v["id_token"].as_str().unwrap());
    assert_eq!(h["alg"], "RS256");
    assert_eq!(id["iss"], t.public_url.as_str());
    assert_eq!(id["aud"], app.client_id.as_str());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["sub"], c.admin_id.as_str());
    assert_eq!(id["email"], c.admin_email.as_str());
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["org_id"], c.tenant_id.as_str());
    assert_eq!(id["org_slug"], "acme");
    assert_eq!(id["org_name"], c.name.as_str());
    assert_eq!(id["role"], "admin");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["acr"], "urn:tenantd:acr:sfa");
    assert!(id["sid"].is_string() && id["auth_time"].is_i64() && id["at_hash"].is_string());
    let access = v["access_token"].as_str().unwrap();
    let (ah, at) = jwt_parts(access);
    assert_eq!(ah["typ"], "at+jwt");
    assert_eq!(at["client_id"], app.client_id.as_str());
    assert_eq!(at["role"], "admin");

    // The access token works on the API exactly as the cookie does, and on userinfo.
    let api = Person::new(&t.address);
    let s = read(api.request(Method::GET, "/api/session").bearer_auth(access)).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json()["user"]["id"], c.admin_id.as_str());
    let users = read(
        api.request(Method::GET, "/api/admin/users")
            .bearer_auth(access),
    )
    .await;
    assert_eq!(users.status, 200, "{}", users.body);
    let ui = read(
        api.request(Method::GET, "/oauth2/userinfo")
            .bearer_auth(access),
    )
    .await;
    assert_eq!(ui.status, 200, "{}", ui.body);
    assert_eq!(ui.json()["sub"], id["sub"]);
    assert_eq!(ui.json()["org_slug"], "acme");
}

#[tokio::test]
async fn unknown_apps_and_unregistered_redirects_get_a_page_never_a_redirect() {
    let t = server().await;
    let app = app_of(&t, &[]);
    let p = pkce();
    for bad in [
        authorize_path(&app, &p, &[("client_id", "no-such-app")]),
        authorize_path(&app, &p, &[("client_id", "")]),
        authorize_path(
            &app,
            &p,
            &[("redirect_uri", "http://127.0.0.1:9/callback/evil")],
        ),
        authorize_path(&app, &p, &[("redirect_uri", "https://evil.test/callback")]),
        authorize_path(&app, &p, &[("redirect_uri", "")]),
    ] {
        let r = t.person().get(&bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.header("location").is_empty(), "{bad} redirected");
        assert!(r.body.contains("<html"), "an error page");
    }
    // A forged pending request is refused too.
    let r = t.person().get("/oauth2/authorize?pending=eyJ9.AAAA").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn pkce_s256_is_required_and_bad_requests_go_back_to_the_app_as_errors() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let p = pkce();
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("code_challenge_method", ""), ("code_challenge", "")],
            "invalid_request",
        ),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "email")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("request", "eyJ.x.y")], "request_not_supported"),
    ] {
        let r = c.admin.get(&authorize_path(&app, &p, &extra)).await;
        assert_eq!(r.status, 303, "{extra:?}");
        let to = r.location();
        assert!(to.starts_with(&app.redirect_uri), "{to}");
        assert_eq!(
            param(to, "error").as_deref(),
            Some(error),
            "{extra:?}: {to}"
        );
        assert_eq!(param(to, "state").as_deref(), Some("st-123"));
        assert_eq!(param(to, "iss").as_deref(), Some(t.public_url.as_str()));
        assert!(param(to, "code").is_none(), "no code for {extra:?}");
    }
}

#[tokio::test]
async fn a_code_works_once_for_its_client_redirect_and_verifier_only() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let other = app_of(&t, &[]);
    let base = &t.address;

    // Wrong verifier, missing verifier, another client, another redirect URI: refused, and
    // the code is burnt (the right exchange afterwards fails too).
    for attempt in 0..4 {
        let p = pkce();
        let code = code_for(&c.admin, &app, &p).await;
        let r = match attempt {
            0 => exchange(base, &app, &code, &pkce().verifier).await,
            1 => {
                oidc::post_form(
                    base,
                    "/oauth2/token",
                    &app,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", &app.redirect_uri),
                    ],
                )
                .await
            }
            2 => exchange(base, &other, &code, &p.verifier).await,
            _ => {
                let moved = App {
                    redirect_uri: "http://127.0.0.1:9/other".to_owned(),
                    ..app.clone()
                };
                exchange(base, &moved, &code, &p.verifier).await
            }
        };
        assert_eq!(r.status, 400, "attempt {attempt}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant", "attempt {attempt}");
        assert!(r.json().get("access_token").is_none());
        let again = exchange(base, &app, &code, &p.verifier).await;
        assert_eq!(
            again.json()["error"],
            "invalid_grant",
            "burnt after attempt {attempt}"
        );
    }

    // Reuse: the second exchange fails and revokes what the first issued.
    let p = pkce();
    let code = code_for(&c.admin, &app, &p).await;
    let first = exchange(base, &app, &code, &p.verifier).await;
    assert_eq!(first.status, 200);
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();
    let api = Person::new(base);
    let ok = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(ok.status, 200);
    let second = exchange(base, &app, &code, &p.verifier).await;
    assert_eq!(second.json()["error"], "invalid_grant");
    let dead = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(dead.status, 401, "{}", dead.body);
    assert_eq!(dead.json()["error"], "invalid_token");
    let r = post_form(
        base,
        "/oauth2/token",
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // A code of another company's file, or a made-up one, finds nothing.
    let r = exchange(
        base,
        &app,
        &format!("{}.{}", c.tenant_id, "A".repeat(43)),
        &p.verifier,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn clients_authenticate_with_basic_post_or_none_as_registered() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let spa = app_of(&t, &["--public"]);
    let base = &t.address;
    let token_form = |code: &str, verifier: &str, redirect: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect.to_owned()),
            ("code_verifier".to_owned(), verifier.to_owned()),
        ]
    };
    let post = |fields: Vec<(String, String)>, basic: Option<(&str, &str)>| {
        let mut req = tests::http::client()
            .post(format!("{base}/oauth2/token"))
            .form(&fields);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        read(req)
    };
    let secret = app.secret.clone().unwrap();

    // Wrong secret (basic and post), no secret for a confidential app: invalid_client.
    let p = pkce();
    let code = code_for(&c.admin, &app, &p).await;
    let r = post(
        token_form(&code, &p.verifier, &app.redirect_uri),
        Some((&app.client_id, "wrong")),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    assert!(r.header("www-authenticate").starts_with("Basic"));
    let mut f = token_form(&code, &p.verifier, &app.redirect_uri);
    f.push(("client_id".into(), app.client_id.clone()));
    let r = post(f.clone(), None).await;
    assert_eq!(r.json()["error"], "invalid_client");
    f.push(("client_secret".into(), "wrong".into()));
    assert_eq!(post(f, None).await.json()["error"], "invalid_client");
    // The code survived failed client authentication; client_secret_post works.
    let mut f = token_form(&code, &p.verifier, &app.redirect_uri);
    f.push(("client_id".into(), app.client_id.clone()));
    f.push(("client_secret".into(), secret.clone()));
    let r = post(f, None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A public app: `none`, and it cannot claim a secret.
    let p = pkce();
    let code = code_for(&c.admin, &spa, &p).await;
    let mut f = token_form(&code, &p.verifier, &spa.redirect_uri);
    f.push(("client_id".into(), spa.client_id.clone()));
    let mut with_secret = f.clone();
    with_secret.push(("client_secret".into(), "anything".into()));
    assert_eq!(
        post(with_secret, None).await.json()["error"],
        "invalid_client"
    );
    let r = post(f, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let base = &t.address;
    let first = tokens_for(base, &c.admin, &app).await;
    let r1 = first.refresh.clone().unwrap();
    let refresh = |token: String| {
        let app = app.clone();
        async move {
            post_form(
                base,
                "/oauth2/token",
                &app,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let second = refresh(r1.clone()).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r2 = second.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r2, r1);
    let (_, id2) = jwt_parts(second.json()["id_token"].as_str().unwrap());
    assert!(
        id2.get("nonce").is_none(),
        "no nonce on a refreshed ID token"
    );
    let access2 = second.json()["access_token"].as_str().unwrap().to_owned();

    // Narrowing the scope is allowed; widening is not.
    let r = post_form(
        base,
        "/oauth2/token",
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");

    // The used r1 again: refused, and r2 and its access token die with the family.
    let reuse = refresh(r1).await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(refresh(r2).await.json()["error"], "invalid_grant");
    let api = Person::new(base);
    let dead = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&access2),
    )
    .await;
    assert_eq!(dead.status, 401);
    let audit = c
        .admin
        .get("/api/admin/audit?action=oidc.refresh_reused")
        .await;
    assert!(audit.body.contains("oidc.refresh_reused"), "{}", audit.body);
}

#[tokio::test]
async fn bearer_tokens_have_the_persons_rights_and_no_more() {
    let t = server().await;
    let acme = t.company("acme").await;
    let globex = t.company("globex").await;
    let member = t.add_user(&acme.admin, "mo@acme.test", "member").await;
    let app = app_of(&t, &[]);
    let base = &t.address;
    let api = Person::new(base);
    let get = |token: String, path: &'static str| {
        let api = api.clone();
        async move { read(api.request(Method::GET, path).bearer_auth(token)).await }
    };
    let member_tokens = tokens_for(base, &member.person, &app).await;
    let admin_tokens = tokens_for(base, &acme.admin, &app).await;

    assert_eq!(
        get(member_tokens.access.clone(), "/api/session")
            .await
            .status,
        200
    );
    assert_eq!(
        get(member_tokens.access.clone(), "/api/admin/users")
            .await
            .status,
        403
    );
    // Another company's user, with acme's admin token: 404 as with a cookie.
    let path = format!("/api/admin/users/{}", globex.admin_id);
    let r = read(
        api.request(Method::GET, &path)
            .bearer_auth(&admin_tokens.access),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = read(
        api.request(Method::DELETE, &path)
            .bearer_auth(&admin_tokens.access),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Forged tokens: unsigned, altered, signed by another key, an ID token as access token.
    let (h, claims) = jwt_parts(&admin_tokens.access);
    let sig = admin_tokens.access.rsplit('.').next().unwrap();
    let enc = |v: &Value| B64.encode(v.to_string());
    let mut none_header = h.clone();
    none_header["alg"] = json!("none");
    let mut promoted = jwt_parts(&member_tokens.access).1;
    promoted["role"] = json!("admin");
    let mut hs = h.clone();
    hs["alg"] = json!("HS256");
    for forged in [
        format!("{}.{}.", enc(&none_header), enc(&claims)),
        format!("{}.{}", enc(&none_header), enc(&claims)),
        format!("{}.{}.{sig}", enc(&h), enc(&promoted)),
        format!("{}.{}.{sig}", enc(&hs), enc(&claims)),
        admin_tokens.id.clone(),
        "not-a-token".to_owned(),
    ] {
        let r = read(
            api.request(Method::GET, "/api/admin/users")
                .bearer_auth(&forged),
        )
        .await;
        assert_eq!(r.status, 401, "{forged}: {}", r.body);
        assert!(
            r.header("www-authenticate").starts_with("Bearer"),
            "{forged}"
        );
    }

    // Blocked, deleted, signed out: the token stops at once.
    let blocked = tokens_for(base, &member.person, &app).await;
    let r = acme
        .admin
        .patch(
            &format!("/api/admin/users/{}", member.id),
            json!({"blocked": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(blocked.access, "/api/session").await.status, 401);
    let gone = t.add_user(&acme.admin, "gone@acme.test", "member").await;
    let gone_tokens = tokens_for(base, &gone.person, &app).await;
    assert_eq!(
        acme.admin
            .delete(&format!("/api/admin/users/{}", gone.id))
            .await
            .status,
        204
    );
    assert_eq!(get(gone_tokens.access, "/api/session").await.status, 401);
    let out = tokens_for(base, &acme.admin, &app).await;
    let r = read(
        api.request(Method::POST, "/api/auth/logout")
            .bearer_auth(&out.access),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(out.access, "/api/session").await.status, 401);
}

#[tokio::test]
async fn prompt_none_and_prompt_login_and_max_age() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let p = pkce();
    // Nobody signed in: prompt=none answers login_required without a page.
    let r = t
        .person()
        .get(&authorize_path(&app, &p, &[("prompt", "none")]))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        param(r.location(), "error").as_deref(),
        Some("login_required")
    );
    // Signed in: prompt=none gives a code; prompt=login and max_age=0 send to the login page.
    let r = c
        .admin
        .get(&authorize_path(&app, &p, &[("prompt", "none")]))
        .await;
    assert!(param(r.location(), "code").is_some(), "{}", r.location());
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let r = c.admin.get(&authorize_path(&app, &p, &[extra])).await;
        assert!(
            r.location().starts_with("/login?pending="),
            "{extra:?}: {}",
            r.location()
        );
        // The login page shows the form even though a session exists.
        let page = c.admin.get(r.location()).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let back = sign_in_on_login_page(&c.admin, r.location(), &c.admin_email).await;
        assert!(param(&back, "code").is_some(), "{extra:?}: {back}");
    }
}

#[tokio::test]
async fn a_suspended_company_or_a_blocked_person_gets_access_denied() {
    let t = server().await;
    let c = t.company("acme").await;
    let m = t.add_user(&c.admin, "mo@acme.test", "member").await;
    let app = app_of(&t, &[]);
    let p = pkce();
    let r = c
        .admin
        .patch(
            &format!("/api/admin/users/{}", m.id),
            json!({"blocked": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    let browser = t.person();
    let r = browser.get(&authorize_path(&app, &p, &[])).await;
    let back = {
        let page = browser.get(r.location()).await;
        let csrf = csrf_of(&page.body);
        let pending = param(&format!("http://x{}", r.location()), "pending").unwrap();
        form(
            &browser,
            "/login",
            &[
                ("csrf", &csrf),
                ("email", &m.email),
                ("password", PASSWORD),
                ("pending", &pending),
            ],
        )
        .await
    };
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(
        back.location().starts_with(&app.redirect_uri),
        "{}",
        back.location()
    );
    assert_eq!(
        param(back.location(), "error").as_deref(),
        Some("access_denied")
    );

    t.set_tenant_status("acme", true);
    let r = c.admin.get(&authorize_path(&app, &p, &[])).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        param(r.location(), "error").as_deref(),
        Some("access_denied"),
        "{}",
        r.location()
    );
}

#[tokio::test]
async fn revocation_and_introspection_answer_for_the_clients_own_tokens() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let other = app_of(&t, &[]);
    let base = &t.address;
    let tokens = tokens_for(base, &c.admin, &app).await;
    let introspect = |a: &App, token: &str| {
        let (a, token) = (a.clone(), token.to_owned());
        async move {
            post_form(base, "/oauth2/introspect", &a, &[("token", &token)])
                .await
                .json()
        }
    };
    let i = introspect(&app, &tokens.access).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], c.admin_id.as_str());
    assert_eq!(i["client_id"], app.client_id.as_str());
    assert_eq!(
        introspect(&app, tokens.refresh.as_deref().unwrap()).await["active"],
        true
    );
    // Another client sees nothing.
    assert_eq!(introspect(&other, &tokens.access).await["active"], false);
    // Another client cannot revoke it either.
    let r = post_form(
        base,
        "/oauth2/revoke",
        &other,
        &[("token", tokens.refresh.as_deref().unwrap())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&app, &tokens.access).await["active"], true);
    // Revoking the refresh token ends the grant: both tokens inactive, the API refuses.
    let r = post_form(
        base,
        "/oauth2/revoke",
        &app,
        &[("token", tokens.refresh.as_deref().unwrap())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&app, &tokens.access).await["active"], false);
    assert_eq!(
        introspect(&app, tokens.refresh.as_deref().unwrap()).await["active"],
        false
    );
    let api = Person::new(base);
    let dead = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&tokens.access),
    )
    .await;
    assert_eq!(dead.status, 401);
    // An unknown token is fine to revoke (RFC 7009).
    assert_eq!(
        post_form(base, "/oauth2/revoke", &app, &[("token", "nonsense")])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_goes_back_to_a_registered_uri_only() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(
        &t,
        &["--post-logout-redirect-uri", "http://127.0.0.1:9/bye"],
    );
    let tokens = tokens_for(&t.address, &c.admin, &app).await;
    let q = |uri: &str| {
        format!(
            "/oauth2/logout?id_token_hint={}&post_logout_redirect_uri={}&state=s1",
            tokens.id, uri
        )
    };
    // An unregistered URI: a page, no redirect, still signed in.
    let r = c.admin.get(&q("https://evil.test/")).await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_empty());
    assert_eq!(c.admin.get("/api/session").await.status, 200);
    // Without a hint: the person confirms first.
    let r = c.admin.get("/oauth2/logout").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Sign out?"), "{}", r.body);
    assert_eq!(c.admin.get("/api/session").await.status, 200);
    // With the app's hint: ended at once, back to the app with its state.
    let r = c.admin.get(&q("http://127.0.0.1:9/bye")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "http://127.0.0.1:9/bye?state=s1");
    assert_eq!(c.admin.get("/api/session").await.status, 401);
    let api = Person::new(&t.address);
    let dead = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&tokens.access),
    )
    .await;
    assert_eq!(dead.status, 401);
}

#[tokio::test]
async fn back_channel_logouts_reach_the_app_and_survive_a_restart() {
    // Arrange: an app with a back-channel endpoint that fails its first deliveries.
    let mut t = server().await;
    let c = t.company("acme").await;
    let rx = Receiver::start().await;
    let app = app_of(&t, &["--backchannel-logout-uri", &rx.url]);
    let tokens = tokens_for(&t.address, &c.admin, &app).await;
    let (_, id) = jwt_parts(&tokens.id);
    let sid = id["sid"].as_str().unwrap().to_owned();
    rx.fail_next(&[503]);

    // Act: the person signs out; the first delivery fails; tenantd dies and comes back.
    let r = c.admin.post_empty("/api/auth/logout").await;
    assert_eq!(r.status, 200);
    tests::poll(LOGOUT_WAIT, "a first delivery attempt", || async {
        let left = rx.received().len();
        // The receiver popped its 503 once the attempt came.
        if left == 0 && rx_attempted(&rx) {
            Ok(())
        } else {
            Err(String::new())
        }
    })
    .await;
    t.restart();

    // Assert: delivered after the restart, signed, with the session and the person.
    let claims = rx.wait_for(&sid, Duration::from_secs(60)).await;
    assert_eq!(claims["sub"], c.admin_id.as_str());
    assert_eq!(claims["aud"], app.client_id.as_str());
    assert_eq!(claims["iss"], t.public_url.as_str());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    let refresh = post_form(
        &t.address,
        "/oauth2/token",
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    let audit = t
        .login(&c.admin_email, PASSWORD)
        .await
        .get("/api/admin/audit?action=oidc.logout_sent")
        .await;
    assert!(audit.body.contains("oidc.logout_sent"), "{}", audit.body);
}

/// Whether the receiver has answered its queued failure already.
fn rx_attempted(rx: &Receiver) -> bool {
    rx.pending_failures() == 0
}

#[tokio::test]
async fn a_suspended_company_and_a_restore_log_the_apps_out() {
    let t = server().await;
    let c = t.company("acme").await;
    let rx = Receiver::start().await;
    let app = app_of(&t, &["--backchannel-logout-uri", &rx.url]);

    // A restore raises the auth epoch: the session of the live file ends for the app.
    let backup = t.data.path().join("backup");
    t.ctl().json(&["backup", "--out", backup.to_str().unwrap()]);
    let before = tokens_for(&t.address, &c.admin, &app).await;
    let sid = jwt_parts(&before.id).1["sid"].as_str().unwrap().to_owned();
    t.ctl().json(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--tenant",
        "acme",
    ]);
    rx.wait_for(&sid, LOGOUT_WAIT).await;

    // Suspension: every grant of the company ends.
    let admin = t.login(&c.admin_email, PASSWORD).await;
    let during = tokens_for(&t.address, &admin, &app).await;
    let sid = jwt_parts(&during.id).1["sid"].as_str().unwrap().to_owned();
    t.set_tenant_status("acme", true);
    rx.wait_for(&sid, LOGOUT_WAIT).await;
    t.set_tenant_status("acme", false);
    let r = post_form(
        &t.address,
        "/oauth2/token",
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", during.refresh.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "the grant did not come back with the company"
    );
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_and_signs_after_its_delay() {
    let t = server().await;
    let c = t.company("acme").await;
    let app = app_of(&t, &[]);
    let first = tokens_for(&t.address, &c.admin, &app).await;
    let old_kid = jwt_parts(&first.id).0["kid"].as_str().unwrap().to_owned();
    let later = t.ctl().json(&["keys", "rotate", "--sign-after", "1h"]);
    let next_kid = later["key"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(later["key"]["state"], "next");
    let jwks = t.person().get("/oauth2/jwks").await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&next_kid.as_str()),
        "{kids:?}"
    );
    let still = tokens_for(&t.address, &c.admin, &app).await;
    assert_eq!(jwt_parts(&still.id).0["kid"], old_kid.as_str());

    // A key that signs now: new tokens use it within the nodes' reload time; old tokens
    // still verify (the old key stays published).
    let now = t.ctl().json(&["keys", "rotate", "--sign-after", "0s"]);
    let now_kid = now["key"]["kid"].as_str().unwrap().to_owned();
    tests::poll(
        Duration::from_secs(30),
        "tokens signed with the new key",
        || async {
            let tk = tokens_for(&t.address, &c.admin, &app).await;
            let kid = jwt_parts(&tk.id).0["kid"].as_str().unwrap().to_owned();
            if kid == now_kid { Ok(()) } else { Err(kid) }
        },
    )
    .await;
    let api = Person::new(&t.address);
    let r = read(
        api.request(Method::GET, "/api/session")
            .bearer_auth(&first.access),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "a token of the old key still works: {}",
        r.body
    );
    // The key published for later never signed: the new rotation replaced it.
    let jwks = t.person().get("/oauth2/jwks").await.json();
    assert!(!jwks.to_string().contains(&next_kid), "{jwks}");
    let listed = t.ctl().json(&["keys", "list"]);
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "retiring"),
        "{listed}"
    );
}

#[tokio::test]
async fn cors_answers_registered_web_origins_only_and_never_with_credentials() {
    let t = server().await;
    let _app = app_of(&t, &["--public", "--web-origin", "https://spa.example"]);
    let preflight = |origin: &'static str| {
        read(
            tests::http::client()
                .request(Method::OPTIONS, format!("{}/api/session", t.address))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization"),
        )
    };
    let ok = preflight("https://spa.example").await;
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        "https://spa.example"
    );
    assert!(
        ok.header("access-control-allow-headers")
            .contains("authorization")
    );
    assert!(ok.header("access-control-allow-credentials").is_empty());
    let no = preflight("https://evil.example").await;
    assert!(no.header("access-control-allow-origin").is_empty());
    // A cross-site request riding on the cookie is refused.
    let c = t.company("acme").await;
    let r = read(
        c.admin
            .request(Method::POST, "/api/auth/logout-all")
            .header("origin", "https://spa.example")
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

/// Time-bound rules, with the in-process server's manual clock: a code lives 60 s, an access
/// token `TENANTD_ACCESS_TOKEN_SECS`, and a grant no longer than its session's idle time.
mod expiry {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use tests::inproc::InProc;
    use tests::oidc::{param, pkce};

    const REDIRECT: &str = "http://127.0.0.1:9/cb";

    async fn code(t: &InProc, cookie: &str, client: &str, challenge: &str) -> String {
        let path = format!(
            "/oauth2/authorize?response_type=code&client_id={client}&redirect_uri={REDIRECT}&scope=openid%20offline_access&code_challenge={challenge}&code_challenge_method=S256"
        );
        let r = t.get(&path, Some(cookie)).await;
        assert_eq!(r.status, 303, "{}", r.body);
        param(r.location(), "code").expect("code")
    }

    async fn exchange(
        t: &InProc,
        client: &(String, String),
        code: &str,
        verifier: &str,
    ) -> tests::Reply {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1))
        );
        t.form(
            "/oauth2/token",
            &[("authorization", &basic)],
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    #[tokio::test]
    async fn codes_expire_after_a_minute_and_access_tokens_after_their_lifetime() {
        let t = InProc::new().await;
        let (_, admin) = t.company("acme").await;
        let client = t.client(REDIRECT).await;
        let p = pkce();

        // A code used after 61 s: refused.
        let c = code(&t, &admin, &client.0, &p.challenge).await;
        t.clock.advance(61);
        let r = exchange(&t, &client, &c, &p.verifier).await;
        assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);

        // An access token works until its expiry, not after.
        let c = code(&t, &admin, &client.0, &p.challenge).await;
        let r = exchange(&t, &client, &c, &p.verifier).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        let bearer = format!("Bearer {access}");
        assert_eq!(
            t.get_with("/api/session", &[("authorization", &bearer)])
                .await
                .status,
            200
        );
        t.clock.advance(299);
        assert_eq!(
            t.get_with("/api/session", &[("authorization", &bearer)])
                .await
                .status,
            200
        );
        t.clock.advance(2);
        let r = t
            .get_with("/api/session", &[("authorization", &bearer)])
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
        // Nor does re-signing the same claims with a later expiry without our key help.
        let mut parts = access.split('.');
        let (h, c, s) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(c).unwrap()).unwrap();
        claims["exp"] = serde_json::json!(t.clock_now() + 600);
        let forged = format!("Bearer {h}.{}.{s}", B64.encode(claims.to_string()));
        assert_eq!(
            t.get_with("/api/session", &[("authorization", &forged)])
                .await
                .status,
            401
        );
    }

    #[tokio::test]
    async fn a_grant_ends_when_its_session_times_out() {
        let t = InProc::new().await;
        let (_, admin) = t.company("acme").await;
        let client = t.client(REDIRECT).await;
        let p = pkce();
        let c = code(&t, &admin, &client.0, &p.challenge).await;
        let r = exchange(&t, &client, &c, &p.verifier).await;
        let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1))
        );
        let use_refresh = |token: String| {
            let basic = basic.clone();
            let t = &t;
            async move {
                t.form(
                    "/oauth2/token",
                    &[("authorization", &basic)],
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await
            }
        };
        // Refreshing keeps the session alive past its idle time...
        t.clock.advance(1500);
        let r = use_refresh(refresh).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
        t.clock.advance(1500);
        let r = use_refresh(refresh).await;
        assert_eq!(r.status, 200, "refresh touched the session: {}", r.body);
        let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
        // ...but a session idle for longer than the idle time ends its grants.
        t.clock.advance(1801);
        let r = use_refresh(refresh).await;
        assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);
    }
}
