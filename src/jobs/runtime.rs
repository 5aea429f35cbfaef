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
use crate::services::health::{WorkerHealth, DEATHS_FOR_DOWN, WORKER_DEATH_WINDOW};
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

/// The pause before workers that died are started again: doubling from the first, capped so a
/// worker that keeps dying still dies [`DEATHS_FOR_DOWN`] times within
/// [`WORKER_DEATH_WINDOW`] (and readiness reports it down) while it no longer spins a core on
/// failed fetches.
const RESTART_FIRST_PAUSE: Duration = Duration::from_millis(250);
const RESTART_MAX_PAUSE: Duration = Duration::from_secs(8);
/// Workers that ran this long before dying start the pauses over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const _: () =
    assert!(RESTART_MAX_PAUSE.as_secs() * (DEATHS_FOR_DOWN as u64) < WORKER_DEATH_WINDOW.as_secs());

fn restart_pause(deaths_in_a_row: u32) -> Duration {
    RESTART_FIRST_PAUSE
        .saturating_mul(2u32.saturating_pow(deaths_in_a_row.saturating_sub(1).min(16)))
        .min(RESTART_MAX_PAUSE)
}

/// Runs the workers until stopped. apalis would restart a dead worker at once, and one whose
/// every fetch fails (the database refusing) dies again at once, in a tight loop; so its
/// monitor restarts nothing and ends when its worker dies, and this loop starts a new one
/// (fresh worker name) after a growing pause.
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
    health.set_running(true);
    let mut deaths_in_a_row = 0;
    loop {
        let started = tokio::time::Instant::now();
        let signal = {
            let stopped = stopped.clone();
            async move {
                wait_for_stop(stopped).await;
                Ok(())
            }
        };
        if let Err(e) = monitor(&services, poll).run_with_signal(signal).await {
            tracing::error!(error = %e, "job monitor stopped with an error");
        }
        if *stopped.borrow() {
            break;
        }
        // Readiness reports workers that keep dying.
        health.record_death();
        deaths_in_a_row = if started.elapsed() >= HEALTHY_RUN {
            1
        } else {
            deaths_in_a_row + 1
        };
        let pause = restart_pause(deaths_in_a_row);
        tracing::error!(restart_in = ?pause, deaths_in_a_row, "job worker died; restarting under a new name");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wait_for_stop(stopped.clone()) => break,
        }
    }
    health.set_running(false);
}

/// A monitor of one worker (concurrency [`WORKER_CONCURRENCY`]) under a fresh name, which
/// ends when it is stopped or its worker dies.
fn monitor(services: &Arc<Services>, poll: Duration) -> Monitor {
    let services = services.clone();
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
    monitor
        .shutdown_timeout(SHUTDOWN_GRACE)
        .should_restart(|worker, error| {
            tracing::error!(worker = %worker.name(), %error, "job worker died");
            false
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_pauses_double_and_cap() {
        assert_eq!(restart_pause(1), Duration::from_millis(250));
        assert_eq!(restart_pause(2), Duration::from_millis(500));
        assert_eq!(restart_pause(6), Duration::from_secs(8));
        assert_eq!(restart_pause(u32::MAX), RESTART_MAX_PAUSE);
    }
}
