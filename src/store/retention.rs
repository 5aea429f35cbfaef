//! Pruning rows past the retention period, one bounded batch per statement: each call deletes
//! at most `limit` rows in its own short transaction, so SQLite's single writer is held for
//! milliseconds and webhook batches interleave with a long prune.

use sqlx::AssertSqlSafe;

use super::{with_pool, with_writer, Dialect, Store, StoreError};

/// Resync rows that will not change again.
const FINISHED_RESYNCS: &str = "('succeeded', 'skipped', 'failed', 'superseded')";
/// Job runs that will not change again.
const FINISHED_RUNS: &str = "('completed', 'failed', 'cancelled')";

impl Store {
    /// Every project id (retention walks the event log project by project, on its index).
    pub async fn project_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM projects ORDER BY id").fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes up to `limit` of a project's webhook events received before `cutoff_ms`, oldest
    /// first, with their history (events still waiting for resolution stay). Returns how many.
    pub async fn prune_webhook_events(
        &self,
        project_id: &str,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let deleted = with_writer!(self, pool => {
            sqlx::query(
                "DELETE FROM webhook_events WHERE project_id = $1 AND event_id IN ( \
                     SELECT event_id FROM webhook_events WHERE project_id = $1 AND received_at < $2 \
                       AND status <> 'pending_resolution' ORDER BY received_at, seq LIMIT $3)",
            )
            .bind(project_id)
            .bind(cutoff_ms)
            .bind(limit)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }

    /// Deletes up to `limit` finished resync rows last changed before `cutoff_ms`.
    pub async fn prune_user_resyncs(&self, cutoff_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(format!(
            "DELETE FROM user_resyncs WHERE id IN (SELECT id FROM user_resyncs \
             WHERE status IN {FINISHED_RESYNCS} AND updated_at < $1 LIMIT $2)"
        ));
        let deleted = with_writer!(self, pool => {
            sqlx::query(sql).bind(cutoff_ms).bind(limit).execute(pool).await?.rows_affected()
        });
        Ok(deleted)
    }

    /// Deletes up to `limit` finished job runs that ended before `cutoff_ms`.
    pub async fn prune_job_runs(&self, cutoff_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(format!(
            "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs \
             WHERE status IN {FINISHED_RUNS} AND COALESCE(completed_at, updated_at) < $1 LIMIT $2)"
        ));
        let deleted = with_writer!(self, pool => {
            sqlx::query(sql).bind(cutoff_ms).bind(limit).execute(pool).await?.rows_affected()
        });
        Ok(deleted)
    }

    /// Deletes up to `limit` finished tasks of `queue` from apalis's own table (`Jobs` on
    /// SQLite, `apalis.jobs` on PostgreSQL) done before `cutoff_ms`. apalis never deletes them
    /// (its SQLite `vacuum` deletes every finished task whatever its age). Finished: done,
    /// killed, or failed with no attempt left. apalis stamps `done_at` with the database's own
    /// clock, in seconds on SQLite.
    pub async fn prune_queue_tasks(
        &self,
        queue: &str,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        // SQLite's apalis table counts seconds; PostgreSQL's is a timestamptz.
        let (sql, cutoff) = match self.dialect() {
            Dialect::Sqlite => (
                "DELETE FROM Jobs WHERE rowid IN (SELECT rowid FROM Jobs WHERE job_type = $1 \
                   AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) \
                   AND done_at < $2 LIMIT $3)",
                cutoff_ms.div_euclid(1000),
            ),
            Dialect::Postgres => (
                "DELETE FROM apalis.jobs WHERE id IN (SELECT id FROM apalis.jobs WHERE job_type = $1 \
                   AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) \
                   AND done_at < to_timestamp($2::float8 / 1000) LIMIT $3)",
                cutoff_ms,
            ),
        };
        let deleted = with_writer!(self, pool => {
            sqlx::query(sql).bind(queue).bind(cutoff).bind(limit).execute(pool).await?.rows_affected()
        });
        Ok(deleted)
    }
}
