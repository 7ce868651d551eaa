//! The per-tenant store, used the way the control plane uses it: through the router.
//! Time is always an explicit `now` (unix seconds), so expiry is tested without waiting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::path::Path;
use std::sync::Barrier;
use std::thread;

use tenant_runtime::email;
use tenant_runtime::store::sessions::{self, Amr, Lifetimes, Origin};
use tenant_runtime::store::tokens::{self, Purpose};
use tenant_runtime::store::users::{self, NewUser, Role, Status};
use tenant_runtime::store::{audit, meta, oidc};
use tenant_runtime::{Error, RouterConfig, TenantId, TenantRouter, secret};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const T0: i64 = 1_700_000_000;

struct Tenant {
    router: TenantRouter,
    id: TenantId,
}

impl Tenant {
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> tenant_runtime::Result<T>,
    ) -> TestResult<T> {
        Ok(self.router.read_blocking(&self.id, f)?)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&tenant_runtime::WriteTx<'_>) -> tenant_runtime::Result<T>,
    ) -> TestResult<T> {
        Ok(self.router.write_blocking(&self.id, f)?)
    }

    /// Issues a token of `purpose` for `uid` at `at`, valid for 900 seconds.
    fn issue(&self, uid: &str, purpose: Purpose, at: i64) -> TestResult<String> {
        self.write(|tx| tokens::issue(tx, uid, purpose, 900, at))
    }

    fn peek(&self, token: &str, purpose: Purpose, at: i64) -> TestResult<Option<String>> {
        self.read(|c| tokens::peek(c, token, purpose, at))
    }

    fn redeem(&self, token: &str, purpose: Purpose, at: i64) -> TestResult<Option<String>> {
        self.write(|tx| tokens::redeem(tx, token, purpose, at))
    }

    fn user(&self, email: &str) -> TestResult<String> {
        let email = email.to_owned();
        Ok(self
            .write(move |tx| users::insert(tx, &new_user(&email, Status::Active), T0))?
            .id)
    }
}

fn tenant(dir: &Path, name: &str) -> TestResult<Tenant> {
    let router = TenantRouter::new(RouterConfig::new(dir.join("tenants")))?;
    let id = TenantId::parse(name)?;
    router.create_tenant_blocking(&id, T0)?;
    Ok(Tenant { router, id })
}

fn new_user(email: &str, status: Status) -> NewUser<'_> {
    NewUser {
        email,
        name: "Someone",
        role: Role::Member,
        status,
        password_hash: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Users

#[test]
fn a_canonical_email_belongs_to_one_user_per_tenant() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    t.user("alice@acme.test")?;
    // The same address as typed differently canonicalises to the same key.
    let typed = email::canonicalize("  ALICE@Acme.Test ");
    let err = t
        .write(move |tx| users::insert(tx, &new_user(&typed, Status::Invited), T0))
        .expect_err("taken");
    let err = err.downcast::<Error>().expect("a runtime error");
    assert!(matches!(*err, Error::EmailTaken), "{err:?}");
    assert_eq!(err.code(), "email_taken");
    assert_eq!(t.read(users::count)?, 1);
    // Another tenant may have a user with that address.
    let other = tenant(dir.path(), "globex")?;
    other.user("alice@acme.test")?;
    Ok(())
}

#[test]
fn a_user_keeps_role_status_and_an_argon2id_hash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let hash = tenant_runtime::password::hash("correct horse battery")?;
    let user = t.write(move |tx| {
        let u = users::insert(
            tx,
            &NewUser {
                email: "bob@acme.test",
                name: "Bob",
                role: Role::Admin,
                status: Status::Active,
                password_hash: Some(&hash),
            },
            T0,
        )?;
        users::set_status(tx, &u.id, Status::Blocked, T0 + 1)?;
        users::get(tx, &u.id)
    })?;
    let user = user.expect("inserted");
    assert_eq!((user.role, user.status), (Role::Admin, Status::Blocked));
    let stored = user.password_hash.expect("hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(tenant_runtime::password::verify(
        "correct horse battery",
        &stored
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invitation and reset tokens

#[test]
fn a_token_is_random_and_stored_only_as_its_sha256() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("carol@acme.test")?;
    let token = t.issue(&uid, Purpose::Reset, T0)?;
    // 256 random bits, base64url: well over 128.
    assert!(token.len() >= 43, "{token}");
    let stored: Vec<Vec<u8>> = t.read(|c| {
        let mut stmt = c.prepare("SELECT hash FROM tokens")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })?;
    assert_eq!(stored, vec![secret::hash(&token).to_vec()]);
    // No column of any row holds the secret itself.
    let leaked: i64 = t.read(move |c| {
        Ok(c.query_row(
            "SELECT count(*) FROM tokens WHERE hash = CAST(?1 AS BLOB) OR user_id = ?1 OR purpose = ?1",
            [&token],
            |r| r.get(0),
        )?)
    })?;
    assert_eq!(leaked, 0);
    Ok(())
}

