//! What readiness means: the database answers, and job workers (where this process runs them)
//! are alive — apalis can lose every worker while HTTP keeps serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::store::Store;

/// Whether this process's job workers are alive; the job runtime sets it, readiness reads it.
#[derive(Clone, Default)]
pub struct WorkerHealth(Arc<AtomicBool>);

impl WorkerHealth {
    pub fn is_running(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set_running(&self, running: bool) {
        self.0.store(running, Ordering::Relaxed);
    }
}

/// The probes behind `/readyz`.
pub struct Readiness {
    pub store: Store,
    /// `None` in a process that runs no workers (`serve --no-workers`).
    pub workers: Option<WorkerHealth>,
}

/// One readiness check's answer.
pub struct ReadinessReport {
    pub database_reachable: bool,
    /// `None` when this process runs no workers.
    pub workers_running: Option<bool>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.database_reachable && self.workers_running != Some(false)
    }
}

impl Readiness {
    pub async fn check(&self) -> ReadinessReport {
        let database_reachable = match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "readiness probe: database unreachable");
                false
            }
        };
        ReadinessReport {
            database_reachable,
            workers_running: self.workers.as_ref().map(WorkerHealth::is_running),
        }
    }
}
