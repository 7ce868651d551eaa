//! Several nodes sharing one directory (PostgreSQL): each tenant is placed on one node, which
//! alone opens its file; a request that reaches another node is forwarded to the owner.
//!
//! - **Placement.** `tenants.node` names the owner and `tenants.placement_epoch` counts its
//!   moves. A node serves a tenant only when the directory places it there and it has not
//!   released that tenant at that epoch ([`Cluster::holds`]).
//! - **Forwarding.** [`route_request`] finds the tenant of a request cheaply (the tenant part
//!   of the session cookie or of a `token`, or the email of a sign-in or reset request through
//!   the directory) and, when another node holds it, proxies the whole request there and
//!   streams the answer back. Nodes authenticate each other with HMAC-SHA256 over a shared
//!   secret (`TENANTD_NODE_SECRET`); a forwarded request is never forwarded again. An owner
//!   that cannot be reached gives 503 `tenant_unavailable` for its tenants only.
//! - **Moves** ([`move_tenant`], `tenantctl tenant move`): the source freezes the tenant's
//!   writes (in-flight ones finish, new ones wait), sends a `VACUUM INTO` snapshot, the target
//!   checks and installs it, the directory flips node and epoch in one transaction, and the
//!   source releases the tenant: waiting writes then go to the new owner. Reads go on
//!   throughout.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenant_runtime::TenantId;
use tokio::sync::{OwnedRwLockWriteGuard, RwLock};

use crate::config::NodeConfig;
use crate::directory::{Directory, Tenant, TenantStatus};
use crate::error::{ApiError, ApiResult};
use crate::service::provision::{self, FirstAdmin};
use crate::state::AppState;

/// Set on a response that came from another node: that node's id (for the request log).
#[derive(Debug, Clone)]
pub struct ForwardedTo(pub String);

/// Carries a forwarded request's authentication: `v1 <unix secs> <from node> <client ip> <hmac>`.
pub const FORWARDED_HEADER: &str = "x-tenantd-forwarded";
/// Authenticates a call of an internal endpoint: `v1 <unix secs> <hmac>`.
pub const INTERNAL_HEADER: &str = "x-tenantd-internal";
/// The SHA-256 of a snapshot, sent with it both ways.
pub const SHA256_HEADER: &str = "x-tenantd-sha256";
/// Users in a snapshot.
pub const USERS_HEADER: &str = "x-tenantd-users";

/// Signatures older or newer than this are refused (clock skew between nodes included).
const MAX_SKEW_SECS: i64 = 60;
/// How long a write waits for a move of its tenant to finish before 503 `tenant_moving`.
const WRITE_WAIT: Duration = Duration::from_secs(10);
/// How long a freeze lasts unless renewed or released: a move that dies leaves no frozen
/// tenant behind.
pub const FREEZE_LEASE: Duration = Duration::from_secs(60);
/// How long a released tenant's old file stays in place for requests already under way.
const MOVE_OUT_DELAY: Duration = Duration::from_secs(5);
/// How long a node's address is cached.
const URL_TTL: Duration = Duration::from_secs(5);

/// How often a node records that it is alive.
pub const HEARTBEAT_SECS: u64 = 5;
/// A node that has not heartbeat for this long gets no new tenants, and no moves.
pub const LIVE_SECS: i64 = 30;

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

fn unix_now() -> i64 {
    tenant_runtime::Clock::now(&tenant_runtime::SystemClock)
}

fn mac(secret: &str, msg: &str) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(msg.as_bytes());
    m
}

fn sign(secret: &str, msg: &str) -> String {
    hex::encode(mac(secret, msg).finalize().into_bytes())
}

