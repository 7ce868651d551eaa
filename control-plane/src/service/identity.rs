//! What every way in shares: the errors of signing in, bearer secrets `<tenant-id>.<secret>`,
//! routing an email to its company, and device cookies. `auth` (sign-in, sessions),
//! `recovery` (resets, invitations) and `account` build on it.

use tenant_runtime::TenantId;

use super::SessionView;
use super::policy::PasswordRejected;
use crate::directory::{Tenant, TenantStatus};
use crate::error::Fault;
use crate::keys::DerivedKey;
use crate::state::AppState;
use crate::throttle::Refused;

/// Why a sign-in, a session check, a reset or an invitation did not go through.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong email, wrong password, or an invitation not yet accepted: one answer for all.
    #[error("the email or password is not correct")]
    InvalidCredentials,
    /// Told only after the password was verified.
    #[error("the account is blocked")]
    Blocked,
    #[error("the company is suspended")]
    Suspended,
    /// The right password, of an account that must choose a new one first (after a restore
    /// with `--require-password-reset`): a reset link was mailed.
    #[error("a new password must be chosen through the emailed link")]
    PasswordResetRequired,
    /// No session, or it ended.
    #[error("not signed in")]
    Unauthenticated,
    /// An invitation or reset link that is unknown, used or expired.
    #[error("the link is invalid or has expired")]
    InvalidToken,
    #[error("too many attempts; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    /// The current password given to change it is wrong.
    #[error("the current password is not correct")]
    WrongPassword,
    #[error(transparent)]
    Password(#[from] PasswordRejected),
    /// A session of someone else, or none.
    #[error("no such session")]
    NotFound,
    /// The first proof was right; a second step with one of these methods must follow.
    #[error("a second step is needed")]
    MfaRequired {
        token: MfaToken,
        methods: Vec<&'static str>,
    },
    /// The first proof was right; the company requires a second factor the person has not
    /// set up yet: they enrol one first.
    #[error("a second factor must be set up")]
    MfaEnrollmentRequired { token: MfaToken },
    /// A second step's token that is unknown, used or expired.
    #[error("the sign-in has expired")]
    InvalidMfaToken,
    /// A wrong code, recovery code or passkey in a second step.
    #[error("the code is not correct")]
    InvalidCode,
    /// The company's policy: its people sign in through its identity provider, not with a
    /// password (told only after the password was verified).
    #[error("the company signs in through its identity provider")]
    SsoRequired,
    #[error(transparent)]
    Fault(#[from] Fault),
}

crate::faults_into!(AuthError);

impl From<Refused> for AuthError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Wait(retry_after) => Self::Throttled { retry_after },
            Refused::Unavailable(e) => Self::Fault(e.into()),
        }
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// The bearer secret (`<tenant-id>.<secret>`) of a sign-in halfway through; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaToken(pub String);

impl std::fmt::Debug for MfaToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaToken(..)")
    }
}

/// A bearer secret split into its tenant and its secret part.
pub fn split_bearer(value: &str) -> Option<(TenantId, &str)> {
    let (tenant, secret) = value.split_once('.')?;
    let tenant = TenantId::parse(tenant).ok()?;
    (secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some((tenant, secret))
}

pub fn bearer(tenant: &TenantId, secret: &str) -> String {
    format!("{tenant}.{secret}")
}

/// The result of a sign-in: the cookie value and what to show.
pub struct SignedIn {
    pub cookie: String,
    pub view: SessionView,
    /// A device cookie to set: this browser proved the account's password, so from now on its
    /// failed attempts do not count with strangers' (see [`crate::throttle`]).
    pub device: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

/// An email already routed to its tenant earlier in the same request (by the forwarding
/// layer), so the handler does not ask the directory again.
#[derive(Debug, Clone)]
pub struct EmailRoute {
    /// The canonical email that was routed.
    pub email: String,
    pub tenant: Option<Tenant>,
}

/// Device cookies, `<nonce>.<tag>`: the tag is an HMAC binding the nonce to one account.
fn device_key(state: &AppState) -> DerivedKey {
    state.keys.derive("device-cookie")
}

fn device_claim(nonce: &str, email: &str) -> Vec<u8> {
    format!("{nonce}\n{email}").into_bytes()
}

/// The device of a device cookie, if the cookie was issued for this account.
pub fn device_of(state: &AppState, cookie: &str, email: &str) -> Option<String> {
    let (nonce, tag) = cookie.split_once('.')?;
    let tag = hex::decode(tag).ok()?;
    (nonce.len() == 32 && device_key(state).verify(&device_claim(nonce, email), &tag))
        .then(|| nonce.to_owned())
}

/// A new device cookie for this account.
pub fn new_device_cookie(state: &AppState, email: &str) -> Option<String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).ok()?;
    let nonce = hex::encode(raw);
    let tag = device_key(state).sign(&device_claim(&nonce, email));
    Some(format!("{nonce}.{}", hex::encode(&tag[..16])))
}

/// The tenant of a session or an access token, if this node serves it: none while it is
/// being provisioned, `Suspended` while suspended, a fault when another node holds it.
pub async fn serving(state: &AppState, id: &TenantId) -> AuthResult<Option<Tenant>> {
    let Some(tenant) = state.tenant(id).await? else {
        return Ok(None);
    };
    match tenant.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(AuthError::Suspended),
        TenantStatus::Provisioning => return Ok(None),
    }
    state.check_placement(&tenant)?;
    Ok(Some(tenant))
}

/// Routes an email to a tenant that can serve sign-ins (active or suspended), reusing the
/// route found earlier in the request when it is for the same email.
pub async fn route(
    state: &AppState,
    email: &str,
    known: Option<&EmailRoute>,
) -> AuthResult<Option<Tenant>> {
    let tenant = match known.filter(|k| k.email == email) {
        Some(k) => k.tenant.clone(),
        None => state.directory.route_email(email).await?,
    };
    let Some(tenant) = tenant.filter(|t| t.status != TenantStatus::Provisioning) else {
        return Ok(None);
    };
    state.check_placement(&tenant)?;
    Ok(Some(tenant))
}
