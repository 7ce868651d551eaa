//! What identity providers publish, as last fetched: their discovery documents and key sets.
//! Kept per issuer so a sign-in costs no fetch; the service refetches a key set once when a
//! token names a key it does not know (a provider rotated its keys), at most every few seconds.

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::Value;

/// A provider's discovery document and key set, with when each was fetched.
#[derive(Debug, Default)]
pub struct RemoteKeys {
    pub metadata: DashMap<String, (Arc<Value>, i64)>,
    pub key_sets: DashMap<String, (Arc<Value>, i64)>,
    /// When each key set was last fetched again for an unknown key.
    pub refetched: DashMap<String, i64>,
}