fn verify_sig(secret: &str, msg: &str, sig: &str) -> bool {
    match hex::decode(sig) {
        Ok(bytes) => mac(secret, msg).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

fn fresh(ts: i64) -> bool {
    (unix_now() - ts).abs() <= MAX_SKEW_SECS
}

/// The value of [`INTERNAL_HEADER`] for a call.
pub fn sign_internal(secret: &str, method: &Method, path_and_query: &str) -> String {
    let ts = unix_now();
    let sig = sign(
        secret,
        &format!("internal\n{ts}\n{method}\n{path_and_query}"),
    );
    format!("v1 {ts} {sig}")
}

fn verify_internal(secret: &str, value: &str, method: &Method, path_and_query: &str) -> bool {
    let mut it = value.split(' ');
    let (Some("v1"), Some(ts), Some(sig), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    let Ok(ts) = ts.parse::<i64>() else {
        return false;
    };
    fresh(ts)
        && verify_sig(
            secret,
            &format!("internal\n{ts}\n{method}\n{path_and_query}"),
            sig,
        )
}

fn sign_forward(secret: &str, method: &Method, pq: &str, from: &str, ip: &str) -> String {
    let ts = unix_now();
    let sig = sign(secret, &format!("fwd\n{ts}\n{method}\n{pq}\n{from}\n{ip}"));
    format!("v1 {ts} {from} {ip} {sig}")
}

/// The sending node and client address of a genuine forwarded request.
fn verify_forward(
    secret: &str,
    value: &str,
    method: &Method,
    pq: &str,
) -> Option<(String, String)> {
    let mut it = value.split(' ');
    let (Some("v1"), Some(ts), Some(from), Some(ip), Some(sig), None) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return None;
    };
    let ts: i64 = ts.parse().ok()?;
    (fresh(ts)
        && verify_sig(
            secret,
            &format!("fwd\n{ts}\n{method}\n{pq}\n{from}\n{ip}"),
            sig,
        ))
    .then(|| (from.to_owned(), ip.to_owned()))
}

fn path_and_query(uri: &axum::http::Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Node ids name nodes in the directory, in headers and in metrics: keep them plain.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A freeze of a tenant's writes during a move; writes wait until it goes.
struct Freeze {
    id: u64,
    epoch: i64,
    until: Instant,
    _writes: OwnedRwLockWriteGuard<()>,
}

/// This node, as the rest of the server sees it; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

pub struct Inner {
    /// This node's id: tenants whose `node` is this are served here.
    pub node_id: String,
    /// Where other nodes reach this one.
    pub node_url: String,
    secret: Option<String>,
    client: reqwest::Client,
    urls: DashMap<String, (Instant, String)>,
    /// Per tenant: writes in flight hold it shared; a freeze holds it exclusively.
    gates: DashMap<String, Arc<RwLock<()>>>,
    freezes: DashMap<String, Freeze>,
    /// Tenants this node gave away, with the placement epoch they left at.
    released: DashMap<String, i64>,
    /// Released tenants whose file is about to leave the tenants folder.
    moving_out: DashMap<String, u64>,
    next_freeze: AtomicU64,
}

impl std::ops::Deref for Cluster {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("node_url", &self.node_url)
            .field("forwarding", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

impl Cluster {
    /// `node_url` is the configured address, or the one derived from the bound listener.
    pub fn new(node: &NodeConfig, node_url: String) -> Self {
        Self(Arc::new(Inner {
            node_id: node.node_id.clone(),
            node_url,
            secret: node.node_secret.clone().filter(|s| !s.is_empty()),
            client: http_client(),
            urls: DashMap::new(),
            gates: DashMap::new(),
            freezes: DashMap::new(),
            released: DashMap::new(),
            moving_out: DashMap::new(),
            next_freeze: AtomicU64::new(1),
        }))
    }

    /// Whether this node forwards requests and accepts forwarded ones.
    pub fn forwarding(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether this node serves `tenant` now: the directory places it here, and this node has
    /// not given it away at that placement epoch.
    pub fn holds(&self, tenant: &Tenant) -> bool {
        tenant.node == self.node_id
            && self
                .released
                .get(&tenant.id)
                .is_none_or(|left_at| tenant.placement_epoch > *left_at)
    }

    /// Waits until writes to `tenant` may go (no move under way), up to [`WRITE_WAIT`].
    async fn write_permit(&self, tenant: &str) -> ApiResult<WritePermit> {
        let gate = self
            .gates
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(RwLock::new(())))
            .clone();
        match tokio::time::timeout(WRITE_WAIT, gate.clone().read_owned()).await {
            Ok(guard) => Ok(WritePermit {
                cluster: self.clone(),
                tenant: tenant.to_owned(),
                guard: Some(guard),
                _gate: gate,
            }),
            Err(_) => Err(moving()),
        }
    }

    async fn url_of(&self, directory: &Directory, node: &str) -> Option<String> {
        if let Some(e) = self.urls.get(node)
            && e.0.elapsed() < URL_TTL
        {
            return Some(e.1.clone());
        }
        match directory.node(node).await {
            Ok(Some(n)) => {
                self.urls
                    .insert(node.to_owned(), (Instant::now(), n.url.clone()));
                Some(n.url)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "node address lookup failed");
                None
            }
        }
    }

    /// Freezes writes to a tenant: waits for writes in flight, then holds new ones until
    /// released, thawed or the lease ends. Freezing again renews the lease.
    async fn freeze(&self, tenant: &str, epoch: i64) -> ApiResult<()> {
        if let Some(mut f) = self.freezes.get_mut(tenant)
            && f.epoch == epoch
        {
            f.until = Instant::now() + FREEZE_LEASE;
            return Ok(());
        }
        let gate = self
            .gates
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(RwLock::new(())))
            .clone();
        let guard = tokio::time::timeout(WRITE_WAIT, gate.write_owned())
            .await
            .map_err(|_| {
                ApiError::unavailable("busy", "Writes of this tenant did not finish in time.", 1)
            })?;
        let id = self.next_freeze.fetch_add(1, Ordering::Relaxed);
        self.freezes.insert(
            tenant.to_owned(),
            Freeze {
                id,
                epoch,
                until: Instant::now() + FREEZE_LEASE,
                _writes: guard,
            },
        );
        // The lease: a move that dies leaves no frozen tenant behind.
        let this = self.clone();
        let tenant = tenant.to_owned();
        tokio::spawn(async move {
            loop {
                let until = match this.freezes.get(&tenant) {
                    Some(f) if f.id == id => f.until,
                    _ => return,
                };
                if Instant::now() >= until {
                    if this
                        .freezes
                        .remove_if(&tenant, |_, f| f.id == id && Instant::now() >= f.until)
                        .is_some()
                    {
                        tracing::warn!(tenant_id = %tenant, "freeze lease ended; writes resume");
                    }
                    return;
                }
                tokio::time::sleep_until(until.into()).await;
            }
        });
        Ok(())
    }

    fn is_frozen(&self, tenant: &str) -> bool {
        self.freezes.contains_key(tenant)
    }

    fn thaw(&self, tenant: &str) -> bool {
        self.freezes.remove(tenant).is_some()
    }
}

/// A write's share of its tenant's gate; a move waits for it.
struct WritePermit {
    cluster: Cluster,
    tenant: String,
    guard: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    _gate: Arc<RwLock<()>>,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.guard.take();
        // Forget gates nobody uses, so the map holds only tenants being written or moved.
        let key = std::mem::take(&mut self.tenant);
        self.cluster
            .gates
            .remove_if(&key, |_, g| Arc::strong_count(g) <= 2);
    }
}

fn moving() -> ApiError {
    ApiError::unavailable(
        "tenant_moving",
        "Your company's data is moving to another server. Try again in a moment.",
        1,
    )
}

/// 503 for a tenant whose node cannot be reached.
pub fn unavailable() -> ApiError {
    ApiError::unavailable(
        "tenant_unavailable",
        "Your company's data is unavailable right now. Try again later.",
        5,
    )
}

fn misdirected() -> Response {
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "tenant_moved",
        "This tenant is served by another node.",
    )
    .into_response()
}

impl AppState {
    /// Refuses a tenant this node does not hold (the directory places it elsewhere, or this
    /// node released it): its file here, if any, is not the live one.
    pub fn check_placement(&self, tenant: &Tenant) -> ApiResult<()> {
        if self.cluster.holds(tenant) {
            Ok(())
        } else {
            tracing::warn!(tenant_id = %tenant.id, node = %tenant.node, "tenant is not placed on this node");
            Err(unavailable())
        }
    }
}

// ---- registration ------------------------------------------------------------------------------

/// Records this node and its address in the directory.
pub async fn register(state: &AppState) -> anyhow::Result<()> {
    if !valid_node_id(&state.cluster.node_id) {
        anyhow::bail!(
            "invalid node id {:?}: use 1 to 64 of a-z, 0-9, '-' and '_'",
            state.cluster.node_id
        );
    }
    if state.cluster.secret.as_ref().is_some_and(|s| s.len() < 16) {
        anyhow::bail!("TENANTD_NODE_SECRET is too short: use at least 16 random characters");
    }
    state
        .directory
        .register_node(&state.cluster.node_id, &state.cluster.node_url)
        .await?;
    Ok(())
}

/// Heartbeats until aborted; registers again if the row went missing.
pub async fn heartbeat(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
    loop {
        every.tick().await;
        match state.directory.heartbeat(&state.cluster.node_id).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = register(&state).await {
                    tracing::warn!(error = %e, "could not register this node");
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}

// ---- forwarding --------------------------------------------------------------------------------

/// Paths that never concern one tenant: served where they land.
fn node_local(path: &str) -> bool {
    path.starts_with("/internal/")
        || path.starts_with("/assets/")
        || matches!(
            path,
            "/metrics" | "/healthz" | "/livez" | "/api/openapi.json"
        )
}

/// What in a request names its tenant.
#[derive(Debug, PartialEq, Eq)]
enum Hint {
    Tenant(String),
    Email(String),
    None,
}

/// Requests whose body names the tenant: by email (sign-in, reset request) or by token.
fn body_field(method: &Method, path: &str) -> Option<&'static str> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/api/auth/login" | "/api/auth/forgot" | "/login" | "/forgot" => Some("email"),
        "/api/auth/reset" | "/api/auth/accept-invite" | "/reset" | "/invite" => Some("token"),
        _ => None,
    }
}

fn field_of(headers: &HeaderMap, body: &[u8], name: &str) -> Option<String> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.get(name)?.as_str().map(str::to_owned)
    } else {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

fn tenant_of_bearer(value: &str) -> Option<String> {
    crate::service::auth::split_bearer(value).map(|(t, _)| t.to_string())
}

fn hint(state: &AppState, parts: &Parts, body: Option<&[u8]>) -> Hint {
    if let (Some(field), Some(body)) = (body_field(&parts.method, parts.uri.path()), body)
        && let Some(value) = field_of(&parts.headers, body, field)
    {
        return match field {
            "email" => Hint::Email(value),
            _ => tenant_of_bearer(&value).map_or(Hint::None, Hint::Tenant),
        };
    }
    if let Some(q) = parts.uri.query()
        && let Some((_, token)) =
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token")
        && let Some(t) = tenant_of_bearer(&token)
    {
        return Hint::Tenant(t);
    }
    match crate::routes::extract::session_value(state, &parts.headers)
        .as_deref()
        .and_then(tenant_of_bearer)
    {
        Some(t) => Hint::Tenant(t),
        None => Hint::None,
    }
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    let limited = http_body_util::Limited::new(body, crate::startup::MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The body is too large.",
        )
        .into_response()),
    }
}

