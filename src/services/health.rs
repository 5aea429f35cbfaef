//! What readiness means: the database answers, and job workers (where this process runs them)
//! are alive — apalis can lose every worker while HTTP keeps serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Store;

/// How long after a worker died readiness still reports the workers as down. A worker that
/// keeps dying (e.g. every fetch fails) is restarted at once and dies again, so it is never
/// seen "not running" for long: what it leaves is a stream of deaths, at most a busy timeout
/// (30 s on SQLite) apart.
pub const WORKER_DEATH_MEMORY: Duration = Duration::from_secs(30);

/// Whether this process's job workers are alive; the job runtime sets it, readiness reads it.
#[derive(Clone, Default)]
pub struct WorkerHealth(Arc<WorkerHealthState>);

#[derive(Default)]
struct WorkerHealthState {
    /// The workers' monitor runs.
    running: AtomicBool,
    /// When a worker last died (its future ended with an error).
    last_death: Mutex<Option<Instant>>,
}

impl WorkerHealth {
    /// The monitor runs and no worker died within [`WORKER_DEATH_MEMORY`].
    pub fn is_running(&self) -> bool {
        let died_recently = self
            .0
            .last_death
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < WORKER_DEATH_MEMORY);
        self.0.running.load(Ordering::Relaxed) && !died_recently
    }

    pub fn set_running(&self, running: bool) {
        self.0.running.store(running, Ordering::Relaxed);
    }

    /// A worker died (it is restarted, and may die again).
    pub fn record_death(&self) {
        *self.0.last_death.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
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
