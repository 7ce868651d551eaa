//! The OpenID provider for the vendor's apps: the authorization code flow with PKCE
//! ([`authorize`]), the token, revocation and introspection endpoints ([`token`]), the keys
//! that sign tokens ([`signing`]), and what a token says ([`claims`]). Grants live in the
//! company's file, inside the session they were made in: whatever ends the session ends them.

pub mod authorize;
pub mod claims;
pub mod logout;
pub mod machine;
pub mod signing;
pub mod token;

use std::borrow::Cow;

use crate::directory::ClientRow;
use crate::error::Fault;
use crate::service::clients;
use crate::state::AppState;

/// Longest life of a token we sign (ID tokens; access tokens are capped below it): keys stay
/// published this long after their successor starts signing.
pub const MAX_TOKEN_SECS: i64 = 3600;
/// Life of an ID token.
pub const ID_TOKEN_SECS: i64 = 3600;
/// Life of an authorization code.
pub const CODE_SECS: i64 = 60;

/// The scopes tenantd knows; others are ignored, as OAuth allows.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Why the token, revocation, introspection or userinfo endpoint refused a request: the
/// RFC 6749 error codes the app sees.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Unknown client, wrong secret, or a method of authentication the client may not use.
    #[error("client authentication failed")]
    InvalidClient,
    /// A code or refresh token that is unknown, used, expired, of another client, or whose
    /// session has ended; a wrong PKCE verifier or redirect URI.
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("{0}")]
    InvalidScope(&'static str),
    #[error(
        "the grant type is not supported: use authorization_code, refresh_token or client_credentials"
    )]
    UnsupportedGrantType,
    /// The client may not use this grant (client credentials without operator scopes).
    #[error("this client may not use the client_credentials grant")]
    UnauthorizedClient,
    /// A bearer access token that is invalid, expired or whose grant has ended.
    #[error("the access token is invalid or has expired")]
    InvalidToken,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(OidcError);

impl From<clients::ClientError> for OidcError {
    fn from(e: clients::ClientError) -> Self {
        match e {
            clients::ClientError::Directory(d) => Self::Fault(d.into()),
            clients::ClientError::Runtime(r) => Self::Fault(r.into()),
            _ => Self::InvalidClient,
        }
    }
}

impl OidcError {
    /// The RFC 6749 `error` value.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidToken => "invalid_token",
            Self::Fault(_) => "server_error",
        }
    }
}

pub type OidcResult<T> = Result<T, OidcError>;

/// How a client proved itself at the token, revocation or introspection endpoint.
#[derive(Default)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (`client_secret_basic`).
    pub basic: Option<(String, String)>,
    /// `client_id` in the body.
    pub form_id: Option<String>,
    /// `client_secret` in the body (`client_secret_post`).
    pub form_secret: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("basic", &self.basic.as_ref().map(|(id, _)| id))
            .field("form_id", &self.form_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    pub fn used_basic(&self) -> bool {
        self.basic.is_some()
    }
}

/// The registered client behind credentials: a confidential client by its secret (basic or
/// post, never both), a public client by its id alone (`none`).
pub async fn authenticate(state: &AppState, creds: &ClientCredentials) -> OidcResult<ClientRow> {
    let (id, secret) = match (&creds.basic, &creds.form_secret) {
        (Some(_), Some(_)) => {
            return Err(OidcError::InvalidRequest(
                "use one client authentication method".into(),
            ));
        }
        (Some((id, secret)), None) => {
            if creds.form_id.as_ref().is_some_and(|f| f != id) {
                return Err(OidcError::InvalidClient);
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, secret) => match &creds.form_id {
            Some(id) => (id.as_str(), secret.as_deref()),
            None => return Err(OidcError::InvalidClient),
        },
    };
    let client = state
        .directory
        .client(id)
        .await?
        .ok_or(OidcError::InvalidClient)?;
    let ok = match (&client.secret_hash, secret) {
        (Some(_), Some(s)) => clients::secret_matches(&client, s),
        (None, None) => true,
        // A confidential client without its secret, or a public client claiming one.
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(OidcError::InvalidClient)
    }
}

/// The issuer: the public URL without a trailing slash.
pub fn issuer(state: &AppState) -> String {
    state
        .config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// Random token ids (`jti`).
fn random_id() -> Result<String, Fault> {
    Ok(tenant_runtime::secret::generate()?.token)
}
