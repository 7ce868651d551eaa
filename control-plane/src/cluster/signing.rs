//! How nodes (and `tenantctl`) authenticate each other: HMAC-SHA256 over a shared secret
//! (`TENANTD_NODE_SECRET`), bound to the time, the method and the path, and for a forwarded
//! request to the sending node and the client's address.

use axum::http::{Method, Uri};
use hmac::{Hmac, KeyInit, Mac};

/// Carries a forwarded request's authentication: `v1 <unix secs> <from node> <client ip> <hmac>`.
pub const FORWARDED_HEADER: &str = "x-tenantd-forwarded";
/// Authenticates a call of an internal endpoint: `v1 <unix secs> <hmac>`.
pub const INTERNAL_HEADER: &str = "x-tenantd-internal";

/// Signatures older or newer than this are refused (clock skew between nodes included).
const MAX_SKEW_SECS: i64 = 60;

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

/// The secret the nodes share; never printed.
#[derive(Clone)]
pub struct NodeSecret(String);

impl NodeSecret {
    /// At least 16 characters: shorter secrets are refused at start.
    pub const MIN_LEN: usize = 16;

    pub fn new(secret: &str) -> Self {
        Self(secret.to_owned())
    }

    pub fn is_too_short(&self) -> bool {
        self.0.len() < Self::MIN_LEN
    }

    fn mac(&self, msg: &str) -> HmacSha256 {
        // HMAC takes keys of any length, so this never fails.
        let mut m = match <HmacSha256 as KeyInit>::new_from_slice(self.0.as_bytes()) {
            Ok(m) => m,
            Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
        };
        m.update(msg.as_bytes());
        m
    }

    fn sign(&self, msg: &str) -> String {
        hex::encode(self.mac(msg).finalize().into_bytes())
    }

    fn verify(&self, msg: &str, sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) => self.mac(msg).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    /// The value of [`INTERNAL_HEADER`] for a call made at `now`.
    pub fn sign_internal(&self, now: i64, method: &Method, path_and_query: &str) -> String {
        let sig = self.sign(&format!("internal\n{now}\n{method}\n{path_and_query}"));
        format!("v1 {now} {sig}")
    }

    /// Whether an [`INTERNAL_HEADER`] value is genuine and fresh at `now`.
    pub fn verify_internal(
        &self,
        now: i64,
        value: &str,
        method: &Method,
        path_and_query: &str,
    ) -> bool {
        let mut it = value.split(' ');
        let (Some("v1"), Some(ts), Some(sig), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return false;
        };
        let Ok(ts) = ts.parse::<i64>() else {
            return false;
        };
        fresh(now, ts) && self.verify(&format!("internal\n{ts}\n{method}\n{path_and_query}"), sig)
    }

    /// The value of [`FORWARDED_HEADER`] for a request forwarded at `now`.
    pub fn sign_forward(
        &self,
        now: i64,
        method: &Method,
        pq: &str,
        from: &str,
        ip: &str,
    ) -> String {
        let sig = self.sign(&format!("fwd\n{now}\n{method}\n{pq}\n{from}\n{ip}"));
        format!("v1 {now} {from} {ip} {sig}")
    }

    /// The sending node and client address of a genuine, fresh forwarded request.
    pub fn verify_forward(
        &self,
        now: i64,
        value: &str,
        method: &Method,
        pq: &str,
    ) -> Option<(String, String)> {
        let mut it = value.split(' ');
        let (Some("v1"), Some(ts), Some(from), Some(ip), Some(sig), None) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            return None;
        };
        let ts: i64 = ts.parse().ok()?;
        (fresh(now, ts) && self.verify(&format!("fwd\n{ts}\n{method}\n{pq}\n{from}\n{ip}"), sig))
            .then(|| (from.to_owned(), ip.to_owned()))
    }
}

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

fn fresh(now: i64, ts: i64) -> bool {
    (now - ts).abs() <= MAX_SKEW_SECS
}

/// The path and query a signature covers.
pub fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn internal_signatures_bind_secret_method_and_path() {
        let k = NodeSecret::new("s3cret");
        let pq = "/internal/tenants/a/freeze?epoch=1";
        let v = k.sign_internal(NOW, &Method::POST, pq);
        assert!(k.verify_internal(NOW, &v, &Method::POST, pq));
        assert!(!NodeSecret::new("other").verify_internal(NOW, &v, &Method::POST, pq));
        assert!(!k.verify_internal(NOW, &v, &Method::GET, pq));
        assert!(!k.verify_internal(NOW, &v, &Method::POST, "/internal/tenants/b/freeze?epoch=1"));
        assert!(!k.verify_internal(NOW, &v, &Method::POST, "/internal/tenants/a/freeze?epoch=2"));
        assert!(!k.verify_internal(NOW, "v1 1 00", &Method::POST, "/"));
        assert!(!k.verify_internal(NOW, "", &Method::POST, "/"));
    }

    #[test]
    fn stale_signatures_are_refused() {
        let k = NodeSecret::new("k");
        let old = k.sign_internal(NOW - MAX_SKEW_SECS - 5, &Method::GET, "/x");
        assert!(!k.verify_internal(NOW, &old, &Method::GET, "/x"));
        let recent = k.sign_internal(NOW - 5, &Method::GET, "/x");
        assert!(k.verify_internal(NOW, &recent, &Method::GET, "/x"));
    }

    #[test]
    fn forwarded_requests_name_their_node_and_client_unforgeably() {
        let k = NodeSecret::new("k");
        let v = k.sign_forward(NOW, &Method::GET, "/api/session", "n2", "10.0.0.7");
        assert_eq!(
            k.verify_forward(NOW, &v, &Method::GET, "/api/session"),
            Some(("n2".to_owned(), "10.0.0.7".to_owned()))
        );
        // Another client address, node or path in the same header: refused.
        let forged = v.replace("10.0.0.7", "10.0.0.8");
        assert_eq!(
            k.verify_forward(NOW, &forged, &Method::GET, "/api/session"),
            None
        );
        let forged = v.replace("n2", "n3");
        assert_eq!(
            k.verify_forward(NOW, &forged, &Method::GET, "/api/session"),
            None
        );
        assert_eq!(
            k.verify_forward(NOW, &v, &Method::GET, "/api/sessions"),
            None
        );
        assert_eq!(
            NodeSecret::new("other").verify_forward(NOW, &v, &Method::GET, "/api/session"),
            None
        );
    }

    #[test]
    fn the_secret_never_prints() {
        assert_eq!(
            format!("{:?}", NodeSecret::new("hunter2-hunter2-x")),
            "NodeSecret(..)"
        );
    }
}
