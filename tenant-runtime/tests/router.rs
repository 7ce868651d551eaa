//! The router: isolation between tenants, the connection cap and eviction, opening tenants once,
//! refusing files that are not the tenant's, connection settings, write locking and backups.
//!
//! Every test makes its own temporary folder; none depends on another, on time or on ports.
//! Threads are coordinated with barriers and channels, never with sleeps.

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
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tenant_runtime::router::integrity_check;
use tenant_runtime::store::{audit, meta, users};
use tenant_runtime::{Error, ManualClock, RouterConfig, TenantId, TenantRouter};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn router(dir: &Path, max_connections: usize) -> TestResult<TenantRouter> {
    let mut cfg = RouterConfig::new(dir.join("tenants"));
    cfg.max_connections = max_connections;
    Ok(TenantRouter::new(cfg)?)
}

fn id(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid test tenant id")
}

fn create(router: &TenantRouter, name: &str) -> TestResult<TenantId> {
    let t = id(name);
    router.create_tenant_blocking(&t, 1)?;
    Ok(t)
}

/// Creates `n` tenants named `<prefix><i>` on 4 threads (creation waits on fsync).
fn create_many(router: &TenantRouter, prefix: &str, n: usize) -> TestResult<Vec<TenantId>> {
    let ids: Vec<TenantId> = (0..n).map(|i| id(&format!("{prefix}{i}"))).collect();
    thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(n.div_ceil(4))
            .map(|chunk| {
                s.spawn(move || -> TestResult {
                    for t in chunk {
                        router.create_tenant_blocking(t, 1)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("creator thread"))
    })?;
    Ok(ids)
}

fn new_user<'a>(email: &'a str, name: &'a str) -> users::NewUser<'a> {
    users::NewUser {
        email,
        name,
        role: users::Role::Member,
        status: users::Status::Active,
        password_hash: None,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn stored_tenant_id(router: &TenantRouter, t: &TenantId) -> TestResult<String> {
    Ok(router.read_blocking(t, meta::tenant_id)?)
}

// ---------------------------------------------------------------------------------------------
// Isolation

#[test]
fn a_tenants_handle_never_returns_another_tenants_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 512)?;
    let a = create(&router, "acme")?;
    let b = create(&router, "globex")?;
    // Same email in both tenants: each is its own user.
    let ua = router.write_blocking(&a, |tx| {
        users::insert(tx, &new_user("pat@x.test", "Pat A"), 1)
    })?;
    let ub = router.write_blocking(&b, |tx| {
        users::insert(tx, &new_user("pat@x.test", "Pat B"), 1)
    })?;
    router.write_blocking(&b, |tx| {
        users::insert(tx, &new_user("only-b@x.test", "B only"), 1).map(drop)
    })?;

    let found = router.read_blocking(&a, |c| users::find_by_email(c, "pat@x.test"))?;
    assert_eq!(found.map(|u| u.name), Some("Pat A".to_owned()));
    let (list, total) = router.read_blocking(&a, |c| users::list(c, 0, 100))?;
    assert_eq!(total, 1);
    assert_eq!(
        list.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        [ua.id.as_str()]
    );
    // B's ids and emails do not exist as far as A's handle can tell.
    let ub_id = ub.id.clone();
    assert!(
        router
            .read_blocking(&a, move |c| users::get(c, &ub_id))?
            .is_none()
    );
    assert!(
        router
            .read_blocking(&a, |c| users::find_by_email(c, "only-b@x.test"))?
            .is_none()
    );
    assert_eq!(stored_tenant_id(&router, &a)?, "acme");
    assert_eq!(stored_tenant_id(&router, &b)?, "globex");
    Ok(())
}

#[test]
fn under_eviction_churn_every_read_sees_only_its_own_tenant() -> TestResult {
    // A cap of 3 over 12 tenants and 4 threads: connections are closed and opened all the time.
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 3)?;
    let ids = create_many(&router, "churn", 12)?;
    for t in &ids {
        let name = t.to_string();
        router.write_blocking(t, move |tx| {
            users::insert(tx, &new_user("same@x.test", &name), 1).map(drop)
        })?;
    }
    let start = Barrier::new(4);
    thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let (router, ids, start) = (&router, &ids, &start);
                s.spawn(move || -> TestResult {
                    start.wait();
                    for round in 0..150 {
                        let t = &ids[(round * 7 + k * 5) % ids.len()];
                        let got = router.read_blocking(t, |c| {
                            let user = users::find_by_email(c, "same@x.test")?;
                            Ok((meta::tenant_id(c)?, user.map(|u| u.name)))
                        });
                        match got {
                            Ok((tenant, name)) => {
                                assert_eq!(tenant, t.as_str());
                                assert_eq!(name.as_deref(), Some(t.as_str()));
                            }
                            // Four threads may hold all three slots at once: a clean refusal.
                            Err(Error::AtCapacity(3)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("reader thread"))
    })?;
    assert!(router.stats().open_connections <= 3);
    assert!(router.stats().evictions > 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The connection cap and eviction

#[test]
fn touching_2000_tenants_with_a_cap_of_64_keeps_open_connections_at_most_64() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 64)?;
    let ids = create_many(&router, "t", 2000)?;
    let start = Barrier::new(2);
    thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let (router, ids, start) = (&router, &ids, &start);
                s.spawn(move || -> TestResult {
                    start.wait();
                    // One thread walks forwards, the other backwards.
                    for i in 0..ids.len() {
                        let t = if k == 0 {
                            &ids[i]
                        } else {
                            &ids[ids.len() - 1 - i]
                        };
                        let open_inside = router.read_blocking(t, |c| {
                            meta::tenant_id(c)?;
                            Ok(router.stats().open_connections)
                        })?;
                        assert!(open_inside <= 64, "{open_inside} open while reading");
                        let open = router.stats().open_connections;
                        assert!(open <= 64, "{open} open after a read");
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("toucher thread"))
    })?;
    let stats = router.stats();
    assert!(stats.open_connections <= 64, "{stats:?}");
    assert!(stats.open_tenants <= 64, "{stats:?}");
    assert!(stats.tenant_opens >= 2000, "{stats:?}");
    assert!(stats.evictions >= 2000 - 64, "{stats:?}");
    Ok(())
}

#[test]
fn eviction_closes_the_least_recently_used_idle_tenant() -> TestResult {
    // A cap of 2 evicts one tenant at a time.
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 2)?;
    let a = create(&router, "a")?;
    let b = create(&router, "b")?;
    let c = create(&router, "c")?;
    stored_tenant_id(&router, &a)?;
    stored_tenant_id(&router, &b)?;
    stored_tenant_id(&router, &a)?; // a is now more recent than b
    stored_tenant_id(&router, &c)?; // full: b, the least recently used, goes
    let s = router.stats();
    assert_eq!((s.tenant_opens, s.evictions, s.open_connections), (3, 1, 2));

    // a and c are still open: reading them opens nothing.
    stored_tenant_id(&router, &a)?;
    stored_tenant_id(&router, &c)?;
    assert_eq!(router.stats().tenant_opens, 3);
    // b was closed: it opens again, and a (now the least recent) makes room.
    stored_tenant_id(&router, &b)?;
    assert_eq!(router.stats().tenant_opens, 4);
    stored_tenant_id(&router, &c)?;
    assert_eq!(router.stats().tenant_opens, 4);
    stored_tenant_id(&router, &a)?;
    assert_eq!(router.stats().tenant_opens, 5);
    assert_eq!(router.stats().open_connections, 2);
    Ok(())
}

/// Holds a connection of `t` inside a read closure on another thread until told to let go;
/// then uses the connection once more, to prove nobody closed it meanwhile.
fn hold_in_use<'scope>(
    s: &'scope thread::Scope<'scope, '_>,
    router: &TenantRouter,
    t: &TenantId,
) -> (
    mpsc::Sender<()>,
    thread::ScopedJoinHandle<'scope, TestResult<String>>,
) {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (router, t) = (router.clone(), t.clone());
    let handle = s.spawn(move || -> TestResult<String> {
        Ok(router.read_blocking(&t, move |conn| {
            held_tx.send(()).expect("main thread waits");
            release_rx.recv().expect("main thread releases");
            meta::tenant_id(conn)
        })?)
    });
    held_rx.recv().expect("holder started");
    (release_tx, handle)
}

#[test]
fn a_tenant_with_a_connection_in_use_is_never_evicted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 2)?;
    let a = create(&router, "a")?;
    let b = create(&router, "b")?;
    let c = create(&router, "c")?;
    thread::scope(|s| -> TestResult {
        // a is opened first, so it is the least recently used from here on, but it is busy.
        let (release, holder) = hold_in_use(s, &router, &a);
        stored_tenant_id(&router, &b)?;
        stored_tenant_id(&router, &c)?; // full: must evict b, not a
        stored_tenant_id(&router, &b)?; // full again: must evict c, not a
        let st = router.stats();
        assert_eq!(
            (st.tenant_opens, st.evictions, st.open_connections),
            (4, 2, 2)
        );
        release.send(())?;
        // The held connection still worked after all that.
        assert_eq!(holder.join().expect("holder thread")?, "a");
        Ok(())
    })?;
    // a never closed: using it again opens nothing.
    stored_tenant_id(&router, &a)?;
    assert_eq!(router.stats().tenant_opens, 4);
    Ok(())
}

