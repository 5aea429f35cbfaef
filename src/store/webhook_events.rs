//! The webhook event log and the atomic "record event + apply it" step.
//!
//! One transaction per event: insert the event (its `(project, event.id)` key makes
//! redeliveries no-ops), apply its properties to the user under the ordering guard, request
//! follow-up resyncs, and record the outcome. The transaction starts with a write, so on
//! SQLite it takes the write lock up front instead of failing to upgrade a read lock.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::resyncs::INSERT_PENDING_RESYNC;
use super::subscriber_state::patch_to_json;
use super::{postgres, sqlite, with_pool, with_writer, Dialect, Store, StoreError};
use crate::domain::event_plan::EventPlan;
use crate::timestamp::now_ms;

/// Where an event ended up. Stored as text in `webhook_events.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Its properties were written to the user.
    Applied,
    /// A newer event (or resync) was already applied to the user; recorded, not applied.
    Superseded,
    /// Recorded and acknowledged; the type does not change subscription state.
    Ignored,
    /// Only anonymous ids: waiting for the resolution job to find the real user.
    PendingResolution,
    /// The resolution job gave up (the anonymous id never resolved).
    Skipped,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Applied => "applied",
            EventStatus::Superseded => "superseded",
            EventStatus::Ignored => "ignored",
            EventStatus::PendingResolution => "pending_resolution",
            EventStatus::Skipped => "skipped",
        }
    }
}

/// A delivery as received, before any decision.
pub struct IncomingEvent<'a> {
    pub project_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub app_user_id: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub timestamp_ms: i64,
    pub payload: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// This event id was already recorded (or, for a resolution, already settled).
    AlreadyProcessed,
    Recorded {
        status: EventStatus,
        /// Resync rows created in the transaction; the caller pushes their tasks.
        new_resync_ids: Vec<String>,
    },
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredWebhookEvent {
    pub project_id: String,
    pub event_id: String,
    pub event_type: String,
    pub app_user_id: Option<String>,
    pub target_user_id: Option<String>,
    pub environment: Option<String>,
    pub event_timestamp_ms: i64,
    pub payload: String,
    pub received_at: i64,
    pub status: String,
    pub status_detail: Option<String>,
    pub attempts: i64,
}

const EVENT_COLUMNS: &str = "project_id, event_id, event_type, app_user_id, target_user_id, \
    environment, event_timestamp_ms, payload, received_at, status, status_detail, attempts";

/// How a pending resolution is retried or given up.
pub enum ResolutionRetry<'a> {
    At {
        next_attempt_at: i64,
        detail: &'a str,
    },
    GiveUp {
        detail: &'a str,
    },
}

impl Store {
    /// The ordering-guarded property merge. Newer `event_timestamp_ms` wins; equal timestamps
    /// are ordered by event id (byte order), so every replica and replay picks the same winner.
    fn apply_event_sql(&self) -> sqlx::AssertSqlSafe<String> {
        let (new_properties, merge) = match self.dialect() {
            Dialect::Sqlite => (sqlite::NEW_PROPERTIES, sqlite::MERGE_PROPERTIES),
            Dialect::Postgres => (postgres::NEW_PROPERTIES, postgres::MERGE_PROPERTIES),
        };
        sqlx::AssertSqlSafe(format!(
            "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, updated_at, \
                 rc_event_timestamp_ms, rc_event_id) \
             VALUES ($1, $2, $3, {new_properties}, $6, $6, $7, $8) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET \
                 properties = {merge}, updated_at = $6, rc_event_timestamp_ms = $7, rc_event_id = $8 \
             WHERE app_users.rc_event_timestamp_ms IS NULL \
                OR app_users.rc_event_timestamp_ms < $7 \
                OR (app_users.rc_event_timestamp_ms = $7 AND COALESCE(app_users.rc_event_id, '') < $8)"
        ))
    }

    /// Records a delivery and carries out its plan atomically; follow-up resyncs are due
    /// `resync_delay_ms` from now. A redelivered event id changes nothing.
    pub async fn ingest_webhook_event(
        &self,
        event: &IncomingEvent<'_>,
        plan: &EventPlan,
        resync_delay_ms: i64,
    ) -> Result<EventOutcome, StoreError> {
        self.settle_event(
            Some(event),
            event.project_id,
            event.event_id,
            event.timestamp_ms,
            plan,
            resync_delay_ms,
        )
        .await
    }

    /// Settles an event waiting in `pending_resolution` now that its user is known.
    pub async fn settle_resolved_event(
        &self,
        event: &StoredWebhookEvent,
        plan: &EventPlan,
        resync_delay_ms: i64,
    ) -> Result<EventOutcome, StoreError> {
        self.settle_event(
            None,
            &event.project_id,
            &event.event_id,
            event.event_timestamp_ms,
            plan,
            resync_delay_ms,
        )
        .await
    }

