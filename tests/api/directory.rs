//! The directory suite: the same tests against the embedded SQLite directory (a temp file) and
//! against PostgreSQL (a fresh database per test, see [`tests::db`]).
//!
//! Without a reachable PostgreSQL the PostgreSQL variants fail when `CI=true` (or when
//! `TENANTD_TEST_POSTGRES_URL` is set) and are skipped with a message otherwise.

use std::time::Duration;

use sqlx::Row;
use tenant_runtime::TenantId;
use tests::db::{Engine, TestDb};
use tests::inproc::{
    Directory, DirectoryError, SocialAttempt, SocialProviderRow, Tenant, TenantStatus, system_clock,
};

/// Runs each listed test on SQLite and on PostgreSQL.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::TestDb::new(super::Engine::Sqlite).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::TestDb::new(super::Engine::Postgres).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

both_engines!(
    tenants_crud,
    bulk_insert_is_one_transaction,
    slug_domain_and_email_are_unique,
    reserve_confirm_and_remove_email,
    route_email_tries_the_exact_address_then_the_domain,
    migrations_are_idempotent,
    a_newer_directory_is_refused,
    concurrent_migrations_take_turns_on_the_lock_row,
    a_stale_lock_row_is_taken_over,
    nodes_register_heartbeat_and_count_tenants,
    placement_moves_only_from_the_expected_node_and_epoch,
    domain_claims_and_social_sign_ins,
    saml_assertions_are_accepted_once_by_every_node,
);

fn id() -> TenantId {
    TenantId::generate()
}

/// A fresh directory with two tenants, acme and beta, on the local node.
async fn acme_and_beta(db: &TestDb) -> (Directory, TenantId, TenantId) {
    let dir = db.connect().await;
    let (a, b) = (id(), id());
    dir.insert_tenant(&a, "acme", "Acme", "local")
        .await
        .expect("a");
    dir.insert_tenant(&b, "beta", "Beta", "local")
        .await
        .expect("b");
    (dir, a, b)
}

