//! Signed tokens (JWS compact serialisation, RS256 only): the keys that sign ID, access and
//! logout tokens, the JWKS that publishes them, and sealing private keys at rest. A token is
//! checked against exactly one algorithm and one expected `typ`, with a key we published:
//! `alg: none`, HMAC with the public key and foreign keys all fail the same way.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use parking_lot::RwLock;
use ring::signature::{self, KeyPair as _};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::Digest;

use super::DerivedKey;

/// The only algorithm tenantd signs or accepts.
pub const ALG: &str = "RS256";
const RSA_BITS: usize = 2048;

/// Why a token was refused or a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a signed token")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    Algorithm,
    #[error("the token's type is not the one expected here")]
    Type,
    #[error("the token is not signed by a published key")]
    UnknownKey,
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the key could not be made or read")]
    Key,
}

/// A public signing key as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl PublicKey {
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": ALG,
            "kid": self.kid,
            "n": B64.encode(&self.n),
            "e": B64.encode(&self.e),
        })
    }

    /// The key of a JWK we published (as stored in the directory).
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        let field = |k: &str| jwk.get(k)?.as_str();
        (field("kty")? == "RSA").then_some(())?;
        Some(Self {
            kid: field("kid")?.to_owned(),
            n: B64.decode(field("n")?).ok()?,
            e: B64.decode(field("e")?).ok()?,
        })
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .is_ok()
    }
}

/// RFC 7638 thumbprint of an RSA key: its `kid`.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        B64.encode(e),
        B64.encode(n)
    );
    B64.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// A private signing key.
pub struct KeyPair {
    pair: signature::RsaKeyPair,
    pub public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A new RSA key; returns it and its PKCS#8 form to store (sealed).
    pub fn generate() -> Result<(Self, Vec<u8>), JwsError> {
        let key =
            rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS).map_err(|_| JwsError::Key)?;
        let der = key.to_pkcs8_der().map_err(|_| JwsError::Key)?;
        let der = der.as_bytes().to_vec();
        let pair = Self::from_pkcs8(&der)?;
        debug_assert_eq!(pair.public.n, key.n().to_bytes_be());
        Ok((pair, der))
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, JwsError> {
        let pair = signature::RsaKeyPair::from_pkcs8(der).map_err(|_| JwsError::Key)?;
        let components: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let (n, e) = (components.n, components.e);
        Ok(Self {
            pair,
            public: PublicKey {
                kid: thumbprint(&n, &e),
                n,
                e,
            },
        })
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// A compact JWS of `claims` with header `alg`, `kid` and `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String, JwsError> {
        let header = json!({"alg": ALG, "typ": typ, "kid": self.public.kid});
        let mut out = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .map_err(|_| JwsError::Key)?;
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

/// The keys in use: the one that signs now, and every published one.
#[derive(Debug)]
pub struct KeySet {
    pub signer: Arc<KeyPair>,
    pub published: Vec<PublicKey>,
}

impl KeySet {
    pub fn jwks(&self) -> Value {
        json!({"keys": self.published.iter().map(PublicKey::jwk).collect::<Vec<_>>()})
    }

    /// The claims of a token signed by one of our published keys with `typ` (compared
    /// without case, with or without the `application/` prefix, as RFC 7515 allows).
    pub fn verify(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<serde_json::Map<String, Value>, JwsError> {
        let header = header(token)?;
        if header.get("alg").and_then(Value::as_str) != Some(ALG) {
            return Err(JwsError::Algorithm);
        }
        let found = header.get("typ").and_then(Value::as_str).unwrap_or("");
        let found = found.strip_prefix("application/").unwrap_or(found);
        if !found.eq_ignore_ascii_case(typ) {
            return Err(JwsError::Type);
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let key = self
            .published
            .iter()
            .find(|k| Some(k.kid.as_str()) == kid)
            .ok_or(JwsError::UnknownKey)?;
        let (signed, sig) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| JwsError::Malformed)?;
        if !key.verify(signed.as_bytes(), &sig) {
            return Err(JwsError::Signature);
        }
        payload(token)
    }
}

fn part(token: &str, i: usize) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    B64.decode(if i == 0 { h } else { p })
        .map_err(|_| JwsError::Malformed)
}

fn object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, JwsError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwsError::Malformed),
    }
}

fn header(token: &str) -> Result<serde_json::Map<String, Value>, JwsError> {
    object(&part(token, 0)?)
}

/// The claims of a token WITHOUT checking its signature: only to decide where to send a
/// request (the node that serves its company checks it).
pub fn payload(token: &str) -> Result<serde_json::Map<String, Value>, JwsError> {
    object(&part(token, 1)?)
}

/// The key set as last loaded; the service reloads it from the directory.
#[derive(Debug, Default)]
pub struct Keyring {
    current: RwLock<Option<(Arc<KeySet>, i64)>>,
}

impl Keyring {
    /// The cached set, if loaded at or after `fresh_after`.
    pub fn cached(&self, fresh_after: i64) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .as_ref()
            .filter(|(_, at)| *at >= fresh_after)
            .map(|(k, _)| k.clone())
    }

    pub fn store(&self, set: Arc<KeySet>, now: i64) {
        *self.current.write() = Some((set, now));
    }
}

/// Access tokens whose signature and claims were checked already, by SHA-256 of the token,
/// until they expire: a bearer request then costs a hash instead of an RSA verification.
/// Whether the grant behind a token is live is still asked every time.
#[derive(Debug, Default)]
pub struct Verified {
    tokens: dashmap::DashMap<[u8; 32], (Claims, i64)>,
}

