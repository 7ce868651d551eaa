//! An OpenID Connect provider as a relying party sees it: its discovery document, its keys,
//! its token endpoint, and the checks of its ID tokens. Only RS256 is accepted (what Entra ID,
//! Okta, Google and Keycloak sign with by default): `alg: none`, HMAC keyed with the public key
//! and keys the provider did not publish all fail.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

use crate::state::AppState;

/// How long a discovery document or key set is used before it is fetched again.
const CACHE_SECS: i64 = 3600;
/// A key set is refetched for an unknown key at most this often.
const REFETCH_SECS: i64 = 10;
/// Clock difference tolerated between the provider and us.
pub const SKEW_SECS: i64 = 120;

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// The endpoints a sign-in needs, from the provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

async fn get_json(url: &str) -> Result<Value, String> {
    let parsed = url::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("{url} is not an http(s) URL"));
    }
    let res = http()
        .get(parsed)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url} could not be fetched: {}", without_url(e)))?;
    if !res.status().is_success() {
        return Err(format!("{url} answered {}", res.status()));
    }
    res.json()
        .await
        .map_err(|_| format!("{url} did not answer JSON"))
}

/// A document of at most `max` bytes at an http(s) URL, as text (a SAML IdP's metadata).
pub async fn get_text(url: &str, max: usize) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("{url} is not an http(s) URL"));
    }
    let mut res = http()
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("{url} could not be fetched: {}", without_url(e)))?;
    if !res.status().is_success() {
        return Err(format!("{url} answered {}", res.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("{url} could not be read: {}", without_url(e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("{url} answered more than {} KiB", max / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("{url} did not answer text"))
}

fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        // The error without its URL (which may carry a code): its kind and cause.
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text = format!("{text}: {c}");
            cause = c.source();
        }
        text
    }
}

/// The discovery document of `issuer` (cached; `fresh` fetches it now). Its `issuer` must be
/// exactly the one configured.
pub async fn metadata(state: &AppState, issuer: &str, fresh: bool) -> Result<Metadata, String> {
    let now = state.now();
    let cached = state
        .idp_keys
        .metadata
        .get(issuer)
        .filter(|e| !fresh && e.1 + CACHE_SECS > now)
        .map(|e| e.0.clone());
    let doc = match cached {
        Some(d) => d,
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let d = Arc::new(get_json(&url).await?);
            state
                .idp_keys
                .metadata
                .insert(issuer.to_owned(), (d.clone(), now));
            d
        }
    };
    let field = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the discovery document has no {k}"))
    };
    let m = Metadata {
        issuer: field("issuer")?,
        authorization_endpoint: field("authorization_endpoint")?,
        token_endpoint: field("token_endpoint")?,
        jwks_uri: field("jwks_uri")?,
    };
    if m.issuer != issuer {
        return Err(format!(
            "the discovery document names the issuer {}, not {issuer}",
            m.issuer
        ));
    }
    Ok(m)
}

/// The provider's published keys (cached; `refetch` asks again unless just fetched).
pub async fn key_set(
    state: &AppState,
    jwks_uri: &str,
    refetch: bool,
) -> Result<Arc<Value>, String> {
    let now = state.now();
    if let Some(e) = state.idp_keys.key_sets.get(jwks_uri) {
        let fresh = e.1 + CACHE_SECS > now;
        // Tokens naming unknown keys cannot make us fetch more than every few seconds.
        let held_back = state
            .idp_keys
            .refetched
            .get(jwks_uri)
            .is_some_and(|at| *at + REFETCH_SECS > now);
        if fresh && (!refetch || held_back) {
            return Ok(e.0.clone());
        }
    }
    if refetch {
        state.idp_keys.refetched.insert(jwks_uri.to_owned(), now);
    }
    let set = Arc::new(get_json(jwks_uri).await?);
    if !set.get("keys").is_some_and(Value::is_array) {
        return Err(format!("{jwks_uri} is not a key set"));
    }
    state
        .idp_keys
        .key_sets
        .insert(jwks_uri.to_owned(), (set.clone(), now));
    Ok(set)
}

/// Usable signing keys in a key set.
pub fn rsa_key_count(set: &Value) -> usize {
    keys(set).count()
}

fn keys(set: &Value) -> impl Iterator<Item = &Value> {
    set.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|k| {
            k.get("kty").and_then(Value::as_str) == Some("RSA")
                && k.get("use").and_then(Value::as_str).unwrap_or("sig") == "sig"
                && k.get("alg").and_then(Value::as_str).unwrap_or("RS256") == "RS256"
        })
}

/// Trades the code for tokens; the ID token.
pub async fn exchange(
    meta: &Metadata,
    client_id: &str,
    client_secret: &str,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<String, String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let res = http()
        .post(&meta.token_endpoint)
        .basic_auth(enc(client_id), Some(enc(client_secret)))
        .header("accept", "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(|e| format!("token endpoint: {}", without_url(e)))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let err = body.get("error").and_then(Value::as_str).unwrap_or("?");
        return Err(format!("token endpoint answered {status} ({err})"));
    }
    body.get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the token response has no id_token".into())
}

/// Why an ID token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("not a signed token")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("signed by a key the provider does not publish")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("wrong authorized party")]
    AuthorizedParty,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("wrong nonce")]
    Nonce,
    #[error("no subject")]
    Subject,
    #[error("the provider's keys could not be fetched")]
    KeysUnavailable,
}

/// What a checked ID token says about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// A compact JWS taken apart: header, claims, the signed input and the signature.
struct Parts<'a> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signed: &'a str,
    sig: Vec<u8>,
}

