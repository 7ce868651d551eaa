//! The commands, one module per group, and what they share: the connection to the fleet, the
//! report each command returns, progress bars and a small worker pool.

/// `backup` and `restore`.
pub(crate) mod backup;
/// `client create|list|show|delete|rotate-secret`.
pub(crate) mod client;
/// `configtest` and `send-test-email`.
pub(crate) mod config;
/// `doctor`.
pub(crate) mod doctor;
/// `domain add|remove`.
pub(crate) mod domain;
/// `keys list|rotate`.
pub(crate) mod keys;
/// `migrate`.
pub(crate) mod migrate;
/// `operator-key create|list|revoke`.
pub(crate) mod operator_key;
/// Nodes: placement of new tenants, `tenant move`.
pub(crate) mod placement;
/// `--server`: the operator API instead of the local files.
pub(crate) mod remote;
/// Replication: `replica status`, `tenant recover`, `node recover`, `restore --from-replica`.
pub(crate) mod replica;
/// `social add|list|remove`.
pub(crate) mod social;
/// `tenant create|list|show|suspend|resume|delete|undelete`.
pub(crate) mod tenant;
/// `user find`.
pub(crate) mod user;

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use control_plane::config::Config;
use control_plane::directory::Directory;
use control_plane::service::fleet::{Fleet, FleetError};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tenant_runtime::{Clock, RouterConfig, TenantRouter};

use crate::{Cli, Command, DomainCommand, NodeCommand, TenantCommand, UserCommand};

/// What a command prints, and whether it failed after doing part of its work.
#[derive(Debug)]
pub(crate) struct Report {
    pub text: String,
    pub json: Value,
    /// One line for stderr; the exit status is then 1.
    pub failure: Option<Failure>,
}

/// A failure after partial work (e.g. one tenant of many did not migrate).
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Report {
    pub(crate) fn new(text: impl Into<String>, json: Value) -> Self {
        Self {
            text: text.into(),
            json,
            failure: None,
        }
    }

    pub(crate) fn failed(mut self, code: &'static str, message: impl Into<String>) -> Self {
        self.failure = Some(Failure {
            code,
            message: message.into(),
        });
        self
    }

    /// Prints the report and returns the exit status.
    pub(crate) fn finish(self, json: bool) -> ExitCode {
        if json {
            let mut v = self.json;
            if let (Some(f), Value::Object(map)) = (&self.failure, &mut v) {
                map.insert("error".into(), json!(f.code));
                map.insert("message".into(), json!(f.message));
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else if !self.text.is_empty() {
            print!("{}", self.text);
            if !self.text.ends_with('\n') {
                println!();
            }
        }
        match self.failure {
            Some(f) => {
                eprintln!("tenantctl: {}", one_line(&f.message));
                ExitCode::FAILURE
            }
            None => ExitCode::SUCCESS,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The stable code of an error, for `--json`.
pub(crate) fn code_of(e: &anyhow::Error) -> std::borrow::Cow<'static, str> {
    if let Some(r) = e.downcast_ref::<remote::Refused>() {
        return r.code.clone().into();
    }
    code_here(e).into()
}

fn code_here(e: &anyhow::Error) -> &'static str {
    if let Some(f) = e.downcast_ref::<FleetError>() {
        return f.code();
    }
    if let Some(o) = e.downcast_ref::<control_plane::service::operator::OperatorError>() {
        return o.code();
    }
    if let Some(c) = e.downcast_ref::<control_plane::service::clients::ClientError>() {
        return c.code();
    }
    if let Some(c) = e.downcast_ref::<Coded>() {
        return c.code;
    }
    "error"
}

/// An error of this tool with a stable code.
#[derive(Debug)]
pub(crate) struct Coded {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error with a stable code and a message that says what to do.
pub(crate) fn coded(code: &'static str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

/// Prints an error as one line on stderr (and as JSON on stdout with `--json`).
pub(crate) fn fail(json: bool, e: &anyhow::Error) -> ExitCode {
    let message = one_line(&format!("{e:#}"));
    if json {
        println!("{}", json!({"error": code_of(e), "message": message}));
    }
    eprintln!("tenantctl: {message}");
    ExitCode::FAILURE
}

/// What every command has: the settings, the output mode and the clock.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub config: Arc<Config>,
    pub json: bool,
    /// The time, made once in [`run`]; everything else takes it from here.
    pub clock: Arc<dyn Clock>,
    /// `--server`: the operator API to work through instead of the local files.
    pub remote: Option<Arc<remote::Remote>>,
}

impl Ctx {
    /// Unix seconds now.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Opens the directory without changing its schema.
    pub(crate) async fn directory_unmigrated(&self) -> anyhow::Result<Directory> {
        Directory::connect_with(&self.config.directory_url(), false, self.clock.clone())
            .await
            .with_context(|| self.directory_problem())
    }

    /// Opens the directory (bringing its schema up to date, as tenantd does) and the tenant
    /// files.
    pub(crate) async fn fleet(&self) -> anyhow::Result<Fleet> {
        std::fs::create_dir_all(&self.config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}; check --data-dir / TENANTD_DATA_DIR",
                self.config.data_dir.display()
            )
        })?;
        let directory = Directory::connect(&self.config.directory_url(), self.clock.clone())
            .await
            .with_context(|| self.directory_problem())?;
        let mut rc = RouterConfig::new(self.config.tenants_dir());
        rc.max_connections = self.config.connection_cap().max(8);
        rc.clock = self.clock.clone();
        // Under replication Litestream owns the WAL's checkpoints (see tenantd).
        rc.checkpoint_on_close = self.config.replica.replica_url.is_none();
        let router = TenantRouter::new(rc).with_context(|| {
            format!(
                "cannot open the tenants folder {}",
                self.config.tenants_dir().display()
            )
        })?;
        Ok(Fleet {
            directory,
            router,
            config: self.config.clone(),
            clock: self.clock.clone(),
            node: placement::own_node(),
            via: None,
        })
    }

    fn directory_problem(&self) -> String {
        format!(
            "cannot open the directory database {}; check --data-dir / TENANTD_DIRECTORY_URL",
            redact(&self.config.directory_url())
        )
    }

    /// A progress bar on stderr; hidden with `--json` or when stderr is not a terminal.
    pub(crate) fn progress(&self, len: usize, what: &str) -> ProgressBar {
        if self.json || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let style =
            ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        ProgressBar::new(len as u64)
            .with_style(style)
            .with_message(what.to_owned())
    }
}

/// A URL without its password, for messages.
pub(crate) fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Runs `f` on every item with `jobs` threads, ticking `bar`; results keep the items' order.
/// Blocking: call it from `tokio::task::block_in_place`.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    bar: &ProgressBar,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = Vec::with_capacity(items.len());
    out.resize_with(items.len(), || None);
    let slots = std::sync::Mutex::new(out);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut v) = slots.lock() {
                        v[i] = Some(r);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// Worker threads for file work: `per_core` per core, at most `max`.
pub(crate) fn default_jobs(requested: Option<usize>, per_core: usize, max: usize) -> usize {
    requested.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores * per_core).min(max)
    })
}

