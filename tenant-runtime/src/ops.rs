//! File-level maintenance of tenant databases, for the operator tools: cheap version reads,
//! explicit migration, inspection without side effects, copies to the trash, and restores that
//! are safe while a server holds the file open.
//!
//! Paths of live files always come from [`TenantRouter::path_of`] (validated ids); only backup
//! and trash copies are named by the caller.
//!
//! A live file is never renamed over or replaced while it exists: another process may hold it
//! open, and SQLite's `-wal`/`-shm` files are found by name. Restoring over a live file copies
//! the pages in with SQLite's online backup API, one write transaction under SQLite's own locks,
//! so every other connection sees the old content or the new one. A file is only linked into
//! place when no file exists at that name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::store::meta;
use crate::{Error, Result, TenantId, TenantRouter, WriteTx};

/// How long maintenance waits for another process's lock on a tenant file.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a tenant file holds, read without changing it.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// `PRAGMA user_version`.
    pub version: u32,
    /// The id recorded in `tenant_meta`, if the file has one.
    pub tenant_id: Option<String>,
    /// The auth epoch (1 before schema version 3).
    pub auth_epoch: i64,
    /// Every user as `(id, canonical email)`, ordered by email.
    pub users: Vec<(String, String)>,
}

fn open_live(router: &TenantRouter, id: &TenantId) -> Result<Connection> {
    let path = router.path_of(id);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(&path, flags) {
        Ok(c) => c,
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::CannotOpen => {
            return Err(Error::TenantNotFound(id.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The schema version of a tenant's file: one open and one pragma, no verification, no
/// migration. Fails on a missing or unreadable file.
pub fn schema_version(router: &TenantRouter, id: &TenantId) -> Result<u32> {
    let conn = open_live(router, id)?;
    Ok(tenant_schema::tenant_version(&conn)?)
}

fn inspect_conn(conn: &Connection) -> Result<Inspection> {
    let version = tenant_schema::tenant_version(conn)?;
    if version == 0 {
        return Ok(Inspection::default());
    }
    let tenant_id = recorded_id(conn);
    let auth_epoch = if version >= 3 {
        conn.query_row("SELECT auth_epoch FROM tenant_meta WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(1)
    } else {
        1
    };
    let users = crate::store::users::all_emails(conn)?;
    Ok(Inspection {
        version,
        tenant_id,
        auth_epoch,
        users,
    })
}

/// Reads a tenant's file without migrating or writing it.
pub fn inspect(router: &TenantRouter, id: &TenantId) -> Result<Inspection> {
    let conn = open_live(router, id)?;
    conn.execute_batch("PRAGMA query_only = ON")?;
    inspect_conn(&conn)
}

/// Reads a copy (a backup or trash file), opened read-only.
pub fn inspect_file(path: &Path) -> Result<Inspection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    inspect_conn(&conn)
}

/// Checks that an open file is this tenant's.
fn verify_identity(conn: &Connection, id: &TenantId) -> Result<u32> {
    let found = inspect_identity(conn)?;
    match found {
        (0, _) | (_, None) => Err(Error::NotATenantFile(id.to_string())),
        (_, Some(found)) if found != id.as_str() => Err(Error::ForeignTenantFile {
            expected: id.to_string(),
            found,
        }),
        (v, _) => Ok(v),
    }
}

fn inspect_identity(conn: &Connection) -> Result<(u32, Option<String>)> {
    let version = tenant_schema::tenant_version(conn)?;
    if version == 0 {
        return Ok((0, None));
    }
    Ok((version, recorded_id(conn)))
}

/// The id in `tenant_meta`; `None` when the row or the table is missing.
fn recorded_id(conn: &Connection) -> Option<String> {
    conn.query_row("SELECT tenant_id FROM tenant_meta WHERE id = 1", [], |r| {
        r.get(0)
    })
    .optional()
    .ok()
    .flatten()
}

/// Brings a tenant's file to the newest schema, one transaction per step; safe while other
/// processes use the file (each step re-reads the version under the write lock).
pub fn migrate(router: &TenantRouter, id: &TenantId, now: i64) -> Result<tenant_schema::Migrated> {
    let mut conn = open_live(router, id)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    let version = verify_identity(&conn, id)?;
    tenant_schema::check_not_newer(version)?;
    Ok(tenant_schema::migrate_tenant(&mut conn, now)?)
}

/// Writes a consistent copy of a tenant's file to `dest` (which must not exist) with
/// `VACUUM INTO`, without verifying or migrating it; writers of other processes go on.
pub fn snapshot(router: &TenantRouter, id: &TenantId, dest: &Path) -> Result<()> {
    let dest_str = dest
        .to_str()
        .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("path is not UTF-8")))?;
    let conn = open_live(router, id)?;
    conn.execute("VACUUM INTO ?1", [dest_str])?;
    drop(conn);
    std::fs::File::open(dest)?.sync_all()?;
    Ok(())
}

/// Copies the raw files of a tenant (the database and its `-wal`, if any) to `dest` and
/// `dest-wal`, for files SQLite cannot read: nothing is lost, whatever their state.
pub fn copy_raw(router: &TenantRouter, id: &TenantId, dest: &Path) -> Result<()> {
    let path = router.path_of(id);
    std::fs::copy(&path, dest)?;
    std::fs::File::open(dest)?.sync_all()?;
    let wal = sidecar(&path, "-wal");
    if wal.is_file() {
        let dest_wal = sidecar(dest, "-wal");
        std::fs::copy(&wal, &dest_wal)?;
        std::fs::File::open(&dest_wal)?.sync_all()?;
    }
    Ok(())
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes a tenant's file with its `-wal` and `-shm` (after it was copied to the trash).
/// A process that still holds it open keeps reading its old copy; ids are never reused for a
/// new file, so such a process can never mix the two.
pub fn remove(router: &TenantRouter, id: &TenantId) -> Result<()> {
    router.close_blocking(id);
    let path = router.path_of(id);
    for p in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    forget_replication_state(router, id);
    sync_dir(&router.config().tenants_dir)
}

/// Removes what Litestream keeps beside a tenant file (`.<id>.db-litestream/`) once the file
/// left: a later file of the same name must not be taken for the continuation of the old.
fn forget_replication_state(router: &TenantRouter, id: &TenantId) {
    let dir = router
        .config()
        .tenants_dir
        .join(format!(".{id}.db-litestream"));
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(tenant_id = %id, error = %e, "could not remove Litestream's local state");
    }
}

/// Files in the tenants folder.
#[derive(Debug, Default)]
pub struct Listing {
    /// `<id>.db` files, by id.
    pub tenants: Vec<TenantId>,
    /// Temporary files left by an interrupted create or restore, with their age in seconds.
    pub temporary: Vec<(PathBuf, u64)>,
}

/// Lists the tenants folder; ages are measured with the router's clock.
pub fn list(router: &TenantRouter) -> Result<Listing> {
    let now = router.config().clock.now();
    let mut out = Listing::default();
    for entry in std::fs::read_dir(&router.config().tenants_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            if name.ends_with(".creating") || name.ends_with(".restoring") {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok());
                let age = modified.map_or(0, |m| u64::try_from(now - m).unwrap_or(0));
                out.temporary.push((entry.path(), age));
            }
            continue;
        }
        if let Some(stem) = name.strip_suffix(".db")
            && let Ok(id) = TenantId::parse(stem)
        {
            out.tenants.push(id);
        }
    }
    out.tenants.sort();
    Ok(out)
}

/// A restored copy, checked, migrated and with a raised auth epoch, waiting in the tenants
/// folder under a temporary name to be installed.
#[derive(Debug)]
pub struct Prepared {
    tmp: tempfile::TempPath,
    /// The auth epoch the copy now has: sessions and tokens of earlier epochs are gone.
    pub auth_epoch: i64,
    /// What the installed file will hold.
    pub inspection: Inspection,
}

/// Copies `src` (a backup or trash copy that records tenant `source_id`) next to tenant `id`'s
/// file, checks it, stamps it with `id` (when different), migrates it, raises its auth epoch to
/// at least `min_epoch` and syncs it. Nothing live is touched.
pub fn prepare_restore(
    router: &TenantRouter,
    id: &TenantId,
    src: &Path,
    source_id: &str,
    min_epoch: i64,
    require_password_reset: bool,
    now: i64,
) -> Result<Prepared> {
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{id}."))
        .suffix(".restoring")
        .tempfile_in(&router.config().tenants_dir)?
        .into_temp_path();
    std::fs::copy(src, &tmp)?;
    let (auth_epoch, inspection) = {
        let mut conn = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // Nobody else knows this file: no journal on disk and no fsync until it is complete.
        let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        if mode != "delete" {
            return Err(Error::PragmaMismatch {
                pragma: "journal_mode",
                expected: "delete".into(),
                found: mode,
            });
        }
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;")?;
        let (version, found) = inspect_identity(&conn)?;
        if version == 0 || found.as_deref() != Some(source_id) {
            return Err(match found {
                Some(found) if version > 0 => Error::ForeignTenantFile {
                    expected: source_id.to_owned(),
                    found,
                },
                _ => Error::NotATenantFile(source_id.to_owned()),
            });
        }
        tenant_schema::check_not_newer(version)?;
        tenant_schema::migrate_tenant(&mut conn, now)?;
        let tx = WriteTx::begin(&mut conn)?;
        if source_id != id.as_str() {
            tx.execute(
                "UPDATE tenant_meta SET tenant_id = ?1 WHERE id = 1",
                [id.as_str()],
            )?;
        }
        let epoch = meta::raise_auth_epoch(&tx, min_epoch)?;
        if require_password_reset {
            crate::store::users::require_password_reset_all(&tx, now)?;
        }
        tx.commit()?;
        let problems = check_integrity(&conn)?;
        if !problems.is_empty() {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "restored copy failed integrity_check: {}",
                problems.join("; ")
            )));
        }
        let inspection = inspect_conn(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(Error::PragmaMismatch {
                pragma: "journal_mode",
                expected: "wal".into(),
                found: mode,
            });
        }
        (epoch, inspection)
    };
    std::fs::File::open(&tmp)?.sync_all()?;
    Ok(Prepared {
        tmp,
        auth_epoch,
        inspection,
    })
}