#[test]
fn an_expired_token_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("dave@acme.test")?;
    let token = t.issue(&uid, Purpose::Reset, T0)?;
    assert_eq!(t.peek(&token, Purpose::Reset, T0 + 899)?, Some(uid));
    assert_eq!(t.peek(&token, Purpose::Reset, T0 + 900)?, None);
    assert_eq!(t.redeem(&token, Purpose::Reset, T0 + 900)?, None);
    Ok(())
}

#[test]
fn a_used_token_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("erin@acme.test")?;
    let token = t.issue(&uid, Purpose::Invite, T0)?;
    assert_eq!(t.redeem(&token, Purpose::Invite, T0 + 1)?, Some(uid));
    assert_eq!(t.redeem(&token, Purpose::Invite, T0 + 2)?, None);
    assert_eq!(t.peek(&token, Purpose::Invite, T0 + 2)?, None);
    Ok(())
}

#[test]
fn a_token_works_only_for_its_purpose_and_in_its_tenant() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let other = tenant(dir.path(), "globex")?;
    let uid = t.user("frank@acme.test")?;
    other.user("frank@acme.test")?;
    let token = t.issue(&uid, Purpose::Invite, T0)?;
    assert_eq!(t.redeem(&token, Purpose::Reset, T0 + 1)?, None);
    assert_eq!(other.redeem(&token, Purpose::Invite, T0 + 1)?, None);
    // Still unused: the right purpose in the right tenant works.
    assert_eq!(t.redeem(&token, Purpose::Invite, T0 + 1)?, Some(uid));
    Ok(())
}

#[test]
fn issuing_a_new_token_invalidates_the_previous_one_of_that_purpose() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("gina@acme.test")?;
    let first = t.issue(&uid, Purpose::Reset, T0)?;
    let invite = t.issue(&uid, Purpose::Invite, T0)?;
    let second = t.issue(&uid, Purpose::Reset, T0)?;
    assert_eq!(t.redeem(&first, Purpose::Reset, T0 + 1)?, None);
    assert_eq!(
        t.redeem(&second, Purpose::Reset, T0 + 1)?,
        Some(uid.clone())
    );
    // Another purpose is left alone.
    assert_eq!(t.redeem(&invite, Purpose::Invite, T0 + 1)?, Some(uid));
    Ok(())
}

