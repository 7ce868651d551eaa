//! What lets one node hold many tenants: the connection cap sized from the descriptor limit,
//! SQLite built to spend memory only on pages read, and idle tenants closed in the background
//! before the cap is reached.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_debug_implementations,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::time::{Duration, Instant};

use tenant_runtime::router::{DESCRIPTORS_PER_CONNECTION, connection_cap};
use tenant_runtime::store::meta;
use tenant_runtime::{RouterConfig, TenantId, TenantRouter};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[test]
fn the_connection_cap_leaves_a_quarter_of_the_descriptors_for_everything_else() {
    assert_eq!(DESCRIPTORS_PER_CONNECTION, 3);
    // This machine's limit: 15,000 descriptors for 5,000 connections.
    assert_eq!(connection_cap(20_000), 5_000);
    assert_eq!(connection_cap(1_048_576), 262_144);
    // At least 1,024 are kept back; a tiny limit still gets a working router.
    assert_eq!(connection_cap(4_096), 1_024);
    assert_eq!(connection_cap(1_024), 8);
    assert_eq!(connection_cap(0), 8);
    for nofile in [2_000, 20_000, 65_536, 1_048_576] {
        let used = connection_cap(nofile) as u64 * DESCRIPTORS_PER_CONNECTION;
        assert!(used + 1_024 <= nofile, "{nofile}: {used}");
    }
}

#[test]
fn sqlite_allocates_page_cache_on_demand_and_a_small_lookaside() -> TestResult {
    // Set in .cargo/config.toml: without them each connection costs ~136 KiB more at open.
    let conn = rusqlite::Connection::open_in_memory()?;
    let mut stmt = conn.prepare("PRAGMA compile_options")?;
    let opts: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(
        opts.iter().any(|o| o == "DEFAULT_PCACHE_INITSZ=0"),
        "{opts:?}"
    );
    assert!(
        opts.iter().any(|o| o == "DEFAULT_LOOKASIDE=1200,20"),
        "{opts:?}"
    );
    Ok(())
}

#[test]
fn idle_tenants_close_in_the_background_before_the_cap_is_reached() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = RouterConfig::new(dir.path().join("tenants"));
    cfg.max_connections = 64;
    let router = TenantRouter::new(cfg)?;
    // 60 is 15/16 of 64: the mark where the evictor closes a batch (4 tenants).
    let ids: Vec<TenantId> = (0..60)
        .map(|i| TenantId::parse(&format!("bg{i}")).expect("id"))
        .collect();
    for t in &ids {
        router.create_tenant_blocking(t, 1)?;
    }
    for t in &ids {
        router.read_blocking(t, meta::tenant_id)?;
    }
    // No request needs a slot: only the evictor can close anyone. An eviction is counted when
    // the tenant leaves the map, before its connection is closed: wait for the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = router.stats();
        if stats.open_connections < 60 {
            assert!(stats.evictions > 0, "{stats:?}");
            break;
        }
        assert!(Instant::now() < deadline, "nothing evicted: {stats:?}");
        std::thread::yield_now();
    }
    // The least recently used went first; the newest are still open.
    let open = router.open_tenants();
    assert!(!open.contains(&ids[0]), "{open:?}");
    assert!(open.contains(&ids[59]), "{open:?}");
    Ok(())
}

#[test]
fn below_the_mark_no_tenant_is_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = RouterConfig::new(dir.path().join("tenants"));
    cfg.max_connections = 64;
    let router = TenantRouter::new(cfg)?;
    for i in 0..59 {
        let t = TenantId::parse(&format!("under{i}"))?;
        router.create_tenant_blocking(&t, 1)?;
        router.read_blocking(&t, meta::tenant_id)?;
    }
    let stats = router.stats();
    assert_eq!((stats.open_connections, stats.evictions), (59, 0));
    assert_eq!(router.open_tenants().len(), 59);
    Ok(())
}

#[test]
fn a_new_tenant_file_has_small_pages_and_stays_small() -> TestResult {
    let dir = tempfile::tempdir()?;
    let router = TenantRouter::new(RouterConfig::new(dir.path().join("tenants")))?;
    let t = TenantId::parse("smallpages")?;
    router.create_tenant_blocking(&t, 1)?;
    let size: i64 = router.read_blocking(&t, |c| {
        Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?)
    })?;
    assert_eq!(size, 1024);
    router.close_blocking(&t);
    let bytes = std::fs::metadata(router.path_of(&t))?.len();
    // One page per table and index: 68 KiB with the nine schema steps of today (4 KiB pages
    // would take four times that).
    assert!(bytes < 80 * 1024, "{bytes} bytes");
    Ok(())
}