/// A request's body, read only when needed.
enum Held {
    Stream(Body),
    Bytes(Bytes),
}

impl Held {
    async fn bytes(self) -> Result<Bytes, Response> {
        match self {
            Self::Stream(b) => read_body(b).await,
            Self::Bytes(b) => Ok(b),
        }
    }

    fn into_body(self) -> Body {
        match self {
            Self::Stream(b) => b,
            Self::Bytes(b) => Body::from(b),
        }
    }
}

enum Forwarded {
    Answer(Response),
    /// The node does not hold the tenant (it moved): look again.
    Misdirected,
    Unreachable,
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name) || name == "content-length" || name == FORWARDED_HEADER {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

impl Cluster {
    /// Proxies a request to `node` and reads its answer.
    async fn forward(
        &self,
        state: &AppState,
        node: &str,
        parts: &Parts,
        body: Bytes,
        client_ip: &str,
    ) -> Forwarded {
        let Some(secret) = &self.secret else {
            return Forwarded::Unreachable;
        };
        let started = Instant::now();
        let Some(base) = self.url_of(&state.directory, node).await else {
            state
                .metrics
                .forwarded(node, "unavailable", started.elapsed());
            return Forwarded::Unreachable;
        };
        let pq = path_and_query(&parts.uri);
        let mut headers = HeaderMap::new();
        copy_headers(&parts.headers, &mut headers);
        let ip = if client_ip.is_empty() { "-" } else { client_ip };
        if let Ok(v) =
            HeaderValue::from_str(&sign_forward(secret, &parts.method, pq, &self.node_id, ip))
        {
            headers.insert(HeaderName::from_static(FORWARDED_HEADER), v);
        }
        let url = format!("{}{pq}", base.trim_end_matches('/'));
        let sent = self
            .client
            .request(parts.method.clone(), url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let res = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node, error = %e, "forwarding failed: node unreachable");
                self.urls.remove(node);
                state
                    .metrics
                    .forwarded(node, "unavailable", started.elapsed());
                return Forwarded::Unreachable;
            }
        };
        if res.status() == StatusCode::MISDIRECTED_REQUEST {
            state
                .metrics
                .forwarded(node, "misdirected", started.elapsed());
            return Forwarded::Misdirected;
        }
        let status = res.status();
        let mut out_headers = HeaderMap::new();
        copy_headers(res.headers(), &mut out_headers);
        let body = match res.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(node, error = %e, "forwarding failed while reading the answer");
                state
                    .metrics
                    .forwarded(node, "unavailable", started.elapsed());
                return Forwarded::Unreachable;
            }
        };
        state.metrics.forwarded(node, "ok", started.elapsed());
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        *out.headers_mut() = out_headers;
        out.extensions_mut().insert(ForwardedTo(node.to_owned()));
        Forwarded::Answer(out)
    }
}

fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Serves a request here when this node holds its tenant (or it has none), and forwards it to
/// the tenant's node otherwise. Writes of a tenant being moved wait for the move.
pub async fn route_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if node_local(req.uri().path()) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // A request another node forwarded: authenticated, and the client is the one it names.
    let forwarded = match parts.headers.get(FORWARDED_HEADER) {
        None => false,
        Some(value) => {
            let genuine = state.cluster.secret.as_deref().and_then(|secret| {
                verify_forward(
                    secret,
                    value.to_str().unwrap_or(""),
                    &parts.method,
                    path_and_query(&parts.uri),
                )
            });
            let Some((_, ip)) = genuine else {
                return ApiError::forbidden().into_response();
            };
            let ip = ip.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            parts.extensions.insert(ConnectInfo(SocketAddr::new(ip, 0)));
            true
        }
    };
    if !state.cluster.forwarding() {
        // One node (or forwarding off): nothing to route; a tenant placed elsewhere is refused
        // where it is opened (`check_placement`).
        return next.run(Request::from_parts(parts, body)).await;
    }
    let mut held = Held::Stream(body);
    if body_field(&parts.method, parts.uri.path()).is_some() {
        match held.bytes().await {
            Ok(b) => held = Held::Bytes(b),
            Err(res) => return res,
        }
    }
    let found = match &held {
        Held::Bytes(b) => hint(&state, &parts, Some(b)),
        Held::Stream(_) => hint(&state, &parts, None),
    };
    let tenant_id = match found {
        Hint::Tenant(id) => id,
        Hint::Email(raw) => {
            let email = tenant_runtime::email::canonicalize(&raw);
            if tenant_runtime::email::parse(&email).is_none() || email.len() > 320 {
                return next.run(Request::from_parts(parts, held.into_body())).await;
            }
            match state.directory.route_email(&email).await {
                Ok(Some(t)) if t.status != TenantStatus::Provisioning => t.id,
                Ok(_) => return next.run(Request::from_parts(parts, held.into_body())).await,
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
        Hint::None => return next.run(Request::from_parts(parts, held.into_body())).await,
    };
    let ip = client_ip(&parts);
    for attempt in 0..3 {
        let tenant = match state.tenant(&tenant_id).await {
            Ok(Some(t)) => t,
            // Unknown: the handler gives its usual answer.
            Ok(None) => return next.run(Request::from_parts(parts, held.into_body())).await,
            Err(e) => return ApiError::from(e).into_response(),
        };
        if state.cluster.holds(&tenant) {
            if !is_write(&parts.method) {
                return next.run(Request::from_parts(parts, held.into_body())).await;
            }
            let permit = match state.cluster.write_permit(&tenant.id).await {
                Ok(p) => p,
                Err(e) => return e.into_response(),
            };
            let after_wait = match state.tenant(&tenant_id).await {
                Ok(Some(t)) => t,
                Ok(None) => tenant,
                Err(e) => return ApiError::from(e).into_response(),
            };
            if !state.cluster.holds(&after_wait) {
                // The tenant moved away while this write waited: on to its new node.
                drop(permit);
                state.tenant_cache.forget(&tenant_id);
                continue;
            }
            let res = next.run(Request::from_parts(parts, held.into_body())).await;
            drop(permit);
            return res;
        }
        if forwarded {
            // Another node sent it here: check the directory itself before saying no.
            if attempt == 0 {
                state.tenant_cache.forget(&tenant_id);
                continue;
            }
            return misdirected();
        }
        if !state.cluster.forwarding() {
            tracing::warn!(tenant_id = %tenant.id, node = %tenant.node, "tenant on another node and forwarding is off (no TENANTD_NODE_SECRET)");
            return unavailable().into_response();
        }
        let bytes = match held.bytes().await {
            Ok(b) => b,
            Err(res) => return res,
        };
        match state
            .cluster
            .forward(&state, &tenant.node, &parts, bytes.clone(), &ip)
            .await
        {
            Forwarded::Answer(res) => return res,
            Forwarded::Misdirected => {
                state.tenant_cache.forget(&tenant_id);
                held = Held::Bytes(bytes);
            }
            Forwarded::Unreachable => {
                if matches!(parts.uri.path(), "/api/auth/forgot" | "/forgot") {
                    // A reset request answers the same whether or not the account exists,
                    // and whether or not its node is up: the usual answer, and no mail.
                    return next
                        .run(Request::from_parts(parts, Body::from(bytes)))
                        .await;
                }
                return unavailable().into_response();
            }
        }
    }
    unavailable().into_response()
}

// ---- internal endpoints ------------------------------------------------------------------------

/// The endpoints nodes and `tenantctl` call on a node, authenticated with the node secret.
pub fn internal_router(state: &AppState) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/internal/tenants/{id}/freeze", post(freeze))
        .route("/internal/tenants/{id}/thaw", post(thaw))
        .route(
            "/internal/tenants/{id}/snapshot",
            get(send_snapshot).put(receive_snapshot),
        )
        .route("/internal/tenants/{id}/release", post(release))
        .route("/internal/tenants/{id}/refresh", post(refresh))
        .route("/internal/tenants/{id}/provision", post(provision_file))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_node_secret,
        ))
}