#[test]
fn of_two_concurrent_redemptions_exactly_one_wins() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    // A second router over the same files acts as another process: there only SQLite's lock
    // (BEGIN IMMEDIATE) keeps the two redemptions apart.
    let other_process = TenantRouter::new(RouterConfig::new(dir.path().join("tenants")))?;
    let uid = t.user("hank@acme.test")?;
    for round in 0..60 {
        let token = t.issue(&uid, Purpose::Reset, T0 + round)?;
        let routers = if round % 2 == 0 {
            [&t.router, &t.router]
        } else {
            [&t.router, &other_process]
        };
        let start = Barrier::new(2);
        let winners: Vec<Option<String>> = thread::scope(|s| {
            let handles: Vec<_> = routers
                .iter()
                .map(|router| {
                    let (token, start, tid) = (&token, &start, &t.id);
                    s.spawn(move || -> TestResult<Option<String>> {
                        start.wait();
                        Ok(router.write_blocking(tid, |tx| {
                            tokens::redeem(tx, token, Purpose::Reset, T0 + round + 1)
                        })?)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("redeemer thread"))
                .collect::<TestResult<_>>()
        })?;
        let won: Vec<_> = winners.iter().flatten().collect();
        assert_eq!(won, [&uid], "round {round}: {winners:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sessions

const LIFE: Lifetimes = Lifetimes {
    idle: 600,
    absolute: 3600,
};

fn start_session(t: &Tenant, uid: &str, now: i64) -> TestResult<String> {
    let uid = uid.to_owned();
    t.write(move |tx| sessions::create(tx, &uid, LIFE, &Origin::default(), &Amr::password(), now))
}

fn live(t: &Tenant, token: &str, now: i64) -> TestResult<bool> {
    let token = token.to_owned();
    Ok(t.read(move |c| sessions::check(c, &token, LIFE.idle, now))?
        .is_some())
}

fn touch(t: &Tenant, token: &str, now: i64) -> TestResult {
    let token = token.to_owned();
    t.write(move |tx| sessions::touch(tx, &secret::hash(&token), now))
}

#[test]
fn a_session_expires_after_the_idle_time_since_it_was_last_seen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("ivy@acme.test")?;
    let s = start_session(&t, &uid, T0)?;
    assert!(live(&t, &s, T0 + 599)?);
    assert!(!live(&t, &s, T0 + 600)?);

    let s = start_session(&t, &uid, T0)?;
    // A check reports when the last-seen time is due for a write (at most once a minute).
    let token = s.clone();
    let current = t
        .read(move |c| sessions::check(c, &token, LIFE.idle, T0 + 30))?
        .expect("live");
    assert!(!current.needs_touch);
    let token = s.clone();
    let current = t
        .read(move |c| sessions::check(c, &token, LIFE.idle, T0 + 500))?
        .expect("live");
    assert!(current.needs_touch);
    touch(&t, &s, T0 + 500)?;
    assert!(live(&t, &s, T0 + 1099)?);
    assert!(!live(&t, &s, T0 + 1100)?);
    Ok(())
}

#[test]
fn a_session_ends_at_its_absolute_expiry_however_active() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("jack@acme.test")?;
    let s = start_session(&t, &uid, T0)?;
    let mut now = T0;
    while now + 300 < T0 + 3600 {
        now += 300;
        assert!(live(&t, &s, now)?, "at {}", now - T0);
        touch(&t, &s, now)?;
    }
    assert!(live(&t, &s, T0 + 3599)?);
    assert!(!live(&t, &s, T0 + 3600)?);
    Ok(())
}

#[test]
fn a_session_is_stored_only_as_its_hash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("kim@acme.test")?;
    let s = start_session(&t, &uid, T0)?;
    let hashes: Vec<Vec<u8>> = t.read(|c| {
        let mut stmt = c.prepare("SELECT hash FROM sessions")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })?;
    assert_eq!(hashes, vec![secret::hash(&s).to_vec()]);
    Ok(())
}

#[test]
fn revoking_one_session_leaves_the_users_other_sessions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("lee@acme.test")?;
    let (a, b, c) = (
        start_session(&t, &uid, T0)?,
        start_session(&t, &uid, T0 + 1)?,
        start_session(&t, &uid, T0 + 2)?,
    );
    // By cookie secret.
    let token = a.clone();
    assert!(t.write(move |tx| sessions::revoke(tx, &secret::hash(&token)))?);
    assert!(!live(&t, &a, T0 + 10)?);
    assert!(live(&t, &b, T0 + 10)? && live(&t, &c, T0 + 10)?);
    // By the public id shown in the session list.
    let id = uid.clone();
    let listed = t.read(move |conn| sessions::list(conn, &id, LIFE.idle, T0 + 10))?;
    assert_eq!(listed.len(), 2);
    let token = b.clone();
    let b_id = t
        .read(move |conn| sessions::check(conn, &token, LIFE.idle, T0 + 10))?
        .expect("live")
        .id;
    assert!(listed.iter().any(|s| s.id == b_id));
    let (id, pid) = (uid.clone(), b_id.clone());
    assert!(t.write(move |tx| sessions::revoke_by_id(tx, &id, &pid))?);
    assert!(!live(&t, &b, T0 + 10)?);
    assert!(live(&t, &c, T0 + 10)?);
    // Another user's session id does nothing.
    let stranger = t.user("stranger@acme.test")?;
    let pid = b_id;
    assert!(!t.write(move |tx| sessions::revoke_by_id(tx, &stranger, &pid))?);
    Ok(())
}

#[test]
fn revoking_all_of_a_users_sessions_leaves_other_users_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("mia@acme.test")?;
    let other = t.user("ned@acme.test")?;
    let mine: Vec<String> = (0..3)
        .map(|i| start_session(&t, &uid, T0 + i))
        .collect::<TestResult<_>>()?;
    let theirs = start_session(&t, &other, T0)?;
    // "Sign out everywhere else": all but the current one.
    let (id, keep) = (uid.clone(), mine[0].clone());
    assert_eq!(
        t.write(move |tx| sessions::revoke_all(tx, &id, Some(&secret::hash(&keep))))?,
        2
    );
    assert!(live(&t, &mine[0], T0 + 10)?);
    assert!(!live(&t, &mine[1], T0 + 10)? && !live(&t, &mine[2], T0 + 10)?);
    // Then all of them.
    let id = uid.clone();
    assert_eq!(t.write(move |tx| sessions::revoke_all(tx, &id, None))?, 1);
    assert!(!live(&t, &mine[0], T0 + 10)?);
    assert!(live(&t, &theirs, T0 + 10)?);
    Ok(())
}

