//! The webhook event log, and recording events together with their effects.
//!
//! [`Tx::record_events`] takes a batch of deliveries (the group commit) and, in the caller's
//! transaction, with a fixed number of statements whatever the batch size: finds which events
//! were already recorded (redeliveries change nothing), applies the new ones to their users
//! under the ordering guard, writes their follow-up resync requests, and inserts the events
//! with their final status. The caller commits once for the whole batch.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;
use sqlx::{FromRow, QueryBuilder};

use super::event_history::{HistoryAction, Transition};
use super::tx::on_tx;
use super::users::{ChangeOutcome, ChangeRule, EventMarker, UserChange};
use super::{with_pool, with_writer, Dialect, Store, StoreError, Tx};
use crate::domain::event_plan::EventPlan;

impl<'a> Transition<'a> {
    /// `event` (as it was read) moving to `status`.
    pub fn of(
        event: &'a StoredWebhookEvent,
        action: HistoryAction,
        status: EventStatus,
        detail: Option<&'a str>,
    ) -> Self {
        Transition {
            project_id: &event.project_id,
            event_id: &event.event_id,
            action,
            status: status.as_str(),
            detail,
            previous_status: &event.status,
            previous_detail: event.status_detail.as_deref(),
        }
    }
}

/// Where an event ended up. Stored in `webhook_events.status` (held to these values by a CHECK
/// constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Its properties were written to the user (or, for TRANSFER, its resyncs requested).
    Applied,
    /// A newer event was already applied to the user; recorded, not applied.
    Superseded,
    /// Recorded and acknowledged; the type does not change subscription state.
    Ignored,
    /// Only anonymous ids: waiting for the resolution job to find the real user.
    PendingResolution,
    /// The resolution job gave up: RevenueCat does not know the customer, or it stayed anonymous.
    Skipped,
    /// The resolution job gave up after repeated errors.
    Failed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Applied => "applied",
            EventStatus::Superseded => "superseded",
            EventStatus::Ignored => "ignored",
            EventStatus::PendingResolution => "pending_resolution",
            EventStatus::Skipped => "skipped",
            EventStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EventStatus::Applied,
            EventStatus::Superseded,
            EventStatus::Ignored,
            EventStatus::PendingResolution,
            EventStatus::Skipped,
            EventStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// A delivery to record, with what the webhook service decided it means.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub project_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub app_user_id: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub event_timestamp_ms: i64,
    /// False when `event_timestamp_ms` is implausible (RevenueCat's own samples carry one from
    /// the year 4466): the event is then ordered by its receive time and flagged.
    pub timestamp_trusted: bool,
    pub payload: &'a str,
    pub plan: &'a EventPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// This event id was already recorded: nothing changed.
    AlreadyProcessed,
    Recorded(EventStatus),
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
    pub timestamp_trusted: bool,
    pub payload: String,
    pub received_at: i64,
    pub status: String,
    pub status_detail: Option<String>,
    pub attempts: i64,
}

impl StoredWebhookEvent {
    /// The marker the ordering guard compares: RevenueCat's time, or ours when it was implausible.
    pub fn ordering_marker(&self) -> EventMarker {
        EventMarker {
            timestamp_ms: if self.timestamp_trusted {
                self.event_timestamp_ms
            } else {
                self.received_at
            },
            event_id: self.event_id.clone(),
        }
    }
}

const EVENT_COLUMNS: &str = "project_id, event_id, event_type, app_user_id, target_user_id, \
    environment, event_timestamp_ms, timestamp_trusted, payload, received_at, status, \
    status_detail, attempts";

const UNTRUSTED_TIMESTAMP: &str =
    "event_timestamp_ms is not a plausible time; ordered by the time rcsync received it";

/// What recording decided for one new event.
struct Settled {
    status: EventStatus,
    target_user_id: Option<String>,
}

/// How a pending resolution is retried or given up.
pub enum ResolutionRetry<'a> {
    At {
        next_attempt_at: i64,
        detail: &'a str,
    },
    GiveUp {
        status: EventStatus,
        detail: &'a str,
    },
}

impl Tx {
    /// Records a batch of deliveries with their effects (see the module docs). Outcomes come
    /// back in the order of `events`; follow-up resyncs are due at `follow_up_at`.
    pub async fn record_events(
        &mut self,
        events: &[NewEvent<'_>],
        follow_up_at: i64,
    ) -> Result<Vec<EventOutcome>, StoreError> {
        let mut outcomes = vec![EventOutcome::AlreadyProcessed; events.len()];
        // Projects in order, so concurrent batches lock rows in the same order.
        let mut by_project: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, event) in events.iter().enumerate() {
            by_project.entry(event.project_id).or_default().push(index);
        }
        for (project_id, indexes) in by_project {
            let fresh = self.fresh_events(project_id, events, &indexes).await?;
            let settled = self
                .apply_events(project_id, events, &fresh, follow_up_at)
                .await?;
            self.request_transfer_resyncs(project_id, events, &fresh, follow_up_at)
                .await?;
            let inserted = self.insert_events(events, &fresh, &settled).await?;
            for (index, settled) in fresh.iter().zip(settled) {
                if inserted.contains(events[*index].event_id) {
                    outcomes[*index] = EventOutcome::Recorded(settled.status);
                }
            }
        }
        Ok(outcomes)
    }

