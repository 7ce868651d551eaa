//! Companies' own identity providers, through the real binaries against real counterparts:
//! domains proven by TXT records served by `dnsmasq`, connections to `oidc-provider` IdPs,
//! sign-ins through them (linking, creation, the policy), every refusal with its stable code
//! and no session, social sign-in, and the vendor app's pending request resumed.

use serde_json::{Value, json};
use tests::http::{csrf_of, form};
use tests::oidc::{self, exchange, jwt_parts, pkce};
use tests::sso::{Dns, Idp, Outcome, account, sign_in, sign_in_from};
use tests::{Company, Options, PASSWORD, Person, TestApp};

const CALLBACK: &str = "/sso/callback";

/// A server at its own address (the IdP sends browsers back there), asking `dns` for TXT.
async fn app_with_dns(dns_port: u16) -> TestApp {
    let mut opts = Options::at_own_address();
    opts.env.push((
        "TENANTD_DNS_RESOLVER".into(),
        format!("127.0.0.1:{dns_port}"),
    ));
    TestApp::spawn_with(opts).await
}

async fn app() -> TestApp {
    TestApp::spawn_with(Options::at_own_address()).await
}

/// Adds a connection of `company` to `idp` for `domains`.
pub(crate) async fn connect(company: &Company, idp: &Idp, domains: &[&str], jit: bool) -> Value {
    let r = company
        .admin
        .post(
            "/api/admin/sso/connections",
            json!({"kind": "oidc", "name": "Company IdP", "issuer": idp.issuer,
                "client_id": idp.client_id, "client_secret": idp.client_secret,
                "domains": domains, "jit": {"enabled": jit, "role": "member"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

async fn session_of(p: &Person) -> Option<Value> {
    let r = p.get("/api/session").await;
    (r.status == 200).then(|| r.json())
}

/// Asserts a sign-in failed with `code` and left no session.
async fn refused(p: &Person, out: &Outcome, code: &str) {
    assert_eq!(out.callback.status, 303, "{}", out.callback.body);
    assert_eq!(out.error_code().as_deref(), Some(code), "{out:?}");
    assert!(out.callback.session().is_none(), "a session cookie was set");
    assert!(session_of(p).await.is_none(), "signed in after {code}");
    // The error page names the code.
    let page = p.get(&format!("/sso/error?code={code}")).await;
    assert!(page.body.contains(code), "{}", page.body);
}

async fn audit_codes(company: &Company) -> Vec<String> {
    let v = company.admin.get("/api/admin/audit?limit=200").await.json();
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "sso.failed")
        .map(|e| e["details"]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn domains_are_proven_with_a_txt_record_from_a_real_dns_server() {
    let dns_port = Dns::free_port();
    let app = app_with_dns(dns_port).await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;

    // The operator's domain counts as verified.
    let list = acme.admin.get("/api/admin/domains").await.json();
    assert_eq!(list["domains"][0]["domain"], "acme.test", "{list}");
    assert_eq!(list["domains"][0]["status"], "verified");

    let r = acme
        .admin
        .post(
            "/api/admin/domains",
            json!({"domain": "Corp.Acme-Group.TEST."}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let claim = r.json();
    assert_eq!(claim["domain"], "corp.acme-group.test");
    assert_eq!(claim["status"], "pending");
    assert_eq!(claim["txt_name"], "_tenantd-challenge.corp.acme-group.test");
    let value = claim["txt_value"].as_str().unwrap().to_owned();
    assert!(value.len() >= 32);

    // Another company may claim it too, but not prove it without the record.
    let r = beta
        .admin
        .post(
            "/api/admin/domains",
            json!({"domain": "corp.acme-group.test"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // A record with another value: refused, saying what was found.
    {
        let _dns = Dns::start(
            dns_port,
            &[("_tenantd-challenge.corp.acme-group.test", "not-the-value")],
        )
        .await;
        let r = acme
            .admin
            .post_empty("/api/admin/domains/corp.acme-group.test/verify")
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.code(), "domain_not_verified");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("not-the-value"),
            "{}",
            r.body
        );
    }
    let dns = Dns::start(
        dns_port,
        &[("_tenantd-challenge.corp.acme-group.test", &value)],
    )
    .await;
    let r = acme
        .admin
        .post_empty("/api/admin/domains/corp.acme-group.test/verify")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "verified");
    // Now acme's: beta can neither claim nor verify it.
    let r = beta
        .admin
        .post(
            "/api/admin/domains",
            json!({"domain": "corp.acme-group.test"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "domain_taken".into()),
        "{}",
        r.body
    );
    let r = beta
        .admin
        .post_empty("/api/admin/domains/corp.acme-group.test/verify")
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "domain_taken".into()),
        "{}",
        r.body
    );
    let r = beta
        .admin
        .post("/api/admin/domains", json!({"domain": "acme.test"}))
        .await;
    assert_eq!(r.code(), "domain_taken");
    // The verified domain's addresses now go to acme.
    let v = acme
        .admin
        .post(
            "/api/auth/discover",
            json!({"email": "x@corp.acme-group.test"}),
        )
        .await;
    assert_eq!(v.json()["method"], "password");
    drop(dns);

    // Internationalised names in their ASCII form; nonsense refused.
    let r = acme
        .admin
        .post("/api/admin/domains", json!({"domain": "bücher-acme.test"}))
        .await;
    assert_eq!(r.json()["domain"], "xn--bcher-acme-9db.test", "{}", r.body);
    for bad in ["", "localhost", "a b.test", "x@y.test", "-a.test"] {
        let r = acme
            .admin
            .post("/api/admin/domains", json!({"domain": bad}))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_domain".into()),
            "{bad}"
        );
    }
    let r = acme.admin.get("/api/admin/domains").await.json();
    let names: Vec<&str> = r["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acme.test",
            "corp.acme-group.test",
            "xn--bcher-acme-9db.test"
        ]
    );
    let r = acme
        .admin
        .delete("/api/admin/domains/xn--bcher-acme-9db.test")
        .await;
    assert_eq!(r.status, 204);
    let r = acme
        .admin
        .delete("/api/admin/domains/xn--bcher-acme-9db.test")
        .await;
    assert_eq!(r.status, 404);
    // Members may not.
    let m = app.add_user(&acme.admin, "m@acme.test", "member").await;
    assert_eq!(m.person.get("/api/admin/domains").await.status, 403);
    let audit = acme.admin.get("/api/admin/audit").await.json().to_string();
    assert!(audit.contains("domain.verified") && audit.contains("domain.claimed"));
}

#[tokio::test]
async fn connections_are_managed_by_the_admin_and_never_show_the_secret() {
    let app = app().await;
    let acme = app.company("acme").await;
    let idp = Idp::start(&format!("{}{CALLBACK}", app.public_url), json!({}));

    let r = acme
        .admin
        .post(
            "/api/admin/sso/connections",
            json!({"name": "X", "issuer": idp.issuer,
        "client_id": "a", "client_secret": "b", "domains": ["elsewhere.test"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "domain_not_verified".into()),
        "{}",
        r.body
    );
    for bad in [
        json!({"name": "X", "issuer": "ftp://x", "client_id": "a", "client_secret": "b"}),
        json!({"name": "X", "issuer": "http://idp.example", "client_id": "a", "client_secret": "b"}),
        json!({"kind": "saml", "name": "X"}),
        json!({"name": "X", "issuer": idp.issuer, "client_id": "a"}),
    ] {
        let r = acme
            .admin
            .post("/api/admin/sso/connections", bad.clone())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_connection".into()),
            "{bad}: {}",
            r.body
        );
    }
    let c = connect(&acme, &idp, &["acme.test"], true).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["kind"], "oidc");
    assert_eq!(c["callback_url"], format!("{}{CALLBACK}", app.public_url));
    assert_eq!(
        c["client_secret_last4"],
        idp.client_secret[idp.client_secret.len() - 4..]
    );
    assert!(!c.to_string().contains(&idp.client_secret));
    assert_eq!(c["jit"], json!({"enabled": true, "role": "member"}));

    let got = acme
        .admin
        .get(&format!("/api/admin/sso/connections/{id}"))
        .await;
    assert!(!got.body.contains(&idp.client_secret));
    let r = acme
        .admin
        .patch(
            &format!("/api/admin/sso/connections/{id}"),
            json!({"name": "Okta", "jit": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "Okta");
    assert_eq!(r.json()["jit"]["enabled"], false);

    // The secret is sealed in the company's file.
    let files: Vec<_> = walk(&app.data_dir());
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes
                .windows(idp.client_secret.len())
                .any(|w| w == idp.client_secret.as_bytes()),
            "the client secret is readable in {}",
            f.display()
        );
    }

    let t = acme
        .admin
        .post_empty(&format!("/api/admin/sso/connections/{id}/test"))
        .await
        .json();
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["signing_keys"], 1);
    assert!(
        t["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&idp.issuer)
    );
    let list = acme.admin.get("/api/admin/sso/connections").await.json();
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);

    // A provider that is not there: reported, not a failure of ours.
    let r = acme
        .admin
        .patch(
            &format!("/api/admin/sso/connections/{id}"),
            json!({"issuer": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let t = acme
        .admin
        .post_empty(&format!("/api/admin/sso/connections/{id}/test"))
        .await
        .json();
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("could not be fetched"),
        "{t}"
    );

    let m = app.add_user(&acme.admin, "m@acme.test", "member").await;
    assert_eq!(m.person.get("/api/admin/sso/connections").await.status, 403);
    assert_eq!(
        acme.admin
            .delete(&format!("/api/admin/sso/connections/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        acme.admin
            .get(&format!("/api/admin/sso/connections/{id}"))
            .await
            .status,
        404
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn people_sign_in_through_their_company_idp_linked_or_created_and_every_refusal_has_its_code()
{
    let app = app().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    let idp = Idp::start(
        &format!("{}{CALLBACK}", app.public_url),
        json!({
            "sub-member": account("member@acme.test", true),
            "sub-new": account("new.person@acme.test", true),
            "sub-unverified": account("shy@acme.test", false),
            "sub-foreign": account("someone@elsewhere.test", true),
            "sub-beta": account("bo@beta.test", true),
            "sub-blocked": account("blocked@acme.test", true),
        }),
    );
    let conn = connect(&acme, &idp, &["acme.test"], true).await;
    let base = app.address.clone();
    let member = app
        .add_user(&acme.admin, "member@acme.test", "member")
        .await;
    app.add_user(&beta.admin, "bo@beta.test", "member").await;

    // Where an email goes: the domain alone decides.
    let anon = app.person();
    for (email, method) in [
        ("member@acme.test", "sso"),
        ("nobody@acme.test", "sso"),
        ("bo@beta.test", "password"),
        ("x@nowhere.test", "password"),
    ] {
        let v = anon
            .post("/api/auth/discover", json!({"email": email}))
            .await
            .json();
        assert_eq!(v["method"], method, "{email}: {v}");
    }

    // An existing person, found by the verified email and linked.
    let p = app.person();
    let out = sign_in(&p, &base, "member@acme.test", &idp.issuer, "sub-member").await;
    assert_eq!(out.callback.status, 303, "{}", out.callback.body);
    assert_eq!(out.callback.location(), "/account");
    let s = session_of(&p).await.expect("signed in");
    assert_eq!(s["user"]["id"], member.id.as_str());
    // The state was used once: the same callback again is refused.
    let again = p.get(&out.callback_url[base.len()..]).await;
    assert_eq!(again.location(), "/sso/error?code=invalid_state");

    // Once linked, the `sub` finds the person even if the IdP's email changes.
    idp.accounts(json!({"sub-member": account("renamed@acme.test", false)}))
        .await;
    let p = app.person();
    let out = sign_in(&p, &base, "member@acme.test", &idp.issuer, "sub-member").await;
    assert_eq!(out.callback.location(), "/account");
    assert_eq!(
        session_of(&p).await.unwrap()["user"]["id"],
        member.id.as_str()
    );

    // First sign-in of someone new: created with the connection's role.
    let p = app.person();
    let out = sign_in(&p, &base, "new.person@acme.test", &idp.issuer, "sub-new").await;
    assert_eq!(out.callback.location(), "/account", "{out:?}");
    let s = session_of(&p).await.unwrap();
    assert_eq!(s["user"]["email"], "new.person@acme.test");
    assert_eq!(s["user"]["role"], "member");

    // Refusals, each with its code and no session.
    let cases = [
        ("sub-unverified", "email_not_verified"),
        ("sub-foreign", "domain_not_allowed"),
        // A person of company B through company A's connection.
        ("sub-beta", "domain_not_allowed"),
        ("deny", "provider_error"),
    ];
    for (login, code) in cases {
        let p = app.person();
        let out = sign_in(&p, &base, "member@acme.test", &idp.issuer, login).await;
        refused(&p, &out, code).await;
    }
    let bo = app.person();
    let out = sign_in(&bo, &base, "x@acme.test", &idp.issuer, "sub-beta").await;
    refused(&bo, &out, "domain_not_allowed").await;

    // Blocked people stay out.
    let blocked = app
        .add_user(&acme.admin, "blocked@acme.test", "member")
        .await;
    assert_eq!(acme.admin.set_blocked(&blocked.id, true).await.status, 200);
    let p = app.person();
    let out = sign_in(&p, &base, "blocked@acme.test", &idp.issuer, "sub-blocked").await;
    refused(&p, &out, "account_blocked").await;

    // Without automatic creation, a stranger is told to ask for an invitation.
    let id = conn["id"].as_str().unwrap();
    let r = acme
        .admin
        .patch(
            &format!("/api/admin/sso/connections/{id}"),
            json!({"jit": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, 200);
    idp.accounts(json!({"sub-late": account("late@acme.test", true)}))
        .await;
    let p = app.person();
    let out = sign_in(&p, &base, "late@acme.test", &idp.issuer, "sub-late").await;
    refused(&p, &out, "no_account").await;

    // The provider rotates its keys: the new key is fetched once, and signs in.
    idp.rotate_keys().await;
    let p = app.person();
    let out = sign_in(&p, &base, "member@acme.test", &idp.issuer, "sub-member").await;
    assert_eq!(out.callback.location(), "/account", "{out:?}");

    // Forged ID tokens, through the real callback.
    for kind in [
        "alg_none",
        "hmac_public_key",
        "unknown_key",
        "wrong_iss",
        "wrong_aud",
        "other_azp",
        "expired",
        "future_iat",
        "wrong_nonce",
    ] {
        idp.forge(kind).await;
        let p = app.person();
        let out = sign_in(&p, &base, "member@acme.test", &idp.issuer, "sub-member").await;
        refused(&p, &out, "invalid_id_token").await;
    }

    // Forged, replayed or stolen `state`.
    let p = app.person();
    let forged = format!(
        "{CALLBACK}?state={}.{}&code=x",
        acme.tenant_id,
        "A".repeat(43)
    );
    assert_eq!(
        p.get(&forged).await.location(),
        "/sso/error?code=invalid_state"
    );
    assert_eq!(
        p.get(&format!("{CALLBACK}?state=garbage&code=x"))
            .await
            .location(),
        "/sso/error?code=invalid_state"
    );
    assert_eq!(
        p.get(CALLBACK).await.location(),
        "/sso/error?code=invalid_state"
    );
    // A callback URL taken to another browser finds nothing there.
    let victim = app.person();
    let d = victim
        .post("/api/auth/discover", json!({"email": "member@acme.test"}))
        .await
        .json();
    let start = d["redirect"].as_str().unwrap();
    let r = victim.get(&start[base.len()..]).await;
    let cb = tests::sso::through_idp(&victim, &idp.issuer, r.location(), "sub-member").await;
    let thief = app.person();
    assert_eq!(
        thief.get(&cb[base.len()..]).await.location(),
        "/sso/error?code=invalid_state"
    );
    assert!(session_of(&thief).await.is_none());

    // Every failure is in the company's audit log.
    let codes = audit_codes(&acme).await;
    for code in [
        "email_not_verified",
        "domain_not_allowed",
        "provider_error",
        "account_blocked",
        "no_account",
        "invalid_id_token",
        "invalid_state",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} not audited: {codes:?}"
        );
    }
    let audit = acme
        .admin
        .get("/api/admin/audit?limit=200")
        .await
        .json()
        .to_string();
    assert!(audit.contains("\"via\":\"sso\""), "login.succeeded via sso");
}

#[tokio::test]
async fn sso_required_refuses_passwords_with_a_break_glass_for_admins() {
    let app = app().await;
    let acme = app.company("acme").await;
    let member = app
        .add_user(&acme.admin, "member@acme.test", "member")
        .await;
    let _ = member;
    // Not without a connection people can use: nobody is locked out.
    let r = acme
        .admin
        .patch("/api/admin/policy", json!({"sso_required": true}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "sso_not_configured".into()),
        "{}",
        r.body
    );

    let idp = Idp::start(
        &format!("{}{CALLBACK}", app.public_url),
        json!({"sub-m": account("member@acme.test", true)}),
    );
    connect(&acme, &idp, &["acme.test"], false).await;
    let r = acme
        .admin
        .patch("/api/admin/policy", json!({"sso_required": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (_, r) = app.try_login("member@acme.test", PASSWORD).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "sso_required".into()),
        "{}",
        r.body
    );
    let (_, r) = app.try_login(&acme.admin_email, PASSWORD).await;
    assert_eq!(r.code(), "sso_required");
    // A wrong password says nothing about the policy.
    let (_, r) = app
        .try_login("member@acme.test", "wrong-password-123456")
        .await;
    assert_eq!(r.code(), "invalid_credentials");

    // Break-glass: admins keep their password, members do not.
    let r = acme
        .admin
        .patch(
            "/api/admin/policy",
            json!({"sso_required_except_admins": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    let (_, r) = app.try_login(&acme.admin_email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, r) = app.try_login("member@acme.test", PASSWORD).await;
    assert_eq!(r.code(), "sso_required");
    // An invitation is accepted through the IdP, not with a password.
    let id = app.invite(&acme.admin, "invited@acme.test", "member").await;
    let _ = id;
    let mail = app
        .wait_for_mail("invited@acme.test", tests::MAIL_WAIT)
        .await;
    let r = app.person().accept_invite(&mail.token, PASSWORD).await;
    assert_eq!(r.code(), "sso_required", "{}", r.body);
    // The member still signs in through the IdP.
    let p = app.person();
    let out = sign_in(&p, &app.address, "member@acme.test", &idp.issuer, "sub-m").await;
    assert_eq!(out.callback.location(), "/account", "{out:?}");
}

#[tokio::test]
async fn an_apps_pending_request_resumes_after_the_idp_and_the_tokens_say_fed() {
    let app = app().await;
    let acme = app.company("acme").await;
    app.add_user(&acme.admin, "member@acme.test", "member")
        .await;
    let idp = Idp::start(
        &format!("{}{CALLBACK}", app.public_url),
        json!({"sub-m": account("member@acme.test", true)}),
    );
    connect(&acme, &idp, &["acme.test"], false).await;
    let rp = oidc::register(&app, "http://127.0.0.1:9/cb", &[]);
    let pk = pkce();

    let p = app.person();
    let r = p.get(&oidc::authorize_path(&rp, &pk, &[])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let login = r.location().to_owned();
    assert!(login.starts_with("/login?"), "{login}");
    let page = p.get(&login).await;
    let pending = oidc::param(&format!("http://x{login}"), "pending").expect("pending");
    let csrf = csrf_of(&page.body);
    let step = form(
        &p,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "member@acme.test"),
            ("pending", &pending),
        ],
    )
    .await;
    assert_eq!(step.status, 200, "{}", step.body);
    let start = step
        .body
        .split("id=\"sso-continue\" class=\"btn btn-primary btn-block\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("continue link")
        .replace("&amp;", "&");
    assert!(start.starts_with("/sso/start?"), "{start}");
    let out = sign_in_from(&p, &app.address, &start, &idp.issuer, "sub-m").await;
    let back = out.callback.location().to_owned();
    assert!(back.starts_with("/oauth2/authorize?pending="), "{back}");
    let r = p.get(&back).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().starts_with(&rp.redirect_uri),
        "{}",
        r.location()
    );
    let code = oidc::param(r.location(), "code").expect("code");
    let tokens = exchange(&app.address, &rp, &code, &pk.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let (_, claims) = jwt_parts(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "member@acme.test");
    assert_eq!(claims["amr"], json!(["fed"]), "{claims}");
}

#[tokio::test]
async fn social_sign_in_admits_only_known_people_of_companies_that_allow_it() {
    let app = app().await;
    let acme = app.company("acme").await;
    let social = Idp::start(
        &format!("{}{CALLBACK}", app.public_url),
        json!({
            "g-invited": account("invited@acme.test", true),
            "g-stranger": account("stranger@acme.test", true),
            "g-unverified": account("admin@acme.test", false),
        }),
    );
    let out = app.ctl().json(&[
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
    assert_eq!(out["provider"]["name"], "testsocial", "{out}");
    let list = app.ctl().json(&["social", "list"]);
    assert!(!list.to_string().contains(&social.client_secret));
    let page = app.person().get("/login").await;
    assert!(
        page.body.contains("Continue with Test Social"),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/sso/social/testsocial\""));

    app.invite(&acme.admin, "invited@acme.test", "member").await;
    let base = app.address.clone();
    let go = |p: Person, login: &'static str| {
        let (base, issuer) = (base.clone(), social.issuer.clone());
        async move {
            let out = sign_in_from(&p, &base, "/sso/social/testsocial", &issuer, login).await;
            (p, out)
        }
    };
    // The company has not allowed social sign-in.
    let (p, out) = go(app.person(), "g-invited").await;
    refused(&p, &out, "social_not_allowed").await;
    let r = acme
        .admin
        .patch("/api/admin/policy", json!({"social_login": true}))
        .await;
    assert_eq!(r.status, 200);
    // No open sign-up: an unknown address stays out; an unverified one too.
    let (p, out) = go(app.person(), "g-stranger").await;
    refused(&p, &out, "social_not_allowed").await;
    let (p, out) = go(app.person(), "g-unverified").await;
    refused(&p, &out, "email_not_verified").await;
    // The invited person accepts the invitation this way.
    let (p, out) = go(app.person(), "g-invited").await;
    assert_eq!(out.callback.location(), "/account", "{out:?}");
    let s = session_of(&p).await.unwrap();
    assert_eq!(s["user"]["email"], "invited@acme.test");
    let users = acme.admin.get("/api/admin/users?q=invited").await.json();
    assert_eq!(users["users"][0]["status"], "active", "{users}");
    assert!(
        audit_codes(&acme)
            .await
            .iter()
            .any(|c| c == "social_not_allowed")
    );

    let removed = app.ctl().json(&["social", "remove", "testsocial"]);
    assert_eq!(removed["removed"], "testsocial");
    assert!(
        !app.person()
            .get("/login")
            .await
            .body
            .contains("Continue with")
    );
}

#[tokio::test]
async fn a_sign_in_through_the_idp_may_start_and_end_on_any_node() {
    use tests::cluster::{self, Node, SECRET};
    use tests::db::{Engine, TestDb};
    let Some(db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    let env = [
        ("TENANTD_DIRECTORY_URL", db.url.as_str()),
        ("TENANTD_NODE_SECRET", SECRET),
    ];
    let (n1, n2) = (Node::start("n1", &env), Node::start("n2", &env));
    let (_, session) = cluster::company(&n1, &n1.address, "far", &["--node", "n1"]).await;
    let public = "http://login.tenantd.test";
    let idp = Idp::start(
        &format!("{public}{CALLBACK}"),
        json!({"sub-a": account("admin@far.test", true)}),
    );
    // The admin works through n2; the company lives on n1.
    let r = n2
        .call(
            reqwest::Method::POST,
            "/api/admin/sso/connections",
            Some(&session),
            Some(
                json!({"name": "IdP", "issuer": idp.issuer, "client_id": idp.client_id,
                "client_secret": idp.client_secret, "domains": ["far.test"]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // The browser talks to n2 only: the start and the callback name the company, so n1 serves them.
    let p = Person::new(&n2.address);
    let d = p
        .post("/api/auth/discover", json!({"email": "admin@far.test"}))
        .await
        .json();
    let start = d["redirect"]
        .as_str()
        .expect("sso")
        .strip_prefix(public)
        .expect("public URL");
    let r = p.get(start).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cb = tests::sso::through_idp(&p, &idp.issuer, r.location(), "sub-a").await;
    let r = p.get(cb.strip_prefix(public).expect("callback")).await;
    assert_eq!(r.location(), "/admin", "{}", r.body);
    let s = p.get("/api/session").await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json()["user"]["email"], "admin@far.test");
}
