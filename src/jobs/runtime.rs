//! Runs the apalis workers, the dispatcher and this process's liveness heartbeat until
//! shutdown.
//!
//! What matters after a crash (timings in [`crate::config::JobTimings`], the queue's own
//! heartbeat in [`crate::queue`]):
//! - this process registers a worker instance and heartbeats it; claims it holds are taken
//!   over once it has been silent for `instance_timeout` (15 s), so a resync that was running
//!   at a kill -9 runs again soon after any process restarts;
//! - the dispatcher pushes due work every `dispatch_interval` and pushes again what was lost;
//! - every start uses fresh worker and instance names, so a restarted process never collides
//!   with the dead one's registration;
//! - idle workers poll every `poll_interval` (apalis otherwise waits for its next heartbeat);
//! - scheduled full resyncs are started every `schedule_check` when due.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Monitor, WorkerBuilder};
use tokio::sync::watch;

use crate::config::SHUTDOWN_GRACE;
use crate::queue::JobQueue;
use crate::services::health::WorkerHealth;
use crate::services::{dispatcher, resync_runs, retention, Services};

const WORKER_CONCURRENCY: usize = 4;

pub struct JobRuntime {
    stop: watch::Sender<bool>,
    monitor: tokio::task::JoinHandle<()>,
    loops: Vec<tokio::task::JoinHandle<()>>,
    health: WorkerHealth,
    services: Arc<Services>,
}

fn unique_worker_name() -> String {
    format!("rcsync-{}-{}", std::process::id(), ulid::Ulid::new())
}

impl JobRuntime {
    pub async fn start(services: Arc<Services>) -> anyhow::Result<Self> {
        services
            .store
            .register_instance(&services.instance_id)
            .await?;
        let (stop, stopped) = watch::channel(false);
        let health = WorkerHealth::default();
        let monitor = tokio::spawn(run_monitor(
            services.clone(),
            stopped.clone(),
            health.clone(),
        ));
        let heartbeat = {
            let services = services.clone();
            every(
                services.timings.instance_heartbeat,
                stopped.clone(),
                move || {
                    let services = services.clone();
                    async move {
                        if let Err(e) = services
                            .store
                            .heartbeat_instance(&services.instance_id)
                            .await
                        {
                            tracing::warn!(error.cause_chain = ?e, "could not record this process's heartbeat");
                        }
                    }
                },
            )
        };
        let schedule = {
            let services = services.clone();
            every(
                services.timings.schedule_check,
                stopped.clone(),
                move || {
                    let services = services.clone();
                    async move {
                        if let Err(e) = resync_runs::start_scheduled(&services).await {
                            tracing::warn!(error.cause_chain = ?e, "could not start scheduled resyncs");
                        }
                    }
                },
            )
        };
        let retention = {
            let services = services.clone();
            let schedule = Arc::new(retention::Schedule::default());
            every(
                services.timings.retention_check,
                stopped.clone(),
                move || {
                    let (services, schedule) = (services.clone(), schedule.clone());
                    async move {
                        if !schedule.take_due(&services) {
                            return;
                        }
                        let retention_ms = crate::clock::ms(services.event_retention);
                        if let Err(e) = retention::prune(&services, retention_ms).await {
                            tracing::warn!(error.cause_chain = ?e, "retention could not prune; it will try again next round");
                        }
                    }
                },
            )
        };
        let dispatch = {
            let services = services.clone();
            every(services.timings.dispatch_interval, stopped, move || {
                let services = services.clone();
                async move {
                    if let Err(e) = dispatcher::dispatch_due(&services).await {
                        tracing::warn!(error.cause_chain = ?e, "dispatcher could not read due work");
                    }
                }
            })
        };
        Ok(Self {
            stop,
            monitor,
            loops: vec![heartbeat, schedule, retention, dispatch],
            health,
            services,
        })
    }

    pub fn health(&self) -> WorkerHealth {
        self.health.clone()
    }

    /// Stops taking tasks, waits (up to the grace period) for running ones to finish, then
    /// withdraws this process's instance so anything it still held is taken over at once.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.loops {
            let _ = task.await;
        }
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(5), self.monitor)
            .await
            .is_err()
        {
            tracing::warn!("job workers did not stop within the grace period");
        }
        if let Err(e) = self
            .services
            .store
            .remove_instance(&self.services.instance_id)
            .await
        {
            tracing::warn!(error.cause_chain = ?e, "could not withdraw this process's instance");
        }
    }
}

/// Runs `tick` every `interval` until stopped.
fn every<F, Fut>(
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
    mut tick: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                _ = stopped.wait_for(|s| *s) => true,
                _ = tokio::time::sleep(interval) => false,
            };
            if stop {
                return;
            }
            tick().await;
        }
    })
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn run_monitor(
    services: Arc<Services>,
    stopped: watch::Receiver<bool>,
    health: WorkerHealth,
) {
    // Each process polls at its own pace (±20 %): workers started together would otherwise
    // tick in lockstep and one would win every task pushed between their ticks — a full
    // resync one process declines would keep coming back to it instead of another.
    let poll = services
        .timings
        .poll_interval
        .mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2));
    let monitor = match services.queue.clone() {
        JobQueue::Sqlite(storage) => Monitor::new().register(move |_| {
            WorkerBuilder::new(unique_worker_name())
                .backend(storage.clone().poll_with_interval(poll))
                .data(services.clone())
                .concurrency(WORKER_CONCURRENCY)
                .build(super::handle)
        }),
        JobQueue::Postgres(storage) => Monitor::new().register(move |_| {
            WorkerBuilder::new(unique_worker_name())
                .backend(storage.clone().poll_with_interval(poll))
                .data(services.clone())
                .concurrency(WORKER_CONCURRENCY)
                .build(super::handle)
        }),
    };
    let monitor = monitor.shutdown_timeout(SHUTDOWN_GRACE).should_restart({
        let health = health.clone();
        move |worker, error| {
            // Readiness reports it (a worker that keeps dying is never down for long).
            health.record_death();
            tracing::error!(worker = %worker.name(), %error, "job worker died; restarting under a new name");
            true
        }
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
