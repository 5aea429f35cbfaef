//! Per-user resync requests. Our rows are the source of truth: an apalis task only carries a
//! row id, and a task that runs twice (or for a superseded row) finds nothing to claim.
//!
//! Life of a row: `pending` (due at `run_after`; the dispatcher pushes its task once due and
//! notes `dispatched_at`) → `running` (claimed by one process, fenced by `attempts`) →
//! `succeeded` | `skipped` | `failed`, or back to `pending` for a retry, or `superseded` when a
//! newer request for the user took its place.

use sqlx::{FromRow, QueryBuilder};

use super::claims::abandoned_claim;
pub use super::claims::ClaimPolicy;
use super::tx::on_tx;
use super::{with_pool, with_writer, Store, StoreError, Tx};

/// Stored in `user_resyncs.status` (a CHECK constraint holds it to these values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncStatus {
    Pending,
    Running,
    Succeeded,
    /// Nothing to do (user unknown to RevenueCat, integration removed…); not an error.
    Skipped,
    /// Gave up after the last attempt.
    Failed,
    /// A newer pending request for the same user replaced this one.
    Superseded,
}

impl ResyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncStatus::Pending => "pending",
            ResyncStatus::Running => "running",
            ResyncStatus::Succeeded => "succeeded",
            ResyncStatus::Skipped => "skipped",
            ResyncStatus::Failed => "failed",
            ResyncStatus::Superseded => "superseded",
        }
    }
}

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

/// Whether a request created a new pending row or joined an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncRequest {
    Created { id: String, run_after: i64 },
    AlreadyPending { id: String },
}

/// How settled attempts end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncOutcome {
    Succeeded,
    Skipped,
    Failed,
}

impl ResyncOutcome {
    fn status(self) -> ResyncStatus {
        match self {
            ResyncOutcome::Succeeded => ResyncStatus::Succeeded,
            ResyncOutcome::Skipped => ResyncStatus::Skipped,
            ResyncOutcome::Failed => ResyncStatus::Failed,
        }
    }
}

impl Tx {
    /// A full resync wrote these users with RevenueCat data fetched from `fetched_from` on,
    /// so the follow-ups they had waiting from before are answered: clears their requests due
    /// by `requested_due_by` (requested before the fetch, debounce included) and supersedes
    /// their pending resync rows created before `fetched_from`. Returns how many it settled.
    pub async fn settle_follow_ups(
        &mut self,
        project_id: &str,
        user_ids: &[&str],
        fetched_from: i64,
        requested_due_by: i64,
    ) -> Result<u64, StoreError> {
        if user_ids.is_empty() {
            return Ok(0);
        }
        let now = self.now_ms();
        let settled = on_tx!(self, conn => {
            let mut qb = QueryBuilder::new("UPDATE app_users SET resync_due_at = NULL WHERE resync_due_at <= ");
            qb.push_bind(requested_due_by).push(" AND project_id = ").push_bind(project_id);
            qb.push(" AND user_id IN (");
            let mut list = qb.separated(", ");
            for user_id in user_ids {
                list.push_bind(*user_id);
            }
            qb.push(")");
            let cleared = qb.build().execute(&mut *conn).await?.rows_affected();
            let mut qb = QueryBuilder::new(
                "UPDATE user_resyncs SET status = 'superseded', last_error = 'covered by a full resync', \
                 updated_at = ",
            );
            qb.push_bind(now).push(" WHERE status = 'pending' AND created_at <= ");
            qb.push_bind(fetched_from).push(" AND project_id = ").push_bind(project_id);
            qb.push(" AND user_id IN (");
            let mut list = qb.separated(", ");
            for user_id in user_ids {
                list.push_bind(*user_id);
            }
            qb.push(")");
            cleared + qb.build().execute(&mut *conn).await?.rows_affected()
        });
        Ok(settled)
    }

