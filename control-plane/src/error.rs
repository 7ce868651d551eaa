//! Failures of what the services stand on — tenant files, the directory, the hashing pool,
//! placement — classified once, here. Every service's error enum carries a [`Fault`] beside its
//! own domain variants; only `routes::error` turns either into an HTTP answer.

use tenant_runtime::TenantId;

use crate::directory::DirectoryError;
use crate::hasher::HashError;

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// Every tenant connection is in use; retry in a moment.
    #[error("every tenant connection is in use")]
    AtCapacity,
    /// The disk is full: the write was refused whole. Reads go on.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// A tenant's file cannot be served (missing, foreign, damaged, too new).
    #[error("tenant database unavailable: {0}")]
    TenantUnavailable(String),
    /// The directory places the tenant on another node, or this node released it.
    #[error("tenant {tenant} is placed on node {node}, not on this one")]
    NotPlacedHere { tenant: TenantId, node: String },
    /// The tenant's node cannot be reached, or forwarding is off.
    #[error("the node holding the tenant cannot be reached")]
    NodeUnreachable,
    /// Writes wait for a move of the tenant that did not finish in time.
    #[error("the tenant is moving to another node")]
    Moving,
    /// The password hashing queue (or this tenant's share of it) is full.
    #[error("too many password checks at once")]
    HashQueueFull,
    /// Passkeys need the public URL to name a domain (WebAuthn has no relying party for an IP
    /// address).
    #[error("passkeys are not available at this address")]
    PasskeysUnavailable,
    #[error("directory: {0}")]
    Directory(DirectoryError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<tenant_runtime::Error> for Fault {
    fn from(e: tenant_runtime::Error) -> Self {
        use tenant_runtime::Error as E;
        match e {
            E::AtCapacity(_) => Self::AtCapacity,
            E::StorageFull(cause) => Self::StorageFull(cause),
            E::TenantNotFound(_)
            | E::ForeignTenantFile { .. }
            | E::NotATenantFile(_)
            | E::Schema(_)
            | E::PragmaMismatch { .. } => Self::TenantUnavailable(format!("{}: {e}", e.code())),
            other => Self::Unexpected(anyhow::anyhow!("{}: {other}", other.code())),
        }
    }
}

impl From<DirectoryError> for Fault {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::StorageFull(cause) => Self::StorageFull(cause),
            other => Self::Directory(other),
        }
    }
}

impl From<HashError> for Fault {
    fn from(e: HashError) -> Self {
        match e {
            HashError::QueueFull => Self::HashQueueFull,
            HashError::Failed(cause) => Self::Unexpected(anyhow::anyhow!("hashing: {cause}")),
        }
    }
}

/// Lets `?` turn the failures under a service into that service's error, through [`Fault`].
#[macro_export]
macro_rules! faults_into {
    ($error:ty) => {
        impl From<tenant_runtime::Error> for $error {
            fn from(e: tenant_runtime::Error) -> Self {
                Self::Fault($crate::error::Fault::from(e))
            }
        }
        impl From<$crate::directory::DirectoryError> for $error {
            fn from(e: $crate::directory::DirectoryError) -> Self {
                Self::Fault($crate::error::Fault::from(e))
            }
        }
        impl From<$crate::hasher::HashError> for $error {
            fn from(e: $crate::hasher::HashError) -> Self {
                Self::Fault($crate::error::Fault::from(e))
            }
        }
    };
}