#[test]
fn a_session_of_a_blocked_user_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("olga@acme.test")?;
    let s = start_session(&t, &uid, T0)?;
    let id = uid.clone();
    t.write(move |tx| users::set_status(tx, &id, Status::Blocked, T0 + 1))?;
    assert!(!live(&t, &s, T0 + 2)?);
    Ok(())
}

#[test]
fn raising_the_auth_epoch_ends_every_session_and_unused_token() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let uid = t.user("pia@acme.test")?;
    let s = start_session(&t, &uid, T0)?;
    let token = t.issue(&uid, Purpose::Reset, T0)?;
    let epoch = t.write(|tx| meta::raise_auth_epoch(tx, 5))?;
    assert_eq!(epoch, 5);
    assert!(!live(&t, &s, T0 + 1)?);
    assert_eq!(t.redeem(&token, Purpose::Reset, T0 + 1)?, None);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Audit log

fn append(t: &Tenant, action: &'static str, actor: &str, target: &str, at: i64) -> TestResult<i64> {
    let (actor, target) = (actor.to_owned(), target.to_owned());
    t.write(move |tx| {
        audit::append(
            tx,
            &audit::NewEntry {
                actor: Some(&actor),
                action,
                target: Some(&target),
                details: serde_json::json!({ "at": at }),
            },
            at,
        )
    })
}

fn page(t: &Tenant, filter: audit::Filter) -> TestResult<Vec<audit::Entry>> {
    t.read(move |c| audit::list(c, &filter))
}

#[test]
fn the_audit_log_pages_newest_first_with_filters() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let mut ids = Vec::new();
    for i in 0..25 {
        let (action, actor, target) = match i % 3 {
            0 => ("user.invite", "admin", "u1"),
            1 => ("session.revoke", "u1", "u2"),
            _ => ("user.block", "admin", "u3"),
        };
        ids.push(append(&t, action, actor, target, T0 + i)?);
    }

    // Every entry exactly once, newest first, pages of 10 following the cursor.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let p = page(
            &t,
            audit::Filter {
                before,
                limit: 10,
                ..Default::default()
            },
        )?;
        if p.is_empty() {
            break;
        }
        assert!(p.len() <= 10);
        before = p.last().map(|e| e.id);
        seen.extend(p);
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen.iter().map(|e| e.id).collect::<Vec<_>>(), newest_first);
    assert_eq!(seen[0].details, serde_json::json!({ "at": T0 + 24 }));

    // By action.
    let blocks = page(
        &t,
        audit::Filter {
            action: Some("user.block".into()),
            limit: 100,
            ..Default::default()
        },
    )?;
    assert_eq!(blocks.len(), 8);
    assert!(blocks.iter().all(|e| e.action == "user.block"));
    // By user, as actor or target, paged too.
    let u1 = audit::Filter {
        user: Some("u1".into()),
        limit: 5,
        ..Default::default()
    };
    let first = page(&t, u1.clone())?;
    let rest = page(
        &t,
        audit::Filter {
            before: first.last().map(|e| e.id),
            limit: 100,
            ..u1
        },
    )?;
    let all: Vec<_> = first.iter().chain(&rest).collect();
    assert_eq!(all.len(), 17); // 9 invites of u1 + 8 revokes by u1
    assert!(
        all.iter()
            .all(|e| e.actor.as_deref() == Some("u1") || e.target.as_deref() == Some("u1"))
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    Ok(())
}