async fn tenants_crud(db: &TestDb) {
    // Arrange
    let dir = db.connect().await;
    let (a, b) = (id(), id());

    // Act
    let ta = dir
        .insert_tenant(&a, "acme", "Acme Ltd", "local")
        .await
        .expect("insert a");
    dir.insert_tenant(&b, "beta", "Beta", "node-2")
        .await
        .expect("insert b");

    // Assert: the row as written, with the defaults of a new tenant.
    assert_eq!(ta.id, a);
    assert_eq!(ta.slug, "acme");
    assert_eq!(ta.name, "Acme Ltd");
    assert_eq!(ta.status, TenantStatus::Provisioning);
    assert_eq!(ta.schema_version, 0);
    assert_eq!(ta.node, "local");
    assert_eq!(ta.placement_epoch, 1);
    assert_eq!(ta.auth_epoch, 1);
    assert!(ta.created_at > 1_600_000_000 && ta.created_at == ta.updated_at);
    let by_slug = dir
        .tenant_by_slug("beta")
        .await
        .expect("by slug")
        .expect("b");
    assert_eq!(by_slug.id, b);
    assert_eq!(by_slug.node, "node-2");
    assert!(
        dir.tenant(&TenantId::parse("nope").unwrap())
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(dir.tenant_by_slug("nope").await.expect("lookup").is_none());
    let slugs: Vec<String> = dir
        .tenants()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(slugs, ["acme", "beta"]);

    assert!(
        dir.set_tenant_status(&a, TenantStatus::Active)
            .await
            .expect("status")
    );
    assert!(
        !dir.set_tenant_status(&TenantId::parse("nope").unwrap(), TenantStatus::Active)
            .await
            .expect("status of a missing tenant")
    );
    dir.set_schema_version(&a, 3).await.expect("version");
    assert_eq!(dir.bump_auth_epoch(&a).await.expect("bump"), 2);
    assert_eq!(dir.raise_auth_epoch_to(&a, 7).await.expect("raise"), 7);
    assert_eq!(dir.raise_auth_epoch_to(&a, 5).await.expect("no lower"), 7);
    let t = dir.tenant(&a).await.expect("get").expect("a");
    assert_eq!(
        (t.status, t.schema_version, t.auth_epoch),
        (TenantStatus::Active, 3, 7)
    );
    dir.set_schema_versions(&[(a.clone(), 4), (b.clone(), 5)])
        .await
        .expect("versions");
    assert_eq!(
        dir.tenant(&b)
            .await
            .expect("get")
            .expect("b")
            .schema_version,
        5
    );

    // Delete takes domains and index rows along, and only this tenant's.
    dir.add_domain(&a, "acme.test").await.expect("domain");
    dir.add_domain(&b, "beta.test").await.expect("domain");
    dir.reserve_email("ann@acme.test", &a, "u1")
        .await
        .expect("reserve");
    dir.reserve_email("bob@beta.test", &b, "u2")
        .await
        .expect("reserve");
    assert!(dir.delete_tenant(&a).await.expect("delete"));
    assert!(!dir.delete_tenant(&a).await.expect("delete again"));
    assert!(dir.tenant(&a).await.expect("get").is_none());
    assert!(
        dir.domain_owner("acme.test")
            .await
            .expect("owner")
            .is_none()
    );
    assert!(
        dir.lookup_email("ann@acme.test")
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(
        dir.domain_owner("beta.test").await.expect("owner").as_ref(),
        Some(&b)
    );
    assert!(
        dir.lookup_email("bob@beta.test")
            .await
            .expect("lookup")
            .is_some()
    );
    dir.close().await;
}

fn row(id: &TenantId, slug: &str) -> Tenant {
    Tenant {
        id: id.clone(),
        slug: slug.to_owned(),
        name: format!("Name of {slug}"),
        status: TenantStatus::Active,
        schema_version: 3,
        node: "n1".to_owned(),
        placement_epoch: 4,
        auth_epoch: 9,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_001,
    }
}

async fn bulk_insert_is_one_transaction(db: &TestDb) {
    let dir = db.connect().await;
    let (a, b, c) = (id(), id(), id());
    dir.insert_tenants(&[row(&a, "one"), row(&b, "two")])
        .await
        .expect("bulk insert");
    let t = dir.tenant(&a).await.expect("get").expect("a");
    assert_eq!(
        (
            t.placement_epoch,
            t.auth_epoch,
            t.created_at,
            t.updated_at,
            t.node.as_str()
        ),
        (4, 9, 1_700_000_000, 1_700_000_001, "n1")
    );

    // A duplicate slug in the batch: nothing of the batch is written.
    let err = dir
        .insert_tenants(&[row(&c, "three"), row(&id(), "one")])
        .await
        .expect_err("duplicate slug");
    assert!(matches!(err, DirectoryError::SlugTaken), "{err:?}");
    assert!(dir.tenant(&c).await.expect("get").is_none());
    assert_eq!(dir.tenants().await.expect("list").len(), 2);
    dir.close().await;
}

async fn slug_domain_and_email_are_unique(db: &TestDb) {
    let (dir, a, b) = acme_and_beta(db).await;

    let err = dir
        .insert_tenant(&id(), "acme", "Other", "local")
        .await
        .expect_err("slug taken");
    assert!(matches!(err, DirectoryError::SlugTaken), "{err:?}");

    dir.add_domain(&a, "acme.test").await.expect("domain");
    for owner in [&a, &b] {
        let err = dir
            .add_domain(owner, "acme.test")
            .await
            .expect_err("domain taken");
        assert!(matches!(err, DirectoryError::DomainTaken), "{err:?}");
    }
    assert_eq!(dir.domains_of(&a).await.expect("domains"), ["acme.test"]);
    assert!(dir.domains_of(&b).await.expect("domains").is_empty());

    assert!(
        dir.reserve_email("ann@acme.test", &a, "u1")
            .await
            .expect("reserve")
            .is_none()
    );
    let err = dir
        .reserve_email("ann@acme.test", &b, "u2")
        .await
        .expect_err("email of another tenant");
    assert!(matches!(err, DirectoryError::EmailTaken), "{err:?}");
    let err = dir
        .upsert_email("ann@acme.test", &b, "u2")
        .await
        .expect_err("upsert over another tenant");
    assert!(matches!(err, DirectoryError::EmailTaken), "{err:?}");
    // The failed attempts changed nothing.
    let e = dir
        .lookup_email("ann@acme.test")
        .await
        .expect("lookup")
        .expect("entry");
    assert_eq!((&e.tenant_id, e.user_id.as_str()), (&a, "u1"));
    dir.close().await;
}

async fn reserve_confirm_and_remove_email(db: &TestDb) {
    let (dir, a, b) = acme_and_beta(db).await;

    // Reserved: pending; the same tenant reserving again gets the row back to reconcile.
    assert!(
        dir.reserve_email("ann@acme.test", &a, "u1")
            .await
            .expect("reserve")
            .is_none()
    );
    let again = dir
        .reserve_email("ann@acme.test", &a, "u9")
        .await
        .expect("reserve again")
        .expect("existing row");
    assert_eq!(
        (again.user_id.as_str(), again.state.as_str()),
        ("u1", "pending")
    );

    // Confirmed: active, with the user id the tenant database settled on.
    dir.confirm_email("ann@acme.test", &a, "u1b")
        .await
        .expect("confirm");
    let e = dir
        .lookup_email("ann@acme.test")
        .await
        .expect("lookup")
        .expect("entry");
    assert_eq!((e.user_id.as_str(), e.state.as_str()), ("u1b", "active"));
    // Confirming for another tenant changes nothing.
    dir.confirm_email("ann@acme.test", &b, "evil")
        .await
        .expect("confirm other");
    assert_eq!(
        dir.lookup_email("ann@acme.test")
            .await
            .expect("lookup")
            .expect("entry")
            .user_id,
        "u1b"
    );

    // Upsert: inserts active, or confirms a row of the same tenant.
    dir.upsert_email("cid@acme.test", &a, "u3")
        .await
        .expect("upsert new");
    dir.reserve_email("bob@acme.test", &a, "u2")
        .await
        .expect("reserve bob");
    dir.upsert_email("bob@acme.test", &a, "u2")
        .await
        .expect("upsert existing");
    let index = dir.index_of(&a).await.expect("index");
    let listed: Vec<(&str, &str)> = index
        .iter()
        .map(|e| (e.email.as_str(), e.state.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("ann@acme.test", "active"),
            ("bob@acme.test", "active"),
            ("cid@acme.test", "active")
        ]
    );
    assert_eq!(dir.all_index().await.expect("all").len(), 3);

    // Removal only by the owning tenant.
    assert!(
        !dir.remove_email("ann@acme.test", &b)
            .await
            .expect("remove by other")
    );
    assert!(
        dir.lookup_email("ann@acme.test")
            .await
            .expect("lookup")
            .is_some()
    );
    assert!(dir.remove_email("ann@acme.test", &a).await.expect("remove"));
    assert!(
        dir.lookup_email("ann@acme.test")
            .await
            .expect("lookup")
            .is_none()
    );
    // Free again: another tenant may take it.
    dir.reserve_email("ann@acme.test", &b, "u7")
        .await
        .expect("reserve for b");
    dir.close().await;
}

async fn route_email_tries_the_exact_address_then_the_domain(db: &TestDb) {
    let (dir, a, b) = acme_and_beta(db).await;
    dir.add_domain(&a, "acme.test").await.expect("domain");
    // A contractor of beta with an acme address: the exact entry wins over the domain.
    dir.upsert_email("contractor@acme.test", &b, "u1")
        .await
        .expect("index");

    let routed = |email: &'static str| {
        let dir = dir.clone();
        async move { dir.route_email(email).await.expect("route").map(|t| t.id) }
    };
    assert_eq!(routed("contractor@acme.test").await.as_ref(), Some(&b));
    assert_eq!(routed("anyone@acme.test").await.as_ref(), Some(&a));
    assert_eq!(routed("someone@elsewhere.test").await, None);
    assert_eq!(routed("not-an-email").await, None);
    // Subdomains are other domains.
    assert_eq!(routed("x@sub.acme.test").await, None);
    dir.close().await;
}

async fn schema_rows(dir: &Directory) -> Vec<i64> {
    sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(dir.pool())
        .await
        .expect("schema rows")
        .iter()
        .map(|r| r.try_get::<i64, _>(0).expect("version"))
        .collect()
}

async fn lock_rows(dir: &Directory) -> i64 {
    sqlx::query("SELECT count(*) FROM schema_lock")
        .fetch_one(dir.pool())
        .await
        .expect("lock rows")
        .try_get(0)
        .expect("count")
}

fn all_versions() -> Vec<i64> {
    (1..=i64::from(tenant_schema::DIRECTORY_LATEST)).collect()
}

async fn migrations_are_idempotent(db: &TestDb) {
    // A directory looked at before any migration has every step pending.
    let raw = Directory::connect_with(&db.url, false, system_clock())
        .await
        .expect("connect without migrating");
    assert_eq!(
        raw.pending_migrations().await.expect("pending").len(),
        tenant_schema::DIRECTORY_MIGRATIONS.len()
    );
    raw.close().await;

    let first = db.connect().await;
    first
        .insert_tenant(&id(), "acme", "Acme", "local")
        .await
        .expect("insert");
    first.close().await;
    // Again, and once more through the operator's entry point: nothing changes, data stays.
    let second = db.connect().await;
    second.apply_migrations().await.expect("again");
    assert_eq!(
        second.version().await.expect("version"),
        i64::from(tenant_schema::DIRECTORY_LATEST)
    );
    assert!(
        second
            .pending_migrations()
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(schema_rows(&second).await, all_versions());
    assert_eq!(lock_rows(&second).await, 0, "the lock row is released");
    assert_eq!(second.tenants().await.expect("list").len(), 1);
    second.close().await;
}

async fn a_newer_directory_is_refused(db: &TestDb) {
    let dir = db.connect().await;
    let newer = i64::from(tenant_schema::DIRECTORY_LATEST) + 1;
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
        .bind(newer)
        .bind("from_the_future")
        .bind(1_700_000_000_i64)
        .execute(dir.pool())
        .await
        .expect("record a newer step");
    dir.close().await;

    let err = Directory::connect(&db.url, system_clock())
        .await
        .expect_err("newer schema");
    match err {
        DirectoryError::TooNew { found, supported } => {
            assert_eq!(found, newer);
            assert_eq!(supported, i64::from(tenant_schema::DIRECTORY_LATEST));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    // The operator's dry run can still look at it.
    let look = Directory::connect_with(&db.url, false, system_clock())
        .await
        .expect("look without migrating");
    assert_eq!(look.version().await.expect("version"), newer);
    look.close().await;
}

async fn concurrent_migrations_take_turns_on_the_lock_row(db: &TestDb) {
    // Several processes starting at once on an empty directory: connected first, then all
    // migrating at the same moment.
    let mut dirs = Vec::new();
    for _ in 0..6 {
        dirs.push(
            Directory::connect_with(&db.url, false, system_clock())
                .await
                .expect("connect without migrating"),
        );
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(dirs.len()));
    let runs: Vec<_> = dirs
        .iter()
        .map(|d| {
            let (d, start) = (d.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                d.apply_migrations().await
            })
        })
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migration");
    }
    // Each step applied exactly once, the lock released, the schema usable from every handle.
    assert_eq!(schema_rows(&dirs[0]).await, all_versions());
    assert_eq!(lock_rows(&dirs[0]).await, 0);
    for (i, dir) in dirs.iter().enumerate() {
        dir.insert_tenant(&id(), &format!("t-{i}"), "T", "local")
            .await
            .expect("usable");
    }
    for dir in dirs {
        dir.close().await;
    }
}

async fn a_stale_lock_row_is_taken_over(db: &TestDb) {
    // A process died holding the lock an hour ago, before applying anything.
    let raw = Directory::connect_with(&db.url, false, system_clock())
        .await
        .expect("connect without migrating");
    sqlx::raw_sql(
        "CREATE TABLE schema_lock (id BIGINT PRIMARY KEY, holder TEXT NOT NULL, acquired_at BIGINT NOT NULL)",
    )
    .execute(raw.pool())
    .await
    .expect("lock table");
    sqlx::query("INSERT INTO schema_lock (id, holder, acquired_at) VALUES (1, 'dead', $1)")
        .bind(tests::now() - 3600)
        .execute(raw.pool())
        .await
        .expect("stale lock");
    raw.close().await;

    let started = std::time::Instant::now();
    let dir = db.connect().await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(schema_rows(&dir).await, all_versions());
    assert_eq!(lock_rows(&dir).await, 0);
    dir.close().await;
}

async fn nodes_register_heartbeat_and_count_tenants(db: &TestDb) {
    let dir = db.connect().await;
    dir.register_node("n1", "http://127.0.0.1:1")
        .await
        .expect("register n1");
    dir.register_node("n2", "http://127.0.0.1:2")
        .await
        .expect("register n2");
    // Registering again updates the address.
    dir.register_node("n1", "http://127.0.0.1:11")
        .await
        .expect("register n1 again");
    let nodes = dir.nodes().await.expect("nodes");
    let listed: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.url.as_str()))
        .collect();
    assert_eq!(
        listed,
        [("n1", "http://127.0.0.1:11"), ("n2", "http://127.0.0.1:2")]
    );
    assert_eq!(
        dir.node("n2")
            .await
            .expect("node")
            .map(|n| n.url)
            .as_deref(),
        Some("http://127.0.0.1:2")
    );
    assert!(dir.node("n3").await.expect("node").is_none());
    assert!(dir.heartbeat("n2").await.expect("heartbeat"));
    assert!(!dir.heartbeat("n3").await.expect("heartbeat of unknown"));

    dir.insert_tenant(&id(), "one", "One", "n1")
        .await
        .expect("t");
    dir.insert_tenant(&id(), "two", "Two", "n1")
        .await
        .expect("t");
    dir.insert_tenant(&id(), "three", "Three", "n2")
        .await
        .expect("t");
    let load = dir.node_load().await.expect("load");
    assert_eq!(load.get("n1"), Some(&2));
    assert_eq!(load.get("n2"), Some(&1));
    assert_eq!(load.get("n3"), None);
    dir.close().await;
}

