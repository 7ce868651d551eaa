//! The one place where errors become HTTP answers: `{"error": "<stable_code>", "message": "…"}`.
//! The cause of a 5xx is logged, never sent.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::directory::DirectoryError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The request id of the request being served, so 5xx answers and their log lines carry it.
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
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Wrong email, wrong password, or an invitation not yet accepted: one answer for all.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The email or password is not correct.",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first.",
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

    pub fn invalid_token() -> Self {
        Self::bad_request(
            "invalid_token",
            "This link is invalid or has expired. Ask for a new one.",
        )
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

    /// An unexpected failure: logged here with its cause, answered with an opaque 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, request_id = request_id().as_deref().unwrap_or(""), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Try again later.",
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
        // A 5xx names its request, so a report can be matched with the server's log.
        if self.status.is_server_error()
            && let Some(id) = request_id()
        {
            body["request_id"] = serde_json::Value::String(id);
        }
        let body = Json(body);
        let mut res = (self.status, body).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res.extensions_mut().insert(self);
        res
    }
}

impl From<tenant_runtime::Error> for ApiError {
    fn from(e: tenant_runtime::Error) -> Self {
        use tenant_runtime::Error as E;
        match e {
            E::AtCapacity(_) => Self::unavailable(
                "at_capacity",
                "The server is busy. Try again in a moment.",
                1,
            ),
            E::EmailTaken => Self::conflict("email_taken", "This email cannot be invited."),
            E::TenantNotFound(_)
            | E::ForeignTenantFile { .. }
            | E::NotATenantFile(_)
            | E::Schema(_)
            | E::PragmaMismatch { .. } => {
                tracing::error!(code = e.code(), error = %e, "tenant database unavailable");
                Self::unavailable(
                    "tenant_unavailable",
                    "Your company's data is unavailable right now. Try again later.",
                    5,
                )
            }
            E::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DiskFull =>
            {
                storage_full(&e)
            }
            E::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => storage_full(&io),
            other => Self::internal(format_args!("{}: {other}", other.code())),
        }
    }
}

/// The disk is full: the write was refused whole (its transaction rolled back). Reads go on.
fn storage_full(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "storage full");
    ApiError::unavailable(
        "storage_full",
        "The server cannot save changes right now. Try again later.",
        30,
    )
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::EmailTaken => {
                Self::conflict("email_taken", "This email cannot be invited.")
            }
            // SQLITE_FULL (13) from the directory database.
            DirectoryError::Sqlx(sqlx::Error::Database(d)) if d.code().as_deref() == Some("13") => {
                storage_full(&d)
            }
            other => Self::internal(other),
        }
    }
}