async fn require_node_secret(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(secret) = state.cluster.secret.as_deref() else {
        return ApiError::not_found().into_response();
    };
    let ok = req
        .headers()
        .get(INTERNAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| verify_internal(secret, v, req.method(), path_and_query(req.uri())));
    if !ok {
        return ApiError::forbidden().into_response();
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct EpochQuery {
    epoch: i64,
}

fn conflict(code: &'static str, message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::conflict(code, message)
}

/// The tenant as the directory has it now (no cache).
async fn fresh_tenant(state: &AppState, id: &str) -> ApiResult<(Tenant, TenantId)> {
    let tid = TenantId::parse(id).map_err(|_| ApiError::not_found())?;
    state.tenant_cache.forget(id);
    let t = state
        .directory
        .tenant(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((t, tid))
}

async fn freeze(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<EpochQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let (t, _) = fresh_tenant(&state, &id).await?;
    if !state.cluster.holds(&t) || t.placement_epoch != q.epoch {
        return Err(conflict(
            "not_owner",
            format!(
                "tenant is on node {} at epoch {}, not here at epoch {}",
                t.node, t.placement_epoch, q.epoch
            ),
        ));
    }
    state.cluster.freeze(&id, q.epoch).await?;
    tracing::info!(tenant_id = %id, epoch = q.epoch, "tenant frozen for a move");
    Ok(Json(
        json!({"frozen": true, "lease_secs": FREEZE_LEASE.as_secs()}),
    ))
}

async fn thaw(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Json<serde_json::Value> {
    let was = state.cluster.thaw(&id);
    if was {
        tracing::info!(tenant_id = %id, "tenant thawed; the move did not happen");
    }
    Json(json!({"thawed": was}))
}

fn scratch_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("tmp")
}

async fn send_snapshot(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let (t, tid) = fresh_tenant(&state, &id).await?;
    if !state.cluster.holds(&t) {
        return Err(conflict("not_owner", "this node does not hold the tenant"));
    }
    if !state.cluster.is_frozen(&id) {
        return Err(conflict(
            "not_frozen",
            "freeze the tenant first: a snapshot of a tenant taking writes would miss some",
        ));
    }
    let dir = scratch_dir(&state);
    let router = state.tenants.clone();
    let (file, sha, size, users) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let dest = dir.join(format!("{tid}.{}.snapshot", uuid::Uuid::new_v4().simple()));
        // VACUUM INTO, synced and checked with integrity_check.
        router.backup_blocking(&tid, &dest)?;
        let users = tenant_runtime::ops::inspect_file(&dest)?.users.len();
        let (sha, size) = sha256_file(&dest).map_err(ApiError::internal)?;
        let file = std::fs::File::open(&dest).map_err(ApiError::internal)?;
        // Unlinked now, read through the open handle: nothing is left behind.
        std::fs::remove_file(&dest).map_err(ApiError::internal)?;
        Ok((file, sha, size, users))
    })
    .await
    .map_err(ApiError::internal)??;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&sha) {
        h.insert(HeaderName::from_static(SHA256_HEADER), v);
    }
    h.insert(
        HeaderName::from_static(USERS_HEADER),
        HeaderValue::from(users),
    );
    Ok(res)
}

/// SHA-256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

/// What a node says about a snapshot it sent or installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub sha256: String,
    pub bytes: u64,
    pub users: usize,
}