async fn placement_moves_only_from_the_expected_node_and_epoch(db: &TestDb) {
    let dir = db.connect().await;
    let t = id();
    dir.insert_tenant(&t, "acme", "Acme", "n1")
        .await
        .expect("t");

    // Wrong source or wrong epoch: nothing moves.
    assert_eq!(
        dir.move_placement(&t, "n2", 1, "n3").await.expect("cas"),
        None
    );
    assert_eq!(
        dir.move_placement(&t, "n1", 2, "n3").await.expect("cas"),
        None
    );
    assert_eq!(
        dir.move_placement(&TenantId::parse("nope").unwrap(), "n1", 1, "n3")
            .await
            .expect("cas"),
        None
    );
    let same = dir.tenant(&t).await.expect("get").expect("t");
    assert_eq!((same.node.as_str(), same.placement_epoch), ("n1", 1));

    // The expected source and epoch: flipped and bumped together.
    assert_eq!(
        dir.move_placement(&t, "n1", 1, "n3").await.expect("cas"),
        Some(2)
    );
    let moved = dir.tenant(&t).await.expect("get").expect("t");
    assert_eq!((moved.node.as_str(), moved.placement_epoch), ("n3", 2));
    // The same move again finds the tenant gone from n1.
    assert_eq!(
        dir.move_placement(&t, "n1", 1, "n3").await.expect("cas"),
        None
    );
    dir.close().await;
}