fn parts(token: &str) -> Result<Parts<'_>, IdTokenError> {
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(IdTokenError::Malformed);
    };
    let obj = |part: &str| -> Result<Map<String, Value>, IdTokenError> {
        let bytes = B64.decode(part).map_err(|_| IdTokenError::Malformed)?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(IdTokenError::Malformed),
        }
    };
    let sig = B64.decode(s).map_err(|_| IdTokenError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    Ok(Parts {
        header: obj(h)?,
        claims: obj(p)?,
        signed,
        sig,
    })
}

fn rsa_verify(jwk: &Value, msg: &[u8], sig: &[u8]) -> bool {
    let part = |k: &str| {
        jwk.get(k)
            .and_then(Value::as_str)
            .and_then(|v| B64.decode(v).ok())
    };
    let (Some(n), Some(e)) = (part("n"), part("e")) else {
        return false;
    };
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .is_ok()
}

/// The key of `kid` in `set` (or its only key when the token names none).
fn find_key<'a>(set: &'a Value, kid: Option<&str>) -> Option<&'a Value> {
    let mut candidates = keys(set);
    match kid {
        Some(kid) => candidates.find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)),
        None => {
            let all: Vec<&Value> = candidates.collect();
            (all.len() == 1).then(|| all[0])
        }
    }
}

/// Checks `token` as an ID token of the provider `meta` for `client_id` and `nonce`: its
/// signature with the provider's published keys (refetched once for an unknown key), `iss`,
/// `aud`, `azp`, `exp`, `iat` and `nonce`.
pub async fn verify(
    state: &AppState,
    meta: &Metadata,
    client_id: &str,
    nonce: &str,
    token: &str,
) -> Result<Person, IdTokenError> {
    let Parts {
        header,
        claims,
        signed,
        sig,
    } = parts(token)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(IdTokenError::Algorithm);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let mut set = key_set(state, &meta.jwks_uri, false)
        .await
        .map_err(|_| IdTokenError::KeysUnavailable)?;
    if find_key(&set, kid).is_none() {
        set = key_set(state, &meta.jwks_uri, true)
            .await
            .map_err(|_| IdTokenError::KeysUnavailable)?;
    }
    let key = find_key(&set, kid).ok_or(IdTokenError::UnknownKey)?;
    if !rsa_verify(key, signed.as_bytes(), &sig) {
        return Err(IdTokenError::Signature);
    }
    check_claims(&claims, meta, client_id, nonce, state.now())
}

/// The claim checks of [`verify`], once the signature holds.
pub fn check_claims(
    claims: &Map<String, Value>,
    meta: &Metadata,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Person, IdTokenError> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(meta.issuer.as_str()) {
        return Err(IdTokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenError::Audience);
    }
    match text("azp") {
        Some(azp) if azp != client_id => return Err(IdTokenError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(IdTokenError::AuthorizedParty),
        _ => {}
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(IdTokenError::Expired)?;
    if exp + SKEW_SECS <= now {
        return Err(IdTokenError::Expired);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(IdTokenError::IssuedInFuture)?;
    if iat > now + SKEW_SECS {
        return Err(IdTokenError::IssuedInFuture);
    }
    let given = text("nonce").unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        nonce.as_bytes(),
    )) {
        return Err(IdTokenError::Nonce);
    }
    let sub = text("sub")
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(IdTokenError::Subject)?;
    // Some providers send `email_verified` as a string.
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Person {
        sub: sub.to_owned(),
        email: text("email").map(str::to_owned),
        email_verified,
        name: text("name").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Metadata {
        Metadata {
            issuer: "https://idp.test".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
        }
    }

    fn good() -> Map<String, Value> {
        match json!({"iss": "https://idp.test", "aud": "app", "exp": 2000, "iat": 1000,
                     "nonce": "n1", "sub": "s1", "email": "a@acme.test", "email_verified": true})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_claim_rule_refuses_its_forgery() {
        // (claim, value; null removes it) → the refusal.
        let cases = [
            ("iss", json!("https://other.test"), IdTokenError::Issuer),
            ("aud", json!("other"), IdTokenError::Audience),
            (
                "aud",
                json!(["app", "other"]),
                IdTokenError::AuthorizedParty,
            ),
            ("azp", json!("other"), IdTokenError::AuthorizedParty),
            ("exp", json!(1000), IdTokenError::Expired),
            ("exp", Value::Null, IdTokenError::Expired),
            ("iat", json!(5000), IdTokenError::IssuedInFuture),
            ("nonce", json!("n2"), IdTokenError::Nonce),
            ("nonce", Value::Null, IdTokenError::Nonce),
            ("sub", Value::Null, IdTokenError::Subject),
        ];
        assert!(check_claims(&good(), &meta(), "app", "n1", 1500).is_ok());
        for (claim, value, want) in cases {
            let mut c = good();
            if value.is_null() {
                c.remove(claim);
            } else {
                c.insert(claim.into(), value);
            }
            assert_eq!(
                check_claims(&c, &meta(), "app", "n1", 1500),
                Err(want),
                "{claim}"
            );
        }
        let mut c = good();
        c.insert("aud".into(), json!(["app", "other"]));
        c.insert("azp".into(), json!("app"));
        assert!(check_claims(&c, &meta(), "app", "n1", 1500).is_ok());
    }

    #[test]
    fn tokens_not_signed_with_rs256_are_malformed_or_refused() {
        let h = B64.encode(json!({"alg": "none"}).to_string());
        let p = B64.encode(good().len().to_string());
        assert_eq!(
            parts(&format!("{h}.{p}")).err().map(|e| e.to_string()),
            Some(IdTokenError::Malformed.to_string())
        );
    }
}
