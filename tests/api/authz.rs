//! The authorisation matrix: every admin endpoint × {admin, member, signed out} × {own user,
//! another company's user, a user id that does not exist}.
//!
//! Every request that must be refused carries a body that would change something if it were
//! obeyed; afterwards both companies must be exactly as before, every session still open, and
//! no mail sent.

use reqwest::Method;
use serde_json::{Value, json};

use tests::{Company, MAIL_WAIT, PASSWORD, Person, Reply, TestApp};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Admin,
    Member,
    SignedOut,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Own,
    OtherPending,
    OtherAdmin,
    Missing,
}

#[derive(Clone, Copy, Debug)]
struct Endpoint {
    method: &'static str,
    /// `{id}` is replaced by the target's user id.
    path: &'static str,
}

const ENDPOINTS: [Endpoint; 10] = [
    Endpoint {
        method: "GET",
        path: "/api/admin/users",
    },
    Endpoint {
        method: "POST",
        path: "/api/admin/users",
    },
    Endpoint {
        method: "GET",
        path: "/api/admin/users/{id}",
    },
    Endpoint {
        method: "PATCH",
        path: "/api/admin/users/{id}",
    },
    Endpoint {
        method: "DELETE",
        path: "/api/admin/users/{id}",
    },
    Endpoint {
        method: "POST",
        path: "/api/admin/users/{id}/invitation",
    },
    Endpoint {
        method: "DELETE",
        path: "/api/admin/users/{id}/invitation",
    },
    Endpoint {
        method: "GET",
        path: "/api/admin/audit",
    },
    Endpoint {
        method: "GET",
        path: "/api/admin/users/{id}/sessions",
    },
    Endpoint {
        method: "DELETE",
        path: "/api/admin/users/{id}/sessions",
    },
];

struct World {
    app: TestApp,
    acme: Company,
    globex: Company,
    member: Person,
    own_id: String,
    gus_id: String,
    /// Gus's invitation, still unused.
    gus_token: String,
    missing_id: String,
}

impl World {
    fn target(&self, t: Target) -> (String, String) {
        match t {
            Target::Own => (self.own_id.clone(), "ivy@acme.test".to_owned()),
            Target::OtherPending => (self.gus_id.clone(), "gus@globex.test".to_owned()),
            Target::OtherAdmin => (
                self.globex.admin_id.clone(),
                self.globex.admin_email.clone(),
            ),
            Target::Missing => (self.missing_id.clone(), "newbie@acme.test".to_owned()),
        }
    }

    fn caller(&self, c: Caller) -> Person {
        match c {
            Caller::Admin => self.acme.admin.clone(),
            Caller::Member => self.member.clone(),
            Caller::SignedOut => self.app.person(),
        }
    }

    async fn call(&self, c: Caller, e: Endpoint, t: Target) -> Reply {
        let (id, email) = self.target(t);
        let path = e.path.replace("{id}", &id);
        let who = self.caller(c);
        let method = Method::from_bytes(e.method.as_bytes()).expect("method");
        // Bodies that would do harm if obeyed.
        let body = match (e.method, e.path.contains("{id}")) {
            ("POST", false) => Some(json!({"email": email, "role": "admin"})),
            ("PATCH", _) => Some(json!({"role": "admin"})),
            _ => None,
        };
        who.send(method, &path, body).await
    }

    /// Everything an admin can see of a company, read through the API.
    async fn snapshot(&self, c: &Company) -> (Value, Value) {
        let users = c.admin.get("/api/admin/users?limit=200").await;
        let audit = c.admin.get("/api/admin/audit?limit=200").await;
        assert_eq!((users.status, audit.status), (200, 200));
        (users.json(), audit.json())
    }
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let acme = app.company("acme").await;
    let globex = app.company("globex").await;
    let member = app.add_user(&acme.admin, "mo@acme.test", "member").await;
    let own_id = app.invite(&acme.admin, "ivy@acme.test", "member").await;
    let gus_id = app.invite(&globex.admin, "gus@globex.test", "member").await;
    // Every mail of the setup has arrived before anything is counted.
    app.wait_for_mail("ivy@acme.test", MAIL_WAIT).await;
    let gus_token = app.wait_for_mail("gus@globex.test", MAIL_WAIT).await.token;
    World {
        gus_token,
        missing_id: uuid::Uuid::new_v4().to_string(),
        member: member.person,
        app,
        acme,
        globex,
        own_id,
        gus_id,
    }
}

/// What a refused or harmless request must answer; `None` for the cells that act (phase 2).
fn expected(c: Caller, e: Endpoint, t: Target) -> Option<(u16, &'static str)> {
    match c {
        Caller::SignedOut => return Some((401, "unauthenticated")),
        Caller::Member => return Some((403, "forbidden")),
        Caller::Admin => {}
    }
    if e.path.contains("{id}") {
        return match t {
            Target::Own => None,
            _ => Some((404, "not_found")),
        };
    }
    match (e.method, t) {
        ("GET", _) => Some((200, "")),
        ("POST", Target::Own) => Some((409, "user_exists")),
        ("POST", Target::OtherPending | Target::OtherAdmin) => Some((409, "email_taken")),
        _ => None, // inviting a new address: phase 2
    }
}