async fn receive_snapshot(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<EpochQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<SnapshotInfo>> {
    use sha2::Digest;
    use std::io::Write;
    let (t, tid) = fresh_tenant(&state, &id).await?;
    // Coming back soon after leaving: the old file must not be moved out from under the new.
    state.cluster.moving_out.remove(&id);
    if t.node == state.cluster.node_id || t.placement_epoch != q.epoch {
        return Err(conflict(
            "not_incoming",
            format!(
                "tenant is on node {} at epoch {}: not a move to this node at epoch {}",
                t.node, t.placement_epoch, q.epoch
            ),
        ));
    }
    let expected = headers
        .get(SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("missing_checksum", "Send x-tenantd-sha256."))?;
    let router = state.tenants.clone();
    let mut tmp = {
        let (router, tid) = (router.clone(), tid.clone());
        tokio::task::spawn_blocking(move || tenant_runtime::ops::incoming(&router, &tid))
            .await
            .map_err(ApiError::internal)??
    };
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request("body_failed", e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            size += data.len() as u64;
            tmp.as_file_mut()
                .write_all(&data)
                .map_err(ApiError::internal)?;
        }
    }
    let sha = hex::encode(hasher.finalize());
    if sha != expected {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "checksum_mismatch",
            "The snapshot arrived damaged (SHA-256 differs); nothing was installed.",
        ));
    }
    let users = tokio::task::spawn_blocking(move || -> ApiResult<usize> {
        tmp.as_file().sync_all().map_err(ApiError::internal)?;
        let prepared = tenant_runtime::ops::prepare_transfer(&tid, tmp.into_temp_path())?;
        let users = prepared.inspection.users.len();
        tenant_runtime::ops::install(&router, &tid, prepared)?;
        Ok(users)
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!(tenant_id = %id, bytes = size, "tenant snapshot installed; waiting for the placement flip");
    Ok(Json(SnapshotInfo {
        sha256: sha,
        bytes: size,
        users,
    }))
}

async fn release(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<EpochQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let (t, tid) = fresh_tenant(&state, &id).await?;
    if t.node == state.cluster.node_id || t.placement_epoch <= q.epoch {
        return Err(conflict(
            "not_moved",
            "the directory still places the tenant here: flip the placement first",
        ));
    }
    state
        .cluster
        .released
        .entry(id.clone())
        .and_modify(|e| *e = (*e).max(q.epoch))
        .or_insert(q.epoch);
    state.tenant_cache.forget(&id);
    // Waiting writes go on, find the tenant released and follow it to its new node.
    state.cluster.thaw(&id);
    let dest = state
        .config
        .data_dir
        .join("moved")
        .join(format!("{tid}.e{}.db", q.epoch));
    let kept = dest.clone();
    // Requests that passed the placement check just before may still read the file: it leaves
    // the tenants folder a little later (kept under `moved/`, never served again).
    let token = state.cluster.next_freeze.fetch_add(1, Ordering::Relaxed);
    state.cluster.moving_out.insert(id.clone(), token);
    let cluster = state.cluster.clone();
    let router = state.tenants.clone();
    tokio::spawn(async move {
        tokio::time::sleep(MOVE_OUT_DELAY).await;
        if cluster
            .moving_out
            .remove_if(tid.as_str(), |_, t| *t == token)
            .is_none()
        {
            return; // the tenant is coming back
        }
        let (id, dest2) = (tid.clone(), dest.clone());
        match tokio::task::spawn_blocking(move || {
            tenant_runtime::ops::move_out(&router, &id, &dest2)
        })
        .await
        {
            Ok(Ok(())) => {
                tracing::info!(tenant_id = %tid, kept = %dest.display(), "moved tenant's old file set aside")
            }
            Ok(Err(e)) => {
                tracing::warn!(tenant_id = %tid, error = %e, "could not set the moved tenant's old file aside")
            }
            Err(e) => {
                tracing::warn!(tenant_id = %tid, error = %e, "could not set the moved tenant's old file aside")
            }
        }
    });
    tracing::info!(tenant_id = %id, to = %t.node, epoch = t.placement_epoch, "tenant released to another node");
    Ok(Json(json!({"released": true, "kept": kept})))
}

async fn refresh(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Json<serde_json::Value> {
    state.tenant_cache.forget(&id);
    Json(json!({"refreshed": true}))
}

async fn provision_file(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    crate::routes::extract::ApiJson(first): crate::routes::extract::ApiJson<FirstAdmin>,
) -> ApiResult<Json<serde_json::Value>> {
    let (t, tid) = fresh_tenant(&state, &id).await?;
    if t.node != state.cluster.node_id || t.status != TenantStatus::Provisioning {
        return Err(conflict(
            "not_provisioning_here",
            "the tenant is not being created on this node",
        ));
    }
    provision::create_file(&state.tenants, &tid, first.now)
        .await
        .map_err(provision_error)?;
    let (admin_id, token) = provision::write_first_admin(&state.tenants, &tid, &first)
        .await
        .map_err(provision_error)?;
    Ok(Json(json!({"admin_id": admin_id, "token": token})))
}

fn provision_error(e: provision::ProvisionError) -> ApiError {
    match e {
        provision::ProvisionError::Runtime(e) => e.into(),
        provision::ProvisionError::Directory(e) => e.into(),
        other => ApiError::internal(other),
    }
}

// ---- the client side: tenantctl and moves ------------------------------------------------------

/// Errors of calls to a node's internal endpoints.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("node {url} refused {what}: {status} {code}: {message}")]
    Refused {
        url: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl NodeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "node_unreachable",
            Self::Refused { .. } => "node_refused",
            Self::Invalid(_) => "move_failed",
            Self::Io(_) => "io_error",
        }
    }
}

/// Signed calls to nodes' internal endpoints; cheap to clone.
#[derive(Clone)]
pub struct NodeClient {
    secret: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient").finish_non_exhaustive()
    }
}

