//! Who may call the operator API (`/api/operator/*`): operator keys (`tenantctl operator-key`)
//! and the vendor's confidential apps granted operator scopes (client-credentials tokens); their
//! scopes, allowed source networks, rate, the operator audit log, and idempotent creations.
//!
//! A key is `tdo_<id>.<secret>`: 256 random bits shown once, stored as SHA-256 and compared in
//! constant time, found by its id without a scan.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use sha2::Digest;

use crate::directory::{Directory, OperatorAuditRow, OperatorKeyRow};
use crate::error::Fault;
use crate::service::fleet::Fleet;
use crate::service::oidc::machine;
use crate::state::AppState;

pub mod scope;
pub use scope::Scope;

/// Why the operator API refused a caller or a key operation.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No bearer credentials at all.
    #[error("send an operator key as Authorization: Bearer")]
    Unauthenticated,
    /// Unknown key, wrong secret, or a token that is not ours or has expired.
    #[error("the operator key is invalid")]
    InvalidKey,
    #[error("the operator key has expired; create a new one with `tenantctl operator-key create`")]
    Expired,
    #[error("the operator key was revoked")]
    Revoked,
    #[error("this operator key may not be used from this address")]
    AddressNotAllowed,
    #[error("this call needs the scope {0}")]
    InsufficientScope(&'static str),
    #[error("too many calls with this operator key")]
    Throttled { retry_after: u64 },
    #[error(
        "unknown scope {0:?}: use tenants:read, tenants:write, users:read, audit:read or backups:write"
    )]
    InvalidScope(String),
    #[error("invalid name: give 1 to 100 characters without control characters")]
    InvalidName,
    #[error("invalid duration {0:?}: give a number with s, m, h, d or w (e.g. 90d), or `never`")]
    InvalidDuration(String),
    #[error("invalid network {0:?}: give a CIDR such as 203.0.113.0/24 or an address")]
    InvalidNetwork(String),
    #[error("no operator key {0:?}; `tenantctl operator-key list` shows them")]
    UnknownKey(String),
    #[error("invalid Idempotency-Key: give 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    #[error("this Idempotency-Key was used for a different request; use a new key")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still running; retry in a moment")]
    IdempotencyKeyInProgress,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(OperatorError);

impl OperatorError {
    /// A stable code (`tenantctl --json` and the API).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidKey => "invalid_operator_key",
            Self::Expired => "operator_key_expired",
            Self::Revoked => "operator_key_revoked",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Throttled { .. } => "too_many_requests",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidName => "invalid_name",
            Self::InvalidDuration(_) => "invalid_duration",
            Self::InvalidNetwork(_) => "invalid_network",
            Self::UnknownKey(_) => "unknown_operator_key",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            Self::Fault(_) => "error",
        }
    }
}

pub type OperatorResult<T> = Result<T, OperatorError>;

/// Prefix of every operator key.
pub const KEY_PREFIX: &str = "tdo_";

/// An operator key, to be shown once; never printed by `Debug`.
#[derive(Clone)]
pub struct OperatorSecret(pub String);

impl std::fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorSecret(..)")
    }
}

/// What an operator asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    /// Comma-separated scopes; empty: `tenants:read`.
    pub scopes: String,
    /// `90d`, `12h`, …, or `never`; empty: 90 days.
    pub expires_in: String,
    pub allow_from: Vec<String>,
}

/// A key as operators see it: never the secret or its hash.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub allow_from: Vec<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<&OperatorKeyRow> for KeyView {
    fn from(k: &OperatorKeyRow) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k
                .scopes
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect(),
            allow_from: k.allowed_cidrs.clone(),
            expires_at: k.expires_at,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Default life of a key.
const DEFAULT_LIFE_SECS: i64 = 90 * 86_400;

/// `90d`, `12h`, `30m`, `45s`, `2w` in seconds; `never` is `None`.
pub fn parse_duration(raw: &str) -> OperatorResult<Option<i64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Some(DEFAULT_LIFE_SECS));
    }
    if raw == "never" {
        return Ok(None);
    }
    let bad = || OperatorError::InvalidDuration(raw.to_owned());
    let split = raw.len() - raw.chars().last().map_or(0, char::len_utf8);
    let (n, unit) = raw.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(secs) if n > 0 && secs <= 10 * 365 * 86_400 => Ok(Some(secs)),
        _ => Err(bad()),
    }
}

fn parse_network(raw: &str) -> OperatorResult<ipnet::IpNet> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| raw.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| OperatorError::InvalidNetwork(raw.to_owned()))
}

