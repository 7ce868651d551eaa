//! Password hashing on its own bounded pool of threads.
//!
//! - `concurrency` worker threads run argon2, at a lower scheduling priority than the rest of
//!   the server, so session checks and admin reads preempt them when both want the CPU, while
//!   idle CPU still goes to sign-ins.
//! - At most `queue` jobs wait; past that a request gets 503 `busy` at once, so a flood of
//!   sign-ins is refused quickly instead of stalling everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

/// Why a hash job did not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HashError {
    /// The queue, or the caller's share of it, is full: refuse at once.
    #[error("the hashing queue is full")]
    QueueFull,
    #[error("hashing failed: {0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Hasher {
    jobs: Sender<Job>,
    depth: Arc<AtomicUsize>,
    /// Sign-in checks running or waiting, per tenant: one tenant's flood cannot take every slot.
    per_tenant: Arc<dashmap::DashMap<String, usize>>,
    per_tenant_limit: usize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("depth", &self.depth())
            .finish()
    }
}

/// Nice value of hashing threads (0 is normal; higher yields to other threads).
const HASH_NICENESS: i32 = 10;

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..concurrency.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || {
                    // Linux applies the nice value to the calling thread only.
                    if let Err(e) = rustix::process::setpriority_process(None, HASH_NICENESS) {
                        tracing::debug!(error = %e, "could not lower hashing thread priority");
                    }
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a hashing thread");
            }
        }
        Self {
            jobs: tx,
            depth: Arc::new(AtomicUsize::new(0)),
            per_tenant: Arc::new(dashmap::DashMap::new()),
            // A quarter of all slots, so at least three other tenants always find room.
            per_tenant_limit: ((concurrency.max(1) + queue) / 4).max(1),
        }
    }

    /// Verifies a sign-in password on behalf of a tenant (`key`: its id, or one shared key for
    /// emails that route nowhere), within that tenant's share of the queue.
    pub async fn verify_for(
        &self,
        key: &str,
        password: &str,
        hash: &str,
    ) -> Result<bool, HashError> {
        {
            let mut n = self.per_tenant.entry(key.to_owned()).or_insert(0);
            if *n >= self.per_tenant_limit {
                return Err(HashError::QueueFull);
            }
            *n += 1;
        }
        let _share = Share(self.per_tenant.clone(), key.to_owned());
        self.verify(password, hash).await
    }

    /// Hash jobs running or waiting.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = oneshot::channel();
        let depth = self.depth.clone();
        depth.fetch_add(1, Ordering::SeqCst);
        let job: Job = Box::new(move || {
            let out = f();
            // Before the answer goes out, so a caller that got it never sees its job counted.
            depth.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(out);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                return Err(HashError::QueueFull);
            }
        }
        result
            .await
            .map_err(|_| HashError::Failed("the hashing thread stopped".to_owned()))
    }

    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let (p, h) = (password.to_owned(), hash.to_owned());
        self.run(move || tenant_runtime::password::verify(&p, &h))
            .await
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let p = password.to_owned();
        self.run(move || tenant_runtime::password::hash(&p))
            .await?
            .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// Gives a tenant's queue share back when its check is done (or abandoned).
struct Share(Arc<dashmap::DashMap<String, usize>>, String);

impl Drop for Share {
    fn drop(&mut self) {
        self.0.remove_if_mut(&self.1, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}
