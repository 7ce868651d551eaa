//! A harness for tests that need several real `tenantd` processes, or their logs: each node is
//! a child process on a random port with its own data directory, all optionally sharing one
//! directory database. Mail goes to each node's outbox (no SMTP): tests take invitation links
//! from `tenantctl --json`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, bin_dir};

/// The secret the test nodes share.
pub const SECRET: &str = "test-node-secret-0123456789abcdef";

/// One `tenantd` process.
pub struct Node {
    pub id: String,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub data: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    _tmp: tempfile::TempDir,
}

/// Removes every `TENANTD_*` variable of the caller's environment from a command.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TENANTD_") {
            cmd.env_remove(k);
        }
    }
}

impl Node {
    /// Starts `tenantd` with `env` (on top of a fresh data directory) and waits until it
    /// listens.
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
        env.push((
            "TENANTD_PUBLIC_URL".to_owned(),
            "http://login.tenantd.test".to_owned(),
        ));
        let mut node = Self {
            id: id.to_owned(),
            address: String::new(),
            data,
            env,
            child: None,
            logs: Arc::new(Mutex::new(Vec::new())),
            _tmp: tmp,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let bin = bin_dir().join("tenantd");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --workspace --bins` first",
            bin.display()
        );
        let mut cmd = Command::new(&bin);
        clean_env(&mut cmd);
        cmd.args(["--listen", "127.0.0.1:0"])
            .env("TENANTD_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tenantd");
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("is listening on") {
                    let _ = tx.send(line.clone());
                }
                logs.lock().map(|mut l| l.push(line)).ok();
            }
        });
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logs.lock().map(|mut l| l.push(line)).ok();
            }
        });
        self.child = Some(child);
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!(
                "tenantd {} did not start:\n{}",
                self.id,
                self.logs().join("\n")
            );
        };
        self.address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("address in the listening line")
            .to_owned();
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Kills the process (a crash, as far as the others can tell).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `tenantctl` with this node's settings.
    pub fn tenantctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin_dir().join("tenantctl"));
        clean_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("TENANTD_NODE_SECRET", SECRET)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tenantctl")
    }

    /// `tenantctl --json …`, asserting success; the parsed output.
    pub fn tenantctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.tenantctl(&all);
        assert!(
            out.status.success(),
            "tenantctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("tenantctl JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- tenantd {} output ----\n{}\n---- end ----",
                self.id,
                self.logs().join("\n")
            );
        }
    }
}

/// An HTTP client without a cookie jar and without redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }

    /// The session cookie value this answer sets.
    pub fn session(&self) -> Option<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("tenantd_session="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|v| !v.is_empty())
    }
}

pub async fn read(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.expect("request");
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.expect("body"),
    }
}

/// A request with an optional session cookie and JSON body.
pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    session: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = c.request(method, url);
    if let Some(s) = session {
        req = req.header(reqwest::header::COOKIE, format!("tenantd_session={s}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req).await
}

/// Creates a company through `node`'s `tenantctl` (with `extra` arguments) and accepts its
/// first admin's invitation through `via`; returns (tenant JSON, admin session).
pub async fn company(node: &Node, via: &str, slug: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec![
        "tenant",
        "create",
        "--slug",
        slug,
        "--name",
        slug,
        "--admin-email",
    ];
    let email = format!("admin@{slug}.test");
    let domain = format!("{slug}.test");
    args.push(&email);
    args.extend_from_slice(&["--domain", &domain]);
    args.extend_from_slice(extra);
    let created = node.tenantctl_json(&args);
    let link = created["invite_link"].as_str().expect("invite link");
    let token = link.split("token=").nth(1).expect("token");
    let a = call(
        &client(),
        reqwest::Method::POST,
        format!("{via}/api/auth/accept-invite"),
        None,
        Some(json!({"token": token, "password": PASSWORD})),
    )
    .await;
    assert_eq!(a.status, 200, "accept invitation of {slug}: {}", a.body);
    (
        created["tenant"].clone(),
        a.session().expect("session cookie"),
    )
}