/// Creates a key; returns it with its secret (shown once).
pub async fn create_key(
    directory: &Directory,
    new: &NewKey,
    now: i64,
) -> OperatorResult<(KeyView, OperatorSecret)> {
    // Everything is checked before anything is written.
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(OperatorError::InvalidName);
    }
    let mut scopes = Scope::parse_list(&new.scopes).map_err(OperatorError::InvalidScope)?;
    if scopes.is_empty() {
        scopes.push(Scope::TenantsRead);
    }
    let life = parse_duration(&new.expires_in)?;
    let networks = new
        .allow_from
        .iter()
        .map(|n| parse_network(n).map(|n| n.to_string()))
        .collect::<OperatorResult<Vec<_>>>()?;
    let secret = tenant_runtime::secret::generate()?;
    let row = OperatorKeyRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        name: name.to_owned(),
        secret_hash: hex::encode(secret.hash),
        scopes: Scope::join(&scopes),
        allowed_cidrs: networks,
        expires_at: life.map(|l| now + l),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    directory.insert_operator_key(&row).await?;
    let key = OperatorSecret(format!("{KEY_PREFIX}{}.{}", row.id, secret.token));
    Ok((KeyView::from(&row), key))
}

pub async fn list_keys(directory: &Directory) -> OperatorResult<Vec<KeyView>> {
    Ok(directory
        .operator_keys()
        .await?
        .iter()
        .map(KeyView::from)
        .collect())
}

/// Revokes a key at once (every node refuses it from its next call).
pub async fn revoke_key(directory: &Directory, id: &str) -> OperatorResult<KeyView> {
    let id = id.strip_prefix(KEY_PREFIX).unwrap_or(id);
    let id = id.split('.').next().unwrap_or(id);
    let Some(row) = directory.operator_key(id).await? else {
        return Err(OperatorError::UnknownKey(id.to_owned()));
    };
    directory.revoke_operator_key(id).await?;
    let row = directory.operator_key(id).await?.unwrap_or(row);
    Ok(KeyView::from(&row))
}

/// An authenticated caller of the operator API.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The key id, or `client:<client id>`: what the operator audit log records.
    pub actor: String,
    /// The key's or the app's name.
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Operator {
    /// Refuses a call the caller's scopes do not cover.
    pub fn require(&self, scope: Scope) -> OperatorResult<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(OperatorError::InsufficientScope(scope.as_str()))
        }
    }
}

fn secret_matches(stored_hex: &str, presented: &str) -> bool {
    let presented = hex::encode(tenant_runtime::secret::hash(presented));
    presented.len() == stored_hex.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            presented.as_bytes(),
            stored_hex.as_bytes(),
        ))
}

/// The caller behind a bearer credential from `client`: an operator key, or a client-credentials
/// access token; then its rate.
pub async fn authenticate(
    state: &AppState,
    bearer: Option<&str>,
    client: Option<IpAddr>,
) -> OperatorResult<Operator> {
    let token = bearer.ok_or(OperatorError::Unauthenticated)?;
    let now = state.now();
    let operator = match token.strip_prefix(KEY_PREFIX) {
        Some(rest) => {
            let (id, secret) = rest.split_once('.').ok_or(OperatorError::InvalidKey)?;
            if id.len() > 64 {
                return Err(OperatorError::InvalidKey);
            }
            let row = state
                .directory
                .operator_key(id)
                .await?
                .ok_or(OperatorError::InvalidKey)?;
            if !secret_matches(&row.secret_hash, secret) {
                return Err(OperatorError::InvalidKey);
            }
            // Only the key's holder learns why it no longer works.
            if row.revoked_at.is_some() {
                return Err(OperatorError::Revoked);
            }
            if row.expires_at.is_some_and(|e| e <= now) {
                return Err(OperatorError::Expired);
            }
            if !row.allowed_cidrs.is_empty() {
                let allowed = client.is_some_and(|ip| {
                    row.allowed_cidrs.iter().any(|c| {
                        c.parse::<ipnet::IpNet>()
                            .is_ok_and(|n| n.contains(&canonical(ip)))
                    })
                });
                if !allowed {
                    return Err(OperatorError::AddressNotAllowed);
                }
            }
            if let Err(e) = state.directory.touch_operator_key(&row.id, now).await {
                tracing::warn!(error = %e, "operator key use not recorded");
            }
            Operator {
                actor: row.id.clone(),
                name: row.name.clone(),
                scopes: Scope::parse_list(&row.scopes).unwrap_or_default(),
            }
        }
        None => {
            let (client, scopes) = machine::operator_client(state, token)
                .await?
                .ok_or(OperatorError::InvalidKey)?;
            Operator {
                actor: format!("client:{}", client.id),
                name: client.name,
                scopes,
            }
        }
    };
    state
        .operator_rate
        .take(&operator.actor, now)
        .map_err(|retry_after| OperatorError::Throttled { retry_after })?;
    Ok(operator)
}

/// The operator commands' view of this server, acting for `op` (named in the companies' own
/// audit logs).
pub fn fleet(state: &AppState, op: &Operator) -> Fleet {
    Fleet {
        directory: state.directory.clone(),
        router: state.tenants.clone(),
        config: state.config.clone(),
        clock: state.clock.clone(),
        node: state.cluster.node_id().to_owned(),
        via: Some(format!("{} ({})", op.name, op.actor)),
    }
}

