//! Signed calls to a node's internal endpoints (`/internal/tenants/{id}/…`), made by other
//! nodes and by `tenantctl`, and what travels over them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use serde::{Deserialize, Serialize};
use tenant_runtime::{Clock, TenantId};

use super::signing::{BODY_SHA256_HEADER, Covered, INTERNAL_HEADER, NodeSecret, body_sha256};

/// The SHA-256 of a snapshot, sent with it both ways.
pub const SHA256_HEADER: &str = "x-tenantd-sha256";
/// Users in a snapshot.
pub const USERS_HEADER: &str = "x-tenantd-users";

/// The first admin of a new tenant, as the node writing its file needs it. The invitation's
/// secret stays with whoever creates the tenant: only its SHA-256 travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstAdmin {
    pub email: String,
    pub user_id: String,
    pub name: String,
    pub now: i64,
    /// SHA-256 (hex) of the invitation secret.
    pub invite_hash: String,
}

/// What a node answers when it wrote a new tenant's file and first admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provisioned {
    pub admin_id: String,
}

/// What a node says about a snapshot it sent or installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub sha256: String,
    pub bytes: u64,
    pub users: usize,
}

/// Errors of calls to a node's internal endpoints.
/// What `tenantctl tenant recover` asks of the node that takes a tenant over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverRequest {
    /// The node whose replica to restore from (the tenant's current node).
    pub from: String,
    /// The tenant's placement epoch the caller saw.
    pub epoch: i64,
    /// The restored file's auth epoch is raised to at least this.
    pub min_auth_epoch: i64,
    /// RFC 3339; the newest replicated transaction when absent.
    pub at: Option<String>,
}

/// A tenant file restored from its replica and installed (not served before the placement
/// flips).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveredFile {
    /// `(user id, email)` of every user in it, for the user index.
    pub users: Vec<(String, String)>,
    pub auth_epoch: i64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("node {url} refused {what}: {status} {code}: {message}")]
    Refused {
        url: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl NodeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "node_unreachable",
            Self::Refused { .. } => "node_refused",
            Self::Invalid(_) => "move_failed",
            Self::Io(_) => "io_error",
        }
    }
}

/// The body of an internal call; its SHA-256 is signed with it.
enum Outgoing {
    Empty,
    Json(Vec<u8>),
    /// A tenant file, streamed; its SHA-256 is known beforehand.
    Snapshot {
        body: reqwest::Body,
        len: u64,
        sha256: String,
    },
}

/// Signed calls to nodes' internal endpoints; cheap to clone.
#[derive(Clone)]
pub struct NodeClient {
    secret: NodeSecret,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient").finish_non_exhaustive()
    }
}

/// An HTTP client for talking to nodes: no redirects, and the nodes' CA (`TENANTD_NODE_CA`)
/// trusted beside the usual roots for `https://` node URLs.
pub fn node_http(
    ca: Option<&Path>,
    tune: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read the nodes' CA {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(tune(builder).build()?)
}

impl NodeClient {
    /// A client signing with `secret`; `ca` as for [`node_http`].
    pub fn new(
        secret: NodeSecret,
        clock: Arc<dyn Clock>,
        ca: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let client = node_http(ca, |b| b.connect_timeout(Duration::from_secs(5)))?;
        Ok(Self {
            secret,
            client,
            clock,
        })
    }

