//! Runs the apalis workers (and the overdue-task sweeper) until shutdown.
//!
//! Settings that matter after a crash, documented in one place:
//! - heartbeat every 5 s, a worker missing 3 is dead: its tasks are re-run ~15–20 s after a
//!   kill -9 (apalis defaults are 60 s on SQLite and 300 s on PostgreSQL);
//! - idle workers poll every 500 ms (apalis otherwise waits for the next heartbeat);
//! - every start uses a fresh worker name, so a restarted process never collides with the
//!   dead one's registration;
//! - the sweeper (every 60 s) re-enqueues work that should have run 2 min ago (a crash between
//!   our commit and the push, or a task apalis lost).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Monitor, WorkerBuilder};
use tokio::sync::watch;

use super::{JobContext, JobQueue, Task};

pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 3;
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
const WORKER_CONCURRENCY: usize = 4;
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Work this late is presumed lost. Generous, because a paced backlog is legitimately late
/// and every re-push of it is a duplicate task (harmless, but wasted).
const OVERDUE_MS: i64 = 120_000;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn sqlite_config() -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(super::queue::TASK_QUEUE)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

pub fn postgres_config() -> apalis_postgres::Config {
    apalis_postgres::Config::default()
        .queue(super::queue::TASK_QUEUE)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

/// Whether this process's workers are alive; readiness reports it.
#[derive(Clone, Default)]
pub struct WorkerHealth(Arc<AtomicBool>);

impl WorkerHealth {
    pub fn is_running(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

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
    pub fn start(ctx: Arc<JobContext>) -> Self {
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

async fn run_monitor(ctx: Arc<JobContext>, stopped: watch::Receiver<bool>, health: WorkerHealth) {
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
    health.0.store(true, Ordering::Relaxed);
    let signal = async move {
        wait_for_stop(stopped).await;
        Ok(())
    };
    if let Err(e) = monitor.run_with_signal(signal).await {
        tracing::error!(error = %e, "job monitor stopped with an error");
    }
    health.0.store(false, Ordering::Relaxed);
}

async fn run_sweeper(ctx: Arc<JobContext>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if let Err(e) = sweep(&ctx).await {
            tracing::warn!(error.cause_chain = ?e, "sweeper could not read overdue work");
        }
    }
}

/// Re-pushes work whose task should have run by now (lost between commit and push, or held
/// by a worker that died).
async fn sweep(ctx: &JobContext) -> Result<(), crate::store::StoreError> {
    let mut tasks: Vec<Task> = ctx
        .store
        .overdue_user_resyncs(OVERDUE_MS, 200)
        .await?
        .into_iter()
        .map(|row| Task::UserResync { resync_id: row.id })
        .collect();
    tasks.extend(
        ctx.store
            .overdue_event_resolutions(OVERDUE_MS, 200)
            .await?
            .into_iter()
            .map(|(project_id, event_id)| Task::ResolveWebhookEvent {
                project_id,
                event_id,
            }),
    );
    for task in tasks {
        tracing::info!(?task, "re-enqueueing overdue work");
        if let Err(e) = ctx.queue.push(task, Duration::ZERO).await {
            tracing::warn!(error = %e, "sweeper could not re-enqueue");
        }
    }
    Ok(())
}
