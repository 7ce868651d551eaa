//! `tenantctl --server URL --key KEY …`: the same commands through the operator API, from any
//! machine. Answers are the same types the local commands print, so the output is the same.

use anyhow::Context;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An error the server answered, with its stable code.
#[derive(Debug)]
pub(crate) struct Refused {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The operator API of one server, with one key.
pub(crate) struct Remote {
    base: url::Url,
    key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Remote {
    pub(crate) fn new(server: &str, key: &str) -> anyhow::Result<Self> {
        let base = url::Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                super::coded(
                    "invalid_server",
                    format!("--server {server:?} is not a URL such as https://login.example.com"),
                )
            })?;
        if key.is_empty() {
            return Err(super::coded(
                "key_required",
                "--server needs an operator key: give --key or set TENANTCTL_KEY",
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Self {
            base,
            key: key.to_owned(),
            http,
        })
    }

    /// Calls `method path` with an optional JSON body; the answer as `T`, or the server's
    /// refusal with its code.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let url = format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        );
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.key)
            .header(
                "user-agent",
                concat!("tenantctl/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}; check --server", self.base))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(anyhow::Error::new(Refused {
                code: v["error"].as_str().unwrap_or("error").to_owned(),
                message: v["message"]
                    .as_str()
                    .map_or_else(|| format!("the server answered {status}"), str::to_owned),
            }));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to {path_and_query} is not understood"))
    }
}

/// A path segment or query value, percent-encoded.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
