//! The task queue: apalis storage in rcsync's own database, and the tasks it carries.
//!
//! A low-level piece, like the store: services push tasks here, `jobs/` runs them. Tasks only
//! carry keys of rows in our own tables (the source of truth), so a lost or duplicated task is
//! harmless.
//!
//! Storage settings that matter after a crash, documented in one place: workers heartbeat every
//! 5 s and one missing 3 is dead, so its tasks are re-run ~15–20 s after a kill -9 (apalis
//! defaults are 60 s on SQLite and 300 s on PostgreSQL).

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};

use crate::store::{Backend, Store};

/// Queue name of rcsync's tasks (shared by every process on the database).
pub const TASK_QUEUE: &str = "rcsync.tasks";
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 3;

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
    /// `revenuecat_sync`: one `job_runs` row (a full-project resync).
    ProjectResync { run_id: String },
}

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue a background task: {0}")]
pub struct JobQueueError(String);

/// Where tasks are pushed. Cheap to clone; one per process.
#[derive(Clone)]
pub enum JobQueue {
    Sqlite(SqliteStorage<Task>),
    Postgres(PostgresStorage<Task>),
}

fn sqlite_config() -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(TASK_QUEUE)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

fn postgres_config() -> apalis_postgres::Config {
    apalis_postgres::Config::default()
        .queue(TASK_QUEUE)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

impl JobQueue {
    pub fn new(store: &Store) -> Self {
        match store.backend() {
            Backend::Sqlite(pool) => {
                JobQueue::Sqlite(SqliteStorage::new(pool).with_config(sqlite_config()))
            }
            Backend::Postgres(pool) => {
                JobQueue::Postgres(PostgresStorage::new(pool).with_config(postgres_config()))
            }
        }
    }

    /// Applies apalis's own migrations (its `Jobs`/`Workers` tables on SQLite, schema
    /// `apalis` on PostgreSQL). Their history table differs from ours, so both coexist.
    pub async fn migrate(store: &Store) -> Result<(), JobQueueError> {
        let result = match store.backend() {
            Backend::Sqlite(pool) => SqliteStorage::<()>::migrations().run(pool).await,
            Backend::Postgres(pool) => PostgresStorage::<()>::migrations().run(pool).await,
        };
        result.map_err(|e| JobQueueError(format!("apalis migrations: {e}")))
    }

    /// Pushes tasks to run now, in one batch.
    pub async fn push_all(&self, tasks: Vec<Task>) -> Result<(), JobQueueError> {
        let result = match self.clone() {
            JobQueue::Sqlite(mut storage) => {
                storage.push_bulk(tasks).await.map_err(|e| e.to_string())
            }
            JobQueue::Postgres(mut storage) => {
                storage.push_bulk(tasks).await.map_err(|e| e.to_string())
            }
        };
        result.map_err(JobQueueError)
    }

    pub async fn push(&self, task: Task, delay: Duration) -> Result<(), JobQueueError> {
        let task = TaskBuilder::new(task).run_after(delay).build();
        let result = match self.clone() {
            JobQueue::Sqlite(mut storage) => {
                storage.push_task(task).await.map_err(|e| e.to_string())
            }
            JobQueue::Postgres(mut storage) => {
                storage.push_task(task).await.map_err(|e| e.to_string())
            }
        };
        result.map_err(JobQueueError)
    }
}
