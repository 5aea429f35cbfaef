//! Pushing tasks onto the apalis storage of whichever backend the store uses.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;

use super::Task;
use crate::store::{Backend, Store};

/// Queue name of rcsync's tasks (shared by every process on the database).
pub const TASK_QUEUE: &str = "rcsync.tasks";

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue a background task: {0}")]
pub struct JobQueueError(String);

/// Where tasks are pushed. Cheap to clone; one per process.
#[derive(Clone)]
pub enum JobQueue {
    Sqlite(SqliteStorage<Task>),
    Postgres(PostgresStorage<Task>),
}

impl JobQueue {
    pub fn new(store: &Store) -> Self {
        match store.backend() {
            Backend::Sqlite(pool) => JobQueue::Sqlite(
                SqliteStorage::new(pool).with_config(super::runtime::sqlite_config()),
            ),
            Backend::Postgres(pool) => JobQueue::Postgres(
                PostgresStorage::new(pool).with_config(super::runtime::postgres_config()),
            ),
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