    /// Requests resyncs of `user_ids` due at `run_after`, joining any pending request of the
    /// same user (the partial unique index decides, so concurrent requests never make two).
    pub async fn request_resyncs(
        &mut self,
        project_id: &str,
        user_ids: &[&str],
        reason: &str,
        run_after: i64,
    ) -> Result<(), StoreError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        if let Some(conn) = self.postgres() {
            let ids: Vec<String> = user_ids
                .iter()
                .map(|_| ulid::Ulid::new().to_string())
                .collect();
            sqlx::query(
                "INSERT INTO user_resyncs (id, project_id, user_id, reason, status, attempts, run_after, \
                 created_at, updated_at) \
                 SELECT r.id, $1, r.user_id, $2, 'pending', 0, $3, $4, $4 \
                 FROM UNNEST($5::text[], $6::text[]) AS r(id, user_id) \
                 ON CONFLICT (project_id, user_id) WHERE status = 'pending' DO NOTHING",
            )
            .bind(project_id)
            .bind(reason)
            .bind(run_after)
            .bind(now)
            .bind(&ids)
            .bind(user_ids)
            .execute(conn)
            .await?;
            return Ok(());
        }
        on_tx!(self, conn => {
            let mut qb = QueryBuilder::new(
                "INSERT INTO user_resyncs (id, project_id, user_id, reason, status, attempts, run_after, \
                 created_at, updated_at) ",
            );
            qb.push_values(user_ids, |mut row, user_id| {
                row.push_bind(ulid::Ulid::new().to_string())
                    .push_bind(project_id)
                    .push_bind(*user_id)
                    .push_bind(reason)
                    .push_bind(ResyncStatus::Pending.as_str())
                    .push_bind(0i64)
                    .push_bind(run_after)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(" ON CONFLICT (project_id, user_id) WHERE status = 'pending' DO NOTHING");
            qb.build().execute(&mut *conn).await?;
        });
        Ok(())
    }
}

impl Store {
    /// Turns up to `limit` due follow-up requests that webhook events left on user rows
    /// (`app_users.resync_due_at`) into pending resync rows, due now; returns how many users
    /// it took. A user with a pending row already keeps that one.
    pub async fn promote_due_follow_ups(&self, limit: i64) -> Result<usize, StoreError> {
        if limit <= 0 {
            return Ok(0);
        }
        // Read first, outside any write lock: most rounds find nothing. A request is only ever
        // set on a user without one, so what is read stays true until this clears it.
        let now = self.now_ms();
        let due: Vec<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT project_id, user_id FROM app_users \
                 WHERE resync_due_at IS NOT NULL AND resync_due_at <= $1 \
                 ORDER BY resync_due_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        if due.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let mut by_project: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (project_id, user_id) in &due {
            by_project.entry(project_id).or_default().push(user_id);
        }
        for (project_id, users) in &by_project {
            tx.request_resyncs(project_id, users, "webhook", now)
                .await?;
            on_tx!(tx, conn => {
                let mut qb = QueryBuilder::new(
                    "UPDATE app_users SET resync_due_at = NULL WHERE resync_due_at <= ",
                );
                qb.push_bind(now).push(" AND project_id = ").push_bind(*project_id);
                qb.push(" AND user_id IN (");
                let mut list = qb.separated(", ");
                for user_id in users {
                    list.push_bind(*user_id);
                }
                qb.push(")");
                qb.build().execute(&mut *conn).await?;
            });
        }
        tx.commit().await?;
        Ok(due.len())
    }

    /// Follow-up requests not yet turned into resync rows (the webhook backlog).
    pub async fn requested_follow_up_count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM app_users WHERE resync_due_at IS NOT NULL")
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// Records a resync request unless one is already pending for the user.
    pub async fn request_user_resync(
        &self,
        project_id: &str,
        user_id: &str,
        reason: &str,
        delay_ms: i64,
    ) -> Result<ResyncRequest, StoreError> {
        let id = ulid::Ulid::new().to_string();
        let now = self.now_ms();
        let run_after = now + delay_ms;
        let inserted: Option<(String,)> = with_writer!(self, pool => {
            sqlx::query_as(
                "INSERT INTO user_resyncs (id, project_id, user_id, reason, status, attempts, run_after, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6) \
                 ON CONFLICT (project_id, user_id) WHERE status = 'pending' DO NOTHING \
                 RETURNING id",
            )
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
        match self.pending_resync_of(project_id, user_id).await? {
            Some(id) => Ok(ResyncRequest::AlreadyPending { id }),
            // The pending row was claimed between our two statements: ask again.
            None => Box::pin(self.request_user_resync(project_id, user_id, reason, delay_ms)).await,
        }
    }

    async fn pending_resync_of(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM user_resyncs WHERE project_id = $1 AND user_id = $2 AND status = 'pending'")
                .bind(project_id)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id,)| id))
    }

