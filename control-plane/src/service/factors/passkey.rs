//! Passkeys and security keys (WebAuthn Level 2, through webauthn-rs). The relying party is
//! the public URL: its host is the RP id, the URL itself the only origin accepted. User
//! verification is required, so a passkey is two factors in one (`hwk` when bound to one
//! device, `swk` when it may be synced). A ceremony's state stays on the server side: in the
//! tenant file next to the token that carries the ceremony, or sealed with a server key.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tenant_runtime::TenantId;
use tenant_runtime::store::factors::{Kind, Stored};
use tenant_runtime::store::sessions::Method;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use crate::error::Fault;
use crate::keys::jws;
use crate::state::AppState;

fn fault(what: &str, e: impl std::fmt::Display) -> Fault {
    Fault::Unexpected(anyhow::anyhow!("{what}: {e}"))
}

/// The relying party of this installation: the public URL's domain. A public URL with an IP
/// address has none (WebAuthn scopes credentials to domains), so passkeys are unavailable.
pub fn relying_party(state: &AppState) -> Result<Webauthn, Fault> {
    let origin = &state.config.public_url;
    let Some(url::Host::Domain(rp_id)) = origin.host() else {
        return Err(Fault::PasskeysUnavailable);
    };
    WebauthnBuilder::new(rp_id, origin)
        .map_err(|_| Fault::PasskeysUnavailable)?
        .rp_name(&state.config.product_name)
        .build()
        .map_err(|_| Fault::PasskeysUnavailable)
}

/// The WebAuthn user handle of a user: their id when it is a UUID, else derived from it.
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let d = Sha256::digest(user_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Uuid::from_bytes(b)
    })
}

fn passkeys(mine: &[Stored]) -> Vec<Passkey> {
    mine.iter()
        .filter(|f| f.factor.kind == Kind::Webauthn)
        .filter_map(|f| serde_json::from_str(f.credential.as_deref()?).ok())
        .collect()
}

/// The method a passkey's use proves.
fn method(backup_eligible: bool) -> Method {
    if backup_eligible {
        Method::Swk
    } else {
        Method::Hwk
    }
}

/// Starts registering a passkey for a user who has `mine`: the browser's options, and the
/// ceremony's state (JSON) to keep until the answer comes.
pub fn registration_options(
    state: &AppState,
    user_id: &str,
    email: &str,
    name: &str,
    mine: &[Stored],
) -> Result<(Value, String), Fault> {
    let exclude = passkeys(mine).iter().map(|p| p.cred_id().clone()).collect();
    let (options, reg) = relying_party(state)?
        .start_passkey_registration(user_handle(user_id), email, name, Some(exclude))
        .map_err(|e| fault("webauthn", e))?;
    let mut options = serde_json::to_value(options).map_err(|e| fault("webauthn", e))?;
    // A resident (discoverable) key, so the passkey alone can sign in later without the
    // server naming any credential first.
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
        sel["residentKey"] = json!("required");
        sel["requireResidentKey"] = json!(true);
    }
    let reg = serde_json::to_string(&reg).map_err(|e| fault("webauthn", e))?;
    Ok((options, reg))
}

/// A verified new passkey: its credential id and what to store.
#[derive(Debug)]
pub struct Registered {
    pub credential_id: Vec<u8>,
    pub credential: String,
}

/// Checks the browser's answer to a registration; `None` when it does not verify.
pub fn register(
    state: &AppState,
    reg_state: &str,
    answer: &Value,
) -> Result<Option<Registered>, Fault> {
    let Ok(reg) = serde_json::from_str::<PasskeyRegistration>(reg_state) else {
        return Ok(None);
    };
    let Ok(answer) = serde_json::from_value::<RegisterPublicKeyCredential>(answer.clone()) else {
        return Ok(None);
    };
    let Ok(passkey) = relying_party(state)?.finish_passkey_registration(&answer, &reg) else {
        return Ok(None);
    };
    Ok(Some(Registered {
        credential_id: passkey.cred_id().to_vec(),
        credential: serde_json::to_string(&passkey).map_err(|e| fault("webauthn", e))?,
    }))
}

/// Starts a second step with one of the user's passkeys: options and state.
pub fn second_factor_options(state: &AppState, mine: &[Stored]) -> Result<(Value, String), Fault> {
    let keys = passkeys(mine);
    let (options, auth) = relying_party(state)?
        .start_passkey_authentication(&keys)
        .map_err(|e| fault("webauthn", e))?;
    let options = serde_json::to_value(options).map_err(|e| fault("webauthn", e))?;
    let auth = serde_json::to_string(&auth).map_err(|e| fault("webauthn", e))?;
    Ok((options, auth))
}

