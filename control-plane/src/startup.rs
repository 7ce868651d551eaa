//! Building the application: state, routes, middleware, and serving on a listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tenant_runtime::{Clock, RouterConfig, SystemClock, TenantRouter};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::cluster::Cluster;
use crate::config::{Config, NodeConfig, ServerConfig};
use crate::directory::Directory;
use crate::error::ApiError;
use crate::hasher::Hasher;
use crate::mail::{Mailer, OutboxMailer, SmtpMailer};
use crate::routes;
use crate::state::{AppState, TenantCache};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Parts a test may replace.
#[derive(Default)]
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
    let directory = Directory::connect(&config.directory_url()).await?;
    let mut rc = RouterConfig::new(config.tenants_dir());
    rc.max_connections = config.max_connections;
    let tenants = TenantRouter::new(rc)?;
    let mailer: Arc<dyn Mailer> = match (overrides.mailer, &config.smtp_url) {
        (Some(m), _) => m,
        (None, Some(url)) => Arc::new(SmtpMailer::new(url, &config.mail_from)?),
        (None, None) => Arc::new(OutboxMailer::new(config.outbox_dir(), &config.mail_from)?),
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = Hasher::new(server.hash_concurrency.unwrap_or(cores), server.hash_queue);
    let throttles = crate::throttle::Throttles::new(server.throttle_limits());
    Ok(AppState {
        config: Arc::new(config),
        server: Arc::new(server),
        directory,
        tenants,
        mailer,
        clock: overrides.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        hasher,
        tenant_cache: TenantCache::default(),
        throttles,
        metrics: crate::metrics::Metrics::default(),
        cluster: Cluster::new(node, node_url),
    })
}

/// Every route with its middleware.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/metrics", get(crate::metrics::serve))
        .merge(routes::api::router())
        .merge(routes::pages::router())
        .merge(crate::cluster::internal_router(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::cluster::route_request,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::observe,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.directory.version().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: directory unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "directory unavailable\n").into_response()
        }
    }
}

/// JSON under `/api/` (and for the other machine endpoints), a page everywhere else.
fn wants_json(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/internal/") || path == "/metrics"
}

async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    if wants_json(req.uri().path()) {
        ApiError::not_found().into_response()
    } else {
        routes::pages::not_found_page(&state.config.product_name)
    }
}

async fn method_not_allowed(State(state): State<AppState>, req: Request) -> Response {
    if wants_json(req.uri().path()) {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed here.",
        )
        .into_response()
    } else {
        routes::pages::method_not_allowed_page(&state.config.product_name)
    }
}

/// Headers on every answer: no framing, no sniffing, no referrer (links carry tokens), a strict
/// content security policy without inline script, no caching of personal data, HSTS on https.
async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if state.config.https() {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}

/// A built server, bound to its port, ready to run.
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
        crate::cluster::register(&state).await?;
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let heartbeat = tokio::spawn(crate::cluster::heartbeat(state.clone()));
        axum::serve(
            self.listener,
            app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        housekeeping.abort();
        heartbeat.abort();
        state.directory.close().await;
        Ok(())
    }
}

/// Purges expired sessions and tokens of open tenants now and then.
async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let Ok(tenants) = state.directory.tenants().await else {
            continue;
        };
        let idle = state.server.session_idle_secs;
        for t in tenants {
            let Ok(id) = t.tenant_id() else { continue };
            let now = state.now();
            let _ = state
                .tenants
                .write(&id, move |tx| {
                    tenant_runtime::store::sessions::purge(tx, idle, now)?;
                    tenant_runtime::store::tokens::purge(tx, now, 7 * 24 * 3600)?;
                    Ok(())
                })
                .await;
        }
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
