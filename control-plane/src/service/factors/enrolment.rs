//! What adding a factor and checking one share: who must have one, the audit entry of a new
//! factor, a new TOTP factor waiting for its first code, recovery codes as typed.

use serde_json::json;
use sha2::{Digest, Sha256};
use tenant_runtime::TenantId;
use tenant_runtime::store::audit;
use tenant_runtime::store::factors::{self, Factor};
use tenant_runtime::store::policy::MfaRequired;
use tenant_runtime::store::users::Role;

use super::totp;
use crate::error::Fault;
use crate::state::AppState;

/// How long a passkey ceremony, or a sign-in halfway through, stays open.
pub const CEREMONY_TTL_SECS: i64 = 300;

/// Whether the company's policy requires a second factor of a person with this role.
pub fn required(rule: MfaRequired, role: Role) -> bool {
    match rule {
        MfaRequired::Off => false,
        MfaRequired::Admins => role == Role::Admin,
        MfaRequired::All => true,
    }
}

/// A new unconfirmed TOTP factor of a user.
pub async fn pending_totp(
    state: &AppState,
    tenant: &TenantId,
    user_id: &str,
    email: &str,
    name: String,
) -> Result<totp::Enrolment, Fault> {
    let enrolment = totp::generate(state, &state.config.product_name, email)?;
    let (user_id, id, sealed, now) = (
        user_id.to_owned(),
        enrolment.id.clone(),
        enrolment.sealed.clone(),
        state.now(),
    );
    state
        .tenants
        .write(tenant, move |tx| {
            factors::add_totp(tx, &user_id, &id, &name, &sealed, now)
        })
        .await?;
    Ok(enrolment)
}

/// The audit entry of a new factor.
pub fn enrolled(
    tx: &tenant_runtime::WriteTx<'_>,
    user_id: &str,
    f: &Factor,
    now: i64,
) -> tenant_runtime::Result<()> {
    audit::record(
        tx,
        Some(user_id),
        "factor.enrolled",
        Some(user_id),
        json!({"factor": f.id, "kind": f.kind, "name": f.name}),
        now,
    )
    .map(|_| ())
}

/// A recovery code as typed: case, spaces and dashes do not matter.
pub fn recovery_hash(code: &str) -> Option<[u8; 32]> {
    let norm: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (norm.len() == 16 && norm.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Sha256::digest(format!("recovery-code:{norm}").as_bytes()).into())
}