/// A new file for tenant `id` in the tenants folder, under a temporary name that
/// [`list`] reports (and `doctor` cleans up) if it is left behind.
pub fn incoming(router: &TenantRouter, id: &TenantId) -> Result<tempfile::NamedTempFile> {
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{id}."))
        .suffix(".restoring")
        .tempfile_in(&router.config().tenants_dir)?)
}

/// Checks a copy of tenant `id` moved here from another node (a `VACUUM INTO` snapshot) and
/// readies it for [`install`] as it is: same tenant, schema not newer than this binary, sound
/// (`integrity_check`), in WAL mode and synced. Unlike a restore, sessions and tokens stay:
/// a move changes where the data lives, not what it says.
pub fn prepare_transfer(id: &TenantId, tmp: tempfile::TempPath) -> Result<Prepared> {
    let inspection = {
        let conn = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let version = verify_identity(&conn, id)?;
        tenant_schema::check_not_newer(version)?;
        let problems = check_integrity(&conn)?;
        if !problems.is_empty() {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "moved copy failed integrity_check: {}",
                problems.join("; ")
            )));
        }
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(Error::PragmaMismatch {
                pragma: "journal_mode",
                expected: "wal".into(),
                found: mode,
            });
        }
        inspect_conn(&conn)?
    };
    std::fs::File::open(&tmp)?.sync_all()?;
    Ok(Prepared {
        tmp,
        auth_epoch: inspection.auth_epoch,
        inspection,
    })
}

