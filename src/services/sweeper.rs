//! The safety net under the queue: re-pushes work whose task should have run by now (lost
//! between our commit and the push, or held by a worker that died).

use std::time::Duration;

use crate::queue::{JobQueue, Task};
use crate::store::{Store, StoreError};

/// Work this late is presumed lost. Generous, because a paced backlog is legitimately late
/// and every re-push of it is a duplicate task (harmless, but wasted).
pub const OVERDUE_MS: i64 = 120_000;
/// Rows re-pushed per kind and sweep.
const SWEEP_BATCH: i64 = 200;

pub async fn sweep(store: &Store, queue: &JobQueue) -> Result<(), StoreError> {
    let mut tasks: Vec<Task> = store
        .overdue_user_resyncs(OVERDUE_MS, SWEEP_BATCH)
        .await?
        .into_iter()
        .map(|row| Task::UserResync { resync_id: row.id })
        .collect();
    tasks.extend(
        store
            .overdue_event_resolutions(OVERDUE_MS, SWEEP_BATCH)
            .await?
            .into_iter()
            .map(|(project_id, event_id)| Task::ResolveWebhookEvent {
                project_id,
                event_id,
            }),
    );
    for task in tasks {
        tracing::info!(?task, "re-enqueueing overdue work");
        if let Err(e) = queue.push(task, Duration::ZERO).await {
            tracing::warn!(error = %e, "sweeper could not re-enqueue");
        }
    }
    Ok(())
}