impl NodeClient {
    pub fn new(secret: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            secret: secret.to_owned(),
            client,
        }
    }

    async fn call(
        &self,
        method: Method,
        base: &str,
        pq: &str,
        what: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, NodeError> {
        let url = format!("{}{pq}", base.trim_end_matches('/'));
        let req = self
            .client
            .request(method.clone(), &url)
            .header(INTERNAL_HEADER, sign_internal(&self.secret, &method, pq));
        let res = build(req)
            .send()
            .await
            .map_err(|source| NodeError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        Err(NodeError::Refused {
            url: base.to_owned(),
            what: what.to_owned(),
            status,
            code: body["error"].as_str().unwrap_or("").to_owned(),
            message: body["message"].as_str().unwrap_or("").to_owned(),
        })
    }

    async fn post(&self, base: &str, pq: &str, what: &str) -> Result<serde_json::Value, NodeError> {
        let res = self.call(Method::POST, base, pq, what, |r| r).await?;
        Ok(res.json().await.unwrap_or_default())
    }

    /// Writes the new tenant's file and first admin on that node; (admin id, invite token).
    pub async fn provision(
        &self,
        base: &str,
        tenant: &TenantId,
        first: &FirstAdmin,
    ) -> Result<(String, String), NodeError> {
        let res = self
            .call(
                Method::POST,
                base,
                &format!("/internal/tenants/{tenant}/provision"),
                "to create the tenant's file",
                |r| r.json(first),
            )
            .await?;
        let v: serde_json::Value = res.json().await.unwrap_or_default();
        match (v["admin_id"].as_str(), v["token"].as_str()) {
            (Some(a), Some(t)) => Ok((a.to_owned(), t.to_owned())),
            _ => Err(NodeError::Invalid("provision answer without admin".into())),
        }
    }

    pub async fn freeze(&self, base: &str, tenant: &str, epoch: i64) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/freeze?epoch={epoch}"),
            "to freeze the tenant",
        )
        .await
        .map(|_| ())
    }

    pub async fn thaw(&self, base: &str, tenant: &str) -> Result<(), NodeError> {
        self.post(base, &format!("/internal/tenants/{tenant}/thaw"), "to thaw")
            .await
            .map(|_| ())
    }

    pub async fn release(&self, base: &str, tenant: &str, epoch: i64) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/release?epoch={epoch}"),
            "to release the tenant",
        )
        .await
        .map(|_| ())
    }

    pub async fn refresh(&self, base: &str, tenant: &str) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/refresh"),
            "to refresh",
        )
        .await
        .map(|_| ())
    }

    /// Downloads a frozen tenant's snapshot into `dest`, checking its SHA-256.
    pub async fn download(
        &self,
        base: &str,
        tenant: &str,
        dest: &Path,
    ) -> Result<SnapshotInfo, NodeError> {
        use sha2::Digest;
        use std::io::Write;
        let mut res = self
            .call(
                Method::GET,
                base,
                &format!("/internal/tenants/{tenant}/snapshot"),
                "to send a snapshot",
                |r| r,
            )
            .await?;
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let expected = header(SHA256_HEADER)
            .ok_or_else(|| NodeError::Invalid("snapshot without checksum".into()))?;
        let users: usize = header(USERS_HEADER)
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        let mut file = std::fs::File::create(dest)?;
        let mut h = sha2::Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = res.chunk().await.map_err(|source| NodeError::Unreachable {
            url: base.to_owned(),
            source,
        })? {
            h.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        let sha256 = hex::encode(h.finalize());
        if sha256 != expected {
            return Err(NodeError::Invalid(format!(
                "snapshot from {base} arrived damaged (SHA-256 {sha256}, expected {expected})"
            )));
        }
        Ok(SnapshotInfo {
            sha256,
            bytes,
            users,
        })
    }

    /// Sends a snapshot to the node the tenant moves to; it checks and installs it.
    pub async fn upload(
        &self,
        base: &str,
        tenant: &str,
        epoch: i64,
        src: &Path,
        sha256: &str,
    ) -> Result<SnapshotInfo, NodeError> {
        let file = tokio::fs::File::open(src).await?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let res = self
            .call(
                Method::PUT,
                base,
                &format!("/internal/tenants/{tenant}/snapshot?epoch={epoch}"),
                "the snapshot",
                |r| {
                    r.header(SHA256_HEADER, sha256)
                        .header(header::CONTENT_LENGTH, len)
                        .body(body)
                },
            )
            .await?;
        res.json().await.map_err(|source| NodeError::Unreachable {
            url: base.to_owned(),
            source,
        })
    }
}

/// What a move did.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub tenant_id: String,
    pub from: String,
    pub to: String,
    pub epoch: i64,
    pub bytes: u64,
    pub users: usize,
    pub sha256: String,
    /// How long writes to the tenant waited, in milliseconds.
    pub writes_paused_ms: u64,
}

/// Errors of a move.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("tenant is already on node {0}")]
    AlreadyThere(String),
    #[error("no node {0:?} is registered: start tenantd there with TENANTD_NODE_ID={0}")]
    UnknownNode(String),
    #[error("node {0} has not heartbeat for {LIVE_SECS} s: is it up?")]
    NodeDown(String),
    #[error("tenant {0} is not active (provisioning); finish or remove it first")]
    NotActive(String),
    #[error("the tenant changed placement during the move (another move?); nothing was switched")]
    Raced,
    #[error("the move took longer than the freeze lease; nothing was switched, writes resumed")]
    LeaseExpired,
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
}

impl MoveError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyThere(_) => "already_there",
            Self::UnknownNode(_) => "unknown_node",
            Self::NodeDown(_) => "node_down",
            Self::NotActive(_) => "not_active",
            Self::Raced => "placement_changed",
            Self::LeaseExpired => "lease_expired",
            Self::Node(e) => e.code(),
            Self::Directory(_) => "directory_error",
        }
    }
}

/// Moves a tenant to node `to`: freeze writes at the source, copy a snapshot, check it at the
/// target, flip node and epoch in one directory transaction, release the source. A failure
/// before the flip thaws the source and leaves the tenant where it was.
pub async fn move_tenant(
    directory: &Directory,
    client: &NodeClient,
    tenant: &Tenant,
    to: &str,
    scratch: &Path,
) -> Result<Moved, MoveError> {
    if tenant.node == to {
        return Err(MoveError::AlreadyThere(to.to_owned()));
    }
    if tenant.status == TenantStatus::Provisioning {
        return Err(MoveError::NotActive(tenant.slug.clone()));
    }
    let node = |id: &str| {
        let id = id.to_owned();
        async move { directory.node(&id).await?.ok_or(MoveError::UnknownNode(id)) }
    };
    let source = node(&tenant.node).await?;
    let target = node(to).await?;
    if target.heartbeat_at < unix_now() - LIVE_SECS {
        return Err(MoveError::NodeDown(to.to_owned()));
    }
    let epoch = tenant.placement_epoch;
    let frozen_at = Instant::now();
    client.freeze(&source.url, &tenant.id, epoch).await?;
    let copied = copy_and_flip(
        directory,
        client,
        tenant,
        &source.url,
        &target.url,
        to,
        scratch,
        frozen_at,
    )
    .await;
    let new_epoch = match copied {
        Ok(v) => v,
        Err(e) => {
            if let Err(thaw) = client.thaw(&source.url, &tenant.id).await {
                tracing::warn!(error = %thaw, "could not thaw the source; its lease ends the freeze");
            }
            return Err(e);
        }
    };
    let (new_epoch, info) = new_epoch;
    client.release(&source.url, &tenant.id, epoch).await?;
    let writes_paused_ms = frozen_at.elapsed().as_millis() as u64;
    if let Err(e) = client.refresh(&target.url, &tenant.id).await {
        tracing::warn!(error = %e, "target did not refresh; its cache expires within a second");
    }
    Ok(Moved {
        tenant_id: tenant.id.clone(),
        from: tenant.node.clone(),
        to: to.to_owned(),
        epoch: new_epoch,
        bytes: info.bytes,
        users: info.users,
        sha256: info.sha256,
        writes_paused_ms,
    })
}

