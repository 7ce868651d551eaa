//! The admin console's API: people search and cursor paging, name and email changes (confirmed
//! through the new address), bulk invitations, exports, the audit log's filters and exports,
//! the account's own changes, and every new endpoint refusing another company's ids.

use reqwest::Method;
use serde_json::{Value, json};

use tests::http::{Reply, read, user_path};
use tests::{Company, MAIL_WAIT, PASSWORD, Person, TestApp};

/// Sends `body` as `content_type` to `path`.
async fn send_raw(p: &Person, method: Method, path: &str, content_type: &str, body: &str) -> Reply {
    read(
        p.request(method, path)
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

/// Invites a person with a name; returns their id.
async fn invite_named(admin: &Person, email: &str, name: &str, role: &str) -> String {
    let r = admin
        .post(
            "/api/admin/users",
            json!({"email": email, "role": role, "name": name}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().expect("id").to_owned()
}

fn emails(v: &Value) -> Vec<String> {
    v["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Every page of a search, following `next_cursor`.
async fn all_pages(admin: &Person, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(c) => format!("/api/admin/users?{query}&limit=2&cursor={c}"),
            None => format!("/api/admin/users?{query}&limit=2"),
        };
        let r = admin.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = r.json();
        seen.extend(emails(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("paging never ended: {seen:?}");
}

#[tokio::test]
async fn people_are_searched_filtered_sorted_and_paged_by_cursor() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    for (email, name, role) in [
        ("zoe@acme.test", "Zoe Zimmer", "member"),
        ("bob@acme.test", "bob Builder", "admin"),
        ("carl@acme.test", "Carl 100% Sure", "member"),
        ("dina@acme.test", "Dina_Under", "member"),
        ("eve@acme.test", "Eve", "member"),
    ] {
        invite_named(&acme.admin, email, name, role).await;
    }
    invite_named(&beta.admin, "bob@beta.test", "Bob Beta", "member").await;

    // Search: name or email, case-insensitive; wildcards are literal.
    let r = acme.admin.get("/api/admin/users?q=BOB").await.json();
    assert_eq!(emails(&r), vec!["bob@acme.test"]);
    assert_eq!(r["total"], 1);
    let r = acme.admin.get("/api/admin/users?q=100%25").await.json();
    assert_eq!(emails(&r), vec!["carl@acme.test"]);
    let r = acme.admin.get("/api/admin/users?q=_").await.json();
    assert_eq!(emails(&r), vec!["dina@acme.test"]);
    let r = acme.admin.get("/api/admin/users?q=%25").await.json();
    assert_eq!(emails(&r), vec!["carl@acme.test"], "% matches only itself");

    // Filters.
    let r = acme.admin.get("/api/admin/users?role=admin").await.json();
    assert_eq!(emails(&r), vec!["admin@acme.test", "bob@acme.test"]);
    let r = acme
        .admin
        .get("/api/admin/users?status=active")
        .await
        .json();
    assert_eq!(emails(&r), vec!["admin@acme.test"]);
    let r = acme
        .admin
        .get("/api/admin/users?status=invited&role=member")
        .await
        .json();
    assert_eq!(r["total"], 4);

    // Sorting, and cursor pages that cover everyone once, in order.
    let by_email = all_pages(&acme.admin, "sort=email").await;
    let mut sorted = by_email.clone();
    sorted.sort();
    assert_eq!(by_email, sorted);
    assert_eq!(by_email.len(), 6);
    let by_name = all_pages(&acme.admin, "sort=name").await;
    assert_eq!(
        by_name,
        vec![
            "admin@acme.test",
            "bob@acme.test",
            "carl@acme.test",
            "dina@acme.test",
            "eve@acme.test",
            "zoe@acme.test"
        ],
        "names sort case-insensitively (Ada Admin, bob Builder, Carl…)"
    );
    let mut desc = all_pages(&acme.admin, "sort=-name").await;
    desc.reverse();
    assert_eq!(desc, by_name);
    let newest = all_pages(&acme.admin, "sort=-created").await;
    assert_eq!(newest.len(), 6);
    let mut same = newest.clone();
    same.sort();
    assert_eq!(same, sorted, "by creation time (ties by id), everyone once");
    let filtered = all_pages(&acme.admin, "sort=name&status=invited&q=e").await;
    assert_eq!(
        filtered,
        vec![
            "bob@acme.test",
            "carl@acme.test",
            "dina@acme.test",
            "eve@acme.test",
            "zoe@acme.test"
        ]
    );

    // Bad input.
    for bad in [
        "sort=age",
        "role=owner",
        "status=gone",
        "cursor=not-a-cursor",
        "offset=1&cursor=x",
    ] {
        let r = acme.admin.get(&format!("/api/admin/users?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = acme
        .admin
        .get("/api/admin/users?sort=name&limit=1")
        .await
        .json();
    let cursor = r["next_cursor"].as_str().expect("cursor").to_owned();
    let r = acme
        .admin
        .get(&format!("/api/admin/users?sort=email&cursor={cursor}"))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_cursor"),
        "a cursor of another order"
    );

    // Each company searches only its own people.
    let r = beta.admin.get("/api/admin/users?q=bob").await.json();
    assert_eq!(emails(&r), vec!["bob@beta.test"]);
}

/// A link's token from the newest mail to `to` whose link path starts with `path`.
async fn link_to(app: &TestApp, to: &str) -> String {
    let m = app.wait_for_mail(to, MAIL_WAIT).await;
    assert!(
        m.link.contains("/account/email/confirm?token="),
        "mail to {to}: {} {}",
        m.subject,
        m.link
    );
    m.token
}

#[tokio::test]
async fn an_admin_renames_and_moves_a_person_who_confirms_from_the_new_address() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    let path = user_path(&mia.id);

    let r = acme.admin.patch(&path, json!({"name": "Mia Moss"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "Mia Moss");
    let r = acme
        .admin
        .patch(&path, json!({"name": "bad\u{7}name"}))
        .await;
    assert_eq!(r.code(), "invalid_name");
    let r = acme
        .admin
        .patch(&path, json!({"email": "not an address"}))
        .await;
    assert_eq!(r.code(), "invalid_email");
    let r = acme
        .admin
        .patch(&path, json!({"email": "mia@acme.test"}))
        .await;
    assert_eq!(r.code(), "email_unchanged");
    let r = acme
        .admin
        .patch(&path, json!({"email": "admin@acme.test"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "user_exists"));

    // The change starts: a link to the new address, a notice to the old one.
    let r = acme
        .admin
        .patch(&path, json!({"email": "Mia.Moss@acme.test"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["email"], "mia@acme.test", "nothing changed yet");
    assert_eq!(v["pending_email"]["email"], "mia.moss@acme.test");
    let token = link_to(&app, "mia.moss@acme.test").await;
    let notice = app.wait_for_mail("mia@acme.test", MAIL_WAIT).await;
    assert!(
        notice.text.contains("mia.moss@acme.test"),
        "{}",
        notice.text
    );
    assert!(notice.token.is_empty(), "the old address gets no link");
    assert_eq!(mia.person.session_status().await, 200);
    app.login("mia@acme.test", PASSWORD).await;

    // Confirmed (without a session): the address moves, every session of Mia ends.
    let r = app
        .person()
        .post("/api/account/email/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["email"], "mia.moss@acme.test");
    assert_eq!(mia.person.session_status().await, 401);
    let (_, old) = app.try_login("mia@acme.test", PASSWORD).await;
    assert_eq!(old.status, 401);
    let moved = app.login("mia.moss@acme.test", PASSWORD).await;
    assert_eq!(
        moved.get("/api/session").await.json()["user"]["email"],
        "mia.moss@acme.test"
    );
    let found = app.ctl().json(&["user", "find", "mia.moss@acme.test"]);
    assert_eq!(found["tenant"]["slug"], "acme");
    app.ctl()
        .run(&["--json", "user", "find", "mia@acme.test"])
        .assert_fails_with("unknown_user");
    app.ctl().assert_clean();

    // The link is single use.
    let r = app
        .person()
        .post("/api/account/email/confirm", json!({"token": token}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_token"));

    // The audit log tells the story.
    let log = acme
        .admin
        .get(&format!("/api/admin/audit?user={}", mia.id))
        .await
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "email.changed",
        "email.change_requested",
        "user.name_changed",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }

    // A pending change can be cancelled; its link then does nothing.
    let r = acme
        .admin
        .patch(&path, json!({"email": "mm@acme.test"}))
        .await;
    assert_eq!(r.status, 200);
    let token = link_to(&app, "mm@acme.test").await;
    let r = acme.admin.delete(&format!("{path}/email-change")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        acme.admin
            .delete(&format!("{path}/email-change"))
            .await
            .status,
        404
    );
    let r = app
        .person()
        .post("/api/account/email/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.code(), "invalid_token");
}

#[tokio::test]
async fn an_email_change_is_refused_for_another_companys_address_and_outside_own_domains() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    invite_named(&beta.admin, "ann@mail.test", "Ann", "member").await;
    let path = user_path(&mia.id);

    // Another company's domain, or another company's user in a shared domain.
    for taken in ["someone@beta.test", "ann@mail.test"] {
        let r = acme.admin.patch(&path, json!({"email": taken})).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (409, "email_taken"),
            "{taken}"
        );
    }

    // The company accepts only its own domains.
    let r = acme
        .admin
        .patch("/api/admin/settings", json!({"email_domains_only": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["domains"], json!(["acme.test"]));
    let r = acme
        .admin
        .patch(&path, json!({"email": "mia@home.test"}))
        .await;
    assert_eq!(r.code(), "email_outside_domains");
    let r = acme.admin.invite("new@home.test", "member").await;
    assert_eq!(r.code(), "email_outside_domains");
    let r = mia
        .person
        .patch("/api/account", json!({"email": "mia@home.test"}))
        .await;
    assert_eq!(r.code(), "email_outside_domains");
    acme.admin
        .patch("/api/admin/settings", json!({"email_domains_only": false}))
        .await;

    // Taken between the request and the link: refused then, nothing changes.
    let r = acme
        .admin
        .patch(&path, json!({"email": "mia@free.test"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = link_to(&app, "mia@free.test").await;
    invite_named(&beta.admin, "mia@free.test", "Other Mia", "member").await;
    let r = app
        .person()
        .post("/api/account/email/confirm", json!({"token": token}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "email_taken"));
    assert_eq!(mia.person.session_status().await, 200);
    let v = acme.admin.get(&path).await.json();
    assert_eq!(v["email"], "mia@acme.test");
    let found = app.ctl().json(&["user", "find", "mia@free.test"]);
    assert_eq!(found["tenant"]["slug"], "beta");
    app.ctl().assert_clean();
}

#[tokio::test]
async fn a_person_changes_their_own_name_and_address_and_keeps_the_session_they_confirm_in() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let pat = app.add_user(&acme.admin, "pat@acme.test", "member").await;
    let elsewhere = app.login("pat@acme.test", PASSWORD).await;

    let r = pat
        .person
        .patch("/api/account", json!({"name": "Pat Lee"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["user"]["name"], "Pat Lee");
    assert_eq!(r.json()["pending_email"], Value::Null);
    let r = pat
        .person
        .patch("/api/account", json!({"email": "pat.lee@acme.test"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["pending_email"]["email"], "pat.lee@acme.test");
    let r = pat.person.patch("/api/account", json!({"nick": "x"})).await;
    assert_eq!(r.status, 422);

    let token = link_to(&app, "pat.lee@acme.test").await;
    let r = pat
        .person
        .post("/api/account/email/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(pat.person.session_status().await, 200, "this session stays");
    assert_eq!(elsewhere.session_status().await, 401, "the other one ends");
    let me = pat.person.get("/api/session").await.json();
    assert_eq!(me["user"]["email"], "pat.lee@acme.test");
    assert_eq!(me["user"]["name"], "Pat Lee");
}

#[tokio::test]
async fn bulk_invitations_are_previewed_per_line_then_sent() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    invite_named(&beta.admin, "taken@mail.test", "T", "member").await;
    let csv = "email,name,role\n\
ann@acme.test,Ann,member\n\
\"ben@acme.test\",\"Ben, Jr.\",admin\n\
not-an-address,X,member\n\
ann@acme.test,Ann again,member\n\
admin@acme.test,Me,admin\n\
someone@beta.test,S,member\n\
taken@mail.test,T,member\n\
cat@acme.test,Cat,owner\n\
dan@acme.test,,\n";

    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk?preview=true",
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["preview"], true);
    let verdicts: Vec<(i64, String, String)> = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["line"].as_i64().unwrap_or(0),
                l["status"].as_str().unwrap_or("").to_owned(),
                l["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        (2, "ok", ""),
        (3, "ok", ""),
        (4, "error", "invalid_email"),
        (5, "error", "duplicate"),
        (6, "error", "user_exists"),
        (7, "error", "email_taken"),
        (8, "error", "email_taken"),
        (9, "error", "invalid_role"),
        (10, "ok", ""),
    ];
    let expected: Vec<(i64, String, String)> = expected
        .iter()
        .map(|(l, s, e)| (*l, (*s).to_owned(), (*e).to_owned()))
        .collect();
    assert_eq!(verdicts, expected);
    assert_eq!(v["lines"][1]["name"], "Ben, Jr.");
    assert_eq!(
        acme.admin.get("/api/admin/users").await.json()["total"],
        1,
        "a preview invites nobody"
    );

    // Sent: the good lines are invited, each gets the mail.
    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk",
        "text/csv; charset=utf-8",
        csv,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["accepted"].as_i64(), v["refused"].as_i64()),
        (Some(3), Some(6))
    );
    assert_eq!(v["lines"][0]["status"], "invited");
    assert_eq!(v["lines"][1]["user"]["role"], "admin");
    for to in ["ann@acme.test", "ben@acme.test", "dan@acme.test"] {
        let m = app.wait_for_mail(to, MAIL_WAIT).await;
        assert!(m.link.contains("/invite?token="), "{to}");
    }
    assert_eq!(acme.admin.get("/api/admin/users").await.json()["total"], 4);

    // A JSON array works the same.
    let r = acme
        .admin
        .post(
            "/api/admin/users/bulk",
            json!([{"email": "eli@acme.test", "name": "Eli"}, {"email": "ann@acme.test"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["lines"][0]["status"], "invited");
    assert_eq!(r.json()["lines"][1]["error"], "user_exists");

    // Limits and shapes.
    let many: String = (0..501).map(|i| format!("p{i}@acme.test\n")).collect();
    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk?preview=true",
        "text/csv",
        &many,
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (413, "too_many_lines"));
    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk",
        "text/csv",
        "email,name,role\n",
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "empty_batch"));
    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk",
        "text/plain",
        "a@acme.test",
    )
    .await;
    assert_eq!(r.status, 415);
    let r = send_raw(
        &acme.admin,
        Method::POST,
        "/api/admin/users/bulk",
        "application/json",
        "[",
    )
    .await;
    assert_eq!(r.code(), "invalid_json");
    assert_eq!(acme.admin.get("/api/admin/users").await.json()["total"], 5);
}

#[tokio::test]
async fn the_people_export_is_csv_with_formulas_defused() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    invite_named(
        &acme.admin,
        "eve@acme.test",
        "=HYPERLINK(\"http://evil.test\")",
        "member",
    )
    .await;
    invite_named(&acme.admin, "fay@acme.test", "Fay, Jr.", "admin").await;

    let r = acme.admin.get("/api/admin/users/export").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").starts_with("text/csv"));
    assert!(r.header("content-disposition").contains("people.csv"));
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(
        lines[0],
        "id,email,name,role,status,created_at,last_login_at"
    );
    assert_eq!(lines.len(), 4, "{}", r.body);
    assert!(
        r.body.contains("\"'=HYPERLINK(\"\"http://evil.test\"\")\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("\"Fay, Jr.\",admin,invited"), "{}", r.body);
    let r = acme.admin.get("/api/admin/users/export?role=admin").await;
    assert_eq!(r.body.lines().count(), 3, "{}", r.body);
    let r = acme.admin.get("/api/admin/users/export?limit=1").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_audit_log_filters_by_person_action_and_time_and_exports() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let id = invite_named(&acme.admin, "gus@acme.test", "Gus", "member").await;
    acme.admin
        .patch(&user_path(&id), json!({"name": "Gus G"}))
        .await;

    let all = acme.admin.get("/api/admin/audit?limit=200").await.json();
    let newest = all["entries"][0]["at"].as_i64().expect("at");
    let r = acme
        .admin
        .get(&format!(
            "/api/admin/audit?user={id}&action=user.name_changed"
        ))
        .await
        .json();
    assert_eq!(r["entries"].as_array().map(Vec::len), Some(1));
    let r = acme
        .admin
        .get(&format!("/api/admin/audit?until={}", newest - 3600))
        .await
        .json();
    assert_eq!(r["entries"].as_array().map(Vec::len), Some(0));
    let r = acme
        .admin
        .get(&format!("/api/admin/audit?since={newest}&user={id}"))
        .await
        .json();
    assert!(!r["entries"].as_array().expect("entries").is_empty());

    let csv = acme
        .admin
        .get(&format!("/api/admin/audit?user={id}&format=csv"))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let mut lines = csv.body.lines();
    assert_eq!(lines.next(), Some("id,at,actor,action,target,details"));
    assert_eq!(lines.count(), 2, "{}", csv.body);
    let jsonl = acme.admin.get("/api/admin/audit?format=jsonl").await;
    assert_eq!(jsonl.status, 200);
    let parsed: Vec<Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(parsed.len(), all["entries"].as_array().map_or(0, Vec::len));
    assert_eq!(
        acme.admin.get("/api/admin/audit?format=xml").await.status,
        400
    );
}

/// What an admin of `other` may not touch: `target`'s user `id`.
async fn nothing_changes_across_companies(
    app: &TestApp,
    other: &Company,
    target: &Company,
    id: &str,
) {
    let path = user_path(id);
    let sessions = target.admin.get(&format!("{path}/sessions")).await.json();
    let sid = sessions["sessions"][0]["id"]
        .as_str()
        .expect("a session")
        .to_owned();
    let before = target.admin.get(&path).await.body;
    let attempts = [
        other.admin.patch(&path, json!({"name": "Hijacked"})).await,
        other
            .admin
            .patch(&path, json!({"email": "x@beta.test"}))
            .await,
        other.admin.delete(&format!("{path}/sessions/{sid}")).await,
        other.admin.delete(&format!("{path}/email-change")).await,
    ];
    for r in &attempts {
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "not_found"),
            "{}",
            r.body
        );
    }
    assert_eq!(target.admin.get(&path).await.body, before);
    let sessions_after = target.admin.get(&format!("{path}/sessions")).await.json();
    assert_eq!(sessions_after["sessions"], sessions["sessions"]);
    let r = other
        .admin
        .get(&format!("/api/admin/audit?user={id}"))
        .await
        .json();
    assert_eq!(r["entries"], json!([]));
    let export = other.admin.get("/api/admin/users/export").await.body;
    assert!(!export.contains(id), "{export}");
    let r = other
        .admin
        .get(&format!("/api/admin/users?q={}", &id[..8]))
        .await
        .json();
    assert_eq!(r["total"], 0);
    assert!(app.mails_to("x@beta.test").is_empty());
}

#[tokio::test]
async fn every_console_endpoint_answers_404_for_another_companys_user_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let beta = app.company("beta").await;
    let mia = app.add_user(&acme.admin, "mia@acme.test", "member").await;
    nothing_changes_across_companies(&app, &beta, &acme, &mia.id).await;
    // And the same admin ends one of the person's sessions in their own company.
    let other = app.login("mia@acme.test", PASSWORD).await;
    let list = acme
        .admin
        .get(&format!("{}/sessions", user_path(&mia.id)))
        .await
        .json();
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(2));
    let sid = list["sessions"][0]["id"].as_str().expect("sid").to_owned();
    let r = acme
        .admin
        .delete(&format!("{}/sessions/{sid}", user_path(&mia.id)))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let alive = [
        mia.person.session_status().await,
        other.session_status().await,
    ];
    assert_eq!(alive.iter().filter(|s| **s == 200).count(), 1, "{alive:?}");
    // Members may not use the admin endpoints.
    let member = app.login("mia@acme.test", PASSWORD).await;
    assert_eq!(member.get("/api/admin/users/export").await.status, 403);
    assert_eq!(member.get("/api/admin/settings").await.status, 403);
    let r = send_raw(
        &member,
        Method::POST,
        "/api/admin/users/bulk",
        "text/csv",
        "a@acme.test",
    )
    .await;
    assert_eq!(r.status, 403);
}