/// An IPv4 address mapped into IPv6 is compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One call for the operator audit log.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<String>,
    pub tenant_slug: Option<String>,
    pub status: u16,
    pub ip: String,
    pub details: serde_json::Value,
}

/// Records a call in the directory's operator audit log. A failure to record is logged; the
/// call's answer stands.
pub async fn record(directory: &Directory, call: Call, now: i64) {
    let row = OperatorAuditRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        at: now,
        actor: call.actor,
        action: call.action,
        tenant_id: call.tenant_id,
        tenant_slug: call.tenant_slug,
        status: i64::from(call.status),
        ip: call.ip,
        details: call.details.to_string(),
    };
    if let Err(e) = directory.record_operator_call(&row).await {
        tracing::error!(error = %e, action = %row.action, "operator call not written to the operator audit log");
    }
}

// ---- idempotent creations ----------------------------------------------------------------------

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_SECS: i64 = 24 * 3600;
/// How long a retry waits for the first request under its key.
const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(30);
/// A claim left unfinished this long belongs to a request that died: it is given up.
const IDEMPOTENCY_ABANDONED_SECS: i64 = 300;

/// An answer kept under an Idempotency-Key: the status and the body as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Checks an Idempotency-Key header's value.
pub fn idempotency_key(raw: &str) -> OperatorResult<String> {
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OperatorError::InvalidIdempotencyKey);
    }
    Ok(raw.to_owned())
}

/// A request's fingerprint: SHA-256 of its canonical JSON (keys sorted), so the same body
/// with other spacing or key order is the same request.
pub fn request_hash(body: &serde_json::Value) -> String {
    hex::encode(sha2::Sha256::digest(body.to_string().as_bytes()))
}

/// Runs `work` once per `(actor, key)`: the first request claims the key and its answer is
/// kept; a retry with the same body gets that answer (waiting for it if the first is still
/// running), one with another body [`OperatorError::IdempotencyKeyReused`]. An answer of 5xx
/// is not kept, so a retry runs again. Returns the answer and whether it is a replay.
pub async fn idempotent<F, Fut>(
    state: &AppState,
    actor: &str,
    key: &str,
    hash: &str,
    work: F,
) -> OperatorResult<(Answer, bool)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Answer>,
{
    let started = std::time::Instant::now();
    loop {
        let now = state.now();
        let claimed = state
            .directory
            .claim_idempotency_key(actor, key, hash, now, now - IDEMPOTENCY_SECS)
            .await?;
        let Some(existing) = claimed else {
            let answer = work().await;
            if answer.status >= 500 {
                state
                    .directory
                    .release_idempotency_key(actor, key, now)
                    .await?;
            } else {
                state
                    .directory
                    .finish_idempotency_key(actor, key, answer.status, &answer.body)
                    .await?;
            }
            return Ok((answer, false));
        };
        if existing.request_hash != hash {
            return Err(OperatorError::IdempotencyKeyReused);
        }
        if let Some((status, body)) = existing.answer {
            return Ok((Answer { status, body }, true));
        }
        if now - existing.created_at > IDEMPOTENCY_ABANDONED_SECS {
            state
                .directory
                .release_idempotency_key(actor, key, existing.created_at)
                .await?;
            continue;
        }
        if started.elapsed() > IDEMPOTENCY_WAIT {
            return Err(OperatorError::IdempotencyKeyInProgress);
        }
        // The first request is still working: wait for its answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_durations_parse_strictly() {
        assert_eq!(
            Scope::parse_list("tenants:write, tenants:read,tenants:read").unwrap(),
            vec![Scope::TenantsRead, Scope::TenantsWrite]
        );
        assert_eq!(
            Scope::parse_list("tenants:admin"),
            Err("tenants:admin".to_owned())
        );
        assert_eq!(parse_duration("90d").unwrap(), Some(90 * 86_400));
        assert_eq!(parse_duration("2s").unwrap(), Some(2));
        assert_eq!(parse_duration("never").unwrap(), None);
        assert_eq!(parse_duration("").unwrap(), Some(DEFAULT_LIFE_SECS));
        for bad in ["0d", "-1d", "5", "d", "3y", "99999999999w", "1é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network("203.0.113.9").unwrap().to_string(),
            "203.0.113.9/32"
        );
        assert!(parse_network("10.0.0.0/33").is_err());
    }

    #[test]
    fn keys_never_print_and_match_only_their_hash() {
        let s = tenant_runtime::secret::generate().unwrap();
        let stored = hex::encode(s.hash);
        assert!(secret_matches(&stored, &s.token));
        assert!(!secret_matches(&stored, "nope"));
        let key = OperatorSecret(format!("tdo_x.{}", s.token));
        assert_eq!(format!("{key:?}"), "OperatorSecret(..)");
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_and_bodies_hash_canonically() {
        assert!(idempotency_key("order-42").is_ok());
        for bad in ["", "has space", "é", &"x".repeat(256)] {
            assert!(idempotency_key(bad).is_err(), "{bad:?}");
        }
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "a": 2, "b": 1 }"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
    }
}
