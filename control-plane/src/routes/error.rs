//! The one place where errors become HTTP answers: `{"error": "<stable_code>", "message": "…"}`.
//! Every service error maps here to a status and a stable `snake_case` code; pages show the
//! same message in HTML. The cause of a 5xx travels with the answer to the request log
//! (`routes::observe`) and is never sent.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Fault;
use crate::replica::ReplicaError;
use crate::service::admin::{AdminError, MAX_NAME_LEN};
use crate::service::factors::FactorError;
use crate::service::failover::FailoverError;
use crate::service::fleet::FleetError;
use crate::service::identity::AuthError;
use crate::service::moves::NodeOpError;
use crate::service::oidc::OidcError;
use crate::service::operator::OperatorError;
use crate::service::policy::PasswordRejected;
use crate::service::sso::SsoError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log line of this request; never sent.
    pub cause: Option<String>,
    /// More fields of the body, beside `error` and `message` (e.g. an `mfa_token`).
    pub extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// The tenant is placed on another node (see [`PlacedElsewhere`]).
    pub placed_elsewhere: bool,
}

/// Marks an answer given because the tenant left this node while the request was served (a
/// read that passed the placement check just before a move released it): the router sends
/// the request on to the tenant's new node instead.
#[derive(Debug, Clone, Copy)]
pub struct PlacedElsewhere;

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The request id of the request being served, so 5xx answers carry it.
    pub static REQUEST_ID: String;
}