    /// Moves a due pending (or abandoned running) request to running for `instance_id`;
    /// `None` if there is nothing to claim — not due, done, superseded, or held by a live
    /// process.
    pub async fn claim_user_resync(
        &self,
        id: &str,
        instance_id: &str,
        policy: ClaimPolicy,
    ) -> Result<Option<UserResync>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE user_resyncs SET status = 'running', attempts = attempts + 1, updated_at = $1, \
                 claimed_by = $2 \
             WHERE id = $3 AND ((status = 'pending' AND run_after <= $1) OR {abandoned}) \
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

    /// Settles a claimed request. Only the claim that is still current may settle it (a
    /// worker that outlived its claim finds `attempts` moved on and changes nothing).
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
            .bind(outcome.status().as_str())
            .bind(error)
            .bind(self.now_ms())
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
        let now = self.now_ms();
        let result = with_writer!(self, pool => {
            sqlx::query(
                "UPDATE user_resyncs SET status = 'pending', run_after = $1, last_error = $2, updated_at = $3, \
                     dispatched_at = NULL, claimed_by = NULL \
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

    /// Takes up to `limit` requests whose task should be pushed now — due and never pushed,
    /// pushed more than `redispatch_ms` ago without being started (the push or the task was
    /// lost), or abandoned by a dead process — marks them dispatched, and returns their ids.
    pub async fn dispatch_due_resyncs(
        &self,
        redispatch_ms: i64,
        policy: ClaimPolicy,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        // Three index-friendly reads (an OR of them would scan the table), then one update
        // that checks each candidate again, so a row another dispatcher took is left alone.
        let candidates = sqlx::AssertSqlSafe(format!(
            "SELECT id FROM (SELECT id FROM user_resyncs WHERE status = 'pending' AND run_after <= $1                  AND dispatched_at IS NULL ORDER BY run_after LIMIT $3) AS due              UNION ALL SELECT id FROM (SELECT id FROM user_resyncs WHERE status = 'pending'                  AND dispatched_at < $1 - $2 ORDER BY dispatched_at LIMIT $3) AS lost              UNION ALL SELECT id FROM (SELECT id FROM user_resyncs WHERE {abandoned}                  AND (dispatched_at IS NULL OR dispatched_at < $1 - $2) LIMIT $3) AS orphaned",
            abandoned = abandoned_claim(policy, "$1"),
        ));
        let ids: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as(candidates)
                .bind(now)
                .bind(redispatch_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let update_head = format!(
            "UPDATE user_resyncs SET dispatched_at = {now}              WHERE ((status = 'pending' AND run_after <= {now}) OR {abandoned})                AND (dispatched_at IS NULL OR dispatched_at < {now} - {redispatch_ms}) AND id IN (",
            abandoned = abandoned_claim(policy, &now.to_string()),
        );
        let taken: Vec<(String,)> = with_writer!(self, pool => {
            let mut qb = QueryBuilder::new(update_head.clone());
            let mut list = qb.separated(", ");
            for (id,) in ids.iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                list.push_bind(id.as_str());
            }
            qb.push(") RETURNING id");
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(taken.into_iter().map(|(id,)| id).collect())
    }

    /// Requests whose task is on the queue or running: pushed within `redispatch_ms` and not
    /// started, or claimed. The dispatcher keeps this below a cap so the queue never holds
    /// more than the workers and RevenueCat's budget can serve; the rest waits here.
    pub async fn resyncs_in_flight(&self, redispatch_ms: i64) -> Result<i64, StoreError> {
        let (count,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM user_resyncs WHERE status = 'running') +                         (SELECT COUNT(*) FROM user_resyncs WHERE status = 'pending' AND dispatched_at >= $1)",
            )
            .bind(self.now_ms() - redispatch_ms)
            .fetch_one(pool)
            .await?
        });
        Ok(count)
    }

    /// Pending requests (the follow-up backlog), for readiness and metrics.
    pub async fn pending_resync_count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM user_resyncs WHERE status = 'pending'")
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    pub async fn get_user_resync(&self, id: &str) -> Result<Option<UserResync>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM user_resyncs WHERE id = $1"));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row)
    }
}