#[test]
fn the_audit_log_refuses_updates_and_deletes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let id = append(&t, "user.invite", "admin", "u1", T0)?;
    for sql in [
        "UPDATE audit_log SET action = 'nothing.happened' WHERE id = ?1",
        "UPDATE audit_log SET at = 0",
        "DELETE FROM audit_log WHERE id = ?1",
        "DELETE FROM audit_log",
    ] {
        let res = t.write(move |tx| {
            if sql.contains("?1") {
                tx.execute(sql, [id])?;
            } else {
                tx.execute(sql, [])?;
            }
            Ok(())
        });
        let err = res.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let entries = page(
        &t,
        audit::Filter {
            limit: 10,
            ..Default::default()
        },
    )?;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].id, entries[0].action.as_str(), entries[0].at),
        (id, "user.invite", T0)
    );
    Ok(())
}

/// Starts a grant for `client` in the session of `token`; returns the grant id.
fn grant(t: &Tenant, uid: &str, token: &str, client: &str) -> TestResult<String> {
    let (uid, hash, client) = (uid.to_owned(), secret::hash(token), client.to_owned());
    t.write(move |tx| {
        let code = oidc::authorize(
            tx,
            &hash,
            &oidc::NewGrant {
                user_id: &uid,
                client_id: &client,
                scope: "openid",
                nonce: None,
                redirect_uri: "https://app.test/cb",
                code_challenge: "c",
                code_ttl_secs: 60,
            },
            T0,
        )?;
        Ok(oidc::code(tx, &code)?
            .map(|c| c.grant_id)
            .unwrap_or_default())
    })
}

fn queued(t: &Tenant) -> TestResult<Vec<(String, String)>> {
    let due = t.read(|c| oidc::due_logouts(c, T0, 100))?;
    Ok(due.into_iter().map(|l| (l.client_id, l.sub)).collect())
}

#[test]
fn every_way_a_session_ends_queues_one_logout_per_app_holding_a_grant() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = tenant(dir.path(), "acme")?;
    let (ann, bob) = (t.user("ann@acme.test")?, t.user("bob@acme.test")?);
    let s1 = start_session(&t, &ann, T0)?;
    let g1 = grant(&t, &ann, &s1, "crm")?;
    grant(&t, &ann, &s1, "crm")?;
    grant(&t, &ann, &s1, "wiki")?;
    let s2 = start_session(&t, &bob, T0)?;
    grant(&t, &bob, &s2, "crm")?;
    let untouched = start_session(&t, &ann, T0)?;
    assert!(
        t.read(move |c| oidc::live(c, &g1, LIFE.idle, T0))?
            .is_some()
    );

    // Ending a session: one logout per app, however many grants it held there.
    let hash = secret::hash(&s1);
    t.write(move |tx| sessions::revoke(tx, &hash))?;
    let mut q = queued(&t)?;
    q.sort();
    assert_eq!(
        q,
        vec![("crm".into(), ann.clone()), ("wiki".into(), ann.clone())]
    );

    // Deleting a user: their grants go, and their apps are told.
    let id = bob.clone();
    t.write(move |tx| users::delete(tx, &id))?;
    assert!(queued(&t)?.contains(&("crm".into(), bob.clone())));

    // A session without grants queues nothing; a company-wide end queues the rest.
    let before = queued(&t)?.len();
    let hash = secret::hash(&untouched);
    t.write(move |tx| sessions::revoke(tx, &hash))?;
    assert_eq!(queued(&t)?.len(), before);
    let s3 = start_session(&t, &ann, T0)?;
    grant(&t, &ann, &s3, "erp")?;
    assert_eq!(t.write(|tx| oidc::end_all(tx, T0))?, 1);
    assert!(queued(&t)?.contains(&("erp".into(), ann.clone())));
    Ok(())
}