#[test]
fn when_every_connection_is_in_use_another_tenant_is_refused_with_at_capacity() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 1)?;
    let a = create(&router, "a")?;
    let b = create(&router, "b")?;
    thread::scope(|s| -> TestResult {
        let (release, holder) = hold_in_use(s, &router, &a);
        let err = router
            .read_blocking(&b, |_| Ok(()))
            .expect_err("no slot is free");
        assert!(matches!(err, Error::AtCapacity(1)), "{err:?}");
        assert_eq!(err.code(), "at_capacity");
        release.send(())?;
        assert_eq!(holder.join().expect("holder thread")?, "a");
        Ok(())
    })?;
    // Once a is idle again, b gets its slot.
    assert_eq!(stored_tenant_id(&router, &b)?, "b");
    assert_eq!(router.stats().open_connections, 1);
    Ok(())
}

#[test]
fn a_failed_first_open_never_leaves_a_connection_outside_the_cap() -> TestResult {
    // Many first requests for b race while the only slot is held by a and then freed: whichever
    // of them fail or succeed, afterwards every slot must be reachable by eviction again.
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 1)?;
    let a = create(&router, "a")?;
    let c = create(&router, "c")?;
    for round in 0..100 {
        let b = create(&router, &format!("b{round}"))?;
        thread::scope(|s| -> TestResult {
            let (release, holder) = hold_in_use(s, &router, &a);
            let start = Arc::new(Barrier::new(9));
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    let (router, b, start) = (&router, &b, start.clone());
                    s.spawn(move || {
                        start.wait();
                        match router.read_blocking(b, |_| Ok(())) {
                            Ok(()) | Err(Error::AtCapacity(1)) => {}
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    })
                })
                .collect();
            start.wait();
            release.send(())?;
            holder.join().expect("holder thread")?;
            for r in racers {
                r.join().expect("racer thread");
            }
            Ok(())
        })?;
        assert!(router.stats().open_connections <= 1);
        // The slot can always be had by another tenant.
        assert_eq!(stored_tenant_id(&router, &c)?, "c");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Opening a tenant once