/// A passkey's use that verified: which factor, what it proves, and its new state to store.
#[derive(Debug)]
pub struct Used {
    pub factor_id: String,
    pub method: Method,
    pub credential: Option<String>,
}

/// Checks an assertion against the user's passkeys (`mine`) and the ceremony's state.
pub fn check_second_factor(
    state: &AppState,
    auth_state: &str,
    mine: &[Stored],
    answer: &Value,
) -> Result<Option<Used>, Fault> {
    let Ok(auth) = serde_json::from_str::<PasskeyAuthentication>(auth_state) else {
        return Ok(None);
    };
    let Ok(answer) = serde_json::from_value::<PublicKeyCredential>(answer.clone()) else {
        return Ok(None);
    };
    let Ok(result) = relying_party(state)?.finish_passkey_authentication(&answer, &auth) else {
        return Ok(None);
    };
    Ok(used(mine, &result.cred_id()[..], &result))
}

fn used(
    mine: &[Stored],
    cred_id: &[u8],
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Option<Used> {
    mine.iter()
        .filter(|f| f.factor.kind == Kind::Webauthn)
        .find_map(|f| {
            let mut pk: Passkey = serde_json::from_str(f.credential.as_deref()?).ok()?;
            if pk.cred_id()[..] != *cred_id {
                return None;
            }
            let changed = pk.update_credential(result) == Some(true);
            Some(Used {
                factor_id: f.factor.id.clone(),
                method: method(result.backup_eligible()),
                credential: changed.then(|| serde_json::to_string(&pk).ok()).flatten(),
            })
        })
}

/// Starts a passkey-first sign-in: options naming no credential (the browser offers the
/// person's discoverable passkeys for this site), and the state.
pub fn discoverable_options(state: &AppState) -> Result<(Value, String), Fault> {
    let (options, auth) = relying_party(state)?
        .start_discoverable_authentication()
        .map_err(|e| fault("webauthn", e))?;
    let mut options = serde_json::to_value(options).map_err(|e| fault("webauthn", e))?;
    // Asked for with a button, not from the autofill of the email field.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    let auth = serde_json::to_string(&auth).map_err(|e| fault("webauthn", e))?;
    Ok((options, auth))
}

/// The credential id an assertion names (to find its passkey).
pub fn credential_id(answer: &Value) -> Option<Vec<u8>> {
    let answer = serde_json::from_value::<PublicKeyCredential>(answer.clone()).ok()?;
    Some(answer.get_credential_id().to_vec())
}

/// Checks a passkey-first assertion against the passkey its credential id found.
pub fn check_discoverable(
    state: &AppState,
    auth_state: &str,
    found: &Stored,
    answer: &Value,
) -> Result<Option<Used>, Fault> {
    let Ok(auth) = serde_json::from_str::<DiscoverableAuthentication>(auth_state) else {
        return Ok(None);
    };
    let Ok(answer) = serde_json::from_value::<PublicKeyCredential>(answer.clone()) else {
        return Ok(None);
    };
    let Some(pk) = found
        .credential
        .as_deref()
        .and_then(|c| serde_json::from_str::<Passkey>(c).ok())
    else {
        return Ok(None);
    };
    let rp = relying_party(state)?;
    // The user handle the authenticator returns must be the passkey owner's.
    match rp.identify_discoverable_authentication(&answer) {
        Ok((handle, _)) if handle == user_handle(&found.factor.user_id) => {}
        _ => return Ok(None),
    }
    let Ok(result) = rp.finish_discoverable_authentication_v2(&answer, auth, &pk) else {
        return Ok(None);
    };
    Ok(used(
        std::slice::from_ref(found),
        &result.cred_id()[..],
        &result,
    ))
}

/// A ceremony handed to a browser that must not learn which company holds an address: the
/// company and the token's secret, sealed.
pub fn seal_ticket(
    state: &AppState,
    tenant: Option<&TenantId>,
    secret: &str,
) -> Result<String, Fault> {
    let plain = json!({"t": tenant.map(TenantId::as_str), "s": secret}).to_string();
    jws::seal(&state.keys.derive("passkey-ticket"), plain.as_bytes()).map_err(|e| fault("seal", e))
}

/// The company and secret of a sealed ticket, if it is one of ours.
pub fn open_ticket(state: &AppState, ticket: &str) -> Option<(Option<TenantId>, String)> {
    let plain = jws::open(&state.keys.derive("passkey-ticket"), ticket).ok()?;
    let v: Value = serde_json::from_slice(&plain).ok()?;
    let tenant = match v.get("t")?.as_str() {
        Some(t) => Some(TenantId::parse(t).ok()?),
        None => None,
    };
    Some((tenant, v.get("s")?.as_str()?.to_owned()))
}
