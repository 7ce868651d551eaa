//! The harness: a real `tenantd` child process on a random port, a real SMTP server (aiosmtpd)
//! writing to a maildir, and one HTTP client with its own cookie jar per simulated person.
//!
//! Companies are created with the real `tenantctl` when it is built and has `tenant create`;
//! until then through the `control-plane` library, the same code `tenantctl` calls
//! ([`TestApp::tenant_create`] is the one place that decides).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A password that passes the policy; every test person uses it unless a test says otherwise.
pub const PASSWORD: &str = "lantern-orchard-velvet-42";
/// Another valid password (for resets).
pub const NEW_PASSWORD: &str = "quartz-meadow-harbor-77";
/// How long to wait for a mail before failing.
pub const MAIL_WAIT: Duration = Duration::from_secs(20);

/// `target/debug`, where `cargo build --workspace --bins` put the binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/api-<hash> → target/debug
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("target/debug").to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Removes every `TENANTD_*` variable of the caller's environment from a command.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TENANTD_") {
            cmd.env_remove(k);
        }
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A Python that can import aiosmtpd (Debian's python3-aiosmtpd; a pyenv shim may shadow it).
fn python() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(p) = std::env::var("TEST_PYTHON") {
            candidates.push(p.into());
        }
        candidates.extend(["/usr/bin/python3".into(), "python3".into()]);
        candidates
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("no python3 with aiosmtpd (apt-get install python3-aiosmtpd)")
    })
}

/// A real SMTP server that stores every message in a maildir.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
}