/// `n` threads read `t`'s stored id at the same moment (a barrier releases them together),
/// each checking it is `expected`.
fn first_requests_at_once(
    router: &TenantRouter,
    t: &TenantId,
    expected: &str,
    n: usize,
) -> TestResult {
    let start = Barrier::new(n);
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let start = &start;
                s.spawn(move || -> TestResult {
                    start.wait();
                    assert_eq!(stored_tenant_id(router, t)?, expected);
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("request thread"))
    })
}

#[test]
fn a_hundred_concurrent_first_requests_open_the_tenant_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 512)?;
    let t = create(&router, "popular")?;
    first_requests_at_once(&router, &t, "popular", 100)?;
    let stats = router.stats();
    assert_eq!(stats.tenant_opens, 1, "{stats:?}");
    assert!(
        stats.connections_opened <= router.config().max_per_tenant as u64,
        "{stats:?}"
    );
    assert_eq!(stats.open_tenants, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_async_first_requests_open_the_tenant_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 512)?;
    let t = id("popular");
    router.create_tenant(&t, 1).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (router, t) = (router.clone(), t.clone());
        tasks.spawn(async move { router.read(&t, meta::tenant_id).await });
    }
    while let Some(res) = tasks.join_next().await {
        assert_eq!(res??, "popular");
    }
    assert_eq!(router.stats().tenant_opens, 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refusing what is not the tenant's file

#[test]
fn bad_tenant_ids_are_refused_before_anything_touches_the_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _router = router(dir.path(), 8)?;
    for bad in [
        "", "..", "../evil", "a/b", "a\\b", "acme.db", "Acme", "-a", "a b", "a\0b", "ä",
    ] {
        let err = TenantId::parse(bad).expect_err(bad);
        assert!(matches!(err, Error::InvalidTenantId), "{bad:?}: {err:?}");
        assert_eq!(err.code(), "invalid_tenant_id");
    }
    assert!(TenantId::parse(&"a".repeat(65)).is_err());
    assert_eq!(files_in(&dir.path().join("tenants")), Vec::<String>::new());
    assert_eq!(files_in(dir.path()), ["tenants"]);
    Ok(())
}

#[test]
fn an_unknown_tenant_is_an_error_and_never_a_new_empty_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let ghost = id("ghost");
    let read = router
        .read_blocking(&ghost, |_| Ok(()))
        .expect_err("no file");
    assert!(
        matches!(&read, Error::TenantNotFound(t) if t == "ghost"),
        "{read:?}"
    );
    assert_eq!(read.code(), "tenant_not_found");
    let write = router
        .write_blocking(&ghost, |_| Ok(()))
        .expect_err("no file");
    assert!(matches!(write, Error::TenantNotFound(_)), "{write:?}");
    let dest = dir.path().join("ghost-backup.db");
    let backup = router.backup_blocking(&ghost, &dest).expect_err("no file");
    assert!(matches!(backup, Error::TenantNotFound(_)), "{backup:?}");
    // Again, from many threads at once.
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert!(router.read_blocking(&ghost, |_| Ok(())).is_err()));
        }
    });
    assert!(!router.exists(&ghost));
    assert_eq!(files_in(&dir.path().join("tenants")), Vec::<String>::new());
    assert!(!dest.exists());
    let stats = router.stats();
    assert_eq!(
        (
            stats.open_connections,
            stats.open_tenants,
            stats.tenant_opens
        ),
        (0, 0, 0)
    );
    Ok(())
}

