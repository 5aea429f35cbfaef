//! Background job runs (`revenuecat_sync`): what the jobs API shows and what the runner resumes
//! from. The row is the source of truth; an apalis task only names it.
//!
//! Life of a run: `pending` (the dispatcher pushes its task) → `running` (claimed by one worker
//! instance, fenced by `attempts`; checkpointed after every batch) → `completed` | `failed` |
//! `cancelled`. A run whose instance died is taken over and resumes from its checkpoint.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};

use super::claims::{abandoned_claim, ClaimPolicy};
use super::tx::on_tx;
use super::{with_pool, with_writer, Store, StoreError, Tx};

pub const REVENUECAT_SYNC: &str = "revenuecat_sync";

/// Stored in `job_runs.status` (held to these values by a CHECK constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Running)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct JobRun {
    pub id: String,
    pub job_type: String,
    pub status: String,
    pub team_id: String,
    pub project_id: String,
    pub triggered_by: String,
    pub params: Json<Value>,
    pub progress_processed: i64,
    pub progress_total: i64,
    pub progress_message: Option<String>,
    pub result: Option<Json<Value>>,
    pub error: Option<String>,
    pub checkpoint_cursor: Option<String>,
    pub checkpoint: Option<Json<Value>>,
    pub cancel_requested: bool,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl JobRun {
    pub fn status(&self) -> Option<JobStatus> {
        JobStatus::parse(&self.status)
    }
}

const COLUMNS: &str = "id, job_type, status, team_id, project_id, triggered_by, params, \
    progress_processed, progress_total, progress_message, result, error, checkpoint_cursor, \
    checkpoint, cancel_requested, attempts, started_at, completed_at, created_at, updated_at";

pub struct NewJobRun<'a> {
    pub job_type: &'a str,
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub triggered_by: &'a str,
    pub params: &'a Value,
    pub total: i64,
}

pub enum CreateJobRun {
    Created(Box<JobRun>),
    /// A run of this type is already pending or running for the project.
    AlreadyActive {
        existing_run_id: String,
    },
}

/// A page request for [`Store::list_job_runs`]: newest first.
pub struct JobRunQuery<'a> {
    pub team_id: &'a str,
    pub job_type: Option<&'a str>,
    pub status: Option<JobStatus>,
    pub project_id: Option<&'a str>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Runs strictly older than this `(created_at, id)`.
    pub before: Option<(i64, &'a str)>,
    pub limit: u32,
}

/// How a cancel request landed.
pub enum CancelOutcome {
    /// Was pending: cancelled at once.
    Cancelled(JobRun),
    /// Is running: the runner stops at its next check.
    Requested(JobRun),
    /// Already finished (its current state).
    NotActive(JobRun),
    NotFound,
}

