//! A fresh, empty directory database per test or benchmark: the embedded SQLite directory (a
//! temp file) or PostgreSQL (a fresh database on the server of `TENANTD_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the end).
//!
//! Without a reachable PostgreSQL, [`TestDb::new`] fails when `CI=true` (or when
//! `TENANTD_TEST_POSTGRES_URL` is set) and skips with a message otherwise.

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;

use crate::inproc::Directory;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, empty directory database; removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

/// The URL of the SQLite directory of a data directory (`directory.db`, created if missing).
pub fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data.join("directory.db").display())
}

/// The PostgreSQL server the tests use (any database on it; tests create their own).
fn postgres_admin_url() -> String {
    std::env::var("TENANTD_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether a missing PostgreSQL must fail the run rather than skip the PostgreSQL tests.
fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("TENANTD_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty())
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is unreachable and not required.
    pub async fn new(engine: Engine) -> Option<Self> {
        Self::create(engine, postgres_required()).await
    }

    /// A fresh PostgreSQL database; PostgreSQL must be reachable.
    pub async fn postgres() -> Self {
        Self::create(Engine::Postgres, true)
            .await
            .expect("PostgreSQL is required")
    }

    async fn create(engine: Engine, required: bool) -> Option<Self> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = sqlite_url(dir.path());
                Some(Self {
                    url,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Engine::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = match tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&admin),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) if !required => {
                        eprintln!("SKIPPED: PostgreSQL unreachable at {admin}: {e}");
                        return None;
                    }
                    Err(_) if !required => {
                        eprintln!("SKIPPED: PostgreSQL at {admin} did not answer");
                        return None;
                    }
                    Ok(Err(e)) => panic!("PostgreSQL unreachable at {admin}: {e}"),
                    Err(_) => panic!("PostgreSQL at {admin} did not answer within 10 s"),
                };
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let mut url = reqwest::Url::parse(&admin).expect("postgres url");
                url.set_path(&format!("/{name}"));
                Some(Self {
                    url: url.to_string(),
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    pub async fn connect(&self) -> Directory {
        Directory::connect(&self.url, crate::inproc::system_clock())
            .await
            .expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // A thread of its own: Drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database");
        }
    }
}
