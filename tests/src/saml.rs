//! A real SAML identity provider for the tests: pysaml2's IdP (`tests/saml/idp.py`) on a
//! loopback port, signing with its own keys (xmlsec1), and its `/forge` endpoint that builds
//! tampered responses to order.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// One test user of the IdP.
pub struct IdpUser<'a> {
    pub key: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    /// The persistent NameID the IdP sends for them.
    pub nameid: &'a str,
}

pub struct SamlIdp {
    pub base: String,
    pub metadata_url: String,
    pub entity_id: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("saml/idp.py")
}

impl SamlIdp {
    /// Starts the IdP with these users; returns once it listens.
    pub fn start(users: &[IdpUser<'_>]) -> Self {
        Self::launch(users, false)
    }

    /// Starts an IdP that accepts only AuthnRequests signed by the SP's key (from its metadata).
    pub fn start_wanting_signed_requests(users: &[IdpUser<'_>]) -> Self {
        Self::launch(users, true)
    }

    fn launch(users: &[IdpUser<'_>], want_signed_requests: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut map = serde_json::Map::new();
        for u in users {
            map.insert(
                u.key.into(),
                serde_json::json!({"email": u.email, "name": u.name, "nameid": u.nameid}),
            );
        }
        let file = dir.path().join("users.json");
        std::fs::write(&file, Value::Object(map).to_string()).expect("users.json");
        let mut cmd = Command::new("python3");
        cmd.arg(script()).arg("--users").arg(&file);
        if want_signed_requests {
            cmd.arg("--want-signed-requests");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "python3 tests/saml/idp.py (pysaml2, lxml and xmlsec1 are installed by .ci/run)",
            );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the IdP's first line");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the IdP did not start: {e}: {line:?}"));
        let s = |k: &str| v[k].as_str().expect(k).to_owned();
        Self {
            base: s("base"),
            metadata_url: s("metadata_url"),
            entity_id: s("entity_id"),
            child,
            _dir: dir,
        }
    }

    pub async fn metadata(&self) -> String {
        reqwest::get(&self.metadata_url)
            .await
            .expect("IdP metadata")
            .text()
            .await
            .expect("IdP metadata body")
    }

    /// Makes the IdP trust a service provider, given its metadata.
    pub async fn trust(&self, sp_metadata: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/sp", self.base))
            .body(sp_metadata.to_owned())
            .send()
            .await
            .expect("register SP");
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A base64 SAMLResponse built to `spec` (see `tests/saml/idp.py`, `forge`).
    pub async fn forge(&self, spec: Value) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/forge", self.base))
            .body(spec.to_string())
            .send()
            .await
            .expect("forge");
        let status = r.status();
        let v: Value = r.json().await.expect("forge json");
        assert!(status.is_success(), "forge {spec}: {v}");
        v["SAMLResponse"].as_str().expect("SAMLResponse").to_owned()
    }
}

/// An AuthnRequest as the IdP read it, from its sign-in page.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub sp: String,
    pub acs: String,
    pub relay_state: String,
}

/// What the IdP's page would post to the service provider's ACS.
#[derive(Debug, Clone)]
pub struct Answer {
    pub acs: String,
    pub saml_response: String,
    pub relay_state: String,
}

/// The value of the hidden input `name` of an HTML page (escaped by Python's `html.escape`).
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').expect("end of value") + start;
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl SamlIdp {
    /// Opens the IdP's sign-in page at `url` (where our AuthnRequest redirect points).
    pub async fn read_request(&self, url: &str) -> Request {
        assert!(url.starts_with(&self.base), "not the IdP: {url}");
        let page = reqwest::get(url).await.expect("IdP sign-in page");
        assert_eq!(page.status(), 200, "the IdP refused our request");
        let page = page.text().await.expect("page");
        Request {
            id: hidden(&page, "id"),
            sp: hidden(&page, "sp"),
            acs: hidden(&page, "acs"),
            relay_state: hidden(&page, "relay"),
        }
    }

    /// Signs `user` in at the IdP for the request at `url`: the form the IdP answers with.
    pub async fn sign_in(&self, url: &str, user: &str) -> Answer {
        let req = self.read_request(url).await;
        let page = reqwest::Client::new()
            .post(format!("{}/sso/login", self.base))
            .form(&[
                ("id", req.id.as_str()),
                ("sp", req.sp.as_str()),
                ("acs", req.acs.as_str()),
                ("relay", req.relay_state.as_str()),
                ("user", user),
            ])
            .send()
            .await
            .expect("IdP login");
        assert_eq!(page.status(), 200);
        let page = page.text().await.expect("form");
        let action_at = page.find("action=\"").expect("form action") + 8;
        let action_end = page[action_at..].find('"').expect("end") + action_at;
        Answer {
            acs: page[action_at..action_end].replace("&amp;", "&"),
            saml_response: hidden(&page, "SAMLResponse"),
            relay_state: hidden(&page, "RelayState"),
        }
    }
}