fn request_id() -> Option<String> {
    REQUEST_ID
        .try_with(Clone::clone)
        .ok()
        .filter(|id| !id.is_empty())
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            cause: None,
            extra: None,
            placed_elsewhere: false,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first.",
        )
    }

    /// An access token that is invalid, expired, or whose session or grant has ended.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is invalid or has expired.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do this.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
        retry_after: u64,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many attempts. Wait a moment and try again.",
            )
        }
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The body is too large.",
        )
    }

    /// An unexpected failure: an opaque 500; `cause` goes to the request log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Try again later.",
        )
        .because(cause)
    }

    /// Attaches what went wrong inside, for the log.
    pub fn because(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// The tenant's file or node cannot serve now.
    pub fn tenant_unavailable() -> Self {
        Self::unavailable(
            "tenant_unavailable",
            "Your company's data is unavailable right now. Try again later.",
            5,
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if let (Some(extra), Some(b)) = (&self.extra, body.as_object_mut()) {
            for (k, v) in extra.iter() {
                b.insert(k.clone(), v.clone());
            }
        }
        // A 5xx names its request, so a report can be matched with the server's log.
        if self.status.is_server_error()
            && let Some(id) = request_id()
        {
            body["request_id"] = serde_json::Value::String(id);
        }
        let mut res = (self.status, Json(body)).into_response();
        let challenge = match self.code {
            "invalid_token"
            | "invalid_operator_key"
            | "operator_key_expired"
            | "operator_key_revoked" => Some(r#"Bearer error="invalid_token""#),
            "insufficient_scope" => Some(r#"Bearer error="insufficient_scope""#),
            _ => None,
        };
        if let Some(c) = challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.placed_elsewhere {
            res.extensions_mut().insert(PlacedElsewhere);
        }
        res.extensions_mut().insert(self);
        res
    }
}

impl From<Fault> for ApiError {
    fn from(f: Fault) -> Self {
        let err = match &f {
            Fault::AtCapacity => Self::unavailable(
                "at_capacity",
                "The server is busy. Try again in a moment.",
                1,
            ),
            Fault::StorageFull(_) => Self::unavailable(
                "storage_full",
                "The server cannot save changes right now. Try again later.",
                30,
            ),
            Fault::NotPlacedHere { .. } => Self {
                placed_elsewhere: true,
                ..Self::tenant_unavailable()
            },
            Fault::TenantUnavailable(_) | Fault::NodeUnreachable => Self::tenant_unavailable(),
            Fault::Moving => Self::unavailable(
                "tenant_moving",
                "Your company's data is moving to another server. Try again in a moment.",
                1,
            ),
            Fault::HashQueueFull => Self::unavailable(
                "busy",
                "Too many sign-ins at once. Try again in a moment.",
                1,
            ),
            // The request cannot succeed at this address, whatever the timing: not a 5xx.
            Fault::PasskeysUnavailable => Self::new(
                StatusCode::CONFLICT,
                "passkeys_unavailable",
                "Passkeys need this server to be reached by its domain name, not an IP address.",
            ),
            Fault::Directory(_) | Fault::Unexpected(_) => return Self::internal(f),
        };
        err.because(f)
    }
}

impl From<PasswordRejected> for ApiError {
    fn from(p: PasswordRejected) -> Self {
        let code = match p {
            PasswordRejected::TooShort => "password_too_short",
            PasswordRejected::TooLong => "password_too_long",
            PasswordRejected::IsEmail => "password_is_email",
            PasswordRejected::HasCompanyName => "password_has_company_name",
            PasswordRejected::TooCommon => "password_too_common",
            PasswordRejected::Breached => "password_breached",
            PasswordRejected::BreachCheckUnavailable => {
                return Self::unavailable("password_check_unavailable", p.to_string(), 60);
            }
        };
        Self::bad_request(code, p.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The email or password is not correct.",
            ),
            AuthError::Blocked => Self::new(
                StatusCode::FORBIDDEN,
                "account_blocked",
                "This account is blocked. Ask your company's administrator.",
            ),
            AuthError::Suspended => Self::new(
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "Your company's account is suspended. Contact the vendor.",
            ),
            AuthError::PasswordResetRequired => Self::new(
                StatusCode::FORBIDDEN,
                "password_reset_required",
                "You need to choose a new password. We sent a link to your email address.",
            ),
            AuthError::Unauthenticated => Self::unauthenticated(),
            AuthError::InvalidToken => Self::bad_request(
                "invalid_token",
                "This link is invalid or has expired. Ask for a new one.",
            ),
            AuthError::Throttled { retry_after } => Self::too_many_requests(retry_after),
            AuthError::WrongPassword => {
                Self::bad_request("wrong_password", "Your current password is not correct.")
            }
            AuthError::Password(p) => p.into(),
            AuthError::NotFound => Self::not_found(),
            AuthError::MfaRequired { token, methods } => Self {
                extra: Some(Box::new(serde_json::Map::from_iter([
                    ("mfa_token".to_owned(), serde_json::json!(token.0)),
                    ("methods".to_owned(), serde_json::json!(methods)),
                ]))),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "mfa_required",
                    "Confirm it is you with your second factor.",
                )
            },
            AuthError::MfaEnrollmentRequired { token } => Self {
                extra: Some(Box::new(serde_json::Map::from_iter([(
                    "mfa_token".to_owned(),
                    serde_json::json!(token.0),
                )]))),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "mfa_enrollment_required",
                    "Your company requires a second factor: set one up to continue.",
                )
            },
            AuthError::InvalidMfaToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_mfa_token",
                "This sign-in has expired. Sign in again.",
            ),
            AuthError::InvalidCode => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                "The code is not correct.",
            ),
            AuthError::SsoRequired => Self::new(
                StatusCode::FORBIDDEN,
                "sso_required",
                "Your company signs in through its identity provider, not with a password. Enter your email on the sign-in page and continue there.",
            ),
            AuthError::Fault(f) => f.into(),
        }
    }
}

