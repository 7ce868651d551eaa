//! `TenantRouter`: tenant id → a small pool of rusqlite connections to that tenant's file.
//!
//! - A pool is created lazily; the first connection of a pool verifies the file (it exists, it is
//!   a tenant database, it records this tenant's id) and migrates it, once, while concurrent
//!   first requests wait for it.
//! - A global cap bounds open connections across tenants. Near it (past 15/16 of it), a
//!   background thread closes the least recently used tenants with no connection in use, a
//!   batch at a time, so requests do not pay for the checkpoints of closing; a request that
//!   finds the cap reached anyway closes a batch itself.
//! - Callers hand in synchronous closures; the async entry points run them on the blocking pool
//!   and never hold a map guard across an `.await`.
//! - Housekeeping never needs to wake an idle tenant: [`RouterConfig::on_open`] runs once each
//!   time a tenant opens, and `write_if_open` writes a tenant only while it is open.
//! - Closing a tenant checkpoints its WAL and truncates it to zero bytes, so a closed tenant's
//!   data is all in `<tenant-id>.db`. The emptied `-wal` and the `-shm` files are left in place:
//!   creating and deleting them on every open and close made cold opens several times slower.
//!   Under replication ([`RouterConfig::checkpoint_on_close`] off) Litestream alone truncates
//!   the WAL: a truncation behind its back would make it upload the whole file again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, OpenFlags};

use crate::{Clock, Error, Result, TenantId, WriteTx};

mod connection;
mod evictor;
mod lease;

pub use connection::{
    DESCRIPTORS_PER_CONNECTION, connection_cap, integrity_check, raise_open_file_limit,
};
use connection::{close_connections, configure, sync_dir, verify_identity};
use lease::{Commit, Lease, run_on_open, write_on, write_on_with};

/// Work run in a write transaction each time a tenant opens, with the time from the router's
/// clock. See [`RouterConfig::on_open`].
pub type OnOpen = Arc<dyn Fn(&WriteTx<'_>, i64) -> Result<()> + Send + Sync>;

/// Settings of the router.
#[derive(Clone)]
pub struct RouterConfig {
    /// Folder that holds `<tenant-id>.db` files.
    pub tenants_dir: PathBuf,
    /// Open connections across all tenants.
    pub max_connections: usize,
    /// Open connections of one tenant (readers run in parallel; writers take turns).
    pub max_per_tenant: usize,
    /// SQLite page cache per connection, in KiB.
    pub cache_kib: u32,
    pub busy_timeout: Duration,
    /// Where the router takes the time (e.g. `applied_at` of migrations run at open). Default:
    /// the system clock.
    pub clock: Arc<dyn Clock>,
    /// Runs once each time a tenant goes from closed to open, in a write transaction on its
    /// first connection, right after the file was verified (and migrated). An error (or a
    /// panic) is logged and rolls that transaction back; the tenant opens anyway. It must not
    /// call back into the router. Default: none.
    pub on_open: Option<OnOpen>,
    /// Checkpoint and truncate the WAL when a tenant closes. Off while Litestream replicates
    /// the files: it owns the WAL's checkpoints. Default: on.
    pub checkpoint_on_close: bool,
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("tenants_dir", &self.tenants_dir)
            .field("max_connections", &self.max_connections)
            .field("max_per_tenant", &self.max_per_tenant)
            .field("cache_kib", &self.cache_kib)
            .field("busy_timeout", &self.busy_timeout)
            .field("clock", &self.clock)
            .field("on_open", &self.on_open.as_ref().map(|_| ".."))
            .field("checkpoint_on_close", &self.checkpoint_on_close)
            .finish()
    }
}

impl RouterConfig {
    pub fn new(tenants_dir: impl Into<PathBuf>) -> Self {
        Self {
            tenants_dir: tenants_dir.into(),
            max_connections: 512,
            max_per_tenant: 4,
            cache_kib: 512,
            busy_timeout: Duration::from_secs(5),
            clock: crate::clock::system(),
            on_open: None,
            checkpoint_on_close: true,
        }
    }
}

/// Counters for benchmarks, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// The cap on open connections ([`RouterConfig::max_connections`]).
    pub max_connections: usize,
    pub open_connections: usize,
    pub open_tenants: usize,
    /// Times a tenant went from closed to open (file verified, migrated if needed).
    pub tenant_opens: u64,
    pub connections_opened: u64,
    pub evictions: u64,
}

/// A cheap, cloneable handle to the router.
#[derive(Clone)]
pub struct TenantRouter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TenantRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRouter")
            .field("tenants_dir", &self.shared.cfg.tenants_dir)
            .finish_non_exhaustive()
    }
}