impl SmtpServer {
    pub fn start(maildir: PathBuf) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(python())
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn aiosmtpd");
            let deadline = Instant::now() + Duration::from_secs(15);
            let up = loop {
                if child.try_wait().ok().flatten().is_some() {
                    break false; // most likely the port was taken meanwhile
                }
                if smtp_banner(port) {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if up {
                return Self {
                    port,
                    maildir,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd did not start");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

fn smtp_banner(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 3];
    let ok = s.read_exact(&mut buf).is_ok() && &buf == b"220";
    let _ = std::io::Write::write_all(&mut s, b"QUIT\r\n");
    ok
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// File name in the maildir.
    pub file: String,
    pub to: String,
    pub subject: String,
    /// The decoded text/plain part.
    pub text: String,
    /// The first link with a token in the text part, or empty.
    pub link: String,
    /// The `token` query value of that link, or empty.
    pub token: String,
}

/// How a test server is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub public_url: String,
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: "http://login.tenantd.test:8080".to_owned(),
            env: Vec::new(),
        }
    }
}

/// A running `tenantd` with its own data directory and SMTP server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub public_url: String,
    pub smtp: SmtpServer,
    server: Child,
    logs: Arc<Mutex<Vec<String>>>,
    seen_mail: Mutex<HashSet<String>>,
    pub data: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        if std::thread::panicking() {
            let logs = self.logs.lock().map(|l| l.join("\n")).unwrap_or_default();
            eprintln!("---- tenantd output ----\n{logs}\n---- end of tenantd output ----");
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let smtp = SmtpServer::start(data.path().join("maildir"));
        let bin = binary("tenantd");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --workspace --bins` (scripts/test does) first",
            bin.display()
        );
        let mut cmd = Command::new(&bin);
        clean_env(&mut cmd);
        cmd.args(["--listen", "127.0.0.1:0"])
            .env("TENANTD_DATA_DIR", data.path().join("data"))
            .env("TENANTD_PUBLIC_URL", &opts.public_url)
            .env("TENANTD_SMTP_URL", smtp.url())
            .env("TENANTD_LOG", "info")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut server = cmd.spawn().expect("spawn tenantd");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = server.stdout.take().expect("stdout");
        let stderr = server.stderr.take().expect("stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.contains("is listening on") {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().map(|mut l| l.push(line)).ok();
                }
            });
        }
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().map(|mut l| l.push(line)).ok();
                }
            });
        }
        let line = rx.recv_timeout(Duration::from_secs(60));
        let app = |address: String| Self {
            address,
            public_url: opts.public_url.clone(),
            smtp,
            server,
            logs,
            seen_mail: Mutex::new(HashSet::new()),
            data,
        };
        let Ok(line) = line else {
            // Dropping the app while panicking prints what tenantd said.
            let _app = app(String::new());
            panic!("tenantd did not start");
        };
        // "tenantd is listening on http://127.0.0.1:PORT (public URL ...)"
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("address in the listening line")
            .to_owned();
        app(address)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// The library configuration matching the server's (same data dir, mail, public URL).
    pub fn config(&self) -> control_plane::config::Config {
        control_plane::config::Config {
            data_dir: self.data_dir(),
            public_url: self.public_url.parse().expect("public url"),
            smtp_url: Some(self.smtp.url()),
            mail_from: "tenantd <no-reply@localhost>".to_owned(),
            product_name: "tenantd".to_owned(),
            directory_url: None,
            max_connections: 16,
        }
    }

    /// A new person with an empty cookie jar.
    pub fn person(&self) -> Person {
        Person {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: self.address.clone(),
        }
    }

    /// A person without a cookie jar whose every request carries this `Cookie` header.
    pub fn person_with_cookie(&self, cookie: &str) -> Person {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            cookie.parse().expect("cookie header"),
        );
        Person {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: self.address.clone(),
        }
    }

    // ---- companies -------------------------------------------------------------------------

    /// Creates a company whose first admin is invited by mail (the operator's step).
    pub async fn tenant_create(&self, slug: &str, name: &str, domain: &str, admin_email: &str) {
        match tenantctl() {
            Some(ctl) => self.tenant_create_cli(&ctl, slug, name, domain, admin_email),
            None => {
                self.tenant_create_lib(slug, name, domain, admin_email)
                    .await
            }
        }
    }

    fn tenant_create_cli(
        &self,
        ctl: &Path,
        slug: &str,
        name: &str,
        domain: &str,
        admin_email: &str,
    ) {
        let mut cmd = Command::new(ctl);
        clean_env(&mut cmd);
        let out = cmd
            .env("TENANTD_DATA_DIR", self.data_dir())
            .env("TENANTD_SMTP_URL", self.smtp.url())
            .env("TENANTD_PUBLIC_URL", &self.public_url)
            .args(["tenant", "create", "--slug", slug, "--name", name])
            .args(["--domain", domain, "--admin-email", admin_email])
            .args(["--admin-name", "First Admin", "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("run tenantctl");
        assert!(
            out.status.success(),
            "tenantctl tenant create failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn tenant_create_lib(&self, slug: &str, name: &str, domain: &str, admin_email: &str) {
        use control_plane::mail::Mailer;
        let config = self.config();
        let directory = control_plane::directory::Directory::connect(&config.directory_url())
            .await
            .expect("directory");
        let router = tenant_runtime::TenantRouter::new(tenant_runtime::RouterConfig::new(
            config.tenants_dir(),
        ))
        .expect("router");
        let now = tenant_runtime::Clock::now(&tenant_runtime::SystemClock);
        let p = control_plane::service::provision::create_tenant(
            &directory,
            &router,
            &config,
            &control_plane::service::provision::NewTenant {
                slug: slug.to_owned(),
                name: name.to_owned(),
                domains: vec![domain.to_owned()],
                admin_email: admin_email.to_owned(),
                admin_name: Some("First Admin".to_owned()),
            },
            now,
        )
        .await
        .expect("create tenant");
        directory.close().await;
        drop(router);
        control_plane::mail::SmtpMailer::new(&self.smtp.url(), &config.mail_from)
            .expect("smtp mailer")
            .send(p.mail)
            .await
            .expect("send invitation");
    }

    /// Sets a company's status in the directory (the operator's suspend/resume).
    pub async fn set_tenant_status(&self, slug: &str, suspended: bool) {
        use control_plane::directory::{Directory, TenantStatus};
        let directory = Directory::connect(&self.config().directory_url())
            .await
            .expect("directory");
        let t = directory
            .tenant_by_slug(slug)
            .await
            .expect("tenant lookup")
            .expect("tenant exists");
        let status = if suspended {
            TenantStatus::Suspended
        } else {
            TenantStatus::Active
        };
        directory
            .set_tenant_status(&t.id, status)
            .await
            .expect("set status");
        directory.close().await;
    }

    /// Creates a company and takes its first admin through the invitation: the admin is
    /// signed in on the returned person.
    pub async fn company(&self, slug: &str) -> Company {
        let admin_email = format!("admin@{slug}.test");
        let name = format!("Company {slug}");
        self.tenant_create(slug, &name, &format!("{slug}.test"), &admin_email)
            .await;
        let mail = self.wait_for_mail(&admin_email, MAIL_WAIT).await;
        let admin = self.person();
        let r = admin
            .post(
                "/api/auth/accept-invite",
                json!({"token": mail.token, "password": PASSWORD, "name": "Ada Admin"}),
            )
            .await;
        assert_eq!(r.status, 200, "accept first admin invitation: {}", r.body);
        let v = r.json();
        Company {
            slug: slug.to_owned(),
            name,
            tenant_id: v["tenant"]["id"].as_str().expect("tenant id").to_owned(),
            admin_email,
            admin_id: v["user"]["id"].as_str().expect("user id").to_owned(),
            admin,
        }
    }

    /// Invites a person into the admin's company; returns the new user's id.
    pub async fn invite(&self, admin: &Person, email: &str, role: &str) -> String {
        let r = admin
            .post("/api/admin/users", json!({"email": email, "role": role}))
            .await;
        assert_eq!(r.status, 201, "invite {email}: {}", r.body);
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// Invites a person and accepts the invitation from the mailed link: they are signed in.
    pub async fn add_user(&self, admin: &Person, email: &str, role: &str) -> Member {
        let id = self.invite(admin, email, role).await;
        let mail = self.wait_for_mail(email, MAIL_WAIT).await;
        let person = self.person();
        let r = person
            .post(
                "/api/auth/accept-invite",
                json!({"token": mail.token, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "accept invitation of {email}: {}", r.body);
        Member {
            id,
            email: email.to_owned(),
            person,
        }
    }

    /// Signs in a new person; returns them with the answer.
    pub async fn try_login(&self, email: &str, password: &str) -> (Person, Reply) {
        let p = self.person();
        let r = p.login(email, password).await;
        (p, r)
    }

    /// Signs in a new person, asserting success.
    pub async fn login(&self, email: &str, password: &str) -> Person {
        let (p, r) = self.try_login(email, password).await;
        assert_eq!(r.status, 200, "login {email}: {}", r.body);
        p
    }

    // ---- mail --------------------------------------------------------------------------------

    /// Every message received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        read_maildir(&self.smtp.maildir)
    }

    /// Every message received so far for one address.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        let to = to.to_lowercase();
        self.mails().into_iter().filter(|m| m.to == to).collect()
    }

    /// The oldest message to `to` not returned before; waits for it up to `deadline`.
    pub async fn wait_for_mail(&self, to: &str, deadline: Duration) -> Mail {
        let until = Instant::now() + deadline;
        loop {
            let found = {
                let mut seen = self.seen_mail.lock().expect("seen lock");
                let m = self
                    .mails_to(to)
                    .into_iter()
                    .find(|m| !seen.contains(&m.file));
                if let Some(m) = &m {
                    seen.insert(m.file.clone());
                }
                m
            };
            if let Some(m) = found {
                return m;
            }
            assert!(
                Instant::now() < until,
                "no mail to {to} within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until all mail sent before now has arrived: asks a reset for `sentinel` (an active
    /// user) and waits for that mail. Mail is handed to the sender when its request is answered,
    /// so anything an earlier request triggered has arrived by then (or never comes).
    /// Side effects: the sentinel gets a fresh reset link (older ones stop working), and the
    /// reset throttle allows about three of these per sentinel address per minute.
    pub async fn mail_barrier(&self, sentinel: &str) -> Mail {
        let r = self
            .person()
            .post("/api/auth/forgot", json!({"email": sentinel}))
            .await;
        assert_eq!(r.status, 202);
        let m = self.wait_for_mail(sentinel, MAIL_WAIT).await;
        assert!(m.subject.contains("Reset"), "sentinel mail: {}", m.subject);
        m
    }
}

/// A created company with its first admin signed in.
pub struct Company {
    pub slug: String,
    pub name: String,
    pub tenant_id: String,
    pub admin_email: String,
    pub admin_id: String,
    pub admin: Person,
}

/// A user added through an accepted invitation, signed in.
pub struct Member {
    pub id: String,
    pub email: String,
    pub person: Person,
}

/// The `tenantctl` binary, if it is built and implements `tenant create`.
fn tenantctl() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let bin = binary("tenantctl");
            let out = Command::new(&bin)
                .args(["tenant", "create", "--help"])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            let help = String::from_utf8_lossy(&out.stdout);
            (out.status.success() && help.contains("--admin-email") && help.contains("--json"))
                .then_some(bin)
        })
        .clone()
}

// ---- HTTP --------------------------------------------------------------------------------------

/// One simulated person: an HTTP client with its own cookie jar.
#[derive(Clone)]
pub struct Person {
    pub client: reqwest::Client,
    base: String,
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The `error` code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii cookie").to_owned())
            .collect()
    }

    /// The value set for cookie `name`, if any.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    }

    /// Status, headers (without the ones that differ per request) and body, for comparisons.
    pub fn fingerprint(&self) -> (u16, Vec<(String, Vec<u8>)>, String) {
        let headers = self
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        (self.status, headers, self.body.clone())
    }
}

impl Person {
    /// Sends a request; the returned future owns what it needs (no borrow of `self`).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> impl Future<Output = Reply> + Send + use<> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req)
    }

    pub async fn read(req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request builder on this person's client (to set headers by hand).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub fn get(&self, path: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.send(Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> impl Future<Output = Reply> + Send + use<> {
        self.send(Method::POST, path, Some(body))
    }

    pub fn post_empty(&self, path: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.send(Method::POST, path, None)
    }

    pub fn patch(&self, path: &str, body: Value) -> impl Future<Output = Reply> + Send + use<> {
        self.send(Method::PATCH, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.send(Method::DELETE, path, None)
    }

    pub fn login(&self, email: &str, password: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.post(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
    }

    /// `GET /api/session`'s status.
    pub async fn session_status(&self) -> u16 {
        self.get("/api/session").await.status
    }
}

// ---- maildir parsing ---------------------------------------------------------------------------

fn read_maildir(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (t, e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, name, path)| {
            let raw = std::fs::read(&path).ok()?;
            Some(parse_mail(name, &String::from_utf8_lossy(&raw)))
        })
        .collect()
}

/// Splits a message (or part) into unfolded headers and body.
fn split_headers(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_body(body: &str, encoding: Option<&str>) -> String {
    match encoding.map(str::to_lowercase).as_deref() {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_owned(),
    }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(hex) = s.get(i + 1..i + 3)
                && let Ok(v) = u8::from_str_radix(hex, 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`).
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(last_was_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let (enc, text) = (parts[1], &parts[2][..end]);
        let decoded = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            decode_qp(&text.replace('_', " "))
        };
        out.push_str(&decoded);
        let consumed = 2 + parts[0].len() + 1 + parts[1].len() + 1 + end + 2;
        rest = &rest[start + consumed..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// The text/plain content of a message or part, descending into multiparts.
fn text_part(headers: &[(String, String)], body: &str) -> Option<String> {
    let ctype = header(headers, "content-type").unwrap_or("text/plain");
    let lower = ctype.to_lowercase();
    if lower.starts_with("multipart/") {
        let boundary = format!("--{}", param(ctype, "boundary")?);
        for part in body.split(&boundary).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (h, b) = split_headers(part);
            if let Some(t) = text_part(&h, &b) {
                return Some(t);
            }
        }
        None
    } else if lower.starts_with("text/plain") {
        Some(decode_body(
            body,
            header(headers, "content-transfer-encoding"),
        ))
    } else {
        None
    }
}

fn address_of(to: &str) -> String {
    let to = to.trim();
    match (to.rfind('<'), to.rfind('>')) {
        (Some(a), Some(b)) if a < b => to[a + 1..b].to_lowercase(),
        _ => to.to_lowercase(),
    }
}

fn parse_mail(file: String, raw: &str) -> Mail {
    let (headers, body) = split_headers(raw);
    let to = header(&headers, "x-rcptto")
        .or_else(|| header(&headers, "to"))
        .map(address_of)
        .unwrap_or_default();
    let subject = decode_words(header(&headers, "subject").unwrap_or(""));
    let text = text_part(&headers, &body).unwrap_or_default();
    let link = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http") && l.contains("token="))
        .unwrap_or("")
        .to_owned();
    let token = link
        .split_once("token=")
        .map(|(_, t)| {
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect()
        })
        .unwrap_or_default();
    Mail {
        file,
        to,
        subject,
        text,
        link,
        token,
    }
}

#[test]
fn parses_a_quoted_printable_multipart_message() {
    let raw = "To: ann@acme.test\r\nSubject: =?utf-8?b?UmVzZXQg?= =?utf-8?b?eW91cg==?=\r\n\
               Content-Type: multipart/alternative;\r\n boundary=\"XX\"\r\n\r\n--XX\r\n\
               Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
               Hi\r\n\r\nhttp://x.test/reset?token=3Dabc.def-_=\r\nghi\r\n\r\n=E2=80=94 p\r\n--XX\r\n\
               Content-Type: text/html\r\n\r\n<p>x</p>\r\n--XX--\r\n";
    let m = parse_mail("f".into(), raw);
    assert_eq!(m.to, "ann@acme.test");
    assert_eq!(m.subject, "Reset your");
    assert_eq!(m.link, "http://x.test/reset?token=abc.def-_ghi");
    assert_eq!(m.token, "abc.def-_ghi");
    assert!(m.text.contains("— p"));
}