#[test]
fn a_file_with_another_tenants_id_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let a = create(&router, "a")?;
    let b = create(&router, "b")?;
    // A copy of a's file put where tenant c's file would be.
    let c = id("c");
    std::fs::copy(router.path_of(&a), router.path_of(&c))?;
    let err = router
        .read_blocking(&c, |_| Ok(()))
        .expect_err("foreign file");
    assert!(
        matches!(&err, Error::ForeignTenantFile { expected, found } if expected == "c" && found == "a"),
        "{err:?}"
    );
    assert_eq!(err.code(), "foreign_tenant_file");

    // a's and b's files swapped.
    let tmp = dir.path().join("swap.db");
    std::fs::rename(router.path_of(&a), &tmp)?;
    std::fs::rename(router.path_of(&b), router.path_of(&a))?;
    std::fs::rename(&tmp, router.path_of(&b))?;
    for (t, other) in [(&a, "b"), (&b, "a")] {
        let err = router
            .write_blocking(t, |_| Ok(()))
            .expect_err("swapped file");
        assert!(
            matches!(&err, Error::ForeignTenantFile { found, .. } if found == other),
            "{err:?}"
        );
    }
    assert_eq!(router.stats().open_connections, 0);

    // Swapped back, both open: a refusal leaves nothing behind that sticks.
    std::fs::rename(router.path_of(&a), &tmp)?;
    std::fs::rename(router.path_of(&b), router.path_of(&a))?;
    std::fs::rename(&tmp, router.path_of(&b))?;
    assert_eq!(stored_tenant_id(&router, &a)?, "a");
    assert_eq!(stored_tenant_id(&router, &b)?, "b");
    Ok(())
}

#[test]
fn a_file_that_is_not_a_tenant_database_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    // An SQLite database without the tenant schema.
    let plain = id("plain");
    Connection::open(router.path_of(&plain))?.execute_batch("CREATE TABLE x (y INTEGER)")?;
    let err = router
        .read_blocking(&plain, |_| Ok(()))
        .expect_err("not a tenant file");
    assert!(matches!(err, Error::NotATenantFile(_)), "{err:?}");
    assert_eq!(err.code(), "not_a_tenant_file");
    // Refused before any setting was applied: it was not switched to WAL.
    let mode: String =
        Connection::open(router.path_of(&plain))?
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "delete");
    // Not SQLite at all.
    let junk = id("junk");
    std::fs::write(router.path_of(&junk), vec![0x5a_u8; 8192])?;
    assert!(router.read_blocking(&junk, |_| Ok(())).is_err());
    assert_eq!(router.stats().open_connections, 0);
    Ok(())
}

#[test]
fn a_file_with_a_newer_schema_is_refused_with_tr009() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "future")?;
    let newer = tenant_schema::TENANT_LATEST + 1;
    Connection::open(router.path_of(&t))?.pragma_update(None, "user_version", newer)?;
    let err = router
        .read_blocking(&t, |_| Ok(()))
        .expect_err("newer schema");
    assert!(
        matches!(err, Error::Schema(tenant_schema::Error::TooNew { found, .. }) if found == newer),
        "{err:?}"
    );
    assert_eq!(err.code(), "schema_too_new");
    // Refused, not touched: the file still says the newer version.
    let v: u32 =
        Connection::open(router.path_of(&t))?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, newer);
    Ok(())
}

#[test]
fn a_file_with_an_older_schema_is_migrated_at_first_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = id("old");
    {
        let mut conn = Connection::open(router.path_of(&t))?;
        tenant_schema::migrate_tenant_to(&mut conn, 1, 1)?;
        conn.execute(
            "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, 'old', 1)",
            [],
        )?;
    }
    let (version, epoch) = router.read_blocking(&t, |c| {
        Ok((tenant_schema::tenant_version(c)?, meta::auth_epoch(c)?))
    })?;
    assert_eq!((version, epoch), (tenant_schema::TENANT_LATEST, 1));
    Ok(())
}

