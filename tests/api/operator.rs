//! The operator API (`/api/operator/*`) through the real `tenantd`, with keys made by the real
//! `tenantctl`: scopes per endpoint, refused credentials, source networks, the rate, idempotent
//! creation, bad input that creates nothing, companies the same as `tenantctl` makes, the
//! lifecycle with both audit logs, backups, `tenantctl --server`, and client-credentials tokens.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::http::{Reply, client, read};
use tests::{MAIL_WAIT, Options, PASSWORD, TestApp, join_all, poll};

const ALL: &str = "tenants:read,tenants:write,users:read,audit:read,backups:write";

/// A new operator key with `scopes` (and more `create` arguments).
fn key(app: &TestApp, scopes: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "operator-key",
        "create",
        "--name",
        "back office",
        "--scope",
        scopes,
    ];
    args.extend_from_slice(extra);
    let made = app.ctl().json(&args);
    made["key"].as_str().expect("key").to_owned()
}

/// A call with `Authorization: Bearer <bearer>`.
async fn call(
    app: &TestApp,
    bearer: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = client()
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req).await
}

async fn get(app: &TestApp, bearer: &str, path: &str) -> Reply {
    call(app, bearer, Method::GET, path, None).await
}

fn company(slug: &str) -> Value {
    json!({
        "slug": slug, "name": format!("Company {slug}"), "domains": [format!("{slug}.test")],
        "admin_email": format!("admin@{slug}.test"), "admin_name": "First Admin",
    })
}

async fn create(app: &TestApp, bearer: &str, body: Value) -> Reply {
    call(
        app,
        bearer,
        Method::POST,
        "/api/operator/tenants",
        Some(body),
    )
    .await
}

fn slugs(app: &TestApp) -> Vec<String> {
    app.ctl()
        .json(&["tenant", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_endpoint_needs_its_scope_and_only_a_bearer_key_opens_it() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let all = key(&app, ALL, &[]);
    let read_only = key(&app, "tenants:read", &[]);
    let cases: [(Method, &str, Option<Value>, &str); 10] = [
        (
            Method::POST,
            "/api/operator/tenants",
            Some(company("beta")),
            "tenants:write",
        ),
        (
            Method::PATCH,
            "/api/operator/tenants/acme",
            Some(json!({"name": "Acme 2"})),
            "tenants:write",
        ),
        (
            Method::DELETE,
            "/api/operator/tenants/acme",
            None,
            "tenants:write",
        ),
        (
            Method::POST,
            "/api/operator/tenants/acme/undelete",
            None,
            "tenants:write",
        ),
        (
            Method::POST,
            "/api/operator/tenants/acme/domains",
            Some(json!({"domain": "x.test"})),
            "tenants:write",
        ),
        (
            Method::DELETE,
            "/api/operator/tenants/acme/domains/acme.test",
            None,
            "tenants:write",
        ),
        (
            Method::GET,
            "/api/operator/users?email=admin@acme.test",
            None,
            "users:read",
        ),
        (
            Method::GET,
            "/api/operator/tenants/acme/audit",
            None,
            "audit:read",
        ),
        (
            Method::POST,
            "/api/operator/tenants/acme/backup",
            None,
            "backups:write",
        ),
        (Method::GET, "/api/operator/tenants", None, "tenants:read"),
    ];
    for (m, path, body, scope) in &cases[..9] {
        let r = call(&app, &read_only, m.clone(), path, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "insufficient_scope".into()),
            "{m} {path} needs {scope}: {}",
            r.body
        );
        assert!(r.header("www-authenticate").contains("insufficient_scope"));
    }
    // Nothing changed through the refusals.
    assert_eq!(slugs(&app), ["acme"]);
    assert_eq!(
        app.ctl().json(&["tenant", "show", "acme"])["name"],
        "Company acme"
    );
    assert_eq!(
        get(&app, &read_only, "/api/operator/tenants").await.status,
        200
    );
    assert_eq!(
        get(&app, &read_only, "/api/operator/tenants/acme")
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &all, "/api/operator/users?email=admin@acme.test")
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &all, "/api/operator/tenants/acme/audit")
            .await
            .status,
        200
    );

    // A company admin's session cookie opens nothing here, nor does a wrong key.
    let signed_in = acme.admin.get("/api/operator/tenants").await;
    assert_eq!(
        (signed_in.status, signed_in.code()),
        (401, "unauthenticated".into()),
        "{}",
        signed_in.body
    );
    let no_bearer = read(client().get(format!("{}/api/operator/tenants", app.address))).await;
    assert_eq!(no_bearer.status, 401);
    let id = all.split('.').next().unwrap();
    for wrong in [
        format!("{id}.not-the-secret"),
        "tdo_nope.x".to_owned(),
        "garbage".to_owned(),
    ] {
        let r = get(&app, &wrong, "/api/operator/tenants").await;
        assert_eq!(
            (r.status, r.code()),
            (401, "invalid_operator_key".into()),
            "{wrong}"
        );
        assert!(r.header("www-authenticate").contains("invalid_token"));
    }
    // The key is in the directory as a hash only.
    let db = std::fs::read(app.data_dir().join("directory.db")).unwrap();
    let secret = all.split('.').nth(1).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[tokio::test]
