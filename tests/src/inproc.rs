//! Everything that uses the `control-plane` library in-process, in one place (the rest of the
//! kit and the tests drive the real binaries, or name the library's items through the
//! re-exports below, so a reorganisation of `control-plane` is followed here alone):
//!
//! - [`InProc`]: the real router and services on a temp data directory, with a manual clock
//!   and an in-memory mailer, for tests that need to move time or count exact attempts
//!   (everything it does also runs through the real binary elsewhere);
//! - [`Server`]: a real server on a loopback port inside the benchmark's process, with
//!   companies and users seeded straight into its stores;
//! - [`provision`]: what `tenantctl tenant create` does, without the mail.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use control_plane::mail::MemoryMailer;
use control_plane::service::provision::{Files, Provisioned, create_tenant_placed};
use control_plane::startup::{self, Application, Overrides};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tenant_runtime::{ManualClock, TenantId, TenantRouter};
use tower::ServiceExt;

use crate::http::{Reply, SESSION_COOKIE};
use crate::mail::token_of;
use crate::{PASSWORD, seed};

pub use control_plane::config::{Config, NodeConfig, ServerConfig};
pub use control_plane::directory::{
    Directory, DirectoryError, SocialAttempt, SocialProviderRow, Tenant, TenantStatus,
};
pub use control_plane::failpoint::{EMAIL_CHANGE_STEPS, INVITE_STEPS, SECURITY_STEPS};
pub use control_plane::keys::jws::KeyPair;
pub use control_plane::routes::openapi::{
    FACTOR_OPERATIONS, OPERATIONS, OPERATOR_OPERATIONS, SSO_OPERATIONS,
};
pub use control_plane::service::backup::sha256_file;
pub use control_plane::service::fleet::{DELETE_STEPS, UNDELETE_STEPS};
pub use control_plane::service::provision::{CREATE_STEPS, NewTenant};
pub use control_plane::state::AppState;
pub use control_plane::telemetry::init_with_default as init_logging;

/// The headers that authenticate a bodiless internal call, as a node makes them.
pub fn internal_headers(secret: &str, method: &Method, path: &str) -> [(&'static str, String); 2] {
    use control_plane::cluster::signing::{
        BODY_SHA256_HEADER, Covered, INTERNAL_HEADER, NodeSecret, body_sha256,
    };
    let sha = body_sha256(b"");
    let signed = NodeSecret::new(secret).sign_internal(
        crate::now(),
        Covered {
            method,
            path_and_query: path,
            body_sha256: &sha,
            headers: &axum::http::HeaderMap::new(),
        },
    );
    [(INTERNAL_HEADER, signed), (BODY_SHA256_HEADER, sha)]
}

/// The headers another node would put on a request it forwards to this one: the request's
/// body and content type, the sending node and the client, signed with `secret`.
pub fn forwarded_headers(
    secret: &str,
    method: &Method,
    path: &str,
    body: &[u8],
    content_type: &str,
    from: &str,
    client_ip: &str,
) -> Vec<(&'static str, String)> {
    use control_plane::cluster::signing::{Covered, FORWARDED_HEADER, NodeSecret, body_sha256};
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type.parse().expect("type"));
    let signed = NodeSecret::new(secret).sign_forward(
        crate::now(),
        Covered {
            method,
            path_and_query: path,
            body_sha256: &body_sha256(body),
            headers: &headers,
        },
        from,
        client_ip,
    );
    vec![(FORWARDED_HEADER, signed)]
}

/// The real clock, for the directories and servers of the kit.
#[allow(clippy::disallowed_types)]
pub fn system_clock() -> Arc<dyn tenant_runtime::Clock> {
    Arc::new(tenant_runtime::SystemClock)
}

/// A library configuration on the data directory `data` (no SMTP: mail is overridden or goes
/// to the outbox).
pub fn config(data: &Path, public_url: &str, max_connections: usize) -> Config {
    Config {
        data_dir: data.to_owned(),
        public_url: public_url.parse().expect("url"),
        smtp_url: None,
        mail_from: "tenantd <no-reply@tenantd.test>".into(),
        product_name: "tenantd".into(),
        directory_url: None,
        secret_key: None,
        max_connections: Some(max_connections),
        backup_dir: None,
        replica: Default::default(),
    }
}

/// The server settings of the in-process tests: the defaults of `tenantd`, two hashing threads.
fn server_config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        session_idle_secs: 1800,
        access_token_secs: 300,
        session_absolute_secs: 12 * 3600,
        hash_concurrency: Some(2),
        hash_queue: 64,
        login_max_failures: 5,
        ip_max_failures: 100,
        ip_window_secs: 600,
        trusted_proxies: Vec::new(),
        internal_listen: None,
        metrics_token: Some(control_plane::config::Secret::new(crate::METRICS_TOKEN)),
        dev: false,
        operator_rate: 600,
        housekeeping_secs: 600,
        pwned: Default::default(),
    }
}

