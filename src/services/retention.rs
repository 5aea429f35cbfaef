//! Retention (`RCSYNC_EVENT_RETENTION_DAYS`): webhook events — whose stored payloads carry
//! customer attributes, personal data — finished resync rows, finished job runs and finished
//! queue tasks older than the retention period are deleted, in bounded batches.
//!
//! Every process that runs workers prunes once per `retention_interval` on the clock; on
//! PostgreSQL several may prune at once, which only splits the work.

use super::Services;
use crate::clock::ms;
use crate::queue::TASK_QUEUE;
use crate::store::StoreError;

/// Rows one statement deletes at most: a short transaction, so webhook batches wait
/// milliseconds behind a prune on SQLite's single writer.
const BATCH: i64 = 500;

/// What one round deleted, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub webhook_events: u64,
    pub user_resyncs: u64,
    pub job_runs: u64,
    pub queue_tasks: u64,
}

/// Runs `batch` until it deletes less than a full batch; returns the total.
async fn drain<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
        // Let queued writers (webhook batches) in between batches.
        tokio::task::yield_now().await;
    }
}

/// One round: deletes everything past retention; logs and counts what it deleted.
pub async fn prune(services: &Services, retention_ms: i64) -> Result<Pruned, StoreError> {
    let store = &services.store;
    let cutoff = store.now_ms().saturating_sub(retention_ms);
    let mut pruned = Pruned::default();
    for project_id in store.project_ids().await? {
        pruned.webhook_events +=
            drain(|| store.prune_webhook_events(&project_id, cutoff, BATCH)).await?;
    }
    pruned.user_resyncs = drain(|| store.prune_user_resyncs(cutoff, BATCH)).await?;
    pruned.job_runs = drain(|| store.prune_job_runs(cutoff, BATCH)).await?;
    pruned.queue_tasks = drain(|| store.prune_queue_tasks(TASK_QUEUE, cutoff, BATCH)).await?;
    let metrics = &services.metrics;
    metrics.pruned("webhook_events", pruned.webhook_events);
    metrics.pruned("user_resyncs", pruned.user_resyncs);
    metrics.pruned("job_runs", pruned.job_runs);
    metrics.pruned("queue_tasks", pruned.queue_tasks);
    if pruned != Pruned::default() {
        tracing::info!(
            webhook_events = pruned.webhook_events,
            user_resyncs = pruned.user_resyncs,
            job_runs = pruned.job_runs,
            queue_tasks = pruned.queue_tasks,
            "retention pruned rows older than {} days",
            retention_ms / (24 * 60 * 60 * 1000)
        );
    }
    Ok(pruned)
}

/// When the next round is due, on the clock: the pruner checks often (real time) and prunes
/// when this says so.
#[derive(Debug, Default)]
pub struct Schedule {
    last_ms: std::sync::Mutex<Option<i64>>,
}

impl Schedule {
    /// Whether a round is due now (the first check always is); marks it taken.
    pub fn take_due(&self, services: &Services) -> bool {
        let now = services.store.now_ms();
        let interval = ms(services.timings.retention_interval);
        let mut last = self
            .last_ms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| now - at < interval) {
            return false;
        }
        *last = Some(now);
        true
    }
}
