//! The keys that sign tokens: made when first needed, stored sealed in the directory so every
//! node (and `tenantctl`) uses the same, rotated by `tenantctl keys rotate`. A new key is
//! published at once and signs from `signs_from`, once relying parties have had time to fetch
//! it; a key leaves the JWKS [`MAX_TOKEN_SECS`] after its successor started signing.

use std::sync::Arc;

use serde::Serialize;

use super::MAX_TOKEN_SECS;
use crate::directory::{Directory, SigningKeyRow};
use crate::error::Fault;
use crate::keys::ServerKey;
use crate::keys::jws::{self, ALG, KeyPair, KeySet, PublicKey};
use crate::state::AppState;

/// What the sealing key is derived for.
const SEALING: &str = "signing-keys";
/// How long a node keeps the key set before reading the directory again: a rotation made
/// elsewhere is seen within this time.
const RELOAD_SECS: i64 = 10;

/// A key as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    pub signs_from: i64,
    /// `next` (published, not signing yet), `signing`, `retiring` (published for tokens it
    /// signed), `retired`.
    pub state: &'static str,
}

fn key_error(e: jws::JwsError) -> Fault {
    Fault::Unexpected(anyhow::anyhow!("signing key: {e}"))
}

/// Index of the key that signs at `now`: the newest whose time has come.
fn signer_index(rows: &[SigningKeyRow], now: i64) -> Option<usize> {
    rows.iter().rposition(|k| k.signs_from <= now)
}

/// Whether a key is still in the JWKS: its last token was signed when the next key took
/// over, and may live [`MAX_TOKEN_SECS`] from then.
fn published(rows: &[SigningKeyRow], i: usize, now: i64) -> bool {
    match signer_index(rows, now) {
        Some(s) if i < s => rows[i + 1].signs_from + MAX_TOKEN_SECS > now,
        _ => true,
    }
}

fn state_of(rows: &[SigningKeyRow], i: usize, now: i64) -> &'static str {
    match signer_index(rows, now) {
        Some(s) if s == i => "signing",
        Some(s) if i > s => "next",
        None => "next",
        _ if published(rows, i, now) => "retiring",
        _ => "retired",
    }
}

/// Makes a new key row, sealed with the server key.
fn new_row(server: &ServerKey, now: i64, signs_from: i64) -> Result<SigningKeyRow, Fault> {
    let (pair, der) = KeyPair::generate().map_err(key_error)?;
    Ok(SigningKeyRow {
        kid: pair.kid().to_owned(),
        alg: ALG.to_owned(),
        public_jwk: pair.public.jwk().to_string(),
        sealed_key: jws::seal(&server.derive(SEALING), &der).map_err(key_error)?,
        created_at: now,
        signs_from,
    })
}

fn load(server: &ServerKey, rows: &[SigningKeyRow], now: i64) -> Result<Option<KeySet>, Fault> {
    let Some(s) = signer_index(rows, now) else {
        return Ok(None);
    };
    let der = jws::open(&server.derive(SEALING), &rows[s].sealed_key).map_err(|_| {
        Fault::Unexpected(anyhow::anyhow!(
            "signing key {} cannot be opened: this server's key (TENANTD_SECRET_KEY or \
             secret.key) is not the one it was sealed with",
            rows[s].kid
        ))
    })?;
    let signer = KeyPair::from_pkcs8(&der).map_err(key_error)?;
    let published = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| published(rows, *i, now))
        .filter_map(|(_, r)| {
            serde_json::from_str(&r.public_jwk)
                .ok()
                .and_then(|v| PublicKey::from_jwk(&v))
        })
        .collect();
    Ok(Some(KeySet {
        signer: Arc::new(signer),
        published,
    }))
}

/// The key set, from the node's cache or the directory; the first key is made on first need.
pub async fn keys(state: &AppState) -> Result<Arc<KeySet>, Fault> {
    let now = state.now();
    if let Some(k) = state.keyring.cached(now - RELOAD_SECS) {
        return Ok(k);
    }
    reload(state).await
}

/// The key set as the directory has it now (the JWKS is served from this, so a rotation is
/// published at once; and a token signed by a key this node has not seen yet triggers it, at
/// most once a second).
pub async fn fresh_keys(state: &AppState) -> Result<Arc<KeySet>, Fault> {
    let now = state.now();
    match state.keyring.cached(now) {
        Some(k) => Ok(k),
        None => reload(state).await,
    }
}