impl Store {
    /// Creates a pending run unless one of its type is active for the project (the partial
    /// unique index decides, so concurrent triggers make exactly one run).
    pub async fn create_job_run(&self, new: NewJobRun<'_>) -> Result<CreateJobRun, StoreError> {
        for _ in 0..3 {
            let id = uuid::Uuid::new_v4().to_string();
            let now = self.now_ms();
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO job_runs (id, job_type, status, team_id, project_id, triggered_by, params, \
                     progress_total, created_at, updated_at) \
                 VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
            ));
            let inserted: Result<JobRun, sqlx::Error> = with_writer!(self, pool => {
                sqlx::query_as(sql)
                    .bind(&id)
                    .bind(new.job_type)
                    .bind(new.team_id)
                    .bind(new.project_id)
                    .bind(new.triggered_by)
                    .bind(Json(new.params))
                    .bind(new.total)
                    .bind(now)
                    .fetch_one(pool)
                    .await
            });
            match inserted {
                Ok(run) => return Ok(CreateJobRun::Created(Box::new(run))),
                Err(e) if StoreError::is_unique_violation(&e) => {
                    if let Some(existing) =
                        self.active_job_run(new.project_id, new.job_type).await?
                    {
                        return Ok(CreateJobRun::AlreadyActive {
                            existing_run_id: existing.id,
                        });
                    }
                    // It finished between our insert and our read: try again.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(
            "job run kept conflicting with runs that finished at once".into(),
        ))
    }

    pub async fn active_job_run(
        &self,
        project_id: &str,
        job_type: &str,
    ) -> Result<Option<JobRun>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE project_id = $1 AND job_type = $2 \
             AND status IN ('pending', 'running')"
        ));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(job_type).fetch_optional(pool).await?
        });
        Ok(row)
    }

    pub async fn get_job_run(&self, id: &str) -> Result<Option<JobRun>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row)
    }

    /// The most recent run of a type for a project, whatever its status (scheduling).
    pub async fn latest_job_run(
        &self,
        project_id: &str,
        job_type: &str,
    ) -> Result<Option<JobRun>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE project_id = $1 AND job_type = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(job_type).fetch_optional(pool).await?
        });
        Ok(row)
    }

    pub async fn list_job_runs(&self, query: JobRunQuery<'_>) -> Result<Vec<JobRun>, StoreError> {
        let rows = with_pool!(self, pool => {
            let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM job_runs WHERE team_id = "));
            qb.push_bind(query.team_id);
            if let Some(job_type) = query.job_type {
                qb.push(" AND job_type = ").push_bind(job_type);
            }
            if let Some(status) = query.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(project_id) = query.project_id {
                qb.push(" AND project_id = ").push_bind(project_id);
            }
            if let Some(since) = query.since_ms {
                qb.push(" AND created_at >= ").push_bind(since);
            }
            if let Some(until) = query.until_ms {
                qb.push(" AND created_at < ").push_bind(until);
            }
            if let Some((created_at, id)) = query.before {
                qb.push(" AND (created_at < ").push_bind(created_at);
                qb.push(" OR (created_at = ").push_bind(created_at);
                qb.push(" AND id < ").push_bind(id).push("))");
            }
            qb.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(query.limit));
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Moves a pending (or abandoned running) run to running for `instance_id`; `None` if
    /// there is nothing to claim.
    pub async fn claim_job_run(
        &self,
        id: &str,
        instance_id: &str,
        policy: ClaimPolicy,
    ) -> Result<Option<JobRun>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE job_runs SET status = 'running', attempts = attempts + 1, claimed_by = $2, \
                 updated_at = $1, started_at = COALESCE(started_at, $1) \
             WHERE id = $3 AND (status = 'pending' OR {abandoned}) \
             RETURNING {COLUMNS}",
            abandoned = abandoned_claim(policy, "$1"),
        ));
        let row = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(self.now_ms())
                .bind(instance_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Records the progress of the current claim (and keeps the claim alive). False when the
    /// claim is no longer current (taken over, or the run was cancelled while pending).
    pub async fn record_job_progress(
        &self,
        claim: &JobRun,
        processed: i64,
        total: i64,
        message: &str,
    ) -> Result<bool, StoreError> {
        let affected = with_writer!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET progress_processed = $1, progress_total = $2, progress_message = $3, \
                     updated_at = $4 \
                 WHERE id = $5 AND attempts = $6 AND status = 'running'",
            )
            .bind(processed)
            .bind(total)
            .bind(message)
            .bind(self.now_ms())
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(affected > 0)
    }

    /// Ends the current claim's run. False when the claim is no longer current.
    pub async fn finish_job_run(
        &self,
        claim: &JobRun,
        status: JobStatus,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let affected = with_writer!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET status = $1, result = $2, error = $3, completed_at = $4, \
                     updated_at = $4, claimed_by = NULL \
                 WHERE id = $5 AND attempts = $6 AND status = 'running'",
            )
            .bind(status.as_str())
            .bind(result.map(Json))
            .bind(error)
            .bind(now)
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(affected > 0)
    }

    /// Gives the current claim back after a failed attempt: the run waits in `pending` until
    /// `run_after`, then the dispatcher pushes it again and it resumes from its checkpoint.
    pub async fn release_job_run(
        &self,
        claim: &JobRun,
        run_after: i64,
        message: &str,
    ) -> Result<bool, StoreError> {
        let affected = with_writer!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET status = 'pending', claimed_by = NULL, dispatched_at = NULL, \
                     run_after = $1, progress_message = $2, updated_at = $3 \
                 WHERE id = $4 AND attempts = $5 AND status = 'running'",
            )
            .bind(run_after)
            .bind(message)
            .bind(self.now_ms())
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(affected > 0)
    }

    /// A pending run this process will not start now (it runs as many as it may): pushed again
    /// at `run_after`, for whichever process has room then.
    pub async fn defer_job_run(&self, id: &str, run_after: i64) -> Result<(), StoreError> {
        with_writer!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET dispatched_at = NULL, run_after = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(run_after)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn cancel_requested(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(bool,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT cancel_requested FROM job_runs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some_and(|(requested,)| requested))
    }

    /// Cancels a pending run at once, or asks a running one to stop.
    pub async fn cancel_job_run(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        let now = self.now_ms();
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE job_runs SET status = 'cancelled', cancel_requested = $1, completed_at = $2, updated_at = $2 \
             WHERE id = $3 AND status = 'pending' RETURNING {COLUMNS}"
        ));
        let cancelled: Option<JobRun> = with_writer!(self, pool => {
            sqlx::query_as(sql).bind(true).bind(now).bind(id).fetch_optional(pool).await?
        });
        if let Some(run) = cancelled {
            return Ok(CancelOutcome::Cancelled(run));
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE job_runs SET cancel_requested = $1, updated_at = updated_at \
             WHERE id = $2 AND status = 'running' RETURNING {COLUMNS}"
        ));
        let requested: Option<JobRun> = with_writer!(self, pool => {
            sqlx::query_as(sql).bind(true).bind(id).fetch_optional(pool).await?
        });
        if let Some(run) = requested {
            return Ok(CancelOutcome::Requested(run));
        }
        Ok(match self.get_job_run(id).await? {
            Some(run) => CancelOutcome::NotActive(run),
            None => CancelOutcome::NotFound,
        })
    }

    /// Takes up to `limit` runs whose task should be pushed now (pending and never pushed,
    /// pushed more than `redispatch_ms` ago without starting, or abandoned by a dead process),
    /// marks them dispatched, and returns their ids.
    pub async fn dispatch_due_job_runs(
        &self,
        redispatch_ms: i64,
        policy: ClaimPolicy,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let now = self.now_ms();
        let due = sqlx::AssertSqlSafe(format!(
            "SELECT id FROM job_runs WHERE {due} ORDER BY created_at LIMIT $3",
            due = due_condition(policy, "$1", "$2"),
        ));
        // Read first: most rounds find nothing, and an update would take SQLite's write lock.
        let ids: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as(due)
                .bind(now)
                .bind(redispatch_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let update = sqlx::AssertSqlSafe(format!(
            "UPDATE job_runs SET dispatched_at = {now} WHERE {due} AND id IN (",
            due = due_condition(policy, &now.to_string(), &redispatch_ms.to_string()),
        ));
        let rows: Vec<(String,)> = with_writer!(self, pool => {
            let mut qb = QueryBuilder::new(update.0.clone());
            let mut list = qb.separated(", ");
            for (id,) in &ids {
                list.push_bind(id.as_str());
            }
            qb.push(") RETURNING id");
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// "The run's task should be pushed now": a pending run due and not pushed (or pushed more
/// than `redispatch` ago without starting: the push or its task was lost), or a running one
/// whose process died and that was not pushed since it last made progress. The last case does
/// not wait out the redispatch window: apalis may re-run the dead worker's task before the
/// claim counts as abandoned, find nothing to claim, and drop it.
fn due_condition(policy: ClaimPolicy, now: &str, redispatch: &str) -> String {
    format!(
        "((status = 'pending' AND (run_after IS NULL OR run_after <= {now}) \
             AND (dispatched_at IS NULL OR dispatched_at < {now} - {redispatch})) \
          OR ({abandoned} AND (dispatched_at IS NULL OR dispatched_at < updated_at \
             OR dispatched_at < {now} - {redispatch})))",
        abandoned = abandoned_claim(policy, now),
    )
}

impl Tx {
    /// Checkpoints the current claim inside the transaction that writes the users up to
    /// `cursor`: both commit or neither, so a run resumed after a crash neither redoes nor
    /// skips a user. False when the claim is no longer current (taken over, or cancelled while
    /// pending): the caller must roll back.
    pub async fn checkpoint_job_run(
        &mut self,
        claim: &JobRun,
        checkpoint: &JobCheckpoint<'_>,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let affected = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE job_runs SET checkpoint_cursor = $1, checkpoint = $2, progress_processed = $3, \
                     progress_total = $4, progress_message = $5, updated_at = $6 \
                 WHERE id = $7 AND attempts = $8 AND status = 'running'",
            )
            .bind(checkpoint.cursor)
            .bind(Json(checkpoint.state))
            .bind(checkpoint.processed)
            .bind(checkpoint.total)
            .bind(checkpoint.message)
            .bind(now)
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(affected > 0)
    }
}

/// A run's resume point and what the run has counted up to it.
pub struct JobCheckpoint<'a> {
    pub cursor: Option<&'a str>,
    pub state: &'a Value,
    pub processed: i64,
    pub total: i64,
    pub message: &'a str,
}
