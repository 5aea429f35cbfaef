//! What readiness means: the database answers, and job workers (where this process runs them)
//! are alive — apalis can lose every worker while HTTP keeps serving.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Store;

/// Readiness reports the workers down while they have died at least [`DEATHS_FOR_DOWN`]
/// times within this window. A worker that keeps dying (every fetch fails) is restarted after
/// a short, growing pause and dies again, so it is hardly ever seen "not running": what it
/// leaves is a stream of deaths. A single death (one failed fetch, then a restart that works) is not an outage, and
/// does not take the API out of a load balancer's rotation.
pub const WORKER_DEATH_WINDOW: Duration = Duration::from_secs(30);
pub const DEATHS_FOR_DOWN: usize = 3;

/// Whether this process's job workers are alive; the job runtime sets it, readiness reads it.
#[derive(Clone, Default)]
pub struct WorkerHealth(Arc<WorkerHealthState>);

#[derive(Default)]
struct WorkerHealthState {
    /// The workers' monitor runs.
    running: AtomicBool,
    /// When workers last died (their futures ended with an error), newest last; at most
    /// [`DEATHS_FOR_DOWN`] kept.
    deaths: Mutex<VecDeque<Instant>>,
}

impl WorkerHealth {
    /// The monitor runs and workers are not dying over and over.
    pub fn is_running(&self) -> bool {
        let deaths = self.deaths();
        let dying = deaths.len() >= DEATHS_FOR_DOWN
            && deaths
                .front()
                .is_some_and(|oldest| oldest.elapsed() < WORKER_DEATH_WINDOW);
        self.0.running.load(Ordering::Relaxed) && !dying
    }

    pub fn set_running(&self, running: bool) {
        self.0.running.store(running, Ordering::Relaxed);
    }

    /// A worker died (it is restarted, and may die again).
    pub fn record_death(&self) {
        let mut deaths = self.deaths();
        if deaths.len() == DEATHS_FOR_DOWN {
            deaths.pop_front();
        }
        deaths.push_back(Instant::now());
    }

    fn deaths(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.0.deaths.lock().unwrap_or_else(|e| e.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_death_is_not_an_outage_but_workers_that_keep_dying_are() {
        let health = WorkerHealth::default();
        health.set_running(true);
        health.record_death();
        assert!(health.is_running(), "one death, then a working restart");
        health.record_death();
        assert!(health.is_running());
        health.record_death();
        assert!(!health.is_running(), "three deaths within the window");
        health.set_running(false);
        assert!(!health.is_running());
    }
}