#[test]
fn a_migration_at_open_takes_its_time_from_the_injected_clock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = RouterConfig::new(dir.path().join("tenants"));
    cfg.clock = Arc::new(ManualClock::new(1_234_567));
    let router = TenantRouter::new(cfg)?;
    let t = id("old");
    {
        let mut conn = Connection::open(router.path_of(&t))?;
        tenant_schema::migrate_tenant_to(&mut conn, 1, 1)?;
        conn.execute(
            "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, 'old', 1)",
            [],
        )?;
    }
    let applied: Vec<(u32, i64)> = router.read_blocking(&t, |c| {
        let mut stmt =
            c.prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })?;
    let expected: Vec<(u32, i64)> = (1..=tenant_schema::TENANT_LATEST)
        .map(|v| (v, if v == 1 { 1 } else { 1_234_567 }))
        .collect();
    assert_eq!(applied, expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connection settings

#[derive(Debug, PartialEq, Eq)]
struct Pragmas {
    journal_mode: String,
    synchronous: i64,
    foreign_keys: i64,
    busy_timeout: i64,
    cache_size: i64,
}

fn pragmas(c: &Connection) -> tenant_runtime::Result<Pragmas> {
    let get = |p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
    Ok(Pragmas {
        journal_mode: c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        synchronous: get("synchronous")?,
        foreign_keys: get("foreign_keys")?,
        busy_timeout: get("busy_timeout")?,
        cache_size: get("cache_size")?,
    })
}

fn assert_configured(p: &Pragmas) {
    assert_eq!(p.journal_mode, "wal");
    assert_eq!(p.synchronous, 2, "synchronous=FULL");
    assert_eq!(p.foreign_keys, 1);
    assert!(p.busy_timeout >= 5000, "{p:?}");
    // A negative cache_size is KiB: a modest cache, at most 2 MiB per connection.
    assert!((-2048..0).contains(&p.cache_size), "{p:?}");
}

#[test]
fn every_connection_has_wal_full_sync_foreign_keys_busy_timeout_and_a_modest_cache() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "settings")?;
    assert_configured(&router.read_blocking(&t, pragmas)?);
    assert_configured(&router.write_blocking(&t, |tx| pragmas(tx))?);
    // Several connections of one pool at once: hold one while the others are checked.
    thread::scope(|s| -> TestResult {
        let (release, holder) = hold_in_use(s, &router, &t);
        assert_configured(&router.read_blocking(&t, pragmas)?);
        release.send(())?;
        holder.join().expect("holder thread")?;
        Ok(())
    })?;
    assert!(router.stats().connections_opened >= 2);
    Ok(())
}

#[test]
fn a_busy_timeout_below_five_seconds_is_refused_when_connecting() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = RouterConfig::new(dir.path().join("tenants"));
    cfg.busy_timeout = std::time::Duration::from_secs(1);
    let router = TenantRouter::new(cfg)?;
    let t = create(&router, "impatient")?;
    let err = router
        .read_blocking(&t, |_| Ok(()))
        .expect_err("asserted at connect");
    assert!(
        matches!(
            err,
            Error::PragmaMismatch {
                pragma: "busy_timeout",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "pragma_mismatch");
    assert_eq!(router.stats().open_connections, 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writes

#[test]
fn a_write_holds_the_tenants_write_lock_until_it_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "locked")?;
    // Another process's connection, which does not wait.
    let other = Connection::open_with_flags(router.path_of(&t), OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    other.busy_timeout(std::time::Duration::ZERO)?;
    router.write_blocking(&t, |tx| {
        // BEGIN IMMEDIATE took the lock before the closure ran, even though it wrote nothing yet.
        let busy = other
            .execute_batch("BEGIN IMMEDIATE")
            .expect_err("lock is held");
        assert_eq!(
            busy.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        audit::append(tx, &entry("locked.write", None), 1)?;
        Ok(())
    })?;
    other.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
    Ok(())
}

#[test]
fn a_write_whose_closure_fails_is_rolled_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "rollback")?;
    let res: tenant_runtime::Result<()> = router.write_blocking(&t, |tx| {
        users::insert(tx, &new_user("gone@x.test", "Gone"), 1)?;
        Err(Error::EmailTaken)
    });
    assert!(matches!(res, Err(Error::EmailTaken)));
    assert_eq!(router.read_blocking(&t, users::count)?, 0);
    // The connection went back clean: the next write works.
    router.write_blocking(&t, |tx| {
        users::insert(tx, &new_user("kept@x.test", "Kept"), 1).map(drop)
    })?;
    assert_eq!(router.read_blocking(&t, users::count)?, 1);
    Ok(())
}

fn entry<'a>(action: &'a str, target: Option<&'a str>) -> audit::NewEntry<'a> {
    audit::NewEntry {
        actor: Some("tester"),
        action,
        target,
        details: serde_json::json!({}),
    }
}

// ---------------------------------------------------------------------------------------------
// Closing and backups

#[test]
fn a_closed_tenants_data_is_all_in_its_db_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "portable")?;
    for i in 0..20 {
        router.write_blocking(&t, move |tx| {
            audit::append(tx, &entry("row", None), i).map(drop)
        })?;
    }
    router.close_blocking(&t);
    // Copy only the .db file: it holds everything (the WAL was checkpointed and emptied).
    let wal = dir.path().join("tenants/portable.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal)?.len() == 0);
    let other = tempfile::tempdir()?;
    let moved = TenantRouter::new(RouterConfig::new(other.path()))?;
    std::fs::copy(router.path_of(&t), moved.path_of(&t))?;
    let rows = moved.read_blocking(&t, |c| {
        audit::list(
            c,
            &audit::Filter {
                limit: 100,
                ..Default::default()
            },
        )
    })?;
    assert_eq!(rows.len(), 20);

    // The same holds when the router itself goes away with the tenant open.
    router.write_blocking(&t, |tx| {
        audit::append(tx, &entry("row", None), 21).map(drop)
    })?;
    let path = router.path_of(&t);
    drop(router);
    assert!(!wal.exists() || std::fs::metadata(&wal)?.len() == 0);
    let copy = other.path().join("copy.db");
    std::fs::copy(&path, &copy)?;
    let n: i64 = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)?.query_row(
        "SELECT count(*) FROM audit_log",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(n, 21);
    Ok(())
}

