//! Password hashing on a bounded pool: at most `concurrency` hashes run at once and at most
//! `queue` wait, so a flood of logins turns into quick 503s instead of stalling other requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("depth", &self.depth())
            .finish()
    }
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            queued: Arc::new(AtomicUsize::new(0)),
            limit: concurrency + queue,
        }
    }

    /// Hash jobs running or waiting.
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::unavailable(
                "busy",
                "Too many sign-ins at once. Try again in a moment.",
                1,
            ));
        }
        let _done = Decrement(self.queued.clone());
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(ApiError::internal)
    }

    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, ApiError> {
        let (p, h) = (password.to_owned(), hash.to_owned());
        self.run(move || tenant_runtime::password::verify(&p, &h))
            .await
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let p = password.to_owned();
        self.run(move || tenant_runtime::password::hash(&p))
            .await?
            .map_err(ApiError::internal)
    }
}

struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