async fn domain_claims_and_social_sign_ins(db: &TestDb) {
    let (dir, a, b) = acme_and_beta(db).await;
    // Both may claim; the first to prove it gets the domain, the other's proof is refused.
    let ca = dir
        .claim_domain(&a, "corp.test", "va")
        .await
        .expect("claim a");
    assert_eq!(
        dir.claim_domain(&a, "corp.test", "other")
            .await
            .expect("again"),
        ca
    );
    dir.claim_domain(&b, "corp.test", "vb")
        .await
        .expect("claim b");
    assert_eq!(
        dir.domain_claims(&b).await.expect("claims")[0].txt_value,
        "vb"
    );
    dir.verify_claim(&a, "corp.test").await.expect("verify a");
    assert!(dir.domain_claims(&a).await.expect("claims").is_empty());
    assert_eq!(
        dir.domain_owner("corp.test").await.expect("owner"),
        Some(a.clone())
    );
    assert!(matches!(
        dir.verify_claim(&b, "corp.test").await,
        Err(DirectoryError::DomainTaken)
    ));
    assert!(dir.remove_claim(&b, "corp.test").await.expect("remove"));
    assert!(!dir.remove_claim(&b, "corp.test").await.expect("gone"));
    // A deleted tenant takes its claims along.
    dir.claim_domain(&b, "left.test", "v").await.expect("claim");
    assert!(dir.delete_tenant(&b).await.expect("delete"));

    let p = SocialProviderRow {
        name: "google".into(),
        label: "Google".into(),
        issuer: "https://accounts.google.com".into(),
        client_id: "cid".into(),
        client_secret_sealed: "sealed".into(),
    };
    dir.add_social_provider(&p).await.expect("add");
    assert!(matches!(
        dir.add_social_provider(&p).await,
        Err(DirectoryError::SlugTaken)
    ));
    assert_eq!(dir.social_providers().await.expect("list"), vec![p]);
    let attempt = SocialAttempt {
        provider: "google".into(),
        browser: "b".repeat(64),
        nonce: "n".into(),
        verifier: "v".into(),
        pending: None,
        expires_at: i64::MAX / 2,
    };
    dir.begin_social("h1", &attempt).await.expect("begin");
    assert_eq!(
        dir.take_social("h1").await.expect("take"),
        Some(attempt.clone())
    );
    assert_eq!(dir.take_social("h1").await.expect("once"), None);
    let old = SocialAttempt {
        expires_at: 1,
        pending: Some("p".into()),
        ..attempt
    };
    dir.begin_social("h2", &old).await.expect("begin");
    assert_eq!(dir.take_social("h2").await.expect("expired"), None);
    assert!(dir.remove_social_provider("google").await.expect("remove"));
}

/// Two connections to one directory stand for two nodes: an assertion accepted through one is
/// a replay through the other, and its sign-in ends once wherever the browser lands.
async fn saml_assertions_are_accepted_once_by_every_node(db: &TestDb) {
    let (n1, n2) = (db.connect().await, db.connect().await);
    let later = i64::MAX / 2;
    assert!(n1.accept_saml_assertion("d1", later).await.expect("accept"));
    assert!(!n2.accept_saml_assertion("d1", later).await.expect("replay"));
    assert!(!n1.accept_saml_assertion("d1", later).await.expect("replay"));
    assert!(
        n2.accept_saml_assertion("d2", later)
            .await
            .expect("another")
    );
    assert!(n2.finish_saml_assertion("d1").await.expect("finish"));
    assert!(!n1.finish_saml_assertion("d1").await.expect("once"));
    assert!(!n1.finish_saml_assertion("unknown").await.expect("unknown"));
    // Entries past their time are dropped when the next one comes.
    assert!(n1.accept_saml_assertion("old", 1).await.expect("old"));
    assert!(
        n2.accept_saml_assertion("old", later)
            .await
            .expect("dropped, then new")
    );
}
