//! HTTP as the tests speak it: a [`Person`] (a client with its own cookie jar, bound to one
//! server), requests with an explicit session cookie, and every answer read whole as a
//! [`Reply`] (the in-process harness answers with the same type).

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The session cookie of a server whose public URL is `http://…`.
pub const SESSION_COOKIE: &str = "tenantd_session";

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

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Location` header ("" when absent).
    pub fn location(&self) -> &str {
        self.header("location")
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

    /// The non-empty session cookie value this answer sets (`__Host-` prefixed or not).
    pub fn session(&self) -> Option<String> {
        self.cookie_value(SESSION_COOKIE)
            .or_else(|| self.cookie_value(&format!("__Host-{SESSION_COOKIE}")))
            .filter(|v| !v.is_empty())
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

/// Sends a request and reads the answer whole; `Err` when no answer came (the server died).
pub async fn try_read(req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let res = req.send().await?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text().await?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends a request and reads the answer whole.
pub async fn read(req: reqwest::RequestBuilder) -> Reply {
    try_read(req).await.expect("request")
}

/// How every test client is set up: no redirects followed, 30 s at most per request.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
}

/// A client without a cookie jar and without redirects.
pub fn client() -> reqwest::Client {
    builder().build().expect("client")
}

/// A request with an optional session cookie (its value) and JSON body.
pub async fn call(
    c: &reqwest::Client,
    method: Method,
    url: String,
    session: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = c.request(method, url);
    if let Some(s) = session {
        req = req.header(reqwest::header::COOKIE, format!("{SESSION_COOKIE}={s}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req).await
}

/// One simulated person: an HTTP client with its own cookie jar, talking to one server.
#[derive(Clone)]
pub struct Person {
    pub client: reqwest::Client,
    base: String,
}

impl Person {
    /// A person with an empty cookie jar.
    pub fn new(base: &str) -> Self {
        Self {
            client: builder().cookie_store(true).build().expect("client"),
            base: base.to_owned(),
        }
    }

    /// A person without a cookie jar whose every request carries this `Cookie` header.
    pub fn with_cookie(base: &str, cookie: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            cookie.parse().expect("cookie header"),
        );
        Self {
            client: builder().default_headers(headers).build().expect("client"),
            base: base.to_owned(),
        }
    }

    /// The same person (same cookie jar) talking to another server, e.g. a restarted one.
    pub fn at(&self, base: &str) -> Self {
        Self {
            client: self.client.clone(),
            base: base.to_owned(),
        }
    }

    /// A request builder on this person's client (to set headers by hand).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    fn build(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
        let req = self.request(method, path);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
    }

    /// Sends a request; the returned future owns what it needs (no borrow of `self`).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> impl Future<Output = Reply> + Send + use<> {
        read(self.build(method, path, body))
    }

    /// Sends a request that may get no answer (the server may die on it).
    pub fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> impl Future<Output = Result<Reply, reqwest::Error>> + Send + use<> {
        try_read(self.build(method, path, body))
    }

    /// A POST that may get no answer (the server may die on it).
    pub fn try_post(
        &self,
        path: &str,
        body: Value,
    ) -> impl Future<Output = Result<Reply, reqwest::Error>> + Send + use<> {
        self.try_send(Method::POST, path, Some(body))
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

    /// Asks for a reset link for `email`.
    pub fn forgot(&self, email: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.post("/api/auth/forgot", json!({"email": email}))
    }

    /// Accepts an invitation with `token` and `password`.
    pub fn accept_invite(
        &self,
        token: &str,
        password: &str,
    ) -> impl Future<Output = Reply> + Send + use<> {
        self.post(
            "/api/auth/accept-invite",
            json!({"token": token, "password": password}),
        )
    }

    /// Sets a new password with a reset link's `token`.
    pub fn reset(&self, token: &str, password: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.post(
            "/api/auth/reset",
            json!({"token": token, "password": password}),
        )
    }

    /// Accepts an invitation with `token` and `password`, giving the name `name`.
    pub fn accept_invite_named(
        &self,
        token: &str,
        password: &str,
        name: &str,
    ) -> impl Future<Output = Reply> + Send + use<> {
        self.post(
            "/api/auth/accept-invite",
            json!({"token": token, "password": password, "name": name}),
        )
    }

    /// Invites `email` as `role` (an admin's request).
    pub fn invite(&self, email: &str, role: &str) -> impl Future<Output = Reply> + Send + use<> {
        self.post("/api/admin/users", json!({"email": email, "role": role}))
    }

    /// Blocks (or unblocks) a user of the admin's company.
    pub fn set_blocked(
        &self,
        id: &str,
        blocked: bool,
    ) -> impl Future<Output = Reply> + Send + use<> {
        self.patch(&user_path(id), json!({"blocked": blocked}))
    }

    /// `GET /api/session`'s status.
    pub async fn session_status(&self) -> u16 {
        self.get("/api/session").await.status
    }
}

/// The admin API path of a user.
pub fn user_path(id: &str) -> String {
    format!("/api/admin/users/{id}")
}

/// The first element of the JSON array `array` whose `key` is `value` (a clone).
pub fn find(array: &Value, key: &str, value: &str) -> Value {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {array}"))
        .clone()
}

/// The emails of a `users` list answer.
pub fn emails_of(list: &Value) -> Vec<String> {
    list["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

/// The hidden CSRF field's value in a page.
pub fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in:\n{body}"))
        + marker.len();
    body[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// POSTs a form as a browser on our own pages would.
pub async fn form(p: &Person, path: &str, fields: &[(&str, &str)]) -> Reply {
    read(
        p.request(Method::POST, path)
            .header("sec-fetch-site", "same-origin")
            .form(fields),
    )
    .await
}
