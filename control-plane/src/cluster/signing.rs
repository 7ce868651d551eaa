//! How nodes (and `tenantctl`) authenticate each other: HMAC-SHA256 over a shared secret
//! (`TENANTD_NODE_SECRET`). A signature covers the time, a random nonce, the method, the path
//! and query, the SHA-256 of the body and the headers that carry authority (content type,
//! cookies, authorization) — and, for a forwarded request, the sending node and the client's
//! address. The receiver refuses a nonce it (or any node: they share the directory) has seen,
//! so a captured request cannot be replayed, even with another body.

use axum::http::{HeaderMap, Method, Uri, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

/// Carries a forwarded request's authentication:
/// `v2 <unix secs> <nonce> <from node> <client ip> <hmac>`.
pub const FORWARDED_HEADER: &str = "x-tenantd-forwarded";
/// Authenticates a call of an internal endpoint: `v2 <unix secs> <nonce> <hmac>`.
pub const INTERNAL_HEADER: &str = "x-tenantd-internal";
/// The SHA-256 (hex) of a signed request's body.
pub const BODY_SHA256_HEADER: &str = "x-tenantd-body-sha256";

/// Signatures older or newer than this are refused (clock skew between nodes included); a
/// nonce is remembered this long after its time, on both sides of it.
pub const MAX_SKEW_SECS: i64 = 60;

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

/// The SHA-256 (hex) of a body, as signatures cover it.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(body))
}

/// The headers a signature covers, as they are sent.
fn covered(headers: &HeaderMap) -> String {
    [header::CONTENT_TYPE, header::COOKIE, header::AUTHORIZATION]
        .iter()
        .map(|name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join("\u{1f}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a request's signature covers besides the time and the nonce.
#[derive(Debug, Clone, Copy)]
pub struct Covered<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub body_sha256: &'a str,
    pub headers: &'a HeaderMap,
}

impl Covered<'_> {
    fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.method,
            self.path_and_query,
            self.body_sha256,
            covered(self.headers)
        )
    }
}

/// A genuine, fresh signature: its nonce still has to be checked against replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub nonce: String,
    /// The sending node and the client's address (forwarded requests).
    pub from: Option<(String, String)>,
}

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
    pub fn sign_internal(&self, now: i64, what: Covered<'_>) -> String {
        let nonce = new_nonce();
        let sig = self.sign(&format!("internal\n{now}\n{nonce}\n{}", what.text()));
        format!("v2 {now} {nonce} {sig}")
    }

    /// Checks an [`INTERNAL_HEADER`] value at `now`.
    pub fn verify_internal(&self, now: i64, value: &str, what: Covered<'_>) -> Option<Verified> {
        let mut it = value.split(' ');
        let (Some("v2"), Some(ts), Some(nonce), Some(sig), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return None;
        };
        let ts: i64 = ts.parse().ok()?;
        (fresh(now, ts)
            && valid_nonce(nonce)
            && self.verify(&format!("internal\n{ts}\n{nonce}\n{}", what.text()), sig))
        .then(|| Verified {
            nonce: nonce.to_owned(),
            from: None,
        })
    }

    /// The value of [`FORWARDED_HEADER`] for a request forwarded at `now` by node `from` for
    /// client `ip`.
    pub fn sign_forward(&self, now: i64, what: Covered<'_>, from: &str, ip: &str) -> String {
        let nonce = new_nonce();
        let sig = self.sign(&format!(
            "fwd\n{now}\n{nonce}\n{from}\n{ip}\n{}",
            what.text()
        ));
        format!("v2 {now} {nonce} {from} {ip} {sig}")
    }

    /// Checks a [`FORWARDED_HEADER`] value at `now`.
    pub fn verify_forward(&self, now: i64, value: &str, what: Covered<'_>) -> Option<Verified> {
        let mut it = value.split(' ');
        let (Some("v2"), Some(ts), Some(nonce), Some(from), Some(ip), Some(sig), None) = (
            it.next(),
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
        (fresh(now, ts)
            && valid_nonce(nonce)
            && self.verify(
                &format!("fwd\n{ts}\n{nonce}\n{from}\n{ip}\n{}", what.text()),
                sig,
            ))
        .then(|| Verified {
            nonce: nonce.to_owned(),
            from: Some((from.to_owned(), ip.to_owned())),
        })
    }
}

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

fn new_nonce() -> String {
    let mut raw = [0u8; 16];
    // Without randomness the nonce is still unique per process run and time; the replay check
    // would then merely refuse a second request, never accept a forged one.
    if getrandom::fill(&mut raw).is_err() {
        raw = *uuid::Uuid::new_v4().as_bytes();
    }
    hex::encode(raw)
}

