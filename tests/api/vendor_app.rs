//! The example vendor app (`control-plane/examples/vendor-app.rs`) against the real tenantd, in
//! real headless Chromium (`tests/e2e/vendor_app.mjs`): registered with the real `tenantctl`,
//! it signs an admin and a member in through the OpenID Connect provider, calls the admin API
//! with their access tokens, signs out through RP-initiated logout, and is told by back-channel
//! logout when tenantd ends a session (forged logout tokens are refused).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use tests::process::{bin_dir, free_port};
use tests::{Company, Member, Options, PASSWORD, TestApp, http, poll};

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The example, started as its own process; its output is kept and printed if the test fails.
struct VendorApp {
    url: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl VendorApp {
    fn start(issuer: &str, client_id: &str, client_secret: &str, port: u16) -> Self {
        // Examples land next to the workspace's binaries, under examples/.
        let bin = bin_dir().join("examples/vendor-app");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build -p control-plane --example vendor-app` \
             (scripts/test builds it)",
            bin.display()
        );
        let mut child = Command::new(bin)
            .env("VENDOR_APP_ISSUER", issuer)
            .env("VENDOR_APP_CLIENT_ID", client_id)
            .env("VENDOR_APP_CLIENT_SECRET", client_secret)
            .env("VENDOR_APP_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("VENDOR_APP_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the vendor app");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (out, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(tx) = &tx
                        && line.starts_with("vendor-app is listening on ")
                    {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut app = Self {
            url: String::new(),
            child,
            logs,
        };
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            panic!("the vendor app did not start:\n{}", app.logs().join("\n"));
        };
        app.url = line["vendor-app is listening on ".len()..].to_owned();
        app
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The app's `/` as the browser holding `cookie` sees it.
    async fn home(&self, cookie: &str) -> String {
        let r = http::read(
            http::client()
                .get(format!("{}/", self.url))
                .header("cookie", format!("vendor_app_session={cookie}")),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    async fn backchannel_logout(&self, token: &str) -> http::Reply {
        http::read(
            http::client()
                .post(format!("{}/backchannel-logout", self.url))
                .form(&[("logout_token", token)]),
        )
        .await
    }
}

impl Drop for VendorApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- vendor-app output ----\n{}\n---- end of vendor-app output ----",
                self.logs().join("\n")
            );
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

#[tokio::test]
async fn the_example_vendor_app_signs_people_in_and_hears_of_sessions_ended_at_tenantd() {
    // Arrange: tenantd at its own public URL, a company with an admin and a member, and the
    // example registered as a client on a port chosen before it starts.
    let app = TestApp::spawn_with(Options::at_own_address()).await;
    let company = app.company("vendor").await;
    let member = app
        .add_user(&company.admin, "mia@vendor.test", "member")
        .await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = app.ctl().json(&[
        "client",
        "create",
        "--name",
        "Vendor App",
        "--redirect-uri",
        &format!("{base}/callback"),
        "--post-logout-redirect-uri",
        &format!("{base}/"),
        "--backchannel-logout-uri",
        &format!("{base}/backchannel-logout"),
    ]);
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();
    let secret = client["client_secret"].as_str().expect("client_secret");
    let vendor = VendorApp::start(&app.public_url, &client_id, secret, port);
    assert_eq!(vendor.url, base);

    let root = repo_root();
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` at the repository root"
    );
    let artifacts = std::env::var_os("E2E_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("../e2e-artifacts/vendor-app"));
    if let Ok(entries) = std::fs::read_dir(&artifacts) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "png") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    // Act: the browser flow; when the member is signed in, tenantd ends their session.
    let mut child = tokio::process::Command::new("node")
        .arg("tests/e2e/vendor_app.mjs")
        .current_dir(&root)
        .env("E2E_APP_URL", &vendor.url)
        .env("E2E_TENANTD_URL", &app.public_url)
        .env("E2E_ADMIN_EMAIL", &company.admin_email)
        .env("E2E_ADMIN_PASSWORD", PASSWORD)
        .env("E2E_COMPANY", &company.name)
        .env("E2E_MEMBER_EMAIL", &member.email)
        .env("E2E_MEMBER_PASSWORD", PASSWORD)
        .env("E2E_ARTIFACTS_DIR", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (is Node.js installed?)");
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stdout = String::new();
    let mut ended_at_tenantd = false;
    let flow = async {
        while let Some(line) = lines.next_line().await.expect("node's stdout") {
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some(rest) = line.strip_prefix("member signed in: ") {
                let field = |name: &str| {
                    rest.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                        .to_owned()
                };
                let (sid, cookie) = (field("sid"), field("cookie"));
                end_the_member_session(&app, &company, &member, &vendor, &client_id, &sid, &cookie)
                    .await;
                ended_at_tenantd = true;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), flow)
        .await
        .expect("the browser flow did not finish within 5 minutes");
    let status = child.wait().await.expect("node's exit");
    let stderr = stderr.await.unwrap_or_default();

    // Assert: every step of the script passed, and the back-channel part ran.
    assert!(
        status.success(),
        "the browser flow failed ({status}); screenshots in {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        artifacts.display()
    );
    assert!(stdout.contains("vendor app flow passed"), "{stdout}");
    assert!(
        ended_at_tenantd,
        "the script never signed the member in:\n{stdout}"
    );
    let shots = std::fs::read_dir(&artifacts)
        .expect("artifacts dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(
        shots >= 11,
        "only {shots} screenshots in {}",
        artifacts.display()
    );
}

/// While the member's browser is signed in to the app: forged logout tokens change nothing;
/// then their admin ends their sessions at tenantd, and a back-channel logout for exactly that
/// session reaches the app, which signs the browser out.
async fn end_the_member_session(
    app: &TestApp,
    company: &Company,
    member: &Member,
    vendor: &VendorApp,
    client_id: &str,
    sid: &str,
    cookie: &str,
) {
    let signed_in = format!("<dd id=\"sid\">{sid}</dd>");
    assert!(vendor.home(cookie).await.contains(&signed_in));

    // Logout tokens tenantd did not sign: refused with 400, the session lives on.
    let jwks = app.person().get("/oauth2/jwks").await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    let kid = jwks.json()["keys"][0]["kid"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let now = tests::now();
    let claims = json!({
        "iss": app.public_url, "aud": client_id, "iat": now, "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(), "sub": member.id, "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    });
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let rs256 = json!({"alg": "RS256", "typ": "logout+jwt", "kid": kid});
    let none = json!({"alg": "none", "typ": "logout+jwt"});
    let made_up = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>().repeat(8));
    let forged = [
        ("not a JWT", "not-a-jwt".to_owned()),
        ("alg none", format!("{}.{}.", part(&none), part(&claims))),
        (
            "a made-up signature",
            format!("{}.{}.{made_up}", part(&rs256), part(&claims)),
        ),
    ];
    for (what, token) in &forged {
        let r = vendor.backchannel_logout(token).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
    }
    assert!(
        vendor.home(cookie).await.contains(&signed_in),
        "a forged logout token signed the member out"
    );
    let refused = vendor
        .logs()
        .iter()
        .filter(|l| l.contains("refused a back-channel logout"))
        .count();
    assert_eq!(refused, forged.len(), "{:#?}", vendor.logs());

    // The admin ends the member's sessions at tenantd.
    let r = company
        .admin
        .delete(&format!("/api/admin/users/{}/sessions", member.id))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["sessions_ended"].as_u64() >= Some(1), "{}", r.body);

    // tenantd's logout token reached the app and ended exactly that session.
    let expected = format!(
        "back-channel logout sid={sid} sub={}: 1 session(s) ended",
        member.id
    );
    poll(
        Duration::from_secs(30),
        "the back-channel logout",
        || async {
            if vendor.logs().iter().any(|l| l.contains(&expected)) {
                Ok(())
            } else {
                Err(vendor.logs().join("\n"))
            }
        },
    )
    .await;
    let after = vendor.home(cookie).await;
    assert!(
        !after.contains(&signed_in) && after.contains("Sign in"),
        "{after}"
    );
}
