//! The schema of tenant databases and of the directory, as versioned, forward-only migrations.
//!
//! # Layout
//! - `migrations/tenant/NNNN_name.sql`: one step of a tenant database, applied by [`migrate_tenant`].
//! - `migrations/directory/NNNN_name.sql`: one step of the directory; the control plane applies them
//!   through sqlx on SQLite or PostgreSQL.
//!
//! A tenant database records its version twice, in `PRAGMA user_version` (read cheaply at every
//! open) and as a row per step in `schema_migrations`. Every step runs in one `BEGIN IMMEDIATE`
//! transaction, so a database is at the old or the new version, never in between.

use rusqlite::{Connection, TransactionBehavior};

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $dir:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")),
        }
    };
}

/// Steps of a tenant database, oldest first. Never edit a released step: add a new one.
pub const TENANT_MIGRATIONS: &[Migration] = &[
    migration!(1, "tenant", "0001_users_tokens_sessions"),
    migration!(2, "tenant", "0002_audit_log"),
    migration!(3, "tenant", "0003_auth_epoch_and_session_details"),
    migration!(4, "tenant", "0004_password_reset_required"),
    migration!(5, "tenant", "0005_oidc_grants"),
    migration!(6, "tenant", "0006_email_changes_and_people_search"),
    migration!(7, "tenant", "0007_sign_in_policy_and_session_methods"),
    migration!(8, "tenant", "0008_second_factors"),
    migration!(9, "tenant", "0009_sso_connections"),
];

/// The version a tenant database has after every step of this binary.
pub const TENANT_LATEST: u32 = TENANT_MIGRATIONS.len() as u32;

/// Steps of the directory, oldest first; the SQL is portable between SQLite and PostgreSQL.
pub const DIRECTORY_MIGRATIONS: &[Migration] = &[
    migration!(1, "directory", "0001_tenants_domains_user_index"),
    migration!(2, "directory", "0002_nodes"),
    migration!(3, "directory", "0003_node_signatures_and_throttles"),
    migration!(4, "directory", "0004_oidc_clients"),
    migration!(5, "directory", "0005_signing_keys_and_logouts"),
    migration!(6, "directory", "0006_operator_api"),
    migration!(7, "directory", "0007_domain_claims_and_social_providers"),
    migration!(8, "directory", "0008_saml_assertions"),
];

/// The version the directory has after every step of this binary.
pub const DIRECTORY_LATEST: u32 = DIRECTORY_MIGRATIONS.len() as u32;

/// The table that records applied steps; its definition never changes.
pub const SCHEMA_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     BIGINT PRIMARY KEY,
    name        TEXT   NOT NULL,
    applied_at  BIGINT NOT NULL
)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database was written by a newer binary; running on it could lose data.
    #[error(
        "schema version {found} is newer than this binary supports ({supported}); upgrade tenantd"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("migration {version} ({name}) failed: {source}")]
    Step {
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// What a migration run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: u32,
    pub to: u32,
}

/// The schema version recorded in a tenant database (0 for an empty file).
pub fn tenant_version(conn: &Connection) -> Result<u32, Error> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Refuses a database newer than this binary.
pub fn check_not_newer(found: u32) -> Result<(), Error> {
    if found > TENANT_LATEST {
        return Err(Error::TooNew {
            found,
            supported: TENANT_LATEST,
        });
    }
    Ok(())
}

/// Brings a tenant database to [`TENANT_LATEST`].
pub fn migrate_tenant(conn: &mut Connection, now: i64) -> Result<Migrated, Error> {
    migrate_tenant_to(conn, TENANT_LATEST, now)
}

