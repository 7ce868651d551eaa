//! Building the application: state, routes, middleware, and serving on a listener.

use std::net::SocketAddr;
use std::sync::Arc;

use tenant_runtime::{Clock, RouterConfig, TenantRouter};
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::config::{Config, NodeConfig, ServerConfig};
use crate::directory::Directory;
use crate::hasher::Hasher;
use crate::keys::ServerKey;
use crate::mail::{Mailer, OutboxMailer, SmtpMailer};
use crate::metrics::Metrics;
use crate::routes::{self, Listener};
use crate::service::{backchannel, nodes, replication};
use crate::state::{AppState, TenantCache};
use crate::throttle::Throttles;

/// Parts a test may replace.
#[derive(Debug, Default)]
pub struct Overrides {
    pub mailer: Option<Arc<dyn Mailer>>,
    pub clock: Option<Arc<dyn Clock>>,
}

/// Opens the directory and the tenant router and makes the mailer (a single node, `local`).
pub async fn build_state(
    config: Config,
    server: ServerConfig,
    overrides: Overrides,
) -> anyhow::Result<AppState> {
    let url = format!("http://{}", server.listen);
    build_node_state(config, server, &NodeConfig::default(), url, overrides).await
}

/// [`build_state`] for a node of a multi-node installation, reachable at `node_url`.
pub async fn build_node_state(
    config: Config,
    server: ServerConfig,
    node: &NodeConfig,
    node_url: String,
    overrides: Overrides,
) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)?;
    // The one place the real clock is made; everything else takes this one.
    #[allow(clippy::disallowed_types, reason = "the server's clock is made here")]
    let clock: Arc<dyn Clock> = overrides
        .clock
        .unwrap_or_else(|| Arc::new(tenant_runtime::SystemClock));
    let directory = Directory::connect(&config.directory_url(), clock.clone()).await?;
    let mut rc = RouterConfig::new(config.tenants_dir());
    rc.max_connections = config.connection_cap();
    warn_if_over_descriptors(rc.max_connections);
    rc.clock = clock.clone();
    rc.on_open = Some(nodes::purge_on_open(server.session_idle_secs));
    let replica = crate::replica::Replica::from_config(&config)?;
    // Litestream owns the WAL's checkpoints of the files it replicates.
    rc.checkpoint_on_close = replica.is_none();
    let tenants = TenantRouter::new(rc)?;
    let mailer: Arc<dyn Mailer> = match (overrides.mailer, &config.smtp_url) {
        (Some(m), _) => m,
        (None, Some(url)) => Arc::new(SmtpMailer::new(url.expose(), &config.mail_from)?),
        (None, None) => Arc::new(OutboxMailer::new(
            config.outbox_dir(),
            &config.mail_from,
            clock.clone(),
            server.dev,
        )?),
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = Hasher::new(server.hash_concurrency.unwrap_or(cores), server.hash_queue);
    // Several nodes count attempts together in the directory; one node counts in memory.
    let throttles = if node
        .node_secret
        .as_ref()
        .is_some_and(|s| !s.expose().is_empty())
    {
        Throttles::shared(&directory, server.throttle_limits())
    } else {
        Throttles::new(server.throttle_limits())
    };
    let keys = ServerKey::load(&config)?;
    let operator_rate = crate::throttle::Buckets::new(server.operator_rate);
    Ok(AppState {
        config: Arc::new(config),
        server: Arc::new(server),
        directory,
        tenants,
        mailer,
        clock,
        hasher,
        tenant_cache: TenantCache::default(),
        throttles,
        metrics: Metrics::default(),
        cluster: Cluster::new(node, node_url)?,
        keys,
        keyring: Default::default(),
        verified: Default::default(),
        logouts: Default::default(),
        web_origins: Default::default(),
        idp_keys: Default::default(),
        operator_rate,
        replication: replica
            .is_some()
            .then(|| Arc::new(crate::replica::supervisor::Lag::new())),
    })
}

/// A built server, bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    pub port: u16,
    /// The port of `TENANTD_INTERNAL_LISTEN`, when set.
    pub internal_port: Option<u16>,
    pub state: AppState,
    listener: TcpListener,
    internal: Option<TcpListener>,
}

impl Application {
    pub async fn build(
        config: Config,
        server: ServerConfig,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        Self::build_node(config, server, &NodeConfig::default(), overrides).await
    }

    /// [`Application::build`] for a node of a multi-node installation.
    pub async fn build_node(
        config: Config,
        server: ServerConfig,
        node: &NodeConfig,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(server.listen).await?;
        let bound = listener.local_addr()?;
        let port = bound.port();
        let internal = match server.internal_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let internal_bound = internal.as_ref().map(TcpListener::local_addr).transpose()?;
        // Other nodes reach this one where the node endpoints are served.
        let url = node
            .node_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", internal_bound.unwrap_or(bound)));
        let state = build_node_state(config, server, node, url, overrides).await?;
        Ok(Self {
            port,
            internal_port: internal_bound.map(|a| a.port()),
            state,
            listener,
            internal,
        })
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        nodes::register(&state).await?;
        let housekeeping = tokio::spawn(nodes::housekeeping(state.clone()));
        let heartbeat = tokio::spawn(nodes::heartbeat(state.clone()));
        let logouts = tokio::spawn(backchannel::deliver(state.clone()));
        let replication = replication::start(&state).await?;
        // One shutdown signal for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let internal = self.internal.map(|listener| {
            let app = routes::app(state.clone(), Listener::Internal);
            let rx = stopped.clone();
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(until_stopped(rx))
                .await
            })
        });
        tokio::spawn(signal);
        axum::serve(
            self.listener,
            routes::app(state.clone(), Listener::Public)
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until_stopped(stopped))
        .await?;
        if let Some(internal) = internal {
            internal.await??;
        }
        housekeeping.abort();
        heartbeat.abort();
        logouts.abort();
        for task in replication {
            task.abort();
        }
        state.directory.close().await;
        Ok(())
    }
}

/// Every file and folder this process creates from now on is its owner's alone (0600, 0700):
/// the data directory holds password hashes, tokens, keys and mail with live links.
pub fn private_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Says at start how many tenant connections this node holds open, and warns when a configured
/// cap could run out of descriptors before it is reached.
fn warn_if_over_descriptors(cap: usize) {
    let nofile = tenant_runtime::router::raise_open_file_limit();
    tracing::info!(max_connections = cap, open_file_limit = ?nofile, "tenant connection cap");
    if let Some(nofile) = nofile
        && cap > tenant_runtime::router::connection_cap(nofile)
    {
        tracing::warn!(
            max_connections = cap,
            open_file_limit = nofile,
            "TENANTD_MAX_CONNECTIONS is above what the open-file limit allows (3 descriptors \
             per connection, a quarter kept for sockets): requests may fail with EMFILE"
        );
    }
}