#[test]
fn a_backup_taken_during_inserts_holds_every_row_committed_before_it_began_and_is_intact()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "busy")?;
    let committed = AtomicI64::new(0);
    let stop = AtomicBool::new(false);
    let (warm_tx, warm_rx) = mpsc::channel();
    let dest = dir.path().join("busy-backup.db");
    let (before, total) = thread::scope(|s| -> TestResult<(i64, i64)> {
        let writer = s.spawn(|| -> TestResult<i64> {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let row = router.write_blocking(&t, move |tx| {
                    let e = audit::NewEntry {
                        details: serde_json::json!({ "i": i }),
                        ..entry("tick", None)
                    };
                    audit::append(tx, &e, i)
                })?;
                committed.store(row, Ordering::SeqCst);
                if i == 50 {
                    warm_tx.send(())?;
                }
            }
            Ok(committed.load(Ordering::SeqCst))
        });
        warm_rx.recv()?;
        let before = committed.load(Ordering::SeqCst);
        router.backup_blocking(&t, &dest)?;
        stop.store(true, Ordering::SeqCst);
        let total = writer.join().expect("writer thread")?;
        Ok((before, total))
    })?;
    assert!(before >= 50);

    assert_eq!(integrity_check(&dest)?, Vec::<String>::new());
    let backup = Connection::open_with_flags(&dest, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (count_before, max_id): (i64, i64) = backup.query_row(
        "SELECT (SELECT count(*) FROM audit_log WHERE id <= ?1), (SELECT max(id) FROM audit_log)",
        [before],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(
        count_before, before,
        "every row committed before the backup began"
    );
    assert!(
        max_id >= before && max_id <= total,
        "{max_id} not in {before}..={total}"
    );
    assert_eq!(
        backup.query_row("SELECT tenant_id FROM tenant_meta", [], |r| r
            .get::<_, String>(0))?,
        "busy"
    );

    // The backup is a tenant file the router opens as that tenant.
    let other = tempfile::tempdir()?;
    let restored = TenantRouter::new(RouterConfig::new(other.path()))?;
    std::fs::copy(&dest, restored.path_of(&t))?;
    let n: i64 = restored.read_blocking(&t, |c| {
        Ok(c.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?)
    })?;
    assert_eq!(n, max_id);
    Ok(())
}

#[test]
fn a_backup_never_overwrites_an_existing_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 8)?;
    let t = create(&router, "careful")?;
    let dest = dir.path().join("taken.db");
    std::fs::write(&dest, b"keep me")?;
    assert!(router.backup_blocking(&t, &dest).is_err());
    assert_eq!(std::fs::read(&dest)?, b"keep me");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Housekeeping hooks: on_open, open_tenants, write_if_open

type Runs = Arc<std::sync::Mutex<Vec<(String, i64)>>>;

/// A router whose `on_open` records each run (tenant, now) and writes an audit entry.
/// One connection per tenant, so the connection cap counts tenants.
fn hooked_router(
    dir: &Path,
    max_connections: usize,
    clock: &ManualClock,
) -> TestResult<(TenantRouter, Runs)> {
    let runs: Runs = Arc::default();
    let mut cfg = RouterConfig::new(dir.join("tenants"));
    cfg.max_connections = max_connections;
    cfg.max_per_tenant = 1;
    cfg.clock = Arc::new(clock.clone());
    let seen = runs.clone();
    cfg.on_open = Some(Arc::new(move |tx, now| {
        let tenant = meta::tenant_id(tx)?;
        audit::record(tx, None, "test.on_open", None, serde_json::Value::Null, now)?;
        seen.lock().expect("runs").push((tenant, now));
        Ok(())
    }));
    Ok((TenantRouter::new(cfg)?, runs))
}

