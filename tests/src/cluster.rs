//! Several real `tenantd` processes: each node is a child process on a random port with its
//! own data directory, all optionally sharing one directory database. Mail goes to each
//! node's outbox (no SMTP): tests take invitation links from `tenantctl --json`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::ctl::Ctl;
use crate::http::{Reply, call, client};
use crate::mail::token_of;
use crate::process::Tenantd;
use crate::{PASSWORD, http};

/// The installation's server key, shared by every node.
pub const SERVER_KEY: &str = "test-installation-server-key-0123456789abcdef";

/// The secret the test nodes share.
pub const SECRET: &str = "test-node-secret-0123456789abcdef";

/// One `tenantd` node.
pub struct Node {
    pub id: String,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub data: PathBuf,
    env: Vec<(String, String)>,
    /// A client without cookie jar for requests to this node.
    client: reqwest::Client,
    server: Tenantd,
    _tmp: tempfile::TempDir,
}

impl Node {
    /// Starts `tenantd` as node `id` with `env` (on top of a fresh data directory) and waits
    /// until it listens.
    pub fn start(id: &str, env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.push((
            "TENANTD_DATA_DIR".to_owned(),
            data.to_string_lossy().into_owned(),
        ));
        env.push(("TENANTD_NODE_ID".to_owned(), id.to_owned()));
        // One server key for the installation: every node opens the same token-signing keys.
        env.push(("TENANTD_SECRET_KEY".to_owned(), SERVER_KEY.to_owned()));
        env.push((
            "TENANTD_METRICS_TOKEN".to_owned(),
            crate::METRICS_TOKEN.to_owned(),
        ));
        env.push((
            "TENANTD_PUBLIC_URL".to_owned(),
            "http://login.tenantd.test".to_owned(),
        ));
        let server = Tenantd::start(id, env.clone());
        Self {
            id: id.to_owned(),
            address: server.address.clone(),
            data,
            env,
            client: client(),
            server,
            _tmp: tmp,
        }
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.server.logs()
    }

    /// Kills the process (a crash, as far as the others can tell).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// `tenantctl` with this node's settings and the nodes' secret.
    pub fn ctl(&self) -> Ctl {
        self.env
            .iter()
            .fold(Ctl::new(&self.data), |ctl, (k, v)| ctl.with_env(k, v))
            .with_env("TENANTD_NODE_SECRET", SECRET)
    }

    /// `tenantctl --json …` with this node's settings, asserting success; the parsed output.
    pub fn tenantctl_json(&self, args: &[&str]) -> Value {
        self.ctl().json(args)
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A request to this node with an optional session (its cookie value) and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        call(&self.client, method, self.url(path), session, body).await
    }

    /// `GET /api/session` with this session, through this node.
    pub async fn session(&self, session: &str) -> Reply {
        self.call(Method::GET, "/api/session", Some(session), None)
            .await
    }

    /// Signs `email` in through this node.
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs `email` in through this node, asserting success; the session cookie's value.
    pub async fn login(&self, email: &str) -> String {
        let a = self.sign_in(email, PASSWORD).await;
        assert_eq!(a.status, 200, "login {email} via {}: {}", self.id, a.body);
        a.session().expect("session cookie")
    }

    /// Invites `email` as `role` with an admin's session, through this node.
    pub async fn invite(&self, session: &str, email: &str, role: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/admin/users",
            Some(session),
            Some(json!({"email": email, "role": role})),
        )
        .await
    }
}

/// Creates a company through `node`'s `tenantctl` (with `extra` arguments) and accepts its
/// first admin's invitation through `via`; returns (tenant JSON, admin session).
pub async fn company(node: &Node, via: &str, slug: &str, extra: &[&str]) -> (Value, String) {
    let email = format!("admin@{slug}.test");
    let domain = format!("{slug}.test");
    let created = node
        .ctl()
        .tenant_create(slug, slug, Some(&domain), &email, extra);
    let link = created["invite_link"].as_str().expect("invite link");
    let a = http::read(
        client()
            .post(format!("{via}/api/auth/accept-invite"))
            .json(&json!({"token": token_of(link), "password": PASSWORD})),
    )
    .await;
    assert_eq!(a.status, 200, "accept invitation of {slug}: {}", a.body);
    (
        created["tenant"].clone(),
        a.session().expect("session cookie"),
    )
}
