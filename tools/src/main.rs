//! `tenantctl`: the operator command line of a tenantd installation.
//!
//! It opens the same data directory and directory database as the server (the same `TENANTD_*`
//! variables and flags) and is safe to use while the server runs. Output is text by default and
//! JSON with `--json`; a failure exits non-zero with one line on stderr saying what went wrong
//! and what to do.
//!
//! # Layout
//! - `main.rs`: the command line (clap derive; the doc comments are the `--help` text).
//! - [`cmd`]: one module per command group, over `control_plane::service::{provision, fleet,
//!   doctor, backup}` and `tenant_runtime::ops`.
//! - [`failpoint`]: the hidden crash switch of the crash tests.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use control_plane::config::Config;

mod cmd;
mod failpoint;

/// Operate the tenants (companies) of a tenantd installation: create, suspend, delete, migrate,
/// back up, restore and repair.
///
/// tenantctl reads the same settings as tenantd (flags or TENANTD_* variables), so point it at
/// the same data directory. It is safe to run while tenantd serves.
#[derive(Debug, Parser)]
#[command(name = "tenantctl", version)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Installation (same as tenantd)")]
    pub config: Config,

    /// Print JSON on stdout instead of text (errors too: {"error": code, "message": ...}).
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,

    /// Work through this server's operator API instead of the local files (e.g.
    /// https://login.example.com), from any machine: tenant list|show|create|suspend|resume|
    /// delete|undelete, domain add|remove, user find, backup --tenant. Needs --key.
    #[arg(long, global = true, env = "TENANTCTL_SERVER", help_heading = "Remote")]
    pub server: Option<String>,

    /// The operator key for --server (`tenantctl operator-key create` on the server prints one).
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_KEY",
        hide_env_values = true,
        help_heading = "Remote"
    )]
    pub key: Option<control_plane::config::Secret>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show, suspend, resume, delete and undelete tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Map email domains to tenants (a domain maps to one tenant).
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Find users across all tenants.
    #[command(subcommand)]
    User(UserCommand),
    /// Register the vendor's apps that sign users in through tenantd (OpenID Connect clients).
    #[command(subcommand)]
    Client(cmd::client::ClientCommand),
    /// The keys that sign the OpenID provider's tokens: list, rotate.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Social providers people may sign in with ("Continue with …"): add, list, remove.
    #[command(subcommand)]
    Social(cmd::social::SocialCommand),
    /// Keys of the operator API (`/api/operator/*`) for the vendor's back office: create,
    /// list, revoke.
    #[command(subcommand)]
    OperatorKey(cmd::operator_key::OperatorKeyCommand),
    /// Bring the directory and every tenant database to the newest schema.
    ///
    /// Several tenants migrate in parallel; tenants already at the newest version are skipped
    /// quickly. Each schema step is one transaction, so an interrupted run is simply run again.
    /// A tenant that fails is reported at the end (exit status 1) and the others still migrate.
    Migrate(MigrateArgs),
    /// Back up the directory and every tenant (or one) into a new folder, online.
    ///
    /// Each tenant is copied from one consistent snapshot while the server keeps serving, then
    /// checked with integrity_check. manifest.json, written last, lists every copy with its size,
    /// SHA-256 and schema version. A PostgreSQL directory is backed up with pg_dump instead.
    Backup(BackupArgs),
    /// Restore tenants from a backup folder, checking everything before swapping anything in.
    ///
    /// Copies are checked (SHA-256, integrity_check, schema version not newer than this
    /// tenantctl) before any change. A restored tenant gets a new auth epoch: sessions and links
    /// issued before the restore stop working. Over a live tenant the swap is one transaction
    /// and the replaced content is kept in the trash; other tenants are not touched. Into a data
    /// directory without the tenant, its directory rows are recreated from the backup.
    Restore(RestoreArgs),
    /// Recover the tenants of a lost node from their replicas onto other nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Continuous replication with Litestream (TENANTD_REPLICA_URL): its status.
    #[command(subcommand)]
    Replica(cmd::replica::ReplicaCommand),
    /// Find drift between the directory and the tenant files; with --repair, fix it.
    ///
    /// Checks index rows without users, users missing from the index, tenants without files,
    /// files without tenants, unfinished provisioning, interrupted deletes and restores, schema
    /// versions that disagree and old trash. Exit status 1 while problems remain.
    Doctor(DoctorArgs),
    /// Check the configuration and that the directory database is reachable.
    Configtest,
    /// Send a test message with the configured mail settings.
    SendTestEmail {
        /// Recipient address.
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: its database, directory rows, domains and first admin (invited by mail).
    ///
    /// Prints the invitation link too. Running the same command again after an interruption
    /// finishes the job (and sends a fresh invitation if the admin has not accepted yet).
    Create(CreateArgs),
    /// List every tenant.
    List,
    /// Show one tenant with its domains and users.
    Show {
        /// The tenant's slug.
        slug: String,
    },
    /// Suspend a tenant: its users are refused (403 tenant_suspended) within a second.
    Suspend {
        /// The tenant's slug.
        slug: String,
    },
    /// Resume a suspended tenant.
    Resume {
        /// The tenant's slug.
        slug: String,
    },
    /// Delete a tenant: its database goes to the trash for 30 days and its directory rows go.
    Delete {
        /// The tenant's slug.
        slug: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Bring a deleted tenant back from the trash (within 30 days of its deletion).
    Undelete {
        /// The deleted tenant's slug.
        slug: String,
    },
    /// Move a tenant to another node: writes pause for the copy, reads go on.
    ///
    /// The tenant's node freezes its writes, sends a consistent snapshot, the target checks
    /// and installs it, and the directory switches node and placement epoch in one transaction;
    /// the old node then refuses the tenant. Needs TENANTD_NODE_SECRET.
    Move(cmd::placement::MoveArgs),
    /// Restore a tenant from its replica onto another node, when its node is lost.
    ///
    /// The target node restores the file with Litestream and checks it (integrity, the tenant
    /// id it records); the directory then switches node and placement epoch (and, with --at,
    /// the auth epoch) in one transaction and the user index follows the file. Refused while
    /// the tenant's node still heartbeats, unless --force. Needs TENANTD_NODE_SECRET.
    Recover(cmd::replica::RecoverArgs),
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Recover every tenant of a lost node from its replicas, in parallel, with a report of
    /// failures at the end. Run it again to retry: recovered tenants are no longer on it.
    Recover(cmd::replica::NodeRecoverArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Short unique name: 3 to 63 of a-z, 0-9 and '-'.
    #[arg(long)]
    pub slug: String,
    /// The company's name, shown to its users.
    #[arg(long)]
    pub name: String,
    /// An email domain of the company (repeatable); its addresses sign in to this tenant.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Email of the first admin, who is invited.
    #[arg(long)]
    pub admin_email: String,
    /// Name of the first admin.
    #[arg(long)]
    pub admin_name: Option<String>,
    /// Node to place the tenant on (default: the live node with the fewest tenants).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Map a domain to a tenant.
    Add {
        /// The tenant's slug.
        slug: String,
        /// The domain, e.g. acme.example.
        domain: String,
    },
    /// Remove a domain from a tenant.
    Remove {
        /// The tenant's slug.
        slug: String,
        /// The domain.
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Find the tenant, status and role of the user with an email address.
    Find {
        /// The user's email address.
        email: String,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only this tenant (the directory is migrated too).
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Only report what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Tenants migrated at once (default: 4 per core, at most 16).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// New folder to write the backup into (created; must be empty if it exists). Through
    /// --server the server picks a folder in its TENANTD_BACKUP_DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only this tenant (and the directory).
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Tenants copied at once (default: 2 per core, at most 8).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup folder written by `tenantctl backup`.
    #[arg(long, value_name = "DIR", required_unless_present = "from_replica")]
    pub from: Option<PathBuf>,
    /// Restore one tenant (--tenant) in place from this node's replica, as it was at --at.
    #[arg(long, conflicts_with = "from", requires_all = ["tenant", "at"])]
    pub from_replica: bool,
    /// With --from-replica: the point in time (RFC 3339), e.g. 2026-05-01T09:30:00Z.
    #[arg(long, value_name = "RFC3339", requires = "from_replica")]
    pub at: Option<String>,
    /// Only this tenant; the others are not touched.
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Every restored user must set a new password (through an emailed link, sent when they
    /// next sign in): use it when the backup is older than a password change that must not
    /// come back (a leaked password, a departed colleague's).
    #[arg(long)]
    pub require_password_reset: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Fix what can be fixed.
    #[arg(long)]
    pub repair: bool,
    /// Leave alone pending rows, unfinished tenants and temporary files younger than this many
    /// seconds: they may belong to an operation still under way.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub grace: i64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Backups, trash copies and new tenant files hold password hashes and tokens.
    control_plane::startup::private_files();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cmd::fail(json, &anyhow::Error::from(e)),
    };
    let result = runtime.block_on(cmd::run(cli));
    match result {
        Ok(report) => report.finish(json),
        Err(e) => cmd::fail(json, &e),
    }
}

/// Warnings and errors on stderr (`TENANTCTL_LOG` to change), never on stdout.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENANTCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
