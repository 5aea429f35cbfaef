//! Durable background work on apalis. Our own tables hold what must happen (resync rows,
//! webhook events awaiting resolution); apalis tasks carry their keys and decide who runs
//! them when. A lost or duplicated task is harmless: the sweeper re-pushes overdue rows and
//! handlers only act on rows they can claim.

pub mod event_resolution;
mod queue;
mod runtime;
pub mod user_resync;

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use serde::{Deserialize, Serialize};

pub use queue::{JobQueue, JobQueueError};
pub use runtime::{JobRuntime, WorkerHealth};

use crate::services::revenuecat_sync::RevenueCatSync;
use crate::store::Store;

/// Every kind of task on rcsync's queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// `revenuecat_user_resync`: one `user_resyncs` row.
    UserResync { resync_id: String },
    /// Find the real user behind an anonymous-only webhook event, then apply it.
    ResolveWebhookEvent {
        project_id: String,
        event_id: String,
    },
}

/// Dependencies of job handlers.
pub struct JobContext {
    pub store: Store,
    pub queue: JobQueue,
    pub sync: RevenueCatSync,
}

pub(crate) async fn handle(task: Task, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    match task {
        Task::UserResync { resync_id } => user_resync::run(&ctx, &resync_id).await?,
        Task::ResolveWebhookEvent {
            project_id,
            event_id,
        } => event_resolution::run(&ctx, &project_id, &event_id).await?,
    }
    Ok(())
}