/// Brings a tenant database to `target` (used by tests to build every historical version).
pub fn migrate_tenant_to(conn: &mut Connection, target: u32, now: i64) -> Result<Migrated, Error> {
    let from = tenant_version(conn)?;
    check_not_newer(from)?;
    let mut at = from;
    for step in TENANT_MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and the lock.
        let current = tenant_version(&tx)?;
        check_not_newer(current)?;
        if current >= step.version {
            at = current;
            continue;
        }
        let fail = |source| Error::Step {
            version: step.version,
            name: step.name,
            source,
        };
        tx.execute_batch(SCHEMA_MIGRATIONS_TABLE).map_err(fail)?;
        tx.execute_batch(step.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![step.version, step.name, now],
        )
        .map_err(fail)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        at = step.version;
    }
    Ok(Migrated { from, to: at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_ordered() {
        for (i, m) in TENANT_MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        for (i, m) in DIRECTORY_MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }

    #[test]
    fn fresh_database_reaches_latest_and_records_each_step() -> Result<(), Error> {
        let mut conn = Connection::open_in_memory()?;
        let m = migrate_tenant(&mut conn, 7)?;
        assert_eq!(
            m,
            Migrated {
                from: 0,
                to: TENANT_LATEST
            }
        );
        let rows: i64 =
            conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))?;
        assert_eq!(rows, i64::from(TENANT_LATEST));
        // A second run is a no-op.
        assert_eq!(
            migrate_tenant(&mut conn, 8)?,
            Migrated {
                from: TENANT_LATEST,
                to: TENANT_LATEST
            }
        );
        Ok(())
    }

    #[test]
    fn newer_database_is_refused() -> Result<(), Error> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", TENANT_LATEST + 1)?;
        assert!(matches!(
            migrate_tenant(&mut conn, 1),
            Err(Error::TooNew { found, .. }) if found == TENANT_LATEST + 1
        ));
        Ok(())
    }

    #[test]
    fn failing_step_leaves_the_old_version() -> Result<(), Error> {
        let mut conn = Connection::open_in_memory()?;
        migrate_tenant_to(&mut conn, 1, 1)?;
        // Sabotage: step 2 creates audit_log, which now already exists.
        conn.execute_batch("CREATE TABLE audit_log (x INTEGER)")?;
        let err = migrate_tenant(&mut conn, 2);
        assert!(matches!(err, Err(Error::Step { version: 2, .. })));
        assert_eq!(tenant_version(&conn)?, 1);
        let rows: i64 =
            conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))?;
        assert_eq!(rows, 1);
        Ok(())
    }
}

#[cfg(test)]
mod ladder {
    //! Builds a database at every historical version, with rows in it, and migrates it to the
    //! newest: no row may be lost on the way.
    use super::*;