/// Aligned text columns.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    for r in rows {
        line(&mut out, r.iter().map(String::as_str).collect());
    }
    out
}

/// tenantctl's one real clock, made once by [`run`]; commands take the time from [`Ctx`].
#[allow(
    clippy::disallowed_types,
    reason = "startup of tenantctl makes the one real clock"
)]
fn real_clock() -> Arc<dyn Clock> {
    use tenant_runtime::SystemClock;
    Arc::new(SystemClock)
}

/// Dispatches a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<Report> {
    let remote = match &cli.server {
        Some(server) => Some(Arc::new(remote::Remote::new(
            server,
            cli.key.as_ref().map_or("", |k| k.expose()),
        )?)),
        None => None,
    };
    let here_only = !matches!(
        cli.command,
        Command::Tenant(
            TenantCommand::Create(_)
                | TenantCommand::List
                | TenantCommand::Show { .. }
                | TenantCommand::Suspend { .. }
                | TenantCommand::Resume { .. }
                | TenantCommand::Delete { .. }
                | TenantCommand::Undelete { .. }
        ) | Command::Domain(_)
            | Command::User(_)
            | Command::Backup(_)
    );
    if remote.is_some() && here_only {
        return Err(coded(
            "not_remote",
            "this command runs on the server only (without --server); through --server: tenant, domain, user find and backup --tenant",
        ));
    }
    let ctx = Ctx {
        config: Arc::new(cli.config),
        json: cli.json,
        clock: real_clock(),
        remote,
    };
    match cli.command {
        Command::Tenant(t) => match t {
            TenantCommand::Create(a) => tenant::create(&ctx, a).await,
            TenantCommand::List => tenant::list(&ctx).await,
            TenantCommand::Show { slug } => tenant::show(&ctx, &slug).await,
            TenantCommand::Suspend { slug } => tenant::set_status(&ctx, &slug, true).await,
            TenantCommand::Resume { slug } => tenant::set_status(&ctx, &slug, false).await,
            TenantCommand::Delete { slug, yes } => tenant::delete(&ctx, &slug, yes).await,
            TenantCommand::Undelete { slug } => tenant::undelete(&ctx, &slug).await,
            TenantCommand::Move(a) => placement::move_tenant(&ctx, a).await,
            TenantCommand::Recover(a) => replica::recover_tenant(&ctx, a).await,
        },
        Command::Node(NodeCommand::Recover(a)) => replica::recover_node(&ctx, a).await,
        Command::Replica(replica::ReplicaCommand::Status) => replica::status(&ctx).await,
        Command::Domain(d) => match d {
            DomainCommand::Add { slug, domain } => domain::add(&ctx, &slug, &domain).await,
            DomainCommand::Remove { slug, domain } => domain::remove(&ctx, &slug, &domain).await,
        },
        Command::User(UserCommand::Find { email }) => user::find(&ctx, &email).await,
        Command::Client(c) => client::run(&ctx, c).await,
        Command::Keys(c) => keys::run(&ctx, c).await,
        Command::Social(c) => social::run(&ctx, c).await,
        Command::OperatorKey(c) => operator_key::run(&ctx, c).await,
        Command::Migrate(a) => migrate::run(&ctx, a).await,
        Command::Backup(a) => backup::backup(&ctx, a).await,
        Command::Restore(a) if a.from_replica => match (&a.tenant, &a.at) {
            (Some(slug), Some(at)) => {
                replica::restore(&ctx, slug, at, a.require_password_reset).await
            }
            _ => Err(coded(
                "invalid_arguments",
                "--from-replica restores one tenant to a point in time: give --tenant SLUG and --at RFC3339",
            )),
        },
        Command::Restore(a) => backup::restore(&ctx, a).await,
        Command::Doctor(a) => doctor::run(&ctx, a).await,
        Command::Configtest => config::configtest(&ctx).await,
        Command::SendTestEmail { to } => config::send_test_email(&ctx, &to).await,
    }
}
