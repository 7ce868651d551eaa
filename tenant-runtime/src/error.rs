//! Errors of the tenant runtime, each with a stable code.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid tenant id")]
    InvalidTenantId,
    #[error("tenant {0} has no database file")]
    TenantNotFound(String),
    #[error("tenant {0} already has a database file")]
    TenantExists(String),
    #[error("database file of tenant {expected} belongs to tenant {found}")]
    ForeignTenantFile { expected: String, found: String },
    #[error("database file of tenant {0} is not a tenant database")]
    NotATenantFile(String),
    #[error("connection pragma {pragma} is {found}, expected {expected}")]
    PragmaMismatch {
        pragma: &'static str,
        expected: String,
        found: String,
    },
    /// Every open connection is in use; the caller should retry later (503).
    #[error("all {0} tenant connections are in use")]
    AtCapacity(usize),
    #[error("email already belongs to a user")]
    EmailTaken,
    /// The disk is full: the write was refused whole (its transaction rolled back).
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error(transparent)]
    Schema(#[from] tenant_schema::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                Self::StorageFull(e.to_string())
            }
            _ => Self::Sqlite(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            Self::StorageFull(e.to_string())
        } else {
            Self::Io(e)
        }
    }
}

impl Error {
    /// A stable `snake_case` code (the scheme every code of the product follows) for logs and
    /// `tenantctl --json`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidTenantId => "invalid_tenant_id",
            Self::TenantNotFound(_) => "tenant_not_found",
            Self::TenantExists(_) => "tenant_exists",
            Self::ForeignTenantFile { .. } => "foreign_tenant_file",
            Self::NotATenantFile(_) => "not_a_tenant_file",
            Self::PragmaMismatch { .. } => "pragma_mismatch",
            Self::AtCapacity(_) => "at_capacity",
            Self::EmailTaken => "email_taken",
            Self::StorageFull(_) => "storage_full",
            Self::Schema(tenant_schema::Error::TooNew { .. }) => "schema_too_new",
            Self::Schema(_) => "migration_failed",
            Self::Sqlite(_) => "sqlite_error",
            Self::Io(_) => "io_error",
            Self::Unexpected(_) => "unexpected",
        }
    }
}
