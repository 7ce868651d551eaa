//! In-process harness: the real router and services on a temp data directory, with a manual
//! clock and an in-memory mailer, for tests that need to move time or count exact attempts.
//! Everything here also runs through the real binary in the other modules.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use control_plane::config::{Config, ServerConfig};
use control_plane::mail::MemoryMailer;
use control_plane::service::provision::{self, NewTenant};
use control_plane::startup::{self, Overrides};
use control_plane::state::AppState;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tenant_runtime::ManualClock;
use tower::ServiceExt;

pub const PASSWORD: &str = "lantern-orchard-velvet-42";

pub struct InProc {
    pub state: AppState,
    pub app: Router,
    pub clock: ManualClock,
    pub mail: MemoryMailer,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers and the JSON body (`Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// The session cookie value set by this answer.
    pub fn session(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix("tenantd_session=")
                    .or_else(|| c.strip_prefix("__Host-tenantd_session="))
            })
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|v| !v.is_empty())
    }
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        public_url: "http://tenantd.test".parse().expect("url"),
        smtp_url: None,
        mail_from: "tenantd <no-reply@tenantd.test>".into(),
        product_name: "tenantd".into(),
        directory_url: None,
        max_connections: 64,
    }
}

pub fn server_config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        session_idle_secs: 1800,
        session_absolute_secs: 12 * 3600,
        hash_concurrency: Some(2),
        hash_queue: 64,
        login_max_failures: 5,
        ip_max_failures: 100,
        ip_window_secs: 600,
    }
}

impl InProc {
    pub async fn new() -> Self {
        Self::with(|_, _| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config, &mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path());
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
        let app = startup::app(state.clone());
        Self {
            state,
            app,
            clock,
            mail,
            _dir: dir,
        }
    }

    /// Builds the request now, so the returned future only borrows the harness.
    pub fn call<'a>(
        &'a self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> impl std::future::Future<Output = Answer> + use<'a> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, format!("tenantd_session={c}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send(req)
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let raw = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            raw,
        }
    }

    /// Creates a company and signs its first admin in; returns (tenant id, admin cookie).
    pub async fn company(&self, slug: &str) -> (String, String) {
        let p = provision::create_tenant(
            &self.state.directory,
            &self.state.tenants,
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
        .await
        .expect("provision");
        let token = p
            .invite_link
            .split("token=")
            .nth(1)
            .expect("token")
            .to_owned();
        let a = self
            .call(
                Method::POST,
                "/api/auth/accept-invite",
                None,
                Some(json!({"token": token, "password": PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        (p.tenant.id, a.session().expect("session cookie"))
    }

    /// Invites and activates a member of the admin's company; returns (user id, cookie).
    pub async fn member(&self, admin: &str, email: &str) -> (String, String) {
        let a = self
            .call(
                Method::POST,
                "/api/admin/users",
                Some(admin),
                Some(json!({"email": email, "role": "member"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        let id = a.body["id"].as_str().expect("id").to_owned();
        let link = self.last_link_to(email).await;
        let token = link.split("token=").nth(1).expect("token").to_owned();
        let a = self
            .call(
                Method::POST,
                "/api/auth/accept-invite",
                None,
                Some(json!({"token": token, "password": PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        (id, a.session().expect("cookie"))
    }

    /// Mails sent so far to an address.
    pub fn mail_count(&self, to: &str) -> usize {
        self.mail.sent.lock().iter().filter(|m| m.to == to).count()
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(link) = self
                .mail
                .sent
                .lock()
                .iter()
                .rev()
                .filter(|m| m.to == to)
                .find_map(|m| m.link.clone().filter(|l| l.starts_with(&prefix)))
            {
                return link;
            }
            assert!(std::time::Instant::now() < deadline, "no mail to {to}");
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub fn login<'a>(
        &'a self,
        email: &str,
        password: &str,
    ) -> impl std::future::Future<Output = Answer> + use<'a> {
        self.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
    }
}