impl From<FactorError> for ApiError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::NotFound => Self::not_found(),
            FactorError::InvalidCode => {
                Self::bad_request("invalid_code", "The code is not correct.")
            }
            FactorError::LastFactor => Self::conflict(
                "last_factor",
                "Your company requires a second factor: add another before removing this one.",
            ),
            FactorError::WrongPassword => Self::bad_request(
                "wrong_password",
                "Your current password (or the code) is not correct.",
            ),
            FactorError::InvalidName => Self::bad_request("invalid_name", e.to_string()),
            FactorError::InvalidPasskey => Self::bad_request(
                "invalid_passkey",
                "The passkey could not be registered. Try again.",
            ),
            FactorError::Throttled { retry_after } => Self::too_many_requests(retry_after),
            FactorError::Fault(f) => f.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden => Self::forbidden(),
            AdminError::NotFound => Self::not_found(),
            AdminError::LastAdmin => Self::conflict(
                "last_admin",
                "Your company must keep at least one active admin.",
            ),
            AdminError::UserExists => Self::conflict(
                "user_exists",
                "This person is already a user of your company.",
            ),
            AdminError::EmailTaken => Self::conflict(
                "email_taken",
                "This address cannot be invited to your company.",
            ),
            AdminError::AlreadyAccepted => Self::conflict(
                "not_invited",
                "This user has already accepted or is blocked.",
            ),
            AdminError::NoPendingInvitation => {
                Self::conflict("not_invited", "This user has no pending invitation.")
            }
            AdminError::InvalidEmail => {
                Self::bad_request("invalid_email", "Enter a valid email address.")
            }
            AdminError::InvalidRole => {
                Self::bad_request("invalid_role", "Role must be admin or member.")
            }
            AdminError::InvalidName => Self::bad_request(
                "invalid_name",
                format!("A name has at most {MAX_NAME_LEN} characters and no control characters."),
            ),
            AdminError::EmailOutsideDomains => Self::bad_request(
                "email_outside_domains",
                "Your company accepts only addresses in its own domains.",
            ),
            AdminError::EmailUnchanged => {
                Self::bad_request("email_unchanged", "This is already the email address.")
            }
            AdminError::InvalidToken => Self::bad_request(
                "invalid_token",
                "This link is invalid or has expired. Ask for a new one.",
            ),
            AdminError::InvalidCursor => Self::bad_request(
                "invalid_cursor",
                "The cursor is not one this list gave, or belongs to another sort order.",
            ),
            AdminError::InvalidFilter => Self::bad_request(
                "invalid_query",
                "Check the query: role is admin or member, status is active, invited or blocked, sort is name, email, created or last_login (with - for descending), q has at most 200 characters.",
            ),
            AdminError::TooManyLines => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_lines",
                format!(
                    "Invite at most {} people at once; split the list.",
                    crate::service::people::MAX_BULK_LINES
                ),
            ),
            AdminError::EmptyBatch => {
                Self::bad_request("empty_batch", "There is nobody to invite in this list.")
            }
            AdminError::Duplicate => Self::conflict(
                "duplicate",
                "This address appears earlier in the same list.",
            ),
            AdminError::NoWorkingConnection => Self::conflict(
                "sso_not_configured",
                "Add an identity provider connection with a verified domain before requiring SSO.",
            ),
            AdminError::Fault(f) => f.into(),
        }
    }
}

impl From<NodeOpError> for ApiError {
    fn from(e: NodeOpError) -> Self {
        let message = e.to_string();
        match e {
            NodeOpError::NotFound => Self::not_found(),
            NodeOpError::NotOwner(_) => Self::conflict("not_owner", message),
            NodeOpError::NotFrozen => Self::conflict("not_frozen", message),
            NodeOpError::NotIncoming(_) => Self::conflict("not_incoming", message),
            NodeOpError::NotMoved => Self::conflict("not_moved", message),
            NodeOpError::NotProvisioningHere => Self::conflict("not_provisioning_here", message),
            NodeOpError::MissingChecksum => {
                Self::bad_request("missing_checksum", "Send x-tenantd-sha256.")
            }
            NodeOpError::ChecksumMismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "checksum_mismatch",
                "The snapshot arrived damaged (SHA-256 differs); nothing was installed.",
            ),
            NodeOpError::BodyFailed(_) => Self::bad_request("body_failed", message),
            NodeOpError::Busy => {
                Self::unavailable("busy", "Writes of this tenant did not finish in time.", 1)
            }
            NodeOpError::Fault(f) => f.into(),
        }
    }
}