async fn reload(state: &AppState) -> Result<Arc<KeySet>, Fault> {
    let now = state.now();
    let mut rows = state.directory.signing_keys().await?;
    if signer_index(&rows, now).is_none() {
        let row = new_row(&state.keys, now, now)?;
        // Two nodes may both make one: both are published, and all sign with the same (the
        // newest by time, then kid) once they read the directory again.
        state.directory.insert_signing_key(&row).await?;
        tracing::info!(kid = %row.kid, "made the first token-signing key");
        rows = state.directory.signing_keys().await?;
    }
    let set = load(&state.keys, &rows, now)?
        .ok_or_else(|| Fault::Unexpected(anyhow::anyhow!("no signing key")))?;
    let set = Arc::new(set);
    state.keyring.store(set.clone(), now);
    Ok(set)
}

/// The JWKS as the directory has it now: a rotation is published at once. Only public keys
/// are read; the first key is made if there is none yet.
pub async fn jwks(state: &AppState) -> Result<serde_json::Value, Fault> {
    let now = state.now();
    let mut rows = state.directory.signing_keys().await?;
    if signer_index(&rows, now).is_none() {
        keys(state).await?;
        rows = state.directory.signing_keys().await?;
    }
    let keys: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| published(&rows, *i, now))
        .filter_map(|(_, r)| {
            serde_json::from_str::<serde_json::Value>(&r.public_jwk)
                .ok()
                .and_then(|v| PublicKey::from_jwk(&v))
                .map(|k| k.jwk())
        })
        .collect();
    Ok(serde_json::json!({ "keys": keys }))
}

/// Every key with its state, oldest first (`tenantctl keys list`).
pub async fn list(directory: &Directory, now: i64) -> Result<Vec<KeyView>, Fault> {
    let rows = directory.signing_keys().await?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, r)| KeyView {
            kid: r.kid.clone(),
            alg: r.alg.clone(),
            created_at: r.created_at,
            signs_from: r.signs_from,
            state: state_of(&rows, i, now),
        })
        .collect())
}

/// Publishes a new key now; it signs from `now + sign_after_secs`, and never before the key
/// signing now. A key published earlier that has not signed yet is replaced (it signed
/// nothing); keys that left the JWKS are deleted. Returns the new key.
pub async fn rotate(
    directory: &Directory,
    server: &ServerKey,
    now: i64,
    sign_after_secs: i64,
) -> Result<KeyView, Fault> {
    let rows = directory.signing_keys().await?;
    // A key that could not be opened would stop every node from signing: check first.
    if let Some(s) = signer_index(&rows, now) {
        load(server, &rows[..=s], now)?;
    }
    for (i, r) in rows.iter().enumerate() {
        if state_of(&rows, i, now) == "next" {
            directory.delete_signing_key(&r.kid).await?;
        }
    }
    let current = signer_index(&rows, now).map_or(i64::MIN, |s| rows[s].signs_from);
    let signs_from = (now + sign_after_secs.max(0)).max(current + 1);
    let row = new_row(server, now, signs_from)?;
    directory.insert_signing_key(&row).await?;
    let rows = directory.signing_keys().await?;
    for (i, r) in rows.iter().enumerate() {
        if state_of(&rows, i, now) == "retired" {
            directory.delete_signing_key(&r.kid).await?;
        }
    }
    list(directory, now)
        .await?
        .into_iter()
        .find(|k| k.kid == row.kid)
        .ok_or_else(|| Fault::Unexpected(anyhow::anyhow!("the new key is not in the directory")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, signs_from: i64) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.to_owned(),
            alg: ALG.to_owned(),
            public_jwk: String::new(),
            sealed_key: String::new(),
            created_at: 0,
            signs_from,
        }
    }

    #[test]
    fn a_key_signs_from_its_time_and_leaves_the_jwks_after_its_successors_tokens_expire() {
        let rows = vec![row("a", 0), row("b", 1000)];
        assert_eq!(state_of(&rows, 0, 500), "signing");
        assert_eq!(state_of(&rows, 1, 500), "next");
        assert_eq!(state_of(&rows, 0, 1000), "retiring");
        assert_eq!(state_of(&rows, 1, 1000), "signing");
        assert_eq!(state_of(&rows, 0, 1000 + MAX_TOKEN_SECS - 1), "retiring");
        assert_eq!(state_of(&rows, 0, 1000 + MAX_TOKEN_SECS), "retired");
        let three = vec![row("a", 0), row("b", 1000), row("c", 1500)];
        assert_eq!(state_of(&three, 0, 1600), "retiring");
        assert_eq!(state_of(&three, 1, 1600), "retiring");
        assert_eq!(state_of(&three, 0, 1000 + MAX_TOKEN_SECS), "retired");
        assert_eq!(state_of(&three, 1, 1000 + MAX_TOKEN_SECS), "retiring");
    }
}
