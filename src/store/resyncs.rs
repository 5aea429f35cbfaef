//! Per-user resync requests. Our rows are the source of truth: an apalis task only carries a
//! row id, and a task that runs twice (or for a superseded row) finds nothing to claim.

use sqlx::FromRow;

use super::{with_pool, with_writer, Store, StoreError};
use crate::timestamp::now_ms;

/// A claimed request older than this is considered abandoned by a crashed worker and may be
/// claimed again. Longer than any single-user sync, including waits on RevenueCat 429s.
pub const RUNNING_LEASE_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, FromRow)]
pub struct UserResync {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub reason: String,
    pub status: String,
    pub attempts: i64,
    pub run_after: i64,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, project_id, user_id, reason, status, attempts, run_after, last_error";

/// Inserts a pending request unless one exists for the user; returns the id when inserted.
/// Binds: id, project_id, user_id, reason, run_after, now.
pub(crate) const INSERT_PENDING_RESYNC: &str =
    "INSERT INTO user_resyncs (id, project_id, user_id, reason, status, attempts, run_after, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6) \
     ON CONFLICT (project_id, user_id) WHERE status = 'pending' DO NOTHING \
     RETURNING id";

/// Whether a request created a new pending row or joined an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncRequest {
    Created { id: String, run_after: i64 },
    AlreadyPending { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncOutcome {
    Succeeded,
    /// Nothing to do (user unknown to RevenueCat, integration removed…); not an error.
    Skipped,
    /// Gave up after the last attempt.
    Failed,
}

impl ResyncOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ResyncOutcome::Succeeded => "succeeded",
            ResyncOutcome::Skipped => "skipped",
            ResyncOutcome::Failed => "failed",
        }
    }
}

impl Store {
    /// Records a resync request unless one is already pending for the user (deduplicated by
    /// the partial unique index, so concurrent requests cannot create two).
    pub async fn request_user_resync(
        &self,
        project_id: &str,
        user_id: &str,
        reason: &str,
        delay_ms: i64,
    ) -> Result<ResyncRequest, StoreError> {
        let id = ulid::Ulid::new().to_string();
        let now = now_ms();
        let run_after = now + delay_ms;
        let inserted: Option<(String,)> = with_writer!(self, pool => {
            sqlx::query_as(INSERT_PENDING_RESYNC)
            .bind(&id)
            .bind(project_id)
            .bind(user_id)
            .bind(reason)
            .bind(run_after)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if inserted.is_some() {
            return Ok(ResyncRequest::Created { id, run_after });
        }
        let existing: Option<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM user_resyncs WHERE project_id = $1 AND user_id = $2 AND status = 'pending'")
                .bind(project_id)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        match existing {
            Some((id,)) => Ok(ResyncRequest::AlreadyPending { id }),
            // The pending row was claimed between our two statements: ask again.
            None => Box::pin(self.request_user_resync(project_id, user_id, reason, delay_ms)).await,
        }
    }

    /// Moves a pending (or abandoned running) request to running; `None` if there is nothing
    /// to claim — already done, superseded, or held by a live worker.
    pub async fn claim_user_resync(&self, id: &str) -> Result<Option<UserResync>, StoreError> {
        let now = now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE user_resyncs SET status = 'running', attempts = attempts + 1, updated_at = $1 \
             WHERE id = $2 \
               AND ((status = 'pending' AND run_after <= $4) OR (status = 'running' AND updated_at < $3)) \
             RETURNING {COLUMNS}"
        ));
        let row = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(now)
                .bind(id)
                .bind(now - RUNNING_LEASE_MS)
                // apalis schedules in whole seconds; a task may fire up to a second early.
                .bind(now + 1_500)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Settles a claimed request. Only the claim that is still current may settle it (a
    /// worker that outlived its lease finds `attempts` moved on and changes nothing).
    pub async fn finish_user_resync(
        &self,
        claim: &UserResync,
        outcome: ResyncOutcome,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        with_writer!(self, pool => {
            sqlx::query(
                "UPDATE user_resyncs SET status = $1, last_error = $2, updated_at = $3 \
                 WHERE id = $4 AND attempts = $5 AND status = 'running'",
            )
            .bind(outcome.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Puts a failed attempt back in the queue for `run_after`. Returns false when a newer
    /// request for the same user is already pending; this one is then marked superseded.
    pub async fn reschedule_user_resync(
        &self,
        claim: &UserResync,
        run_after: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let id = claim.id.as_str();
        let now = now_ms();
        let result = with_writer!(self, pool => {
            sqlx::query(
                "UPDATE user_resyncs SET status = 'pending', run_after = $1, last_error = $2, updated_at = $3 \
                 WHERE id = $4 AND attempts = $5 AND status = 'running'",
            )
            .bind(run_after)
            .bind(error)
            .bind(now)
            .bind(id)
            .bind(claim.attempts)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        match result {
            Ok(affected) => Ok(affected > 0),
            Err(e) if StoreError::is_unique_violation(&e) => {
                with_writer!(self, pool => {
                    sqlx::query("UPDATE user_resyncs SET status = 'superseded', last_error = $1, updated_at = $2 WHERE id = $3")
                        .bind(error)
                        .bind(now)
                        .bind(id)
                        .execute(pool)
                        .await?;
                });
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Requests that should have run by now but have not: their task was lost (a crash
    /// between commit and enqueue) or their worker died. The sweeper re-enqueues them.
    pub async fn overdue_user_resyncs(
        &self,
        overdue_ms: i64,
        limit: i64,
    ) -> Result<Vec<UserResync>, StoreError> {
        let now = now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_resyncs \
             WHERE (status = 'pending' AND run_after < $1) OR (status = 'running' AND updated_at < $2) \
             ORDER BY run_after LIMIT $3"
        ));
        let rows = with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(now - overdue_ms)
                .bind(now - RUNNING_LEASE_MS)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn get_user_resync(&self, id: &str) -> Result<Option<UserResync>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM user_resyncs WHERE id = $1"));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row)
    }
}