const CALLERS: [Caller; 3] = [Caller::Admin, Caller::Member, Caller::SignedOut];
const TARGETS: [Target; 4] = [
    Target::Own,
    Target::OtherPending,
    Target::OtherAdmin,
    Target::Missing,
];

#[tokio::test]
async fn admin_endpoints_authorisation_matrix() {
    let w = world().await;
    let acme_before = w.snapshot(&w.acme).await;
    let globex_before = w.snapshot(&w.globex).await;
    let mails_before = w.app.mails().len();
    let mut failures = Vec::new();
    let mut not_found_bodies: Vec<(String, Reply)> = Vec::new();

    // Phase 1: every cell that must change nothing.
    for e in ENDPOINTS {
        for c in CALLERS {
            for t in TARGETS {
                let Some((status, code)) = expected(c, e, t) else {
                    continue;
                };
                let r = w.call(c, e, t).await;
                let got_code = if r.status >= 400 {
                    r.code()
                } else {
                    String::new()
                };
                if r.status != status || got_code != code {
                    failures.push(format!(
                        "{} {} as {c:?} on {t:?}: expected {status} {code}, got {} {}",
                        e.method,
                        e.path,
                        r.status,
                        r.body.chars().take(120).collect::<String>()
                    ));
                }
                if r.status == 404 {
                    not_found_bodies.push((format!("{} {} {t:?}", e.method, e.path), r.clone()));
                }
                if c == Caller::Admin && e.method == "GET" && !e.path.contains("{id}") {
                    // The admin's lists show their own company only.
                    for leak in [
                        w.globex.admin_email.as_str(),
                        "gus@globex.test",
                        w.gus_id.as_str(),
                        w.globex.admin_id.as_str(),
                        w.globex.tenant_id.as_str(),
                    ] {
                        if r.body.contains(leak) {
                            failures.push(format!("{} {} shows {leak}", e.method, e.path));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Another company's user and a missing id get the very same 404.
    let first = not_found_bodies.first().expect("404 cells").1.fingerprint();
    for (what, r) in &not_found_bodies {
        assert_eq!(r.fingerprint(), first, "{what}");
    }
    // Garbage ids too.
    for id in ["not-a-uuid", "..%2F..%2Fetc", &"9".repeat(300)] {
        let r = w.acme.admin.get(&format!("/api/admin/users/{id}")).await;
        assert_eq!(r.fingerprint(), first, "id {id}");
    }

    // Nothing changed in either company, every session still works, no mail went out.
    assert_eq!(w.snapshot(&w.acme).await, acme_before, "acme changed");
    assert_eq!(w.snapshot(&w.globex).await, globex_before, "globex changed");
    assert_eq!(w.member.session_status().await, 200);
    assert_eq!(w.acme.admin.session_status().await, 200);
    assert_eq!(w.globex.admin.session_status().await, 200);
    w.app.mail_barrier(&w.acme.admin_email).await;
    let mails: Vec<_> = w.app.mails().into_iter().skip(mails_before).collect();
    assert_eq!(
        mails.len(),
        1,
        "only the sentinel: {:?}",
        mails
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );

    // Phase 2: the admin acting on their own user does what is asked, in their company only.
    let own = format!("/api/admin/users/{}", w.own_id);
    let r = w.acme.admin.get(&own).await;
    assert_eq!(
        (r.status, r.json()["email"].clone()),
        (200, json!("ivy@acme.test"))
    );
    let r = w.acme.admin.patch(&own, json!({"role": "admin"})).await;
    assert_eq!((r.status, r.json()["role"].clone()), (200, json!("admin")));
    let r = w.acme.admin.post_empty(&format!("{own}/invitation")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let resent = w.app.wait_for_mail("ivy@acme.test", MAIL_WAIT).await;
    let r = w.acme.admin.delete(&format!("{own}/invitation")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.app.person().accept_invite(&resent.token, PASSWORD).await;
    assert_eq!(r.code(), "invalid_token");
    let r = w.acme.admin.get(&format!("{own}/sessions")).await;
    assert_eq!((r.status, r.json()["sessions"].clone()), (200, json!([])));
    let r = w.acme.admin.delete(&format!("{own}/sessions")).await;
    assert_eq!(
        (r.status, r.json()["sessions_ended"].clone()),
        (200, json!(0))
    );
    let r = w.acme.admin.delete(&own).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(w.acme.admin.get(&own).await.status, 404);
    let r = w.acme.admin.invite("newbie@acme.test", "admin").await;
    assert_eq!(r.status, 201, "{}", r.body);
    w.app.wait_for_mail("newbie@acme.test", MAIL_WAIT).await;

    // The other company is still untouched: same data, and Gus's invitation still works.
    assert_eq!(w.snapshot(&w.globex).await, globex_before, "globex changed");
    assert_eq!(
        w.app.mails_to("gus@globex.test").len(),
        1,
        "gus got one mail"
    );
    let r = w.app.person().accept_invite(&w.gus_token, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tenant"]["slug"], "globex");
    assert_eq!(r.json()["user"]["role"], "member");
}