    /// Rows that are valid at a given version; each entry only uses tables that exist by then.
    const FIXTURES: &[(u32, &str)] = &[
        (
            1,
            "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, 'acme', 1);
             INSERT INTO users (id, email, name, role, status, password_hash, created_at, updated_at)
                 VALUES ('u1', 'a@acme.test', 'A', 'admin', 'active', 'x', 1, 1),
                        ('u2', 'b@acme.test', 'B', 'member', 'invited', NULL, 1, 1);
             INSERT INTO tokens (hash, user_id, purpose, created_at, expires_at)
                 VALUES (x'01', 'u2', 'invite', 1, 100);
             INSERT INTO sessions (hash, user_id, created_at, last_seen_at, expires_at)
                 VALUES (x'02', 'u1', 1, 1, 100);",
        ),
        (
            2,
            "INSERT INTO audit_log (at, actor, action, target) VALUES (2, 'u1', 'user.invite', 'u2');",
        ),
        (
            3,
            "INSERT INTO sessions (hash, user_id, created_at, last_seen_at, expires_at, epoch, user_agent)
                 VALUES (x'03', 'u1', 3, 3, 100, 1, 'test');",
        ),
        (
            4,
            "INSERT INTO users (id, email, name, role, status, password_hash, created_at, updated_at, password_reset_required)
                 VALUES ('u3', 'c@acme.test', 'C', 'member', 'active', 'y', 4, 4, 1);",
        ),
        (
            5,
            "INSERT INTO oidc_grants (id, session_hash, sid, user_id, client_id, scope, created_at)
                 VALUES ('g1', x'03', 's3', 'u1', 'app', 'openid', 5);
             INSERT INTO oidc_refresh_tokens (hash, grant_id, created_at) VALUES (x'05', 'g1', 5);
             INSERT INTO logout_outbox (client_id, sub, sid, created_at) VALUES ('app', 'u1', 's0', 5);",
        ),
        (
            6,
            "INSERT INTO email_changes (hash, user_id, new_email, requested_by, created_at, expires_at)
                 VALUES (x'06', 'u3', 'c2@acme.test', 'u1', 6, 100);
             UPDATE tenant_meta SET email_domains_only = 1;",
        ),
        (
            7,
            "UPDATE sign_in_policy SET mfa_required = 'admins', social_login = 1;
             INSERT INTO sessions (hash, user_id, created_at, last_seen_at, expires_at, epoch, user_agent, amr)
                 VALUES (x'07', 'u1', 7, 7, 100, 1, 'test', '[\"pwd\",\"otp\",\"mfa\"]');",
        ),
        (
            8,
            "INSERT INTO factors (id, user_id, kind, name, secret, confirmed, last_step, created_at)
                 VALUES ('f1', 'u1', 'totp', 'Phone', 'sealed', 1, 5, 8);
             INSERT INTO recovery_codes (hash, user_id, created_at) VALUES (x'08', 'u1', 8);
             INSERT INTO mfa_tokens (hash, user_id, purpose, amr, created_at, expires_at)
                 VALUES (x'09', 'u1', 'verify', '[\"pwd\"]', 8, 100);",
        ),
        (
            9,
            "INSERT INTO sso_connections (id, kind, name, issuer, client_id, domains, created_at, updated_at)
                 VALUES ('c1', 'oidc', 'Acme IdP', 'https://idp.acme.test', 'app', '[\"acme.test\"]', 9, 9);
             INSERT INTO sso_links (connection_id, subject, user_id, created_at) VALUES ('c1', 's1', 'u1', 9);
             INSERT INTO sso_attempts (hash, connection_id, browser, nonce, verifier, created_at, expires_at)
                 VALUES (x'0a', 'c1', x'0a', 'n', 'v', 9, 100);",
        ),
    ];

    fn counts(conn: &Connection) -> Result<Vec<(String, i64)>, Error> {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        names
            .into_iter()
            .map(|n| {
                let c =
                    conn.query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))?;
                Ok((n, c))
            })
            .collect()
    }

    #[test]
    fn every_historical_version_migrates_without_losing_rows() -> Result<(), Error> {
        assert_eq!(
            FIXTURES.len(),
            TENANT_MIGRATIONS.len(),
            "add a fixture for the new step"
        );
        for start in 1..=TENANT_LATEST {
            let mut conn = Connection::open_in_memory()?;
            for (version, rows) in FIXTURES.iter().filter(|(v, _)| *v <= start) {
                migrate_tenant_to(&mut conn, *version, 0)?;
                conn.execute_batch(rows)?;
            }
            assert_eq!(tenant_version(&conn)?, start);
            let before = counts(&conn)?;
            migrate_tenant(&mut conn, 9)?;
            assert_eq!(tenant_version(&conn)?, TENANT_LATEST);
            let after = counts(&conn)?;
            for (table, n) in &before {
                let now = after.iter().find(|(t, _)| t == table).map(|(_, c)| *c);
                let expected = if table == "schema_migrations" {
                    i64::from(TENANT_LATEST)
                } else {
                    *n
                };
                assert_eq!(now, Some(expected), "table {table} from version {start}");
            }
            let fk: i64 =
                conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            assert_eq!(fk, 0);
        }
        Ok(())
    }
}