struct Shared {
    cfg: RouterConfig,
    pools: DashMap<TenantId, Arc<Pool>>,
    open_connections: AtomicUsize,
    tick: AtomicU64,
    tenant_opens: AtomicU64,
    connections_opened: AtomicU64,
    evictions: AtomicU64,
    evicting: Mutex<()>,
    /// Wakes the background evictor (see `evictor`); a full channel means it is awake already.
    evictor: std::sync::mpsc::SyncSender<()>,
}

struct Pool {
    id: TenantId,
    path: PathBuf,
    /// [`RouterConfig::checkpoint_on_close`].
    truncate: bool,
    state: Mutex<PoolState>,
    ready: Condvar,
    /// Checked-out connections plus callers about to check out: such a pool is never evicted.
    in_use: AtomicUsize,
    last_used: AtomicU64,
    /// One writer per tenant in this process; other processes wait on SQLite's busy timeout.
    writer: Mutex<()>,
}

#[derive(Default)]
struct PoolState {
    idle: VecDeque<Connection>,
    /// Open connections of this pool, idle or checked out.
    total: usize,
    verified: bool,
    opening: bool,
    /// Set when the pool was evicted and left the map; holders must look the tenant up again.
    retired: bool,
}

enum Checkout {
    Got(Connection),
    Retired,
}

impl TenantRouter {
    /// Creates the tenants folder if needed and raises the open-file limit.
    pub fn new(cfg: RouterConfig) -> Result<Self> {
        std::fs::create_dir_all(&cfg.tenants_dir)?;
        raise_open_file_limit();
        let (evictor, wake) = std::sync::mpsc::sync_channel(1);
        let shared = Arc::new(Shared {
            cfg,
            pools: DashMap::new(),
            open_connections: AtomicUsize::new(0),
            tick: AtomicU64::new(0),
            tenant_opens: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            evicting: Mutex::new(()),
            evictor,
        });
        evictor::spawn(Arc::downgrade(&shared), wake)?;
        Ok(Self { shared })
    }

    pub fn config(&self) -> &RouterConfig {
        &self.shared.cfg
    }

    /// The file of a tenant. Names come only from validated internal ids.
    pub fn path_of(&self, id: &TenantId) -> PathBuf {
        self.shared.cfg.tenants_dir.join(format!("{id}.db"))
    }

    pub fn exists(&self, id: &TenantId) -> bool {
        self.path_of(id).is_file()
    }

    pub fn stats(&self) -> RouterStats {
        let s = &self.shared;
        RouterStats {
            max_connections: s.cfg.max_connections,
            open_connections: s.open_connections.load(Ordering::SeqCst),
            open_tenants: s.pools.len(),
            tenant_opens: s.tenant_opens.load(Ordering::Relaxed),
            connections_opened: s.connections_opened.load(Ordering::Relaxed),
            evictions: s.evictions.load(Ordering::Relaxed),
        }
    }

