//! The way from the email step to a company's identity provider, whatever its protocol.

use super::{Failure, flow, saml_flow};
use crate::service::oidc::authorize;
use crate::state::AppState;

/// Where to send the browser for a new attempt at the connection `<tenant-id>.<connection-id>`:
/// the provider's authorization endpoint (OpenID Connect) or the IdP with an AuthnRequest
/// (SAML). `browser` is the value of the browser-binding cookie; `pending`, the vendor app's
/// request waiting for this sign-in (kept only when it is ours).
pub async fn start(
    state: &AppState,
    connection: &str,
    login_hint: Option<&str>,
    pending: Option<&str>,
    browser: &str,
) -> Result<String, Failure> {
    let (tenant, conn) = flow::to_start(state, connection).await?;
    let pending = pending.filter(|p| authorize::unseal(state, p).is_some());
    match conn.kind.as_str() {
        "saml" => saml_flow::start(state, &tenant, &conn, pending, browser).await,
        _ => flow::start_oidc(state, &tenant, &conn, login_hint, pending, browser).await,
    }
}