/// Provisions a company on `node`, whose tenant files `router` holds: what `tenantctl tenant
/// create` does, without sending the invitation.
pub async fn provision(
    directory: &Directory,
    router: &TenantRouter,
    node: &str,
    config: &Config,
    req: &NewTenant,
    now: i64,
) -> Provisioned {
    create_tenant_placed(
        directory,
        Files::Local(router),
        node,
        config,
        req,
        now,
        &|_| {},
    )
    .await
    .expect("provision")
}

/// The directory of a data directory (`directory.db`, created if missing).
pub async fn directory_at(data: &Path) -> Directory {
    Directory::connect(&crate::db::sqlite_url(data), system_clock())
        .await
        .expect("directory")
}

/// Registers a confidential app with one redirect URI; returns its client id and secret.
pub async fn register_client(
    directory: &Directory,
    redirect_uri: &str,
    now: i64,
) -> (String, String) {
    let new = control_plane::service::clients::NewClient {
        name: "App".into(),
        redirect_uris: vec![redirect_uri.to_owned()],
        ..Default::default()
    };
    let (view, secret) = control_plane::service::clients::create(directory, &new, now)
        .await
        .expect("client");
    (view.client_id, secret.expect("secret").0)
}

// ---- the in-process harness --------------------------------------------------------------------

/// The real router and services on a temp data directory, with a manual clock and an
/// in-memory mailer.
pub struct InProc {
    pub state: AppState,
    pub app: axum::Router,
    pub clock: ManualClock,
    pub mail: MemoryMailer,
    _dir: tempfile::TempDir,
}

impl InProc {
    pub async fn new() -> Self {
        Self::with(|_, _| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config, &mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path(), "http://tenantd.test", 64);
        let mut server = server_config();
        tweak(&mut cfg, &mut server);
        let clock = ManualClock::new(1_800_000_000);
        let mail = MemoryMailer::default();
        let state = startup::build_state(
            cfg,
            server,
            Overrides {
                mailer: Some(Arc::new(mail.clone())),
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .await
        .expect("state");
        let app =
            control_plane::routes::app(state.clone(), control_plane::routes::Listener::Public);
        Self {
            state,
            app,
            clock,
            mail,
            _dir: dir,
        }
    }

    /// A request as any client may send it: an optional session cookie, an optional content
    /// type, any body.
    pub fn request(
        method: Method,
        path: &str,
        cookie: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Request<Body> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={c}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(body.into()).expect("request")
    }

    /// Builds the request now, so the returned future only borrows the harness.
    pub fn call<'a>(
        &'a self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> impl Future<Output = Reply> + use<'a> {
        let req = match body {
            Some(b) => Self::request(
                method,
                path,
                cookie,
                Some("application/json"),
                b.to_string(),
            ),
            None => Self::request(method, path, cookie, None, Body::empty()),
        };
        self.send(req)
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let raw = res.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&raw).into_owned(),
        }
    }

