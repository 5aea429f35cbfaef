//! Moves due work from our tables onto the queue, off the request path: follow-up resyncs
//! requested by webhook events (on the user rows they wrote; promoted to `user_resyncs` rows as
//! room frees up), retries whose backoff has passed, anonymous events due for a resolution
//! attempt. It is also the safety net: a pushed task that never started (its push
//! or its task was lost) and a claim held by a process that died are pushed again.
//!
//! Full-resync runs are pushed the same way: when triggered, when their retry is due, and when
//! the process running one died (the run resumes from its checkpoint).
//!
//! Every process that runs workers runs a dispatcher; on PostgreSQL they split the due rows
//! between them (`SKIP LOCKED`), and a row pushed twice is harmless (only one claim wins).

use super::user_resyncs::claim_policy;
use super::Services;
use crate::clock::ms;
use crate::queue::Task;
use crate::store::StoreError;

/// Anonymous-event resolutions taken per round.
const DISPATCH_BATCH: i64 = 500;
/// Full resyncs started per round (each is one long task).
const RUN_BATCH: i64 = 16;
/// User resyncs on the queue or running at most, across every process. RevenueCat's budget
/// serves a few resyncs a second per key; pushing more only fills the queue (and, on SQLite,
/// competes with webhook ingestion for the write lock). The backlog waits in `user_resyncs`,
/// one pending row per user at most.
pub const MAX_RESYNCS_IN_FLIGHT: i64 = 16;

/// One round: pushes what is due now; returns how many tasks it pushed.
pub async fn dispatch_due(services: &Services) -> Result<usize, StoreError> {
    let timings = &services.timings;
    let redispatch = ms(timings.redispatch_after);
    let store = &services.store;
    let room = MAX_RESYNCS_IN_FLIGHT - store.resyncs_in_flight(redispatch).await?;
    store.promote_due_follow_ups(room).await?;
    let mut tasks: Vec<Task> = store
        .dispatch_due_resyncs(redispatch, claim_policy(timings), room)
        .await?
        .into_iter()
        .map(|resync_id| Task::UserResync { resync_id })
        .collect();
    tasks.extend(
        store
            .dispatch_due_job_runs(redispatch, claim_policy(timings), RUN_BATCH)
            .await?
            .into_iter()
            .map(|run_id| Task::ProjectResync { run_id }),
    );
    tasks.extend(
        store
            .dispatch_due_resolutions(redispatch, DISPATCH_BATCH)
            .await?
            .into_iter()
            .map(|(project_id, event_id)| Task::ResolveWebhookEvent {
                project_id,
                event_id,
            }),
    );
    let pushed = tasks.len();
    if pushed > 0 {
        if let Err(e) = services.queue.push_all(tasks).await {
            // The rows are marked dispatched; they are pushed again after the redispatch window.
            tracing::warn!(error = %e, pushed, "could not push due work; it will be pushed again");
        }
    }
    Ok(pushed)
}