async fn expired_and_revoked_keys_are_refused() {
    let app = TestApp::spawn().await;
    let short = key(&app, "tenants:read", &["--expires-in", "2s"]);
    let revoked = key(&app, "tenants:read", &["--expires-in", "never"]);
    assert_eq!(
        get(&app, &revoked, "/api/operator/tenants").await.status,
        200
    );
    let id = revoked
        .trim_start_matches("tdo_")
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let out = app.ctl().json(&["operator-key", "revoke", &id]);
    assert_eq!(out["revoked"], true);
    let r = get(&app, &revoked, "/api/operator/tenants").await;
    assert_eq!((r.status, r.code()), (401, "operator_key_revoked".into()));
    app.ctl().fails(
        &["operator-key", "revoke", "no-such-key"],
        "unknown_operator_key",
    );
    poll(Duration::from_secs(15), "the short key expires", || async {
        let r = get(&app, &short, "/api/operator/tenants").await;
        match (r.status, r.code().as_str()) {
            (401, "operator_key_expired") => Ok(()),
            (200, _) => Err("still accepted".into()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let listed = app.ctl().run(&["operator-key", "list"]);
    assert!(
        listed.stdout.contains("revoked") && listed.stdout.contains("expired"),
        "{}",
        listed.stdout
    );
    // Bad key requests make no key.
    for (args, code) in [
        (vec!["--scope", "tenants:admin"], "invalid_scope"),
        (vec!["--expires-in", "soon"], "invalid_duration"),
        (vec!["--allow-from", "10.0.0.0/33"], "invalid_network"),
    ] {
        let mut all = vec!["operator-key", "create", "--name", "x"];
        all.extend(args);
        app.ctl().fails(&all, code);
    }
    assert_eq!(
        app.ctl().json(&["operator-key", "list"])["operator_keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_key_limited_to_networks_is_refused_from_other_addresses() {
    let app = TestApp::spawn().await;
    let elsewhere = key(
        &app,
        "tenants:read",
        &["--allow-from", "10.0.0.0/8", "--allow-from", "192.0.2.7"],
    );
    let here = key(&app, "tenants:read", &["--allow-from", "127.0.0.0/8"]);
    let r = get(&app, &elsewhere, "/api/operator/tenants").await;
    assert_eq!((r.status, r.code()), (403, "address_not_allowed".into()));
    assert_eq!(get(&app, &here, "/api/operator/tenants").await.status, 200);
}

#[tokio::test]
async fn calls_are_limited_per_key() {
    let app = TestApp::spawn_with(Options {
        env: vec![("TENANTD_OPERATOR_RATE".into(), "5".into())],
        ..Options::default()
    })
    .await;
    let a = key(&app, "tenants:read", &[]);
    let b = key(&app, "tenants:read", &[]);
    for _ in 0..5 {
        assert_eq!(get(&app, &a, "/api/operator/tenants").await.status, 200);
    }
    let r = get(&app, &a, "/api/operator/tenants").await;
    assert_eq!((r.status, r.code()), (429, "too_many_requests".into()));
    let wait: u64 = r.header("retry-after").parse().expect("Retry-After");
    assert!((1..=12).contains(&wait), "{wait}");
    // Another key has its own allowance.
    assert_eq!(get(&app, &b, "/api/operator/tenants").await.status, 200);
}

#[tokio::test]
async fn create_is_idempotent_under_retries_and_concurrent_calls() {
    let app = TestApp::spawn().await;
    let k = key(&app, ALL, &[]);
    let post = |idem: &'static str, body: Value| {
        let req = client()
            .post(format!("{}/api/operator/tenants", app.address))
            .bearer_auth(&k)
            .header("idempotency-key", idem)
            .json(&body);
        read(req)
    };
    let answers = join_all((0..6).map(|_| post("order-42", company("acme")))).await;
    for a in &answers {
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.json(), answers[0].json());
        assert_eq!(a.json()["invite_link"], Value::Null, "never the token");
    }
    assert_eq!(slugs(&app), ["acme"]);
    // A later retry gets the same answer, marked as a replay; no second invitation.
    let again = post("order-42", company("acme")).await;
    assert_eq!((again.status, again.json()), (201, answers[0].json()));
    assert_eq!(again.header("idempotent-replayed"), "true");
    // The same key with another body is refused.
    let other = post("order-42", company("beta")).await;
    assert_eq!(
        (other.status, other.code()),
        (409, "idempotency_key_reused".into())
    );
    // One invitation: accepted, then every mail sent before has arrived (the barrier).
    let invite = app.wait_for_mail("admin@acme.test", MAIL_WAIT).await;
    let accepted = app.person().accept_invite(&invite.token, PASSWORD).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    app.mail_barrier("admin@acme.test").await;
    assert_eq!(
        app.mails_to("admin@acme.test").len(),
        2,
        "one invitation and the barrier's reset"
    );
    assert_eq!(slugs(&app), ["acme"]);
    // An empty key is refused, not taken as none.
    let bad = post("", company("x")).await;
    assert_eq!(bad.code(), "invalid_idempotency_key");
}

#[tokio::test]
async fn bad_input_creates_nothing() {
    let app = TestApp::spawn().await;
    let k = key(&app, ALL, &[]);
    app.tenant_create("acme", "Acme", "acme.test", "ann@acme.test");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = company("gamma");
        f(&mut b);
        b
    };
    let cases = [
        (
            with(&|b| b["slug"] = json!("Bad_Slug")),
            400,
            "invalid_slug",
        ),
        (
            with(&|b| b["domains"] = json!(["acme.test"])),
            409,
            "domain_taken",
        ),
        (
            with(&|b| b["domains"] = json!(["not a domain"])),
            400,
            "invalid_domain",
        ),
        (
            with(&|b| b["admin_email"] = json!("not-an-email")),
            400,
            "invalid_email",
        ),
        (
            with(&|b| b["admin_email"] = json!("ann@acme.test")),
            409,
            "email_taken",
        ),
        (with(&|b| b["name"] = json!("")), 400, "invalid_name"),
        (with(&|b| b["slug"] = json!("acme")), 409, "slug_taken"),
        (with(&|b| b["extra"] = json!(1)), 422, "invalid_body"),
        (json!({"slug": "gamma"}), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let r = create(&app, &k, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_owned()),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(slugs(&app), ["acme"]);
    let r = call(
        &app,
        &k,
        Method::PATCH,
        "/api/operator/tenants/acme",
        Some(json!({"status": "gone"})),
    )
    .await;
    assert_eq!(r.code(), "invalid_status");
    let r = get(&app, &k, "/api/operator/tenants/nope").await;
    assert_eq!((r.status, r.code()), (404, "unknown_tenant".into()));
    assert!(app.data_dir().join("tenants").read_dir().unwrap().count() <= 3);
}

/// `tenant show --json` without what differs between any two companies.
fn shape(mut v: Value) -> Value {
    for k in [
        "id",
        "slug",
        "name",
        "created_at",
        "updated_at",
        "file",
        "file_size",
        "domains",
    ] {
        v.as_object_mut().unwrap().remove(k);
    }
    for u in v["users"].as_array_mut().unwrap() {
        for k in ["email", "tenant_id", "user_id", "created_at"] {
            u.as_object_mut().unwrap().remove(k);
        }
    }
    v
}

#[tokio::test]
async fn a_company_created_through_the_api_is_the_one_tenantctl_makes() {
    let app = TestApp::spawn().await;
    let k = key(&app, ALL, &[]);
    app.tenant_create("byctl", "Company byctl", "byctl.test", "admin@byctl.test");
    let r = create(&app, &k, company("byapi")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ctl = app.ctl().json(&["tenant", "show", "byctl"]);
    let api = app.ctl().json(&["tenant", "show", "byapi"]);
    assert_eq!(shape(ctl.clone()), shape(api.clone()));
    assert_eq!(api["domains"], json!(["byapi.test"]));
    // The same answer shape as `tenantctl tenant create --json`, minus the link.
    let made = r.json();
    assert_eq!(made["tenant"]["status"], "active");
    assert_eq!(made["admin"]["status"], "invited");
    assert_eq!(made["mail_sent"], true);
    // Both first admins are invited by mail and can accept.
    for slug in ["byctl", "byapi"] {
        let mail = app
            .wait_for_mail(&format!("admin@{slug}.test"), MAIL_WAIT)
            .await;
        let admin = app.person();
        let a = admin
            .accept_invite_named(&mail.token, PASSWORD, "Ada")
            .await;
        assert_eq!(a.status, 200, "{slug}: {}", a.body);
        assert_eq!(a.json()["tenant"]["slug"], slug);
        assert_eq!(a.json()["user"]["role"], "admin");
    }
    let ctl = app.ctl().json(&["tenant", "show", "byctl"]);
    let api = app.ctl().json(&["tenant", "show", "byapi"]);
    assert_eq!(shape(ctl), shape(api));
}

#[tokio::test]
async fn lifecycle_domains_users_both_audit_logs_and_backups() {
    let app = TestApp::spawn().await;
    let k = key(&app, ALL, &[]);
    let acme = app.company("acme").await;
    let path = "/api/operator/tenants/acme";

    // Suspend: its users are refused; resume lets them in again.
    let r = call(
        &app,
        &k,
        Method::PATCH,
        path,
        Some(json!({"status": "suspended"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["changed"].clone()),
        (200, json!(true)),
        "{}",
        r.body
    );
    assert_eq!(r.json()["tenant"]["status"], "suspended");
    let (_, refused) = app.try_login(&acme.admin_email, PASSWORD).await;
    assert_eq!(refused.code(), "tenant_suspended");
    let r = call(
        &app,
        &k,
        Method::PATCH,
        path,
        Some(json!({"status": "active", "name": "Acme Renamed"})),
    )
    .await;
    assert_eq!(r.json()["tenant"]["name"], "Acme Renamed");
    app.login(&acme.admin_email, PASSWORD).await;

    // Domains.
    let r = call(
        &app,
        &k,
        Method::POST,
        &format!("{path}/domains"),
        Some(json!({"domain": "Acme.Example"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["domain"].clone()),
        (201, json!("acme.example"))
    );
    let r = call(
        &app,
        &k,
        Method::POST,
        &format!("{path}/domains"),
        Some(json!({"domain": "acme.example"})),
    )
    .await;
    assert_eq!((r.status, r.json()["added"].clone()), (200, json!(false)));
    assert_eq!(
        get(&app, &k, &format!("{path}/domains")).await.json()["domains"],
        json!(["acme.example", "acme.test"])
    );
    let r = call(
        &app,
        &k,
        Method::DELETE,
        &format!("{path}/domains/acme.example"),
        None,
    )
    .await;
    assert_eq!(r.json()["removed"], true);
    let r = call(
        &app,
        &k,
        Method::DELETE,
        &format!("{path}/domains/acme.example"),
        None,
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "domain_not_mapped".into()));

    // Support finds a user.
    let found = get(&app, &k, "/api/operator/users?email=ADMIN@acme.test")
        .await
        .json();
    assert_eq!(found["tenant"]["slug"], "acme");
    assert_eq!(found["user"]["role"], "admin");
    assert_eq!(found["user"]["status"], "active");
    let r = get(&app, &k, "/api/operator/users?email=nobody@acme.test").await;
    assert_eq!((r.status, r.code()), (404, "unknown_user".into()));

    // The company's own log names the operator; its admin sees it too.
    let log = get(&app, &k, &format!("{path}/audit?limit=200"))
        .await
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "tenant.suspended",
        "tenant.resumed",
        "tenant.renamed",
        "domain.added",
        "domain.removed",
        "operator.user_looked_up",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let admin_view = app
        .login(&acme.admin_email, PASSWORD)
        .await
        .get("/api/admin/audit?action=tenant.suspended")
        .await
        .json();
    assert!(
        admin_view["entries"][0]["details"]["via"]
            .as_str()
            .unwrap()
            .contains("back office")
    );

    // Backup answers its manifest, and the files are there as it says.
    let r = call(&app, &k, Method::POST, &format!("{path}/backup"), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let report = r.json();
    let out = std::path::PathBuf::from(report["out"].as_str().unwrap());
    assert!(out.starts_with(app.data_dir().join("backups")));
    let copy = &report["manifest"]["tenants"][0];
    assert_eq!(copy["slug"], "acme");
    let file = out.join(copy["file"].as_str().unwrap());
    assert_eq!(
        tests::inproc::sha256_file(&file).unwrap(),
        copy["sha256"].as_str().unwrap()
    );
    assert!(out.join("manifest.json").is_file() && out.join("directory.db").is_file());

    // Delete to the trash and back.
    let r = call(&app, &k, Method::DELETE, path, None).await;
    assert_eq!(
        (r.status, r.json()["deleted"].clone()),
        (200, json!(true)),
        "{}",
        r.body
    );
    assert_eq!(get(&app, &k, path).await.status, 404);
    let r = call(&app, &k, Method::POST, &format!("{path}/undelete"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tenant"]["slug"], "acme");
    app.login(&acme.admin_email, PASSWORD).await;

    // The directory's operator log has every call, with the key and the status.
    let conn = rusqlite::Connection::open(app.data_dir().join("directory.db")).unwrap();
    let id = k.trim_start_matches("tdo_").split('.').next().unwrap();
    let mut stmt = conn
        .prepare("SELECT action, status, tenant_slug FROM operator_audit WHERE actor = ?1")
        .unwrap();
    let rows: Vec<(String, i64, Option<String>)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for a in [
        "tenant.update",
        "domain.add",
        "domain.remove",
        "user.find",
        "audit.read",
        "tenant.backup",
        "tenant.delete",
        "tenant.undelete",
    ] {
        assert!(
            rows.iter()
                .any(|(x, s, slug)| x == a && *s < 300 && slug.as_deref() == Some("acme")),
            "{a}: {rows:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|(x, s, _)| x == "domain.remove" && *s == 404)
    );
}

#[tokio::test]
async fn tenantctl_through_the_server_prints_what_it_prints_locally() {
    let app = TestApp::spawn().await;
    let k = key(&app, ALL, &[]);
    app.company("acme").await;
    let local = app.ctl();
    let remote = app
        .ctl()
        .with_env("TENANTCTL_SERVER", &app.address)
        .with_env("TENANTCTL_KEY", &k);
    for args in [
        vec!["tenant", "list"],
        vec!["tenant", "show", "acme"],
        vec!["user", "find", "admin@acme.test"],
    ] {
        assert_eq!(remote.json(&args), local.json(&args), "{args:?}");
        assert_eq!(
            remote.run(&args).stdout,
            local.run(&args).stdout,
            "{args:?}"
        );
    }
    assert_eq!(
        remote.json(&["tenant", "suspend", "acme"]),
        json!({"slug": "acme", "id": local.json(&["tenant", "show", "acme"])["id"], "status": "suspended", "changed": true})
    );
    assert_eq!(
        remote.json(&["tenant", "suspend", "acme"])["changed"],
        false
    );
    assert_eq!(local.json(&["tenant", "resume", "acme"])["changed"], true);
    assert_eq!(
        remote.json(&["domain", "add", "acme", "acme.example"]),
        json!({"slug": "acme", "domain": "acme.example", "added": true})
    );
    assert_eq!(
        remote.json(&["domain", "remove", "acme", "acme.example"]),
        json!({"slug": "acme", "domain": "acme.example", "removed": true})
    );
    // Errors keep their codes; commands of the server alone say so.
    remote.fails(&["tenant", "show", "nope"], "unknown_tenant");
    remote.fails(&["user", "find", "nobody@acme.test"], "unknown_user");
    remote.fails(&["doctor"], "not_remote");
    let made = remote.json(&[
        "tenant",
        "create",
        "--slug",
        "beta",
        "--name",
        "Beta",
        "--admin-email",
        "b@beta.test",
    ]);
    assert_eq!(made["invite_link"], Value::Null);
    assert_eq!(made["tenant"]["slug"], "beta");
    let backup = remote.json(&["backup", "--tenant", "beta"]);
    assert_eq!(backup["tenants"], 1);
    assert!(
        std::path::Path::new(backup["out"].as_str().unwrap())
            .join("manifest.json")
            .is_file()
    );
    let deleted = remote.json(&["tenant", "delete", "beta", "--yes"]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        remote.json(&["tenant", "undelete", "beta"])["tenant"]["slug"],
        "beta"
    );
    let wrong = app
        .ctl()
        .with_env("TENANTCTL_SERVER", &app.address)
        .with_env("TENANTCTL_KEY", "tdo_x.y");
    wrong.fails(&["tenant", "list"], "invalid_operator_key");
}

#[tokio::test]
async fn client_credentials_tokens_open_the_operator_api_with_their_scopes_only() {
    let app = TestApp::spawn().await;
    app.company("acme").await;
    let made = app.ctl().json(&[
        "client",
        "create",
        "--name",
        "Billing",
        "--operator-scope",
        "tenants:read,users:read",
    ]);
    let (id, secret) = (
        made["client_id"].as_str().unwrap().to_owned(),
        made["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        made["client"]["operator_scopes"],
        json!(["tenants:read", "users:read"])
    );
    let token = |scope: Option<&str>| {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(s) = scope {
            form.push(("scope", s.to_owned()));
        }
        read(
            client()
                .post(format!("{}/oauth2/token", app.address))
                .basic_auth(&id, Some(&secret))
                .form(&form),
        )
    };
    let t = token(None).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let at = t.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t.json()["scope"], "tenants:read users:read");
    assert!(t.json().get("id_token").is_none() && t.json().get("refresh_token").is_none());
    assert_eq!(get(&app, &at, "/api/operator/tenants").await.status, 200);
    assert_eq!(
        get(&app, &at, "/api/operator/users?email=admin@acme.test")
            .await
            .status,
        200
    );
    let r = create(&app, &at, company("beta")).await;
    assert_eq!((r.status, r.code()), (403, "insufficient_scope".into()));
    // Narrower on request; never wider.
    let narrow = token(Some("tenants:read")).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&app, &narrow, "/api/operator/users?email=admin@acme.test")
            .await
            .code(),
        "insufficient_scope"
    );
    let wider = token(Some("tenants:write")).await;
    assert_eq!(
        (wider.status, wider.json()["error"].clone()),
        (400, json!("invalid_scope"))
    );
    // It is not a person's token.
    assert_eq!(get(&app, &at, "/api/session").await.status, 401);
    // An app without operator scopes may not use the grant; deleting the app ends its tokens.
    let plain = app.ctl().json(&[
        "client",
        "create",
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example/cb",
    ]);
    let r = read(
        client()
            .post(format!("{}/oauth2/token", app.address))
            .basic_auth(
                plain["client_id"].as_str().unwrap(),
                plain["client_secret"].as_str(),
            )
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    app.ctl().json(&["client", "delete", &id, "--yes"]);
    assert_eq!(
        get(&app, &at, "/api/operator/tenants").await.code(),
        "invalid_operator_key"
    );
    assert_eq!(slugs(&app), ["acme"]);
}