    pub fn get<'a>(
        &'a self,
        path: &str,
        cookie: Option<&str>,
    ) -> impl Future<Output = Reply> + use<'a> {
        self.call(Method::GET, path, cookie, None)
    }

    pub fn post<'a>(
        &'a self,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Reply> + use<'a> {
        self.call(Method::POST, path, cookie, Some(body))
    }

    pub fn patch<'a>(
        &'a self,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Reply> + use<'a> {
        self.call(Method::PATCH, path, cookie, Some(body))
    }

    pub fn delete<'a>(
        &'a self,
        path: &str,
        cookie: Option<&str>,
    ) -> impl Future<Output = Reply> + use<'a> {
        self.call(Method::DELETE, path, cookie, None)
    }

    /// `GET /api/session`'s status with this session cookie.
    pub async fn session_status(&self, cookie: &str) -> u16 {
        self.get("/api/session", Some(cookie)).await.status
    }

    pub fn login<'a>(
        &'a self,
        email: &str,
        password: &str,
    ) -> impl Future<Output = Reply> + use<'a> {
        self.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
    }

    pub fn forgot<'a>(&'a self, email: &str) -> impl Future<Output = Reply> + use<'a> {
        self.post("/api/auth/forgot", None, json!({"email": email}))
    }

    fn accept_invite<'a>(&'a self, token: &str) -> impl Future<Output = Reply> + use<'a> {
        self.post(
            "/api/auth/accept-invite",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
    }

    /// Creates a company and signs its first admin in; returns (tenant id, admin cookie).
    pub async fn company(&self, slug: &str) -> (String, String) {
        let p = provision(
            &self.state.directory,
            &self.state.tenants,
            "local",
            &self.state.config,
            &NewTenant {
                slug: slug.into(),
                name: format!("{slug} Inc"),
                domains: vec![format!("{slug}.test")],
                admin_email: format!("admin@{slug}.test"),
                admin_name: None,
            },
            self.clock_now(),
        )
        .await;
        let a = self.accept_invite(&token_of(&p.invite_link)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        (
            p.tenant.id.to_string(),
            a.session().expect("session cookie"),
        )
    }

    /// Invites and activates a member of the admin's company; returns (user id, cookie).
    pub async fn member(&self, admin: &str, email: &str) -> (String, String) {
        let a = self
            .post(
                "/api/admin/users",
                Some(admin),
                json!({"email": email, "role": "member"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let id = a.json()["id"].as_str().expect("id").to_owned();
        let link = self.last_link_to(email).await;
        let a = self.accept_invite(&token_of(&link)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        (id, a.session().expect("cookie"))
    }

    /// Mails sent so far to an address.
    pub fn mail_count(&self, to: &str) -> usize {
        self.mail.sent.lock().iter().filter(|m| m.to == to).count()
    }

    /// Registers a confidential app; returns its client id and secret.
    pub async fn client(&self, redirect_uri: &str) -> (String, String) {
        register_client(&self.state.directory, redirect_uri, self.clock_now()).await
    }

    /// A request with headers and a form body.
    pub async fn form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    /// A GET with headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(Method::GET).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    pub fn clock_now(&self) -> i64 {
        tenant_runtime::Clock::now(&self.clock)
    }

    /// The newest mail link sent to an address (mail goes out in the background).
    pub async fn last_link_to(&self, to: &str) -> String {
        self.last_link(to, "/").await
    }

    /// The newest link to `to` whose path starts with `path` (e.g. "/reset").
    pub async fn last_link(&self, to: &str, path: &str) -> String {
        let prefix = format!("http://tenantd.test{path}");
        crate::poll(
            Duration::from_secs(10),
            &format!("no mail to {to}"),
            || async {
                self.mail
                    .sent
                    .lock()
                    .iter()
                    .rev()
                    .filter(|m| m.to == to)
                    .find_map(|m| m.link.clone().filter(|l| l.starts_with(&prefix)))
                    .ok_or_else(String::new)
            },
        )
        .await
    }
}

// ---- in-process servers for the benchmarks ---------------------------------------------------

/// A real server on a loopback port inside this process, with its own data directory, mail
/// kept in memory, and throttles that a benchmark does not trip.
pub struct Server {
    pub node: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts node `node` (with `secret`, if several nodes share `directory_url`; without, its
    /// own SQLite directory) and waits until it has registered.
    pub async fn start(
        node: &str,
        secret: Option<&str>,
        directory_url: Option<&str>,
        hash_queue: usize,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(dir.path(), "http://bench.test", 512);
        config.directory_url = directory_url.map(str::to_owned);
        let server = ServerConfig {
            session_idle_secs: 3600,
            hash_concurrency: None,
            hash_queue,
            login_max_failures: 1_000_000,
            ip_max_failures: 1_000_000,
            ip_window_secs: 60,
            ..server_config()
        };
        let node_config = NodeConfig {
            node_id: node.to_owned(),
            node_url: None,
            node_secret: secret.map(control_plane::config::Secret::new),
            node_ca: None,
        };
        let overrides = Overrides {
            mailer: Some(Arc::new(MemoryMailer::default())),
            clock: None,
        };
        let app = Application::build_node(config, server, &node_config, overrides)
            .await
            .expect("build");
        let base = format!("http://127.0.0.1:{}", app.port);
        let state = app.state.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        // Registered once serving starts.
        crate::within(
            Duration::from_secs(10),
            &format!("node {node} registers"),
            || async { state.directory.node(node).await.ok().flatten().is_some() },
        )
        .await;
        Self {
            node: node.to_owned(),
            base,
            state,
            _dir: dir,
        }
    }

    /// Provisions company `slug` on this node with `per` active users `u0@slug.test`,
    /// `u1@slug.test`, … (u0 the admin) whose password hash is `hash`. With `by_domain` the
    /// company owns the domain `slug.test` that routes its users; without, each address is
    /// indexed. Returns the tenant id and the users' emails.
    pub async fn seed_company(
        &self,
        slug: &str,
        per: usize,
        hash: &str,
        by_domain: bool,
    ) -> (TenantId, Vec<String>) {
        let state = &self.state;
        let domains = if by_domain {
            vec![format!("{slug}.test")]
        } else {
            vec![]
        };
        let p = provision(
            &state.directory,
            &state.tenants,
            &self.node,
            &state.config,
            &NewTenant {
                slug: slug.to_owned(),
                name: slug.to_owned(),
                domains,
                admin_email: format!("u0@{slug}.test"),
                admin_name: None,
            },
            state.now(),
        )
        .await;
        let id = p.tenant.id.clone();
        let (h, admin, now, s) = (
            hash.to_owned(),
            p.admin_user_id,
            state.now(),
            slug.to_owned(),
        );
        let members = state
            .tenants
            .write(&id, move |tx| {
                seed::activate_with_members(tx, &admin, &h, &s, per, now)
            })
            .await
            .expect("seed users");
        let mut emails = vec![format!("u0@{slug}.test")];
        for (email, uid) in members {
            if !by_domain {
                state
                    .directory
                    .upsert_email(&email, &id, &uid)
                    .await
                    .expect("index");
            }
            emails.push(email);
        }
        (id, emails)
    }
}
pub use control_plane::service::saml;