/// Moves a tenant's file out of the tenants folder to `dest` (after the tenant moved to
/// another node), closing it first; its `-wal` (empty once closed) and `-shm` go.
pub fn move_out(router: &TenantRouter, id: &TenantId, dest: &Path) -> Result<()> {
    router.close_blocking(id);
    let path = router.path_of(id);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(&path, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    // Closing checkpointed the WAL unless another process held the file: keep it with the copy.
    match std::fs::rename(sidecar(&path, "-wal"), sidecar(dest, "-wal")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(sidecar(&path, "-shm")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    forget_replication_state(router, id);
    sync_dir(&router.config().tenants_dir)
}

/// How a prepared copy went live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The live file's content was replaced in one SQLite transaction.
    Replaced,
    /// There was no live file; the copy was linked into place.
    Created,
}

/// Puts a prepared copy live as tenant `id`'s file. Over an existing file this is one write
/// transaction through SQLite's backup API (processes holding the file see the old or the new
/// content, never a mix, and a crash leaves the old); otherwise the copy is linked into place,
/// failing rather than replacing a file that appeared meanwhile.
pub fn install(router: &TenantRouter, id: &TenantId, prepared: Prepared) -> Result<Installed> {
    let path = router.path_of(id);
    if path.exists() {
        let src = Connection::open_with_flags(&prepared.tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut live = open_live(router, id)?;
        live.execute_batch("PRAGMA synchronous = FULL;")?;
        let mode: String = live.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(Error::PragmaMismatch {
                pragma: "journal_mode",
                expected: "wal".into(),
                found: mode,
            });
        }
        {
            let backup = Backup::new(&src, &mut live)?;
            let deadline = Instant::now() + BUSY_TIMEOUT;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked => {
                        if Instant::now() > deadline {
                            return Err(Error::Unexpected(anyhow::anyhow!(
                                "tenant {id} stayed locked by another process"
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    // StepResult is non-exhaustive.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        verify_identity(&live, id)?;
        drop(live);
        drop(src);
        drop(prepared.tmp);
        Ok(Installed::Replaced)
    } else {
        forget_replication_state(router, id);
        std::fs::hard_link(&prepared.tmp, &path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::TenantExists(id.to_string())
            } else {
                e.into()
            }
        })?;
        drop(prepared.tmp);
        sync_dir(&router.config().tenants_dir)?;
        Ok(Installed::Created)
    }
}

fn check_integrity(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// Syncs a folder, so a link or unlink in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouterConfig;
    use crate::store::users::{self, NewUser, Role, Status};

    fn user(tx: &WriteTx<'_>, email: &str) -> Result<()> {
        users::insert(
            tx,
            &NewUser {
                email,
                name: "",
                role: Role::Member,
                status: Status::Active,
                password_hash: None,
            },
            1,
        )?;
        Ok(())
    }

    #[test]
    fn restore_over_an_open_file_is_seen_by_its_holder() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let router = TenantRouter::new(RouterConfig::new(dir.path()))?;
        let id = TenantId::parse("t1")?;
        router.create_tenant_blocking(&id, 1)?;
        router.write_blocking(&id, |tx| user(tx, "a@x.test"))?;
        let copy = dir.path().join("copy.db");
        snapshot(&router, &id, &copy)?;
        router.write_blocking(&id, |tx| user(tx, "b@x.test"))?;
        // The router keeps its connections open while the copy goes back in.
        let prepared = prepare_restore(&router, &id, &copy, "t1", 5, false, 2)?;
        assert_eq!(prepared.auth_epoch, 5);
        assert_eq!(install(&router, &id, prepared)?, Installed::Replaced);
        let emails = router.read_blocking(&id, users::all_emails)?;
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0].1, "a@x.test");
        assert_eq!(router.read_blocking(&id, meta::auth_epoch)?, 5);
        Ok(())
    }

    #[test]
    fn a_copy_of_another_tenant_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let router = TenantRouter::new(RouterConfig::new(dir.path()))?;
        let a = TenantId::parse("a1")?;
        router.create_tenant_blocking(&a, 1)?;
        let copy = dir.path().join("copy.db");
        snapshot(&router, &a, &copy)?;
        let b = TenantId::parse("b1")?;
        assert!(matches!(
            prepare_restore(&router, &b, &copy, "b1", 1, false, 2),
            Err(Error::ForeignTenantFile { .. })
        ));
        // Stamped with a new id on purpose (undelete), it installs as a new file.
        let p = prepare_restore(&router, &b, &copy, "a1", 1, false, 2)?;
        assert_eq!(install(&router, &b, p)?, Installed::Created);
        assert_eq!(inspect(&router, &b)?.tenant_id.as_deref(), Some("b1"));
        Ok(())
    }
}