    /// Indexes of the events that are new: not stored yet, and the first of their id in the
    /// batch. Sorted by event id (the order rows are inserted and locked in).
    async fn fresh_events(
        &mut self,
        project_id: &str,
        events: &[NewEvent<'_>],
        indexes: &[usize],
    ) -> Result<Vec<usize>, StoreError> {
        let stored: Vec<(String,)> = if let Some(conn) = self.postgres() {
            let ids: Vec<&str> = indexes.iter().map(|i| events[*i].event_id).collect();
            sqlx::query_as(
                "SELECT event_id FROM webhook_events WHERE project_id = $1 AND event_id = ANY($2)",
            )
            .bind(project_id)
            .bind(&ids)
            .fetch_all(conn)
            .await?
        } else {
            on_tx!(self, conn => {
            let mut qb = QueryBuilder::new("SELECT event_id FROM webhook_events WHERE project_id = ");
            qb.push_bind(project_id).push(" AND event_id IN (");
            let mut ids = qb.separated(", ");
            for index in indexes {
                ids.push_bind(events[*index].event_id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *conn).await?
            })
        };
        let mut seen: HashSet<&str> = stored.iter().map(|(id,)| id.as_str()).collect();
        let mut fresh: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|index| seen.insert(events[*index].event_id))
            .collect();
        fresh.sort_by_key(|index| events[*index].event_id);
        Ok(fresh)
    }

    /// Applies the new events' plans to their users; returns each one's status and target.
    async fn apply_events(
        &mut self,
        project_id: &str,
        events: &[NewEvent<'_>],
        fresh: &[usize],
        follow_up_at: i64,
    ) -> Result<Vec<Settled>, StoreError> {
        let now = self.now_ms();
        // The user changes, oldest event first, so a batch applies in RevenueCat's order.
        let mut applying: Vec<(usize, UserChange<'_>)> = fresh
            .iter()
            .enumerate()
            .filter_map(|(position, index)| {
                let event = &events[*index];
                let EventPlan::Apply { user_id, patch } = event.plan else {
                    return None;
                };
                let marker = EventMarker {
                    timestamp_ms: if event.timestamp_trusted {
                        event.event_timestamp_ms
                    } else {
                        now
                    },
                    event_id: event.event_id.to_owned(),
                };
                let change = UserChange {
                    user_id,
                    patch,
                    rule: ChangeRule::NewerEvent(marker),
                    follow_up_at: Some(follow_up_at),
                };
                Some((position, change))
            })
            .collect();
        applying.sort_by(|(_, a), (_, b)| match (&a.rule, &b.rule) {
            (ChangeRule::NewerEvent(a), ChangeRule::NewerEvent(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        });
        let changes: Vec<UserChange<'_>> = applying.iter().map(|(_, c)| c.clone()).collect();
        let results = self.change_properties(project_id, &changes).await?;
        let mut applied: BTreeMap<usize, bool> = BTreeMap::new();
        for ((position, _), result) in applying.iter().zip(results) {
            applied.insert(*position, matches!(result, ChangeOutcome::Applied(_)));
        }
        Ok(fresh
            .iter()
            .enumerate()
            .map(|(position, index)| match events[*index].plan {
                EventPlan::Apply { user_id, .. } => Settled {
                    status: if applied.get(&position).copied().unwrap_or(false) {
                        EventStatus::Applied
                    } else {
                        EventStatus::Superseded
                    },
                    target_user_id: Some(user_id.clone()),
                },
                EventPlan::Resync(_) => Settled {
                    status: EventStatus::Applied,
                    target_user_id: None,
                },
                EventPlan::Resolve => Settled {
                    status: EventStatus::PendingResolution,
                    target_user_id: None,
                },
                EventPlan::Ignore => Settled {
                    status: EventStatus::Ignored,
                    target_user_id: None,
                },
            })
            .collect())
    }

    /// Resync requests for the users a TRANSFER names (they may have no row yet; the users an
    /// applied event touches carry their request on their own row, see
    /// [`UserChange::follow_up_at`]).
    async fn request_transfer_resyncs(
        &mut self,
        project_id: &str,
        events: &[NewEvent<'_>],
        fresh: &[usize],
        follow_up_at: i64,
    ) -> Result<(), StoreError> {
        let users: BTreeSet<&str> = fresh
            .iter()
            .filter(|index| matches!(events[**index].plan, EventPlan::Resync(_)))
            .flat_map(|index| events[*index].plan.follow_up_users())
            .collect();
        let users: Vec<&str> = users.into_iter().collect();
        self.request_resyncs(project_id, &users, "webhook", follow_up_at)
            .await
    }

    /// Inserts the new events with their final status; returns the ids actually inserted (a
    /// concurrent writer of the same id, possible on PostgreSQL, wins the insert and this
    /// batch's copy counts as a redelivery — its effects were refused by the user row locks).
    async fn insert_events(
        &mut self,
        events: &[NewEvent<'_>],
        fresh: &[usize],
        settled: &[Settled],
    ) -> Result<HashSet<String>, StoreError> {
        if fresh.is_empty() {
            return Ok(HashSet::new());
        }
        let now = self.now_ms();
        if self.dialect() == Dialect::Postgres {
            return self.insert_events_postgres(events, fresh, settled).await;
        }
        // On SQLite the single writer already knows every fresh event is new (it checked in this
        // transaction): no need to stream the ids back.
        let returning = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " RETURNING event_id",
        };
        let rows: Vec<(String,)> = on_tx!(self, conn => {
            let mut qb = QueryBuilder::new(
                "INSERT INTO webhook_events (project_id, event_id, event_type, app_user_id, target_user_id, \
                 environment, event_timestamp_ms, timestamp_trusted, payload, received_at, status, \
                 status_detail, processed_at, attempts, next_attempt_at) ",
            );
            qb.push_values(fresh.iter().zip(settled), |mut row, (index, settled)| {
                let event = &events[*index];
                let pending = settled.status == EventStatus::PendingResolution;
                row.push_bind(event.project_id)
                    .push_bind(event.event_id)
                    .push_bind(event.event_type)
                    .push_bind(event.app_user_id)
                    .push_bind(settled.target_user_id.as_deref())
                    .push_bind(event.environment)
                    .push_bind(event.event_timestamp_ms)
                    .push_bind(event.timestamp_trusted)
                    .push_bind(event.payload)
                    .push_bind(now)
                    .push_bind(settled.status.as_str())
                    .push_bind((!event.timestamp_trusted).then_some(UNTRUSTED_TIMESTAMP))
                    .push_bind((!pending).then_some(now))
                    .push_bind(0i64)
                    .push_bind(pending.then_some(now));
            });
            qb.push(" ON CONFLICT (project_id, event_id) DO NOTHING").push(returning);
            qb.build_query_as().fetch_all(&mut *conn).await?
        });
        if returning.is_empty() {
            return Ok(fresh
                .iter()
                .map(|index| events[*index].event_id.to_owned())
                .collect());
        }
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// [`Self::insert_events`] on PostgreSQL: one statement text over arrays, and the ids a
    /// concurrent writer did not take first.
    async fn insert_events_postgres(
        &mut self,
        events: &[NewEvent<'_>],
        fresh: &[usize],
        settled: &[Settled],
    ) -> Result<HashSet<String>, StoreError> {
        let now = self.now_ms();
        let rows: Vec<&NewEvent<'_>> = fresh.iter().map(|i| &events[*i]).collect();
        let project_id = rows[0].project_id;
        let pending = |s: &Settled| s.status == EventStatus::PendingResolution;
        let conn = self.postgres().expect("PostgreSQL path");
        let inserted: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO webhook_events (project_id, event_id, event_type, app_user_id, target_user_id, \
             environment, event_timestamp_ms, timestamp_trusted, payload, received_at, status, \
             status_detail, processed_at, attempts, next_attempt_at) \
             SELECT $1, e.event_id, e.event_type, e.app_user_id, e.target_user_id, e.environment, e.ts, \
                 e.trusted, e.payload, $2, e.status, e.detail, e.processed_at, 0, e.next_attempt_at \
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], \
                 $9::bool[], $10::text[], $11::text[], $12::text[], $13::int8[], $14::int8[]) \
                 AS e(event_id, event_type, app_user_id, target_user_id, environment, ts, trusted, \
                 payload, status, detail, processed_at, next_attempt_at) \
             ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id",
        )
        .bind(project_id)
        .bind(now)
        .bind(rows.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.app_user_id).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.target_user_id.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.environment).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.event_timestamp_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.timestamp_trusted).collect::<Vec<_>>())
        .bind(rows.iter().map(|e| e.payload).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.status.as_str()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|e| (!e.timestamp_trusted).then_some(UNTRUSTED_TIMESTAMP))
                .collect::<Vec<_>>(),
        )
        .bind(settled.iter().map(|s| (!pending(s)).then_some(now)).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| pending(s).then_some(now)).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
        Ok(inserted.into_iter().map(|(id,)| id).collect())
    }

    /// Settles an event waiting in `pending_resolution` now that its user is known. `None`
    /// when another attempt settled it first (the caller drops the transaction).
    pub async fn settle_resolved_event(
        &mut self,
        event: &StoredWebhookEvent,
        plan: &EventPlan,
        follow_up_at: i64,
    ) -> Result<Option<EventStatus>, StoreError> {
        let now = self.now_ms();
        // Claim first: only the attempt that counted this resolution may settle it.
        let claimed = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE webhook_events SET processed_at = $1, next_attempt_at = NULL \
                 WHERE project_id = $2 AND event_id = $3 AND status = 'pending_resolution' AND attempts = $4",
            )
            .bind(now)
            .bind(&event.project_id)
            .bind(&event.event_id)
            .bind(event.attempts)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if claimed == 0 {
            return Ok(None);
        }
        let (status, target) = match plan {
            EventPlan::Apply { user_id, patch } => {
                let change = UserChange {
                    user_id,
                    patch,
                    rule: ChangeRule::NewerEvent(event.ordering_marker()),
                    follow_up_at: Some(follow_up_at),
                };
                let outcome = self.change_properties(&event.project_id, &[change]).await?;
                let status = match outcome.first() {
                    Some(ChangeOutcome::Applied(_)) => EventStatus::Applied,
                    _ => EventStatus::Superseded,
                };
                (status, Some(user_id.as_str()))
            }
            EventPlan::Resync(_) | EventPlan::Resolve => (EventStatus::Applied, None),
            EventPlan::Ignore => (EventStatus::Ignored, None),
        };
        if let EventPlan::Resync(users) = plan {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            self.request_resyncs(&event.project_id, &users, "webhook", follow_up_at)
                .await?;
        }
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE webhook_events SET status = $1, target_user_id = $2 WHERE project_id = $3 AND event_id = $4",
            )
            .bind(status.as_str())
            .bind(target)
            .bind(&event.project_id)
            .bind(&event.event_id)
            .execute(&mut *conn)
            .await?;
        });
        self.record_transition(Transition::of(
            event,
            HistoryAction::Resolution,
            status,
            None,
        ))
        .await?;
        Ok(Some(status))
    }
}

