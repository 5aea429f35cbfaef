//! Durable background work on apalis: thin task handlers over the services, and the runtime
//! that runs them (workers and the sweeper). What must happen lives in our own tables; a task
//! only names a row, and handlers only act on rows they can claim.

mod runtime;

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};

pub use runtime::JobRuntime;

use crate::queue::Task;
use crate::services::{event_resolution, resync_runs, user_resyncs, Services};

async fn handle(task: Task, services: Data<Arc<Services>>) -> Result<(), BoxDynError> {
    match task {
        Task::UserResync { resync_id } => user_resyncs::run(&services, &resync_id).await?,
        Task::ResolveWebhookEvent {
            project_id,
            event_id,
        } => event_resolution::run(&services, &project_id, &event_id).await?,
        Task::ProjectResync { run_id } => resync_runs::run(&services, &run_id).await?,
    }
    Ok(())
}