/// A checked token's claims, shared.
pub type Claims = Arc<serde_json::Map<String, Value>>;

impl Verified {
    /// Entries kept before the expired ones are dropped (and all, if none had expired).
    const MAX: usize = 50_000;

    pub fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hit = self.tokens.get(&key)?;
        (hit.1 > now).then(|| hit.0.clone())
    }

    pub fn put(
        &self,
        token: &str,
        claims: Arc<serde_json::Map<String, Value>>,
        exp: i64,
        now: i64,
    ) {
        if self.tokens.len() >= Self::MAX {
            self.tokens.retain(|_, (_, e)| *e > now);
            if self.tokens.len() >= Self::MAX {
                self.tokens.clear();
            }
        }
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        self.tokens.insert(key, (claims, exp));
    }
}

/// Seals a private key for the directory: base64 of nonce ‖ AES-256-GCM ciphertext.
pub fn seal(key: &DerivedKey, plain: &[u8]) -> Result<String, JwsError> {
    let aead = aead_key(key)?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| JwsError::Key)?;
    let mut buf = plain.to_vec();
    aead.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::empty(),
        &mut buf,
    )
    .map_err(|_| JwsError::Key)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(B64.encode(out))
}

/// Opens what [`seal`] made with the same key.
pub fn open(key: &DerivedKey, sealed: &str) -> Result<Vec<u8>, JwsError> {
    let aead = aead_key(key)?;
    let raw = B64.decode(sealed).map_err(|_| JwsError::Key)?;
    if raw.len() < 12 {
        return Err(JwsError::Key);
    }
    let (nonce, rest) = raw.split_at(12);
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| JwsError::Key)?;
    let mut buf = rest.to_vec();
    let plain = aead
        .open_in_place(nonce, ring::aead::Aad::empty(), &mut buf)
        .map_err(|_| JwsError::Key)?;
    Ok(plain.to_vec())
}

fn aead_key(key: &DerivedKey) -> Result<ring::aead::LessSafeKey, JwsError> {
    let unbound =
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key.0).map_err(|_| JwsError::Key)?;
    Ok(ring::aead::LessSafeKey::new(unbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pair: KeyPair) -> KeySet {
        let public = pair.public.clone();
        KeySet {
            signer: Arc::new(pair),
            published: vec![public],
        }
    }

    #[test]
    fn tokens_verify_only_with_our_key_our_algorithm_and_the_expected_type() {
        let (pair, der) = KeyPair::generate().unwrap();
        let again = KeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(again.public, pair.public);
        let keys = set(pair);
        let claims = json!({"sub": "u1", "n": 1});
        let token = keys.signer.sign("at+jwt", &claims).unwrap();
        let got = keys.verify(&token, "at+jwt").unwrap();
        assert_eq!(got.get("sub"), Some(&json!("u1")));
        assert_eq!(keys.verify(&token, "logout+jwt"), Err(JwsError::Type));

        // A changed payload, `alg: none`, HMAC and another key's signature all fail.
        let (h, rest) = token.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let forged = format!(
            "{h}.{}.{s}",
            B64.encode(json!({"sub": "u2", "n": 1}).to_string())
        );
        assert_eq!(keys.verify(&forged, "at+jwt"), Err(JwsError::Signature));
        let none = format!(
            "{}.{}.",
            B64.encode(
                json!({"alg": "none", "typ": "at+jwt", "kid": keys.signer.kid()}).to_string()
            ),
            B64.encode(claims.to_string())
        );
        assert_eq!(keys.verify(&none, "at+jwt"), Err(JwsError::Algorithm));
        let hs = format!(
            "{}.{}.{s}",
            B64.encode(
                json!({"alg": "HS256", "typ": "at+jwt", "kid": keys.signer.kid()}).to_string()
            ),
            B64.encode(claims.to_string())
        );
        assert_eq!(keys.verify(&hs, "at+jwt"), Err(JwsError::Algorithm));
        let (other, _) = KeyPair::generate().unwrap();
        let foreign = other.sign("at+jwt", &claims).unwrap();
        assert_eq!(keys.verify(&foreign, "at+jwt"), Err(JwsError::UnknownKey));
        // Another key claiming our kid.
        let mut lying = set(other);
        lying.published = keys.published.clone();
        let (h2, rest2) = foreign.split_once('.').unwrap();
        let _ = h2;
        let relabelled = format!(
            "{}.{rest2}",
            B64.encode(json!({"alg": ALG, "typ": "at+jwt", "kid": keys.signer.kid()}).to_string())
        );
        assert_eq!(keys.verify(&relabelled, "at+jwt"), Err(JwsError::Signature));
        assert_eq!(keys.verify("a.b", "at+jwt"), Err(JwsError::Malformed));
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_server_key() {
        let k1 = crate::keys::ServerKey::from_setting(&"a".repeat(40)).unwrap();
        let k2 = crate::keys::ServerKey::from_setting(&"b".repeat(40)).unwrap();
        let sealed = seal(&k1.derive("signing-keys"), b"private").unwrap();
        assert_eq!(
            open(&k1.derive("signing-keys"), &sealed).unwrap(),
            b"private"
        );
        assert!(open(&k2.derive("signing-keys"), &sealed).is_err());
        assert!(open(&k1.derive("other"), &sealed).is_err());
    }

    #[test]
    fn the_jwk_round_trips_and_its_kid_is_the_thumbprint() {
        let (pair, _) = KeyPair::generate().unwrap();
        let jwk = pair.public.jwk();
        assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), pair.public);
        assert_eq!(jwk["kid"].as_str().unwrap().len(), 43);
    }
}
