//! The SAML half of a company's connection: what is kept in its `settings`, and the URLs of our
//! side (entity ID, metadata, Assertion Consumer Service), named by `<tenant-id>.<connection-id>`.

use serde::{Deserialize, Serialize};
use tenant_runtime::TenantId;
use tenant_runtime::store::sso::SsoConnection;

use crate::service::saml::AttributeNames;
use crate::state::AppState;

/// Where every SAML path of ours starts: `/saml/<tenant-id>.<connection-id>/…`.
pub const PREFIX: &str = "/saml/";
/// Where the browser ends a sign-in after the ACS.
pub const FINISH_PATH: &str = "/saml/finish";

/// The SAML half of a connection, kept in its `settings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SamlSettings {
    pub idp_metadata_xml: String,
    /// Where the metadata came from, when it was fetched (`POST …/test` fetches it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<String>,
    /// Our private key (sealed) and certificate, which IdPs may encrypt assertions to.
    pub sp_key_sealed: String,
    pub sp_certificate: String,
    /// Whether responses no request of ours asked for are accepted.
    #[serde(default)]
    pub idp_initiated: bool,
    /// Whether our AuthnRequests carry a signature (HTTP-Redirect binding, RSA-SHA256), for
    /// IdPs set to require one; our metadata then says `AuthnRequestsSigned`.
    #[serde(default)]
    pub sign_requests: bool,
    #[serde(default)]
    pub attributes: Attributes,
}

/// The attribute names a connection reads the email and the name from, when its IdP does not
/// use one of the common ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl SamlSettings {
    pub fn of(c: &SsoConnection) -> Option<Self> {
        if c.kind != "saml" {
            return None;
        }
        serde_json::from_value(c.settings.clone()).ok()
    }

    pub fn attribute_names(&self) -> AttributeNames {
        AttributeNames {
            email: self.attributes.email.clone(),
            name: self.attributes.name.clone(),
        }
    }
}

/// `<tenant-id>.<connection-id>`, the connection as our SAML paths name it.
pub fn reference(tenant: &TenantId, connection_id: &str) -> String {
    format!("{tenant}.{connection_id}")
}

/// Our entity ID for a connection: the URL of our metadata.
pub fn entity_id(state: &AppState, tenant: &TenantId, connection_id: &str) -> String {
    state.config.link(&format!(
        "{PREFIX}{}/metadata",
        reference(tenant, connection_id)
    ))
}

/// Our Assertion Consumer Service for a connection (HTTP-POST binding).
pub fn acs_url(state: &AppState, tenant: &TenantId, connection_id: &str) -> String {
    state
        .config
        .link(&format!("{PREFIX}{}/acs", reference(tenant, connection_id)))
}

/// The tenant a SAML path names (`/saml/<tenant-id>.<connection-id>/…`), for routing.
pub fn tenant_of_path(path: &str) -> Option<TenantId> {
    let rest = path.strip_prefix(PREFIX)?;
    let (t, _) = rest.split_once('.')?;
    TenantId::parse(t).ok()
}
