//! Throttle counters shared by the nodes of a deployment: each change is a read-modify-write
//! of one row under a row lock (PostgreSQL) or the write lock (SQLite), so parallel attempts on
//! any nodes all count.

use sqlx::Row;

use super::{Backend, Directory, Result};

/// One lane of an account, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LaneRow {
    pub failures: f64,
    pub last_at: i64,
    pub locked_until: i64,
}

/// One address's window, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowRow {
    pub start: i64,
    pub attempts: i64,
}

impl Directory {
    /// Changes a lane with `f` (given the stored lane, or a fresh one), atomically.
    pub async fn update_throttle_lane<T>(
        &self,
        kind: &str,
        account: &str,
        lane: &str,
        f: impl FnOnce(&mut LaneRow) -> T,
    ) -> Result<T> {
        let mut tx = self.pool.begin().await?;
        // Make sure the row exists, so there is a row to lock.
        sqlx::query(
            "INSERT INTO throttle_lanes (kind, account, lane, failures, last_at, locked_until)
             VALUES ($1, $2, $3, 0, 0, 0) ON CONFLICT (kind, account, lane) DO NOTHING",
        )
        .bind(kind)
        .bind(account)
        .bind(lane)
        .execute(&mut *tx)
        .await?;
        let select = match self.backend {
            Backend::Postgres => {
                "SELECT failures, last_at, locked_until FROM throttle_lanes
                 WHERE kind = $1 AND account = $2 AND lane = $3 FOR UPDATE"
            }
            // The insert above took SQLite's write lock for this transaction.
            Backend::Sqlite => {
                "SELECT failures, last_at, locked_until FROM throttle_lanes
                 WHERE kind = $1 AND account = $2 AND lane = $3"
            }
        };
        let row = sqlx::query(select)
            .bind(kind)
            .bind(account)
            .bind(lane)
            .fetch_one(&mut *tx)
            .await?;
        let mut stored = LaneRow {
            failures: row.try_get(0)?,
            last_at: row.try_get(1)?,
            locked_until: row.try_get(2)?,
        };
        let out = f(&mut stored);
        sqlx::query(
            "UPDATE throttle_lanes SET failures = $1, last_at = $2, locked_until = $3
             WHERE kind = $4 AND account = $5 AND lane = $6",
        )
        .bind(stored.failures)
        .bind(stored.last_at)
        .bind(stored.locked_until)
        .bind(kind)
        .bind(account)
        .bind(lane)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Forgets one lane of an account, or all of them (`lane` `None`).
    pub async fn clear_throttle_lanes(
        &self,
        kind: &str,
        account: &str,
        lane: Option<&str>,
    ) -> Result<()> {
        match lane {
            Some(lane) => {
                sqlx::query(
                    "DELETE FROM throttle_lanes WHERE kind = $1 AND account = $2 AND lane = $3",
                )
                .bind(kind)
                .bind(account)
                .bind(lane)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM throttle_lanes WHERE kind = $1 AND account = $2")
                    .bind(kind)
                    .bind(account)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }

    /// An address's window, if any.
    pub async fn throttle_window(&self, kind: &str, address: &str) -> Result<Option<WindowRow>> {
        let row = sqlx::query(
            "SELECT window_start, attempts FROM throttle_windows WHERE kind = $1 AND address = $2",
        )
        .bind(kind)
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WindowRow {
                start: r.try_get(0)?,
                attempts: r.try_get::<i64, _>(1)?,
            })
        })
        .transpose()
    }

    /// Changes an address's window with `f`, atomically.
    pub async fn update_throttle_window(
        &self,
        kind: &str,
        address: &str,
        f: impl FnOnce(Option<WindowRow>) -> WindowRow,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO throttle_windows (kind, address, window_start, attempts)
             VALUES ($1, $2, 0, -1) ON CONFLICT (kind, address) DO NOTHING",
        )
        .bind(kind)
        .bind(address)
        .execute(&mut *tx)
        .await?;
        let select = match self.backend {
            Backend::Postgres => {
                "SELECT window_start, attempts FROM throttle_windows
                 WHERE kind = $1 AND address = $2 FOR UPDATE"
            }
            Backend::Sqlite => {
                "SELECT window_start, attempts FROM throttle_windows
                 WHERE kind = $1 AND address = $2"
            }
        };
        let row = sqlx::query(select)
            .bind(kind)
            .bind(address)
            .fetch_one(&mut *tx)
            .await?;
        let attempts: i64 = row.try_get(1)?;
        // -1 marks the row just made: no window yet.
        let before = (attempts >= 0).then(|| {
            Ok::<_, sqlx::Error>(WindowRow {
                start: row.try_get(0)?,
                attempts,
            })
        });
        let after = f(before.transpose()?);
        sqlx::query(
            "UPDATE throttle_windows SET window_start = $1, attempts = $2
             WHERE kind = $3 AND address = $4",
        )
        .bind(after.start)
        .bind(after.attempts)
        .bind(kind)
        .bind(address)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets lanes and windows untouched since `before`.
    pub async fn purge_throttles(&self, before: i64) -> Result<()> {
        sqlx::query("DELETE FROM throttle_lanes WHERE last_at < $1 AND locked_until < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM throttle_windows WHERE window_start < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