    async fn settle_event(
        &self,
        incoming: Option<&IncomingEvent<'_>>,
        project_id: &str,
        event_id: &str,
        timestamp_ms: i64,
        plan: &EventPlan,
        resync_delay_ms: i64,
    ) -> Result<EventOutcome, StoreError> {
        let now = now_ms();
        let apply_sql = self.apply_event_sql();
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            // Write first: either insert the new event or take the pending one.
            let claimed = match incoming {
                Some(e) => sqlx::query(
                    "INSERT INTO webhook_events (project_id, event_id, event_type, app_user_id, environment, \
                         event_timestamp_ms, payload, received_at, status, attempts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received', 0) \
                     ON CONFLICT (project_id, event_id) DO NOTHING",
                )
                .bind(e.project_id)
                .bind(e.event_id)
                .bind(e.event_type)
                .bind(e.app_user_id)
                .bind(e.environment)
                .bind(e.timestamp_ms)
                .bind(e.payload)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None => sqlx::query(
                    "UPDATE webhook_events SET status = 'resolving' \
                     WHERE project_id = $1 AND event_id = $2 AND status = 'pending_resolution'",
                )
                .bind(project_id)
                .bind(event_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            if claimed == 0 {
                return Ok(EventOutcome::AlreadyProcessed);
            }
            // Users to resync after this event.
            let mut resync_users: Vec<String> = Vec::new();
            let (status, target) = match plan {
                EventPlan::Apply { user_id, patch, resync } => {
                    let json = Json(patch_to_json(patch));
                    let applied = sqlx::query(sqlx::AssertSqlSafe(apply_sql.0.clone()))
                        .bind(project_id)
                        .bind(user_id)
                        .bind(false)
                        .bind(&json)
                        .bind(&json)
                        .bind(now)
                        .bind(timestamp_ms)
                        .bind(event_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() > 0;
                    if applied && *resync {
                        resync_users.push(user_id.clone());
                    }
                    let status = if applied { EventStatus::Applied } else { EventStatus::Superseded };
                    (status, Some(user_id.as_str()))
                }
                EventPlan::Resync(user_ids) => {
                    resync_users.extend(user_ids.iter().cloned());
                    (EventStatus::Applied, None)
                }
                EventPlan::Resolve => (EventStatus::PendingResolution, None),
                EventPlan::Ignore => (EventStatus::Ignored, None),
            };
            let mut new_resync_ids = Vec::new();
            for user_id in &resync_users {
                let created: Option<(String,)> = sqlx::query_as(INSERT_PENDING_RESYNC)
                    .bind(ulid::Ulid::new().to_string())
                    .bind(project_id)
                    .bind(user_id)
                    .bind(format!("event:{event_id}"))
                    .bind(now + resync_delay_ms)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                new_resync_ids.extend(created.map(|(id,)| id));
            }
            let pending = status == EventStatus::PendingResolution;
            sqlx::query(
                "UPDATE webhook_events SET status = $1, target_user_id = $2, processed_at = $3, \
                     next_attempt_at = $4 \
                 WHERE project_id = $5 AND event_id = $6",
            )
            .bind(status.as_str())
            .bind(target)
            .bind((!pending).then_some(now))
            .bind(pending.then_some(now))
            .bind(project_id)
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(EventOutcome::Recorded { status, new_resync_ids })
        })
    }

    pub async fn get_webhook_event(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredWebhookEvent>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE project_id = $1 AND event_id = $2"
        ));
        let row = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(event_id).fetch_optional(pool).await?
        });
        Ok(row)
    }

    /// Counts a resolution attempt; `None` if the event is not waiting (settled or not due).
    pub async fn begin_event_resolution(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredWebhookEvent>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_events SET attempts = attempts + 1 \
             WHERE project_id = $1 AND event_id = $2 AND status = 'pending_resolution' \
               AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
             RETURNING {EVENT_COLUMNS}"
        ));
        // apalis schedules in whole seconds; a task may fire up to a second early.
        let due = now_ms() + 1_500;
        let row = with_writer!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(event_id).bind(due).fetch_optional(pool).await?
        });
        Ok(row)
    }

    pub async fn retry_event_resolution(
        &self,
        project_id: &str,
        event_id: &str,
        retry: ResolutionRetry<'_>,
    ) -> Result<(), StoreError> {
        let (status, next, detail, processed) = match retry {
            ResolutionRetry::At {
                next_attempt_at,
                detail,
            } => (
                EventStatus::PendingResolution,
                Some(next_attempt_at),
                detail,
                None,
            ),
            ResolutionRetry::GiveUp { detail } => {
                (EventStatus::Skipped, None, detail, Some(now_ms()))
            }
        };
        with_writer!(self, pool => {
            sqlx::query(
                "UPDATE webhook_events SET status = $1, next_attempt_at = $2, status_detail = $3, processed_at = $4 \
                 WHERE project_id = $5 AND event_id = $6 AND status = 'pending_resolution'",
            )
            .bind(status.as_str())
            .bind(next)
            .bind(detail)
            .bind(processed)
            .bind(project_id)
            .bind(event_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Events waiting for resolution whose next attempt is overdue (for the sweeper).
    pub async fn overdue_event_resolutions(
        &self,
        overdue_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT project_id, event_id FROM webhook_events \
                 WHERE status = 'pending_resolution' AND next_attempt_at < $1 \
                 ORDER BY next_attempt_at LIMIT $2",
            )
            .bind(now_ms() - overdue_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Event counts per status for a project (tests, the demo, later the event log API).
    pub async fn count_webhook_events(
        &self,
        project_id: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM webhook_events WHERE project_id = $1 GROUP BY status ORDER BY status",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// The raw payload as JSON (for re-reading an event when it is resolved later).
pub fn parse_stored_payload(event: &StoredWebhookEvent) -> Result<Value, StoreError> {
    serde_json::from_str(&event.payload)
        .map_err(|e| StoreError::Corrupt(format!("webhook event {}: {e}", event.event_id)))
}