    async fn call(
        &self,
        method: Method,
        base: &str,
        pq: &str,
        what: &str,
        body: Outgoing,
    ) -> Result<reqwest::Response, NodeError> {
        let url = format!("{}{pq}", base.trim_end_matches('/'));
        let mut headers = HeaderMap::new();
        let (sha, body) = match body {
            Outgoing::Empty => (body_sha256(b""), reqwest::Body::from(Vec::new())),
            Outgoing::Json(bytes) => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                (body_sha256(&bytes), reqwest::Body::from(bytes))
            }
            Outgoing::Snapshot { body, len, sha256 } => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/vnd.sqlite3"),
                );
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                (sha256, body)
            }
        };
        let signed = self.secret.sign_internal(
            self.clock.now(),
            Covered {
                method: &method,
                path_and_query: pq,
                body_sha256: &sha,
                headers: &headers,
            },
        );
        let res = self
            .client
            .request(method.clone(), &url)
            .headers(headers)
            .header(INTERNAL_HEADER, signed)
            .header(BODY_SHA256_HEADER, sha)
            .body(body)
            .send()
            .await
            .map_err(|source| NodeError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        Err(NodeError::Refused {
            url: base.to_owned(),
            what: what.to_owned(),
            status,
            code: body["error"].as_str().unwrap_or("").to_owned(),
            message: body["message"].as_str().unwrap_or("").to_owned(),
        })
    }

    async fn post(&self, base: &str, pq: &str, what: &str) -> Result<serde_json::Value, NodeError> {
        let res = self
            .call(Method::POST, base, pq, what, Outgoing::Empty)
            .await?;
        Ok(res.json().await.unwrap_or_default())
    }

    /// Writes the new tenant's file and first admin on that node.
    pub async fn provision(
        &self,
        base: &str,
        tenant: &TenantId,
        first: &FirstAdmin,
    ) -> Result<Provisioned, NodeError> {
        let res = self
            .call(
                Method::POST,
                base,
                &format!("/internal/tenants/{tenant}/provision"),
                "to create the tenant's file",
                Outgoing::Json(
                    serde_json::to_vec(first).map_err(|e| NodeError::Invalid(e.to_string()))?,
                ),
            )
            .await?;
        res.json()
            .await
            .map_err(|_| NodeError::Invalid("provision answer without admin".into()))
    }

    pub async fn freeze(&self, base: &str, tenant: &TenantId, epoch: i64) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/freeze?epoch={epoch}"),
            "to freeze the tenant",
        )
        .await
        .map(|_| ())
    }

    pub async fn thaw(&self, base: &str, tenant: &TenantId) -> Result<(), NodeError> {
        self.post(base, &format!("/internal/tenants/{tenant}/thaw"), "to thaw")
            .await
            .map(|_| ())
    }

    pub async fn release(
        &self,
        base: &str,
        tenant: &TenantId,
        epoch: i64,
    ) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/release?epoch={epoch}"),
            "to release the tenant",
        )
        .await
        .map(|_| ())
    }

    /// Has the node at `base` restore a tenant from its replica and install it (see
    /// `service::failover`).
    pub async fn recover(
        &self,
        base: &str,
        tenant: &TenantId,
        req: &RecoverRequest,
    ) -> Result<RecoveredFile, NodeError> {
        let res = self
            .call(
                Method::POST,
                base,
                &format!("/internal/tenants/{tenant}/recover"),
                "to restore the tenant from its replica",
                Outgoing::Json(
                    serde_json::to_vec(req).map_err(|e| NodeError::Invalid(e.to_string()))?,
                ),
            )
            .await?;
        res.json()
            .await
            .map_err(|_| NodeError::Invalid("recover answer without users".into()))
    }

    pub async fn refresh(&self, base: &str, tenant: &TenantId) -> Result<(), NodeError> {
        self.post(
            base,
            &format!("/internal/tenants/{tenant}/refresh"),
            "to refresh",
        )
        .await
        .map(|_| ())
    }

    /// Downloads a frozen tenant's snapshot into `dest`, checking its SHA-256.
    pub async fn download(
        &self,
        base: &str,
        tenant: &TenantId,
        dest: &Path,
    ) -> Result<SnapshotInfo, NodeError> {
        use sha2::Digest;
        use std::io::Write;
        let mut res = self
            .call(
                Method::GET,
                base,
                &format!("/internal/tenants/{tenant}/snapshot"),
                "to send a snapshot",
                Outgoing::Empty,
            )
            .await?;
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let expected = header(SHA256_HEADER)
            .ok_or_else(|| NodeError::Invalid("snapshot without checksum".into()))?;
        let users: usize = header(USERS_HEADER)
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        let mut file = std::fs::File::create(dest)?;
        let mut h = sha2::Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = res.chunk().await.map_err(|source| NodeError::Unreachable {
            url: base.to_owned(),
            source,
        })? {
            h.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        let sha256 = hex::encode(h.finalize());
        if sha256 != expected {
            return Err(NodeError::Invalid(format!(
                "snapshot from {base} arrived damaged (SHA-256 {sha256}, expected {expected})"
            )));
        }
        Ok(SnapshotInfo {
            sha256,
            bytes,
            users,
        })
    }

    /// Sends a snapshot to the node the tenant moves to; it checks and installs it.
    pub async fn upload(
        &self,
        base: &str,
        tenant: &TenantId,
        epoch: i64,
        src: &Path,
        sha256: &str,
    ) -> Result<SnapshotInfo, NodeError> {
        let file = tokio::fs::File::open(src).await?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let res = self
            .call(
                Method::PUT,
                base,
                &format!("/internal/tenants/{tenant}/snapshot?epoch={epoch}"),
                "the snapshot",
                Outgoing::Snapshot {
                    body,
                    len,
                    sha256: sha256.to_owned(),
                },
            )
            .await?;
        res.json().await.map_err(|source| NodeError::Unreachable {
            url: base.to_owned(),
            source,
        })
    }
}
