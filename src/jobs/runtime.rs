//! Runs the apalis workers (and the overdue-task sweeper) until shutdown.
//!
//! Settings that matter after a crash (the storage's heartbeat is in [`crate::queue`]):
//! - idle workers poll every 500 ms (apalis otherwise waits for the next heartbeat);
//! - every start uses a fresh worker name, so a restarted process never collides with the
//!   dead one's registration;
//! - the sweeper (every 60 s) re-enqueues work that should have run 2 min ago (a crash between
//!   our commit and the push, or a task apalis lost).

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Monitor, WorkerBuilder};
use tokio::sync::watch;

use crate::config::SHUTDOWN_GRACE;
use crate::queue::JobQueue;
use crate::services::health::WorkerHealth;
use crate::services::{sweeper, Services};

pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
const WORKER_CONCURRENCY: usize = 4;
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct JobRuntime {
    stop: watch::Sender<bool>,
    monitor: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
    health: WorkerHealth,
}

fn unique_worker_name() -> String {
    format!("rcsync-{}-{}", std::process::id(), ulid::Ulid::new())
}

impl JobRuntime {
    pub fn start(ctx: Arc<Services>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let health = WorkerHealth::default();
        let monitor = tokio::spawn(run_monitor(ctx.clone(), stopped.clone(), health.clone()));
        let sweeper = tokio::spawn(run_sweeper(ctx, stopped));
        Self {
            stop,
            monitor,
            sweeper,
            health,
        }
    }

    pub fn health(&self) -> WorkerHealth {
        self.health.clone()
    }

    /// Stops taking tasks and waits (up to the grace period) for running ones to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.sweeper.await;
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(5), self.monitor)
            .await
            .is_err()
        {
            tracing::warn!("job workers did not stop within the grace period");
        }
    }
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn run_monitor(ctx: Arc<Services>, stopped: watch::Receiver<bool>, health: WorkerHealth) {
    let monitor = match ctx.queue.clone() {
        JobQueue::Sqlite(storage) => Monitor::new().register(move |_| {
            WorkerBuilder::new(unique_worker_name())
                .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                .data(ctx.clone())
                .concurrency(WORKER_CONCURRENCY)
                .build(super::handle)
        }),
        JobQueue::Postgres(storage) => Monitor::new().register(move |_| {
            WorkerBuilder::new(unique_worker_name())
                .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                .data(ctx.clone())
                .concurrency(WORKER_CONCURRENCY)
                .build(super::handle)
        }),
    };
    let monitor = monitor
        .shutdown_timeout(SHUTDOWN_GRACE)
        .should_restart(|worker, error| {
            tracing::error!(worker = %worker.name(), %error, "job worker died; restarting under a new name");
            true
        });
    health.set_running(true);
    let signal = async move {
        wait_for_stop(stopped).await;
        Ok(())
    };
    if let Err(e) = monitor.run_with_signal(signal).await {
        tracing::error!(error = %e, "job monitor stopped with an error");
    }
    health.set_running(false);
}

async fn run_sweeper(ctx: Arc<Services>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if let Err(e) = sweeper::sweep(&ctx.store, &ctx.queue).await {
            tracing::warn!(error.cause_chain = ?e, "sweeper could not read overdue work");
        }
    }
}