fn runs_of(runs: &Runs, tenant: &str) -> Vec<i64> {
    runs.lock()
        .expect("runs")
        .iter()
        .filter(|(t, _)| t == tenant)
        .map(|(_, now)| *now)
        .collect()
}

fn on_open_entries(router: &TenantRouter, t: &TenantId) -> TestResult<Vec<i64>> {
    let filter = audit::Filter {
        action: Some("test.on_open".into()),
        limit: 100,
        ..Default::default()
    };
    let mut at: Vec<i64> = router
        .read_blocking(t, move |c| audit::list(c, &filter))?
        .iter()
        .map(|e| e.at)
        .collect();
    at.sort_unstable();
    Ok(at)
}

#[test]
fn on_open_runs_once_per_open_and_again_after_eviction_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(100);
    // A cap of 2 evicts one tenant at a time.
    let (router, runs) = hooked_router(dir.path(), 2, &clock)?;
    let a = create(&router, "a")?;
    let b = create(&router, "b")?;
    let c = create(&router, "c")?;
    assert!(runs_of(&runs, "a").is_empty(), "creating is not opening");

    // Many uses, one open.
    for _ in 0..5 {
        stored_tenant_id(&router, &a)?;
    }
    router.write_blocking(&a, |tx| users::insert(tx, &new_user("x@a.test", "X"), 1))?;
    assert_eq!(runs_of(&runs, "a"), [100]);
    // Concurrent first requests: still one open, one run.
    first_requests_at_once(&router, &b, "b", 8)?;
    assert_eq!(runs_of(&runs, "b"), [100]);

    // c needs room: a, the least recently used, is evicted; reopened later, it runs again.
    clock.set(200);
    stored_tenant_id(&router, &c)?;
    assert_eq!(router.stats().evictions, 1);
    assert_eq!(router.open_tenants(), [b.clone(), c.clone()]);
    stored_tenant_id(&router, &a)?;
    assert_eq!(runs_of(&runs, "a"), [100, 200]);
    assert_eq!(runs_of(&runs, "c"), [200]);
    // Closing and reopening is an open too.
    router.close_blocking(&a);
    clock.set(300);
    stored_tenant_id(&router, &a)?;
    assert_eq!(runs_of(&runs, "a"), [100, 200, 300]);
    assert_eq!(router.stats().tenant_opens, 5);
    // Each run was committed in its own write transaction, with the router's clock.
    assert_eq!(on_open_entries(&router, &a)?, [100, 200, 300]);
    Ok(())
}

#[test]
fn a_failing_or_panicking_on_open_rolls_back_and_the_tenant_opens_anyway() -> TestResult {
    for panics in [false, true] {
        let dir = tempfile::tempdir()?;
        let mut cfg = RouterConfig::new(dir.path().join("tenants"));
        cfg.on_open = Some(Arc::new(move |tx, now| {
            audit::record(tx, None, "test.on_open", None, serde_json::Value::Null, now)?;
            if panics {
                panic!("on_open panics on purpose");
            }
            Err(Error::TenantNotFound("on purpose".into()))
        }));
        let router = TenantRouter::new(cfg)?;
        let t = create(&router, "t")?;
        assert_eq!(stored_tenant_id(&router, &t)?, "t");
        assert_eq!(router.stats().tenant_opens, 1);
        // Its write was rolled back, and the connection writes normally afterwards.
        assert!(on_open_entries(&router, &t)?.is_empty());
        router.write_blocking(&t, |tx| users::insert(tx, &new_user("x@t.test", "X"), 1))?;
        assert_eq!(router.read_blocking(&t, users::count)?, 1);
        assert_eq!(router.stats().open_connections, 1);
    }
    Ok(())
}