fn valid_nonce(nonce: &str) -> bool {
    nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit())
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
    use axum::http::HeaderValue;

    const NOW: i64 = 1_800_000_000;

    fn covered<'a>(m: &'a Method, pq: &'a str, sha: &'a str, h: &'a HeaderMap) -> Covered<'a> {
        Covered {
            method: m,
            path_and_query: pq,
            body_sha256: sha,
            headers: h,
        }
    }

    #[test]
    fn internal_signatures_bind_secret_method_path_and_body() {
        let k = NodeSecret::new("s3cret");
        let h = HeaderMap::new();
        let pq = "/internal/tenants/a/freeze?epoch=1";
        let sha = body_sha256(b"{}");
        let v = k.sign_internal(NOW, covered(&Method::POST, pq, &sha, &h));
        assert!(
            k.verify_internal(NOW, &v, covered(&Method::POST, pq, &sha, &h))
                .is_some()
        );
        let other_sha = body_sha256(b"{\"x\":1}");
        for (m, p, s) in [
            (&Method::GET, pq, sha.as_str()),
            (&Method::POST, "/internal/tenants/b/freeze?epoch=1", &sha),
            (&Method::POST, "/internal/tenants/a/freeze?epoch=2", &sha),
            (&Method::POST, pq, &other_sha),
        ] {
            assert!(k.verify_internal(NOW, &v, covered(m, p, s, &h)).is_none());
        }
        let c = covered(&Method::POST, pq, &sha, &h);
        assert!(
            NodeSecret::new("other")
                .verify_internal(NOW, &v, c)
                .is_none()
        );
        assert!(k.verify_internal(NOW, "v2 1 00 00", c).is_none());
        assert!(k.verify_internal(NOW, "", c).is_none());
        // The old format, without nonce or body: refused.
        assert!(k.verify_internal(NOW, &format!("v1 {NOW} 00"), c).is_none());
    }

    #[test]
    fn stale_signatures_are_refused_and_nonces_differ() {
        let k = NodeSecret::new("k");
        let h = HeaderMap::new();
        let c = covered(&Method::GET, "/x", "", &h);
        let old = k.sign_internal(NOW - MAX_SKEW_SECS - 5, c);
        assert!(k.verify_internal(NOW, &old, c).is_none());
        let a = k.sign_internal(NOW - 5, c);
        let b = k.sign_internal(NOW - 5, c);
        let (va, vb) = (
            k.verify_internal(NOW, &a, c).unwrap(),
            k.verify_internal(NOW, &b, c).unwrap(),
        );
        assert_ne!(va.nonce, vb.nonce);
    }

    #[test]
    fn forwarded_requests_bind_node_client_body_and_authority_headers() {
        let k = NodeSecret::new("k");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("tenantd_session=a.b"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let sha = body_sha256(br#"{"email":"ann@acme.test","password":"x"}"#);
        let c = covered(&Method::POST, "/api/auth/login", &sha, &h);
        let v = k.sign_forward(NOW, c, "n2", "10.0.0.7");
        assert_eq!(
            k.verify_forward(NOW, &v, c).and_then(|v| v.from),
            Some(("n2".to_owned(), "10.0.0.7".to_owned()))
        );
        // Another client address or node in the same header: refused.
        assert!(
            k.verify_forward(NOW, &v.replace("10.0.0.7", "10.0.0.8"), c)
                .is_none()
        );
        assert!(
            k.verify_forward(NOW, &v.replace(" n2 ", " n3 "), c)
                .is_none()
        );
        // The same header with another body, path, cookie or authorization: refused.
        let other_body = body_sha256(br#"{"email":"bob@acme.test","password":"x"}"#);
        let c2 = covered(&Method::POST, "/api/auth/login", &other_body, &h);
        assert!(k.verify_forward(NOW, &v, c2).is_none());
        let c3 = covered(&Method::POST, "/api/auth/forgot", &sha, &h);
        assert!(k.verify_forward(NOW, &v, c3).is_none());
        let mut h2 = h.clone();
        h2.insert(
            header::COOKIE,
            HeaderValue::from_static("tenantd_session=c.d"),
        );
        let c4 = covered(&Method::POST, "/api/auth/login", &sha, &h2);
        assert!(k.verify_forward(NOW, &v, c4).is_none());
        let mut h3 = h.clone();
        h3.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        let c5 = covered(&Method::POST, "/api/auth/login", &sha, &h3);
        assert!(k.verify_forward(NOW, &v, c5).is_none());
        assert!(
            NodeSecret::new("other")
                .verify_forward(NOW, &v, c)
                .is_none()
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
