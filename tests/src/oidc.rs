//! The vendor's app as the tests play it: registering it with the real `tenantctl`, PKCE,
//! authorization requests, the token endpoint, and a back-channel logout receiver (a real HTTP
//! server) that can be told to fail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use sha2::Digest;

use crate::app::TestApp;
use crate::http::{Person, Reply, read};

/// A registered app.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// Registers an app with `tenantctl client create --json`; `extra` are more flags.
pub fn register(app: &TestApp, redirect_uri: &str, extra: &[&str]) -> App {
    let mut args = vec![
        "client",
        "create",
        "--name",
        "Test app",
        "--redirect-uri",
        redirect_uri,
    ];
    args.extend_from_slice(extra);
    let v = app.ctl().json(&args);
    App {
        client_id: v["client_id"].as_str().expect("client_id").to_owned(),
        secret: v["client_secret"].as_str().map(str::to_owned),
        redirect_uri: redirect_uri.to_owned(),
    }
}

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// `/oauth2/authorize?…` for `app` with PKCE S256, a state and a nonce; `extra` are added or
/// replace those.
pub fn authorize_path(app: &App, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", app.redirect_uri.as_str()),
        ("scope", "openid email profile offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    let q: String = url_encode(&params);
    format!("/oauth2/authorize?{q}")
}

fn url_encode(params: &[(String, String)]) -> String {
    let mut s = reqwest::Url::parse("http://x/").expect("url");
    s.query_pairs_mut().extend_pairs(params);
    s.query().unwrap_or("").to_owned()
}

/// The query parameters of a redirect's `Location`.
pub fn query_of(location: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(location)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn param(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Asks for a code for a person who is signed in: the answer must redirect to the app.
pub async fn code_for(person: &Person, app: &App, pkce: &Pkce) -> String {
    let r = person.get(&authorize_path(app, pkce, &[])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location().to_owned();
    assert!(to.starts_with(&app.redirect_uri), "{to}");
    param(&to, "code").unwrap_or_else(|| panic!("no code in {to}"))
}

/// A POST to the token endpoint (or another form endpoint) with the app's secret in
/// `client_secret_basic`, or its id in the body for a public app.
pub async fn post_form(base: &str, path: &str, app: &App, form: &[(&str, &str)]) -> Reply {
    let mut fields: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut req = crate::http::client().post(format!("{base}{path}"));
    match &app.secret {
        Some(s) => req = req.basic_auth(&app.client_id, Some(s)),
        None => fields.push(("client_id".to_owned(), app.client_id.clone())),
    }
    read(
        req.header("content-type", "application/x-www-form-urlencoded")
            .body(url_encode(&fields)),
    )
    .await
}

/// Exchanges a code.
pub async fn exchange(base: &str, app: &App, code: &str, verifier: &str) -> Reply {
    post_form(
        base,
        "/oauth2/token",
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &app.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Tokens of a successful exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub id: String,
    pub refresh: Option<String>,
}

/// A signed-in person's code, exchanged: asserts success.
pub async fn tokens_for(base: &str, person: &Person, app: &App) -> Tokens {
    let p = pkce();
    let code = code_for(person, app, &p).await;
    let r = exchange(base, app, &code, &p.verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    Tokens {
        access: v["access_token"].as_str().expect("access_token").to_owned(),
        id: v["id_token"].as_str().expect("id_token").to_owned(),
        refresh: v["refresh_token"].as_str().map(str::to_owned),
    }
}

/// A JWT's header and claims, NOT verified (tests read what was issued).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut next = || -> Value {
        let part = it.next().expect("jwt part");
        serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("json")
    };
    let header = next();
    let claims = next();
    (header, claims)
}

/// A back-channel logout receiver: records every `logout_token` it is sent, and answers with
/// the statuses queued by [`Receiver::fail_next`] first (then 200).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    tokens: Arc<Mutex<Vec<String>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("url", &self.url).finish()
    }
}

type Shared = (Arc<Mutex<Vec<String>>>, Arc<Mutex<VecDeque<u16>>>);

async fn receive(State((tokens, answers)): State<Shared>, body: String) -> StatusCode {
    let status = answers.lock().expect("answers").pop_front().unwrap_or(200);
    if status == 200 {
        let token = url_form_field(&body, "logout_token").unwrap_or_default();
        tokens.lock().expect("tokens").push(token);
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

fn url_form_field(body: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Receiver {
    /// Starts listening on a random loopback port, at `/backchannel`.
    pub async fn start() -> Self {
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::new()));
        let app = axum::Router::new()
            .route("/backchannel", axum::routing::post(receive))
            .with_state((tokens.clone(), answers.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/backchannel"),
            tokens,
            answers,
        }
    }

    /// The next deliveries get these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.answers.lock().expect("answers").extend(statuses);
    }

    /// Failures queued and not answered yet.
    pub fn pending_failures(&self) -> usize {
        self.answers.lock().expect("answers").len()
    }

    /// The logout tokens received so far.
    pub fn received(&self) -> Vec<String> {
        self.tokens.lock().expect("tokens").clone()
    }

    /// Waits until a logout token for `sid` arrived; returns its claims.
    pub async fn wait_for(&self, sid: &str, limit: std::time::Duration) -> Value {
        crate::poll(
            limit,
            &format!("no back-channel logout for sid {sid}"),
            || async {
                self.received()
                    .iter()
                    .map(|t| jwt_parts(t))
                    .find(|(_, c)| c["sid"] == sid)
                    .map(|(h, c)| {
                        assert_eq!(h["typ"], "logout+jwt");
                        c
                    })
                    .ok_or_else(|| format!("{} received", self.received().len()))
            },
        )
        .await
    }
}