#[test]
fn write_if_open_never_opens_a_closed_tenant() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(100);
    let (router, runs) = hooked_router(dir.path(), 2, &clock)?;
    let idle = create(&router, "idle")?;
    let insert =
        |tx: &tenant_runtime::WriteTx<'_>| users::insert(tx, &new_user("x@t.test", "X"), 1);

    // Never opened: nothing happens at all.
    assert!(router.write_if_open_blocking(&idle, insert)?.is_none());
    assert_eq!(
        router.stats(),
        tenant_runtime::RouterStats {
            max_connections: 2,
            ..Default::default()
        }
    );
    assert!(router.open_tenants().is_empty());
    assert!(runs_of(&runs, "idle").is_empty());

    // Opened, then evicted: it stays closed, and nothing else is evicted to reach it.
    stored_tenant_id(&router, &idle)?;
    let b = create(&router, "b")?;
    let c = create(&router, "c")?;
    stored_tenant_id(&router, &b)?;
    stored_tenant_id(&router, &c)?;
    let before = router.stats();
    assert_eq!(before.evictions, 1);
    assert_eq!(router.open_tenants(), [b.clone(), c.clone()]);
    assert!(router.write_if_open_blocking(&idle, insert)?.is_none());
    assert_eq!(router.stats(), before);
    assert_eq!(router.open_tenants(), [b, c.clone()]);
    assert_eq!(runs_of(&runs, "idle"), [100]);

    // Closed by hand: the same.
    router.close_blocking(&c);
    assert!(router.write_if_open_blocking(&c, insert)?.is_none());
    assert_eq!(router.stats().tenant_opens, before.tenant_opens);
    // The writes never happened.
    assert_eq!(router.read_blocking(&idle, users::count)?, 0);
    assert_eq!(router.read_blocking(&c, users::count)?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_if_open_writes_an_open_tenant_without_evicting_or_refreshing_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = router(dir.path(), 2)?;
    let a = id("a");
    let b = id("b");
    let c = id("c");
    for t in [&a, &b, &c] {
        router.create_tenant(t, 1).await?;
    }
    let never = id("never");
    router.create_tenant(&never, 1).await?;
    router.read(&a, meta::tenant_id).await?;
    router.read(&b, meta::tenant_id).await?;
    assert_eq!(router.open_tenants(), [a.clone(), b.clone()]);

    let before = router.stats();
    let user = router
        .write_if_open(&a, |tx| users::insert(tx, &new_user("x@a.test", "X"), 1))
        .await?;
    assert!(user.is_some());
    assert!(
        router
            .write_if_open(&never, |tx| users::insert(
                tx,
                &new_user("x@n.test", "X"),
                1
            ))
            .await?
            .is_none()
    );
    assert_eq!(router.stats(), before);
    // a was written but not used: it is still the least recently used and goes first.
    router.read(&c, meta::tenant_id).await?;
    assert_eq!(router.open_tenants(), [b.clone(), c.clone()]);
    // The write was committed.
    assert_eq!(router.read(&a, users::count).await?, 1);
    assert_eq!(router.read(&never, users::count).await?, 0);
    Ok(())
}

#[test]
fn write_if_open_waits_for_a_connection_in_use() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = RouterConfig::new(dir.path().join("tenants"));
    cfg.max_per_tenant = 1;
    let router = TenantRouter::new(cfg)?;
    let t = create(&router, "t")?;
    thread::scope(|s| -> TestResult {
        let (release, holder) = hold_in_use(s, &router, &t);
        let writer = s.spawn(|| {
            router.write_if_open_blocking(&t, |tx| {
                users::insert(tx, &new_user("x@t.test", "X"), 1).map(drop)
            })
        });
        release.send(())?;
        assert_eq!(holder.join().expect("holder thread")?, "t");
        assert!(writer.join().expect("writer thread")?.is_some());
        Ok(())
    })?;
    assert_eq!(router.read_blocking(&t, users::count)?, 1);
    assert_eq!(router.stats().connections_opened, 1);
    Ok(())
}

#[test]
fn a_lazy_write_commits_and_the_connection_stays_durable_for_the_next() -> TestResult {
    let dir = tempfile::tempdir()?;
    // One connection in all: the lazy write and the reads below share it.
    let r = router(dir.path(), 1)?;
    let t = create(&r, "lazy")?;
    r.write_lazily_blocking(&t, |tx| {
        audit::record(tx, None, "test.lazy", None, serde_json::json!({}), 1).map(|_| ())
    })?;
    let (sync, rows) = r.read_blocking(&t, |c| {
        let sync: i64 = c.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        let rows: i64 = c.query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'test.lazy'",
            [],
            |row| row.get(0),
        )?;
        Ok((sync, rows))
    })?;
    assert_eq!(rows, 1, "the lazy write committed");
    assert_eq!(sync, 2, "the connection is back to synchronous = FULL");
    // A failing lazy write changes nothing and leaves the setting as it was too.
    let failed = r.write_lazily_blocking(&t, |tx| -> tenant_runtime::Result<()> {
        audit::record(tx, None, "test.rolled_back", None, serde_json::json!({}), 1)?;
        Err(Error::Unexpected(anyhow::anyhow!("refused")))
    });
    assert!(failed.is_err());
    let (sync, rows) = r.read_blocking(&t, |c| {
        let sync: i64 = c.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        let rows: i64 = c.query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'test.rolled_back'",
            [],
            |row| row.get(0),
        )?;
        Ok((sync, rows))
    })?;
    assert_eq!((sync, rows), (2, 0));
    Ok(())
}
