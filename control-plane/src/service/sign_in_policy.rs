//! The company's sign-in rules, set by its admins (`GET/PATCH /api/admin/policy`). Each rule
//! is enforced where its way in is handled; this module only keeps and changes them.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tenant_runtime::TenantId;
use tenant_runtime::store::audit;
use tenant_runtime::store::policy::{self, MfaRequired, Policy};

use super::admin::{AdminError, AdminResult, TenantAdmin};
use crate::error::Fault;
use crate::state::AppState;

/// A change to some of the rules; absent fields keep their value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    pub sso_required: Option<bool>,
    pub sso_required_except_admins: Option<bool>,
    pub social_login: Option<bool>,
    pub mfa_required: Option<MfaRequired>,
    pub trust_idp_mfa: Option<bool>,
}

impl PolicyChange {
    fn apply(&self, p: &mut Policy) {
        let set = |slot: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut p.sso_required, self.sso_required);
        set(
            &mut p.sso_required_except_admins,
            self.sso_required_except_admins,
        );
        set(&mut p.social_login, self.social_login);
        set(&mut p.trust_idp_mfa, self.trust_idp_mfa);
        if let Some(m) = self.mfa_required {
            p.mfa_required = m;
        }
    }
}

/// The rules of a company, for whichever way in needs them.
pub async fn of(state: &AppState, tenant: &TenantId) -> Result<Policy, Fault> {
    Ok(state.tenants.read(tenant, policy::get).await?)
}

pub async fn get(state: &AppState, admin: &TenantAdmin) -> AdminResult<Policy> {
    Ok(of(state, &admin.signed().tenant.id).await?)
}

/// Applies `change`; audited with the rules that changed, old and new.
pub async fn update(
    state: &AppState,
    admin: &TenantAdmin,
    change: PolicyChange,
) -> AdminResult<Policy> {
    // Nobody is locked out: SSO can be required only once people can sign in through it.
    if change.sso_required == Some(true)
        && !super::sso::connections::has_working_connection(state, &admin.signed().tenant.id)
            .await?
    {
        return Err(AdminError::NoWorkingConnection);
    }
    let (actor, now) = (admin.actor(), state.now());
    let updated = state
        .tenants
        .write(&admin.signed().tenant.id, move |tx| {
            let before = policy::get(tx)?;
            let mut after = before;
            change.apply(&mut after);
            if after != before {
                policy::set(tx, &after, now)?;
                audit::record(
                    tx,
                    Some(&actor),
                    "policy.changed",
                    None,
                    Value::Object(diff(&before, &after)),
                    now,
                )?;
            }
            Ok(after)
        })
        .await?;
    Ok(updated)
}

/// `{"rule": {"from": …, "to": …}}` for each rule that differs.
fn diff(before: &Policy, after: &Policy) -> Map<String, Value> {
    let (b, a) = (json!(before), json!(after));
    let mut out = Map::new();
    if let (Value::Object(b), Value::Object(a)) = (b, a) {
        for (k, v) in a {
            if b.get(&k) != Some(&v) {
                out.insert(k.clone(), json!({"from": b.get(&k), "to": v}));
            }
        }
    }
    out
}
