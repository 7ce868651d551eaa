//! Companies' own identity providers: verified domains, OpenID Connect connections, and
//! signing in through them or through the operator's social providers.
//!
//! # Layout
//! - [`domains`]: claiming a domain and proving it with a DNS TXT record;
//! - [`begin`]: from the email step to the provider, by the connection's protocol;
//! - [`connections`]: the company's connections (`kind` `oidc` or `saml`), their secrets sealed;
//! - [`provider`]: a provider's discovery document and keys, and checking its ID tokens;
//! - [`flow`]: where an email signs in, the way to the provider and back, into `signin::finish`;
//! - [`saml_settings`]: a SAML connection's settings and the URLs of our side;
//! - [`saml_flow`]: the same through a SAML 2.0 IdP (AuthnRequest, ACS, the replay cache);
//! - [`social`]: the operator's social providers and signing in with them;
//! - [`rules`]: the policy where passwords are handled.

pub mod begin;
pub mod connections;
pub mod domains;
pub mod flow;
pub mod provider;
pub mod rules;
pub mod saml_flow;
pub mod saml_settings;
pub mod social;

use crate::error::Fault;

/// The one URL every provider sends people back to.
pub const CALLBACK_PATH: &str = "/sso/callback";

/// Why a sign-in through a provider ended without a session: each has a stable code, shown on
/// the error page (`/sso/error?code=…`) and written to the company's audit log when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The `state` is unknown, used, expired, or from another browser.
    InvalidState,
    /// The provider answered with an error (the person cancelled, or it refused).
    ProviderError,
    /// The provider could not be reached, or its token endpoint refused the code.
    ProviderUnavailable,
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce…).
    InvalidIdToken,
    /// The provider did not vouch for the email address.
    EmailNotVerified,
    /// The email's domain is not one of the connection's verified domains.
    DomainNotAllowed,
    /// No account and no automatic creation: an administrator must invite the person.
    NoAccount,
    /// The account is blocked.
    Blocked,
    /// The company is suspended.
    Suspended,
    /// Social sign-in: no company allows it for this address, or no such person.
    SocialNotAllowed,
    /// A SAML response failed a check; the code says which (`saml_signature_invalid`, …).
    Saml(&'static str),
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidState => "invalid_state",
            Self::ProviderError => "provider_error",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::InvalidIdToken => "invalid_id_token",
            Self::EmailNotVerified => "email_not_verified",
            Self::DomainNotAllowed => "domain_not_allowed",
            Self::NoAccount => "no_account",
            Self::Blocked => "account_blocked",
            Self::Suspended => "company_suspended",
            Self::SocialNotAllowed => "social_not_allowed",
            Self::Saml(code) => code,
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::InvalidState,
            Self::ProviderError,
            Self::ProviderUnavailable,
            Self::InvalidIdToken,
            Self::EmailNotVerified,
            Self::DomainNotAllowed,
            Self::NoAccount,
            Self::Blocked,
            Self::Suspended,
            Self::SocialNotAllowed,
        ]
        .into_iter()
        .find(|f| f.code() == code)
        .or_else(|| {
            crate::service::saml::CODES
                .iter()
                .find(|c| **c == code)
                .map(|c| Self::Saml(c))
        })
    }

    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidState => {
                "This sign-in link is not valid any more (used, expired or opened in another browser). Start again from the sign-in page."
            }
            Self::ProviderError => "Your identity provider did not sign you in.",
            Self::ProviderUnavailable => {
                "Your identity provider could not be reached. Try again in a moment."
            }
            Self::InvalidIdToken => {
                "Your identity provider's answer could not be verified. Ask your administrator to check the connection."
            }
            Self::EmailNotVerified => {
                "Your identity provider did not confirm your email address, so it cannot be linked to an account."
            }
            Self::DomainNotAllowed => {
                "Your email address is not in a domain this identity provider may sign in."
            }
            Self::NoAccount => "You have no account yet. Ask your administrator for an invitation.",
            Self::Blocked => "Your account is blocked. Ask your administrator.",
            Self::Suspended => "Your company's account is suspended.",
            Self::SocialNotAllowed => {
                "This account cannot sign in this way. Use your company's sign-in, or ask your administrator for an invitation."
            }
            Self::Saml("saml_idp_error") => "Your identity provider did not sign you in.",
            Self::Saml(_) => {
                "Your identity provider's answer could not be accepted. Start again from the sign-in page; if it happens again, ask your administrator to check the connection."
            }
        }
    }
}

/// What an admin's request about domains or connections can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("not a valid domain name")]
    InvalidDomain,
    /// Another company holds this domain.
    #[error("this domain belongs to another company")]
    DomainTaken,
    /// The TXT record was not found; `found` lists what the lookup returned.
    #[error("the TXT record was not found")]
    DomainNotVerified { found: Vec<String> },
    /// A connection's domain the company has not verified.
    #[error("the domain {0} is not a verified domain of the company")]
    UnverifiedDomain(String),
    #[error("no such domain or connection")]
    NotFound,
    /// A SAML IdP's metadata could not be fetched or read.
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(SsoError);

impl From<crate::service::admin::AdminError> for SsoError {
    fn from(e: crate::service::admin::AdminError) -> Self {
        match e {
            crate::service::admin::AdminError::Fault(f) => Self::Fault(f),
            _ => Self::NotFound,
        }
    }
}

pub type SsoResult<T> = Result<T, SsoError>;

/// A random URL-safe secret of 256 bits.
pub(crate) fn random() -> Result<String, Fault> {
    use base64::Engine;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Fault::Unexpected(anyhow::anyhow!("rng: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}
