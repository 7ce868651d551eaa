//! The company's policy where passwords are handled (sign-in, invitations, resets): kept apart
//! from the sign-in flows so the password paths depend on nothing else of SSO.

use tenant_runtime::TenantId;
use tenant_runtime::store::policy;
use tenant_runtime::store::users::{Role, User};

use crate::error::Fault;
use crate::state::AppState;

/// Whether the company's policy refuses `user` a password: SSO is required, and `user` is not
/// an admin under the break-glass.
pub async fn password_refused(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
) -> Result<bool, Fault> {
    let p = state.tenants.read(tenant, policy::get).await?;
    Ok(p.sso_required && !(p.sso_required_except_admins && user.role == Role::Admin))
}