    /// Creates a tenant's database: built under a temporary name, migrated, stamped with the
    /// tenant id, synced, then linked into place without ever replacing an existing file.
    pub fn create_tenant_blocking(&self, id: &TenantId, now: i64) -> Result<()> {
        let path = self.path_of(id);
        if path.exists() {
            return Err(Error::TenantExists(id.to_string()));
        }
        let dir = &self.shared.cfg.tenants_dir;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{id}."))
            .suffix(".creating")
            .tempfile_in(dir)?;
        {
            let mut conn = Connection::open(tmp.path())?;
            // Nobody sees this file until it is synced and linked below, so building it needs
            // no journal on disk and no fsync per step: a crash leaves only a stray temp file.
            conn.execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")?;
            // Small pages for small tenants: every table and index takes at least one page,
            // so a new company's file is ~44 KiB instead of ~150, and a connection caches a
            // quarter of the bytes for the same rows. Set before the first table exists.
            conn.execute_batch("PRAGMA page_size = 1024;")?;
            tenant_schema::migrate_tenant(&mut conn, now)?;
            conn.execute(
                "INSERT INTO tenant_meta (id, tenant_id, created_at) VALUES (1, ?1, ?2)",
                rusqlite::params![id.as_str(), now],
            )?;
            // WAL is a property of the file: set it before it becomes visible.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if mode != "wal" {
                return Err(Error::PragmaMismatch {
                    pragma: "journal_mode",
                    expected: "wal".into(),
                    found: mode,
                });
            }
        }
        tmp.as_file().sync_all()?;
        // hard_link fails if the target exists, so two creators can never clobber each other.
        std::fs::hard_link(tmp.path(), &path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::TenantExists(id.to_string())
            } else {
                e.into()
            }
        })?;
        drop(tmp);
        sync_dir(dir)?;
        Ok(())
    }

    pub async fn create_tenant(&self, id: &TenantId, now: i64) -> Result<()> {
        let this = self.clone();
        let id = id.clone();
        blocking(move || this.create_tenant_blocking(&id, now)).await
    }

    /// Runs `f` on a pooled connection of the tenant, on the blocking pool.
    pub async fn read<T, F>(&self, id: &TenantId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let id = id.clone();
        blocking(move || this.read_blocking(&id, f)).await
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction of the tenant, committed when `f` returns
    /// `Ok` and rolled back otherwise.
    pub async fn write<T, F>(&self, id: &TenantId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let id = id.clone();
        blocking(move || this.write_blocking(&id, f)).await
    }

    /// [`TenantRouter::write`] for bookkeeping a power cut may lose without harm (when a
    /// session was last seen): committed without waiting for the disk. The transaction runs
    /// with `synchronous = NORMAL`: a crash of the process loses nothing, a power cut may lose
    /// it (never the file's consistency); the next durable commit or checkpoint syncs it too.
    pub async fn write_lazily<T, F>(&self, id: &TenantId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let id = id.clone();
        blocking(move || this.write_lazily_blocking(&id, f)).await
    }

    /// [`TenantRouter::write_lazily`] on the calling thread.
    pub fn write_lazily_blocking<T>(
        &self,
        id: &TenantId,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
    ) -> Result<T> {
        let lease = self.lease(id)?;
        write_on_with(lease, Commit::Lazy, f)
    }

    pub fn read_blocking<T>(
        &self,
        id: &TenantId,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let lease = self.lease(id)?;
        let out = f(lease.conn()?);
        lease.release();
        out
    }

    pub fn write_blocking<T>(
        &self,
        id: &TenantId,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
    ) -> Result<T> {
        let lease = self.lease(id)?;
        write_on(lease, f)
    }

    /// [`TenantRouter::write`], but only if the tenant is open now: a closed tenant is not
    /// opened (`Ok(None)`), nothing is evicted, and the tenant does not count as recently used.
    /// If all its connections are in use, waits for one to come back.
    pub async fn write_if_open<T, F>(&self, id: &TenantId, f: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let id = id.clone();
        blocking(move || this.write_if_open_blocking(&id, f)).await
    }

    /// [`TenantRouter::write_if_open`] on the calling thread.
    pub fn write_if_open_blocking<T>(
        &self,
        id: &TenantId,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.lease_if_open(id) {
            Some(lease) => write_on(lease, f).map(Some),
            None => Ok(None),
        }
    }

    /// The tenants open now (a verified pool with connections), in id order.
    pub fn open_tenants(&self) -> Vec<TenantId> {
        // Clone the pools out first: no map guard is held while a pool's state is locked.
        let pools: Vec<Arc<Pool>> = self
            .shared
            .pools
            .iter()
            .map(|e| e.value().clone())
            .collect();
        let mut ids: Vec<TenantId> = pools
            .into_iter()
            .filter(|p| {
                let st = p.state.lock();
                st.verified && !st.retired && st.total > 0
            })
            .map(|p| p.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Closes a tenant's connections (before its file is moved, replaced or deleted). Waits for
    /// connections in use to come back.
    pub fn close_blocking(&self, id: &TenantId) {
        let Some((_, pool)) = self.shared.pools.remove(id) else {
            return;
        };
        let mut st = pool.state.lock();
        st.retired = true;
        while st.total > st.idle.len() {
            pool.ready.wait(&mut st);
        }
        let n = st.idle.len();
        close_connections(std::mem::take(&mut st.idle), pool.truncate);
        st.total = 0;
        self.shared.open_connections.fetch_sub(n, Ordering::SeqCst);
        pool.ready.notify_all();
    }

    /// Writes a consistent copy of a tenant to `dest` while writers go on (a read transaction
    /// sees one snapshot), syncs it and checks its integrity. `dest` must not exist.
    pub fn backup_blocking(&self, id: &TenantId, dest: &Path) -> Result<()> {
        let dest_str = dest
            .to_str()
            .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("backup path is not UTF-8")))?
            .to_owned();
        self.read_blocking(id, move |conn| {
            conn.execute("VACUUM INTO ?1", [&dest_str])?;
            Ok(())
        })?;
        std::fs::File::open(dest)?.sync_all()?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        let problems = integrity_check(dest)?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Unexpected(anyhow::anyhow!(
                "backup failed integrity_check: {}",
                problems.join("; ")
            )))
        }
    }

    pub async fn backup(&self, id: &TenantId, dest: &Path) -> Result<()> {
        let this = self.clone();
        let id = id.clone();
        let dest = dest.to_owned();
        blocking(move || this.backup_blocking(&id, &dest)).await
    }

    fn lease(&self, id: &TenantId) -> Result<Lease<'_>> {
        let s = &self.shared;
        loop {
            // Clone the pool out so no map guard outlives the statement. The shared-lock lookup
            // serves open tenants; only a miss takes the shard's write lock.
            let found = s.pools.get(id).map(|p| Arc::clone(p.value()));
            let pool = match found {
                Some(pool) => pool,
                None => s
                    .pools
                    .entry(id.clone())
                    .or_insert_with(|| {
                        Arc::new(Pool::new(
                            id.clone(),
                            self.path_of(id),
                            s.cfg.checkpoint_on_close,
                        ))
                    })
                    .clone(),
            };
            pool.in_use.fetch_add(1, Ordering::SeqCst);
            pool.last_used
                .store(s.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            match self.checkout(&pool) {
                Ok(Checkout::Got(conn)) => {
                    return Ok(Lease {
                        router: self,
                        pool,
                        conn: Some(conn),
                        broken: false,
                    });
                }
                Ok(Checkout::Retired) => {
                    pool.in_use.fetch_sub(1, Ordering::SeqCst);
                }
                Err(e) => {
                    pool.in_use.fetch_sub(1, Ordering::SeqCst);
                    if pool.state.lock().retired {
                        // Leave no broken pool behind; the next request tries afresh.
                        s.pools.remove_if(id, |_, p| Arc::ptr_eq(p, &pool));
                    }
                    return Err(e);
                }
            }
        }
    }

    /// A connection of a tenant that is open now, without opening, evicting or counting as a
    /// use; `None` if the tenant is closed (or closing, or still opening).
    fn lease_if_open(&self, id: &TenantId) -> Option<Lease<'_>> {
        let pool = self.shared.pools.get(id).map(|p| Arc::clone(p.value()))?;
        // Counted as in use before looking: from here on no eviction picks this pool.
        pool.in_use.fetch_add(1, Ordering::SeqCst);
        let conn = {
            let mut st = pool.state.lock();
            loop {
                if st.retired || !st.verified || st.total == 0 {
                    break None;
                }
                if let Some(conn) = st.idle.pop_back() {
                    break Some(conn);
                }
                pool.ready.wait(&mut st);
            }
        };
        match conn {
            Some(conn) => Some(Lease {
                router: self,
                pool,
                conn: Some(conn),
                broken: false,
            }),
            None => {
                pool.in_use.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    fn checkout(&self, pool: &Arc<Pool>) -> Result<Checkout> {
        let cfg = &self.shared.cfg;
        let mut st = pool.state.lock();
        loop {
            if st.retired {
                return Ok(Checkout::Retired);
            }
            if let Some(conn) = st.idle.pop_back() {
                return Ok(Checkout::Got(conn));
            }
            // The first connection verifies the file; nobody else opens until it is done.
            let may_open = st.total < cfg.max_per_tenant && (st.verified || !st.opening);
            if !may_open {
                pool.ready.wait(&mut st);
                continue;
            }
            let first = !st.verified;
            st.opening |= first;
            st.total += 1;
            drop(st);
            let opened = self.reserve_slot().and_then(|()| {
                self.open_connection(pool, first).inspect_err(|_| {
                    self.shared.open_connections.fetch_sub(1, Ordering::SeqCst);
                })
            });
            st = pool.state.lock();
            if first {
                st.opening = false;
            }
            match opened {
                Ok(conn) => {
                    if first {
                        st.verified = true;
                        self.shared.tenant_opens.fetch_add(1, Ordering::Relaxed);
                    }
                    pool.ready.notify_all();
                    return Ok(Checkout::Got(conn));
                }
                Err(e) => {
                    st.total -= 1;
                    if first {
                        // A pool whose file was never verified is dropped from the map. Retire it
                        // in this same critical section, so no waiter can go on to open a
                        // connection in it: that connection would be counted against the cap
                        // but sit in a pool no eviction scan can find.
                        st.retired = true;
                    }
                    pool.ready.notify_all();
                    return Err(e);
                }
            }
        }
    }

    fn reserve_slot(&self) -> Result<()> {
        let s = &self.shared;
        let cap = s.cfg.max_connections;
        loop {
            let cur = s.open_connections.load(Ordering::SeqCst);
            if cur < cap {
                if s.open_connections
                    .compare_exchange(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    if evictor::should_wake(cap, cur + 1) {
                        // Full: the evictor is awake already.
                        let _ = s.evictor.try_send(());
                    }
                    return Ok(());
                }
                continue;
            }
            if evict_idle(s, cap) == 0 && s.open_connections.load(Ordering::SeqCst) >= cap {
                return Err(Error::AtCapacity(cap));
            }
        }
    }

    fn open_connection(&self, pool: &Pool, first: bool) -> Result<Connection> {
        let cfg = &self.shared.cfg;
        // Never create: a tenant without a file is an error, not a new empty database.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = match Connection::open_with_flags(&pool.path, flags) {
            Ok(c) => c,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::CannotOpen =>
            {
                return Err(Error::TenantNotFound(pool.id.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let version = if first {
            // Check whose file this is before any setting can write to it: a refused file is
            // left exactly as it was found.
            conn.busy_timeout(cfg.busy_timeout)?;
            Some(verify_identity(&conn, &pool.id)?)
        } else {
            None
        };
        configure(&conn, cfg)?;
        if let Some(version) = version
            && version < tenant_schema::TENANT_LATEST
        {
            tenant_schema::migrate_tenant(&mut conn, cfg.clock.now())?;
        }
        if first && let Some(on_open) = &cfg.on_open {
            run_on_open(&mut conn, pool, on_open, cfg.clock.now());
        }
        self.shared
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}

/// Closes the least recently used tenants that have no connection in use, a batch of about
/// 1/16 of the cap per scan so the scan cost is spread over many opens. Returns 0 when
/// nothing could be evicted, otherwise a positive count (connections closed, or 1 when
/// another thread brought the count under `target`, is closing tenants now, or only empty
/// pools were retired).
fn evict_idle(s: &Shared, target: usize) -> usize {
    // While another thread closes a batch, its slots come free one tenant at a time: look
    // again for one rather than wait for the whole batch (each close may checkpoint and fsync).
    let Some(_one_evictor) = s.evicting.try_lock_for(Duration::from_millis(1)) else {
        return 1;
    };
    let cap = s.cfg.max_connections;
    if s.open_connections.load(Ordering::SeqCst) < target {
        return 1; // another thread made room meanwhile
    }
    let mut candidates: Vec<(u64, Arc<Pool>)> = s
        .pools
        .iter()
        .filter(|e| e.value().in_use.load(Ordering::SeqCst) == 0)
        .map(|e| {
            (
                e.value().last_used.load(Ordering::Relaxed),
                e.value().clone(),
            )
        })
        .collect();
    let batch = (cap / 16).max(1).min(candidates.len());
    if batch == 0 {
        return 0;
    }
    if batch < candidates.len() {
        candidates.select_nth_unstable_by_key(batch - 1, |(t, _)| *t);
        candidates.truncate(batch);
    }
    let mut progress = 0;
    for (_, pool) in candidates {
        let mut st = pool.state.lock();
        if pool.in_use.load(Ordering::SeqCst) != 0 || st.total != st.idle.len() || st.retired {
            continue;
        }
        st.retired = true;
        let idle = std::mem::take(&mut st.idle);
        st.total = 0;
        drop(st);
        s.pools.remove_if(&pool.id, |_, p| Arc::ptr_eq(p, &pool));
        pool.ready.notify_all();
        let n = idle.len();
        close_connections(idle, pool.truncate);
        if n > 0 {
            // Only now: the slots are free once the files are closed.
            s.open_connections.fetch_sub(n, Ordering::SeqCst);
            s.evictions.fetch_add(1, Ordering::Relaxed);
        }
        // An empty pool left the map too: the next scan sees other candidates.
        progress += n.max(1);
    }
    progress
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| Error::Unexpected(anyhow::anyhow!("tenant task failed: {e}")))?
}

impl Pool {
    fn new(id: TenantId, path: PathBuf, truncate: bool) -> Self {
        Self {
            id,
            path,
            truncate,
            state: Mutex::new(PoolState::default()),
            ready: Condvar::new(),
            in_use: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
            writer: Mutex::new(()),
        }
    }
}

impl Drop for Pool {
    /// Runs when the router itself goes away with tenants still open.
    fn drop(&mut self) {
        let truncate = self.truncate;
        close_connections(std::mem::take(&mut self.state.get_mut().idle), truncate);
    }
}