impl Store {
    /// Records and applies a batch in a transaction of its own (see [`Tx::record_events`]).
    pub async fn ingest_webhook_events(
        &self,
        events: &[NewEvent<'_>],
        follow_up_delay_ms: i64,
    ) -> Result<Vec<EventOutcome>, StoreError> {
        let mut tx = self.begin().await?;
        let follow_up_at = tx.now_ms() + follow_up_delay_ms;
        let outcomes = tx.record_events(events, follow_up_at).await?;
        tx.commit().await?;
        Ok(outcomes)
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
        let row = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(project_id)
                .bind(event_id)
                .bind(self.now_ms())
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    pub async fn retry_event_resolution(
        &self,
        event: &StoredWebhookEvent,
        retry: ResolutionRetry<'_>,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
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
            ResolutionRetry::GiveUp { status, detail } => (status, None, detail, Some(now)),
        };
        let mut tx = self.begin().await?;
        let changed = on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE webhook_events SET status = $1, next_attempt_at = $2, status_detail = $3, processed_at = $4, \
                     dispatched_at = NULL \
                 WHERE project_id = $5 AND event_id = $6 AND status = 'pending_resolution' AND attempts = $7",
            )
            .bind(status.as_str())
            .bind(next)
            .bind(detail)
            .bind(processed)
            .bind(&event.project_id)
            .bind(&event.event_id)
            .bind(event.attempts)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if changed > 0 {
            tx.record_transition(Transition::of(
                event,
                HistoryAction::Resolution,
                status,
                Some(detail),
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes up to `limit` resolutions whose task should be pushed now (due and not pushed, or
    /// pushed more than `redispatch_ms` ago without running), marks them dispatched.
    pub async fn dispatch_due_resolutions(
        &self,
        redispatch_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let skip_locked = match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_events SET dispatched_at = $1 WHERE (project_id, event_id) IN ( \
                 SELECT project_id, event_id FROM webhook_events \
                 WHERE status = 'pending_resolution' AND next_attempt_at <= $1 \
                   AND (dispatched_at IS NULL OR dispatched_at < $1 - $2) \
                 ORDER BY next_attempt_at LIMIT $3{skip_locked}) \
             RETURNING project_id, event_id"
        ));
        let rows = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(self.now_ms())
                .bind(redispatch_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Event counts per status for a project (tests, the demo, the bench).
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
