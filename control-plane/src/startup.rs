//! Building the application: state, routes, middleware, and serving on a listener.

use std::net::SocketAddr;
use std::sync::Arc;

use tenant_runtime::{Clock, RouterConfig, TenantRouter};
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::config::{Config, NodeConfig, ServerConfig};
use crate::directory::Directory;
use crate::hasher::Hasher;
use crate::mail::{Mailer, OutboxMailer, SmtpMailer};
use crate::metrics::Metrics;
use crate::routes;
use crate::service::nodes;
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
    rc.max_connections = config.max_connections;
    let tenants = TenantRouter::new(rc)?;
    let mailer: Arc<dyn Mailer> = match (overrides.mailer, &config.smtp_url) {
        (Some(m), _) => m,
        (None, Some(url)) => Arc::new(SmtpMailer::new(url.expose(), &config.mail_from)?),
        (None, None) => Arc::new(OutboxMailer::new(
            config.outbox_dir(),
            &config.mail_from,
            clock.clone(),
        )?),
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = Hasher::new(server.hash_concurrency.unwrap_or(cores), server.hash_queue);
    let throttles = Throttles::new(server.throttle_limits());
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
        cluster: Cluster::new(node, node_url),
    })
}

/// A built server, bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    pub port: u16,
    pub state: AppState,
    listener: TcpListener,
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
        let url = node
            .node_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let state = build_node_state(config, server, node, url, overrides).await?;
        Ok(Self {
            port,
            state,
            listener,
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
        axum::serve(
            self.listener,
            routes::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        housekeeping.abort();
        heartbeat.abort();
        state.directory.close().await;
        Ok(())
    }
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