#[allow(clippy::too_many_arguments)]
async fn copy_and_flip(
    directory: &Directory,
    client: &NodeClient,
    tenant: &Tenant,
    source_url: &str,
    target_url: &str,
    to: &str,
    scratch: &Path,
    frozen_at: Instant,
) -> Result<(i64, SnapshotInfo), MoveError> {
    let epoch = tenant.placement_epoch;
    std::fs::create_dir_all(scratch).map_err(NodeError::from)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".move-{}.", tenant.id))
        .tempfile_in(scratch)
        .map_err(NodeError::from)?
        .into_temp_path();
    let sent = client.download(source_url, &tenant.id, &tmp).await?;
    let installed = client
        .upload(target_url, &tenant.id, epoch, &tmp, &sent.sha256)
        .await?;
    if installed != sent {
        return Err(NodeError::Invalid(format!(
            "the target holds a different copy ({installed:?}) from the one sent ({sent:?})"
        ))
        .into());
    }
    // The flip is safe only while the source is still frozen.
    if frozen_at.elapsed() + Duration::from_secs(5) > FREEZE_LEASE {
        return Err(MoveError::LeaseExpired);
    }
    client.freeze(source_url, &tenant.id, epoch).await?;
    match directory
        .move_placement(&tenant.id, &tenant.node, epoch, to)
        .await?
    {
        Some(e) => Ok((e, installed)),
        None => Err(MoveError::Raced),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_signatures_bind_secret_method_and_path() {
        let v = sign_internal(
            "s3cret",
            &Method::POST,
            "/internal/tenants/a/freeze?epoch=1",
        );
        assert!(verify_internal(
            "s3cret",
            &v,
            &Method::POST,
            "/internal/tenants/a/freeze?epoch=1"
        ));
        assert!(!verify_internal(
            "other",
            &v,
            &Method::POST,
            "/internal/tenants/a/freeze?epoch=1"
        ));
        assert!(!verify_internal(
            "s3cret",
            &v,
            &Method::GET,
            "/internal/tenants/a/freeze?epoch=1"
        ));
        assert!(!verify_internal(
            "s3cret",
            &v,
            &Method::POST,
            "/internal/tenants/b/freeze?epoch=1"
        ));
        assert!(!verify_internal(
            "s3cret",
            &v,
            &Method::POST,
            "/internal/tenants/a/freeze?epoch=2"
        ));
        assert!(!verify_internal("s3cret", "v1 1 00", &Method::POST, "/"));
        assert!(!verify_internal("s3cret", "", &Method::POST, "/"));
    }

    #[test]
    fn stale_signatures_are_refused() {
        let ts = unix_now() - MAX_SKEW_SECS - 5;
        let sig = sign("k", &format!("internal\n{ts}\nGET\n/x"));
        assert!(!verify_internal(
            "k",
            &format!("v1 {ts} {sig}"),
            &Method::GET,
            "/x"
        ));
        let ts = unix_now() - 5;
        let sig = sign("k", &format!("internal\n{ts}\nGET\n/x"));
        assert!(verify_internal(
            "k",
            &format!("v1 {ts} {sig}"),
            &Method::GET,
            "/x"
        ));
    }

    #[test]
    fn forwarded_requests_name_their_node_and_client_unforgeably() {
        let v = sign_forward("k", &Method::GET, "/api/session", "n2", "10.0.0.7");
        assert_eq!(
            verify_forward("k", &v, &Method::GET, "/api/session"),
            Some(("n2".to_owned(), "10.0.0.7".to_owned()))
        );
        // Another client address, node or path in the same header: refused.
        let forged = v.replace("10.0.0.7", "10.0.0.8");
        assert_eq!(
            verify_forward("k", &forged, &Method::GET, "/api/session"),
            None
        );
        let forged = v.replace("n2", "n3");
        assert_eq!(
            verify_forward("k", &forged, &Method::GET, "/api/session"),
            None
        );
        assert_eq!(verify_forward("k", &v, &Method::GET, "/api/sessions"), None);
        assert_eq!(
            verify_forward("other", &v, &Method::GET, "/api/session"),
            None
        );
    }

    #[test]
    fn the_tenant_is_found_in_the_fields_that_name_it() {
        let json = |v: serde_json::Value| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (h, v.to_string().into_bytes())
        };
        let (h, b) = json(json!({"email": "Ann@Acme.test", "password": "x"}));
        assert_eq!(field_of(&h, &b, "email").as_deref(), Some("Ann@Acme.test"));
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            field_of(&form, b"csrf=1&token=abc.def&password=x", "token").as_deref(),
            Some("abc.def")
        );
        assert_eq!(field_of(&h, b"not json", "email"), None);
        assert_eq!(body_field(&Method::POST, "/api/auth/login"), Some("email"));
        assert_eq!(body_field(&Method::POST, "/invite"), Some("token"));
        assert_eq!(body_field(&Method::GET, "/invite"), None);
        assert_eq!(body_field(&Method::POST, "/api/admin/users"), None);
        assert!(node_local("/internal/tenants/x/freeze"));
        assert!(node_local("/metrics"));
        assert!(!node_local("/api/session"));
    }

    #[test]
    fn node_ids_are_plain() {
        assert!(valid_node_id("n1"));
        assert!(valid_node_id("eu-west_2"));
        for bad in ["", "N1", "a b", "a.b", "ü", &"x".repeat(65)] {
            assert!(!valid_node_id(bad), "{bad:?}");
        }
    }
}