impl From<FailoverError> for ApiError {
    fn from(e: FailoverError) -> Self {
        let (code, message) = (e.code(), e.to_string());
        match e {
            FailoverError::NotFound => Self::not_found(),
            FailoverError::Fault(f) => f.into(),
            FailoverError::Replica(ReplicaError::InvalidTime(_)) => {
                Self::bad_request(code, message)
            }
            FailoverError::Replica(ReplicaError::Missing(..)) => {
                Self::new(StatusCode::NOT_FOUND, code, message)
            }
            FailoverError::Replica(
                ReplicaError::NotConfigured | ReplicaError::NotInstalled(..),
            ) => Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message),
            FailoverError::ForeignReplica { .. }
            | FailoverError::CorruptReplica(_)
            | FailoverError::Replica(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            _ => Self::conflict(code, message),
        }
    }
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        let status = match &e {
            OidcError::InvalidClient | OidcError::InvalidToken => StatusCode::UNAUTHORIZED,
            OidcError::Fault(_) => return Self::from_fault_of(e),
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl ApiError {
    fn from_fault_of(e: OidcError) -> Self {
        match e {
            OidcError::Fault(f) => Self::from(f),
            other => Self::internal(other),
        }
    }
}

impl From<OperatorError> for ApiError {
    fn from(e: OperatorError) -> Self {
        let (status, code, message) = (operator_status(&e), e.code(), e.to_string());
        match e {
            OperatorError::Fault(f) => f.into(),
            OperatorError::Throttled { retry_after } => Self::too_many_requests(retry_after),
            _ => Self::new(status, code, message),
        }
    }
}

fn operator_status(e: &OperatorError) -> StatusCode {
    use OperatorError as E;
    match e {
        E::Unauthenticated | E::InvalidKey | E::Expired | E::Revoked => StatusCode::UNAUTHORIZED,
        E::AddressNotAllowed | E::InsufficientScope(_) => StatusCode::FORBIDDEN,
        E::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::UnknownKey(_) => StatusCode::NOT_FOUND,
        E::IdempotencyKeyReused | E::IdempotencyKeyInProgress => StatusCode::CONFLICT,
        E::InvalidScope(_)
        | E::InvalidName
        | E::InvalidDuration(_)
        | E::InvalidNetwork(_)
        | E::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
        E::Fault(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Operator commands over HTTP: the codes `tenantctl --json` prints, with their status.
impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        let (code, message) = (e.code(), e.to_string());
        let status = match e {
            FleetError::Directory(d) => return crate::error::Fault::from(d).into(),
            FleetError::Runtime(r) => return crate::error::Fault::from(r).into(),
            FleetError::Io(_) | FleetError::Other(_) | FleetError::Backup(_) => {
                return Self::internal(message);
            }
            FleetError::Node(_) | FleetError::TenantUnreadable { .. } => {
                return Self::unavailable(code, message, 5);
            }
            FleetError::UnknownTenant(_)
            | FleetError::UnknownUser(_)
            | FleetError::IndexedToNothing(_)
            | FleetError::DomainNotMapped { .. }
            | FleetError::NotInTrash(_) => StatusCode::NOT_FOUND,
            FleetError::InvalidSlug(_)
            | FleetError::InvalidDomain(_)
            | FleetError::InvalidName
            | FleetError::InvalidEmail(_) => StatusCode::BAD_REQUEST,
            FleetError::OtherNode { .. }
            | FleetError::SlugTaken(_)
            | FleetError::DomainTaken { .. }
            | FleetError::EmailTaken(_)
            | FleetError::Busy(_)
            | FleetError::Provisioning(_)
            | FleetError::TrashExpired { .. }
            | FleetError::BackupExists(_)
            | FleetError::TooNew { .. } => StatusCode::CONFLICT,
        };
        Self::new(status, code, message)
    }
}

impl From<SsoError> for ApiError {
    fn from(e: SsoError) -> Self {
        match e {
            SsoError::InvalidDomain => {
                Self::bad_request("invalid_domain", "Enter a domain name such as example.com.")
            }
            SsoError::DomainTaken => {
                Self::conflict("domain_taken", "This domain belongs to another company.")
            }
            SsoError::DomainNotVerified { found } => Self::conflict(
                "domain_not_verified",
                if found.is_empty() {
                    "No TXT record was found at the name to publish. DNS changes can take a while to appear; try again later.".to_owned()
                } else {
                    format!(
                        "The TXT records found do not hold the value to publish. Found: {}",
                        found
                            .iter()
                            .take(5)
                            .map(|v| v.chars().take(100).collect::<String>())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ),
            SsoError::UnverifiedDomain(d) => Self::conflict(
                "domain_not_verified",
                format!("{d} is not a verified domain of your company. Verify it first."),
            ),
            SsoError::NotFound => Self::not_found(),
            SsoError::Invalid(why) => Self::bad_request("invalid_connection", why),
            SsoError::InvalidMetadata(why) => Self::bad_request("invalid_saml_metadata", why),
            SsoError::Fault(f) => f.into(),
        }
    }
}
