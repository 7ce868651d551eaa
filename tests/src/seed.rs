//! Data written straight into tenant stores and directories, where going through the API
//! would be slow or impossible: users, tenant files at an old schema version, directory rows.

use std::path::Path;

use tenant_runtime::store::users::{self, NewUser, Role, Status};
use tenant_runtime::{RouterConfig, TenantId, TenantRouter};

use crate::inproc::{Tenant, TenantStatus};

/// The tenant router of a data directory (its `tenants` folder).
pub fn router_at(data: &Path) -> TenantRouter {
    TenantRouter::new(RouterConfig::new(data.join("tenants"))).expect("router")
}

/// Inserts an active member without password into a tenant's store (not into the directory's
/// index); returns the user's id.
pub fn add_user(router: &TenantRouter, tenant: &str, email: &str) -> String {
    let id = TenantId::parse(tenant).expect("tenant id");
    let email = email.to_owned();
    router
        .write_blocking(&id, |tx| {
            users::insert(tx, &member(&email, None), crate::now())
        })
        .expect("insert user")
        .id
}

fn member<'a>(email: &'a str, password_hash: Option<&'a str>) -> NewUser<'a> {
    NewUser {
        email,
        name: "",
        role: Role::Member,
        status: Status::Active,
        password_hash,
    }
}

/// In a tenant's write transaction: activates the invited admin with password hash `hash` and
/// adds active members `u1@<slug>.test` … `u<per-1>@<slug>.test` with the same hash. Returns
/// the members' (email, id).
pub fn activate_with_members(
    tx: &tenant_runtime::WriteTx<'_>,
    admin: &str,
    hash: &str,
    slug: &str,
    per: usize,
    now: i64,
) -> tenant_runtime::Result<Vec<(String, String)>> {
    users::set_password_hash(tx, admin, hash, now)?;
    users::set_status(tx, admin, Status::Active, now)?;
    let mut created = Vec::new();
    for u in 1..per {
        let email = format!("u{u}@{slug}.test");
        let user = users::insert(tx, &member(&email, Some(hash)), now)?;
        created.push((email, user.id));
    }
    Ok(created)
}

/// A tenant file at schema version 1 in the folder `tenants`, made the cheap way; with
/// `with_admin`, it holds an active admin `a@<id>.test`.
pub fn old_tenant_file(tenants: &Path, id: &str, with_admin: bool) {
    let mut conn = rusqlite::Connection::open(tenants.join(format!("{id}.db"))).expect("open");
    conn.execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    tenant_schema::migrate_tenant_to(&mut conn, 1, 1).expect("v1");
    conn.execute(
        "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, ?1, 1)",
        [id],
    )
    .expect("meta");
    if with_admin {
        conn.execute(
            "INSERT INTO users (id, email, name, role, status, created_at, updated_at)
             VALUES ('u1', 'a@' || ?1 || '.test', '', 'admin', 'active', 1, 1)",
            [id],
        )
        .expect("user");
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .expect("wal");
}

/// An active tenant's directory row (named after its id), created and updated at `at`.
pub fn tenant_row(id: &str, slug: &str, schema_version: i64, node: &str, at: i64) -> Tenant {
    Tenant {
        id: TenantId::parse(id).expect("tenant id"),
        slug: slug.to_owned(),
        name: id.to_owned(),
        status: TenantStatus::Active,
        schema_version,
        node: node.to_owned(),
        placement_epoch: 1,
        auth_epoch: 1,
        created_at: at,
        updated_at: at,
    }
}
