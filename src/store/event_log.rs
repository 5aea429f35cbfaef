//! Reading the webhook event log, and what happens to an event after it was received: its
//! history (resolution attempts, giving up, replays) and replays.
//!
//! Paging is keyset paging on `(received_at, seq)`: `seq` is assigned by the insert itself and
//! is unique, so events received in the same millisecond have a total order, and a page
//! boundary names one exact position. An event inserted while a reader pages sorts after
//! every event that existed before it (it is newer), so it never shifts a page.

use sqlx::{FromRow, QueryBuilder};

use super::event_history::{HistoryAction, Transition};
use super::tx::on_tx;
use super::users::{ChangeOutcome, ChangeRule, EventMarker, UserChange};
use super::webhook_events::{EventStatus, StoredWebhookEvent};
use super::{with_pool, Store, StoreError, Tx};
use crate::domain::event_plan::EventPlan;

/// A position in a project's log: `(received_at, seq)` of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub received_at: i64,
    pub seq: i64,
}

/// Which way a page reads from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFrom {
    /// The newest events.
    Newest,
    /// Events older than the position (forward, toward the oldest).
    OlderThan(LogPosition),
    /// Events newer than the position (backward, toward the newest).
    NewerThan(LogPosition),
}

/// Filters of the event log; every one optional.
#[derive(Debug, Default, Clone)]
pub struct EventFilter<'a> {
    pub event_type: Option<&'a str>,
    pub status: Option<EventStatus>,
    pub user_id: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// `received_at >= from_ms`.
    pub from_ms: Option<i64>,
    /// `received_at < to_ms`.
    pub to_ms: Option<i64>,
}

/// One event as the log lists it (no payload).
#[derive(Debug, Clone, FromRow)]
pub struct LoggedEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub app_user_id: Option<String>,
    pub target_user_id: Option<String>,
    pub environment: Option<String>,
    pub event_timestamp_ms: i64,
    pub received_at: i64,
    pub status: String,
    pub status_detail: Option<String>,
}

impl LoggedEvent {
    pub fn position(&self) -> LogPosition {
        LogPosition {
            received_at: self.received_at,
            seq: self.seq,
        }
    }
}

const LOG_COLUMNS: &str = "seq, event_id, event_type, app_user_id, target_user_id, environment, \
    event_timestamp_ms, received_at, status, status_detail";

/// One page, newest first, and whether more events lie beyond each end.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<LoggedEvent>,
    /// Older events exist beyond the last one.
    pub has_older: bool,
    /// Newer events exist before the first one.
    pub has_newer: bool,
}

/// What a replay decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub status: EventStatus,
}

/// The detail a replayed event carries.
const REPLAYED: &str = "replayed";

/// Appends the filters (after `WHERE project_id = …`).
fn push_filter<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, filter: &EventFilter<'_>)
where
    for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(event_type) = filter.event_type {
        qb.push(" AND event_type = ").push_bind(event_type);
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(user_id) = filter.user_id {
        qb.push(" AND target_user_id = ").push_bind(user_id);
    }
    if let Some(environment) = filter.environment {
        qb.push(" AND environment = ").push_bind(environment);
    }
    if let Some(from) = filter.from_ms {
        qb.push(" AND received_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to_ms {
        qb.push(" AND received_at < ").push_bind(to);
    }
}

/// `(received_at, seq) <op> (position)`, written out so both dialects use the index.
fn push_position<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, op: &'static str, at: LogPosition)
where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(" AND (received_at ")
        .push(op)
        .push(" ")
        .push_bind(at.received_at);
    qb.push(" OR (received_at = ")
        .push_bind(at.received_at)
        .push(" AND seq ")
        .push(op)
        .push(" ")
        .push_bind(at.seq)
        .push("))");
}

impl Store {
    /// One page of a project's log, newest first.
    pub async fn list_events(
        &self,
        project_id: &str,
        filter: &EventFilter<'_>,
        from: PageFrom,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        let take = i64::from(limit) + 1;
        let mut events: Vec<LoggedEvent> = with_pool!(self, pool => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {LOG_COLUMNS} FROM webhook_events WHERE project_id = "
            ));
            qb.push_bind(project_id);
            push_filter(&mut qb, filter);
            match from {
                PageFrom::Newest => {}
                PageFrom::OlderThan(at) => push_position(&mut qb, "<", at),
                PageFrom::NewerThan(at) => push_position(&mut qb, ">", at),
            }
            let order = match from {
                PageFrom::NewerThan(_) => " ORDER BY received_at ASC, seq ASC LIMIT ",
                _ => " ORDER BY received_at DESC, seq DESC LIMIT ",
            };
            qb.push(order).push_bind(take);
            qb.build_query_as().fetch_all(pool).await?
        });
        let full = events.len() > limit as usize;
        events.truncate(limit as usize);
        let page = match from {
            PageFrom::NewerThan(at) => {
                events.reverse();
                let oldest = events.last().map_or(at, LoggedEvent::position);
                EventPage {
                    has_older: self
                        .events_beyond(project_id, filter, "<", oldest, events.is_empty())
                        .await?,
                    has_newer: full,
                    events,
                }
            }
            PageFrom::Newest | PageFrom::OlderThan(_) => {
                let has_newer = match (from, events.first()) {
                    (PageFrom::Newest, _) => false,
                    (_, Some(first)) => {
                        self.events_beyond(project_id, filter, ">", first.position(), false)
                            .await?
                    }
                    (PageFrom::OlderThan(at), None) => {
                        self.events_beyond(project_id, filter, ">", at, true)
                            .await?
                    }
                    (PageFrom::NewerThan(_), None) => unreachable!("handled above"),
                };
                EventPage {
                    has_older: full,
                    has_newer,
                    events,
                }
            }
        };
        Ok(page)
    }

    /// Whether any event matching `filter` lies beyond `at` (`<`: older, `>`: newer), `at`
    /// itself included when `inclusive`.
    async fn events_beyond(
        &self,
        project_id: &str,
        filter: &EventFilter<'_>,
        op: &'static str,
        at: LogPosition,
        inclusive: bool,
    ) -> Result<bool, StoreError> {
        let op = match (op, inclusive) {
            ("<", true) => "<=",
            (">", true) => ">=",
            (op, _) => op,
        };
        let found: Option<(i64,)> = with_pool!(self, pool => {
            let mut qb = QueryBuilder::new("SELECT seq FROM webhook_events WHERE project_id = ");
            qb.push_bind(project_id);
            push_filter(&mut qb, filter);
            push_position(&mut qb, op, at);
            qb.push(" LIMIT 1");
            qb.build_query_as().fetch_optional(pool).await?
        });
        Ok(found.is_some())
    }
}

impl Tx {
    /// Applies a recorded event again, under the same ordering rule as a live delivery: its
    /// patch is written only if no newer event has been applied to the user since (the event
    /// that is still the user's newest is written again). Records the new status and the
    /// replay in its history.
    pub async fn replay_event(
        &mut self,
        event: &StoredWebhookEvent,
        plan: &EventPlan,
        follow_up_at: i64,
    ) -> Result<Replayed, StoreError> {
        let now = self.now_ms();
        let (status, target) = match plan {
            EventPlan::Apply { user_id, patch } => {
                let marker = event.ordering_marker();
                let rule = if self.user_marker(&event.project_id, user_id).await?
                    == Some(marker.clone())
                {
                    // Still the user's newest event: write it again, the marker stays.
                    ChangeRule::MarkerUnchanged(Some(marker))
                } else {
                    ChangeRule::NewerEvent(marker)
                };
                let change = UserChange {
                    user_id,
                    patch,
                    rule,
                    follow_up_at: Some(follow_up_at),
                };
                let outcome = self.change_properties(&event.project_id, &[change]).await?;
                let status = match outcome.first() {
                    Some(ChangeOutcome::Applied(_)) => EventStatus::Applied,
                    _ => EventStatus::Superseded,
                };
                (status, Some(user_id.as_str()))
            }
            EventPlan::Resync(users) => {
                let users: Vec<&str> = users.iter().map(String::as_str).collect();
                self.request_resyncs(&event.project_id, &users, "webhook", follow_up_at)
                    .await?;
                (EventStatus::Applied, None)
            }
            EventPlan::Resolve => (EventStatus::PendingResolution, None),
            EventPlan::Ignore => (EventStatus::Ignored, None),
        };
        let pending = status == EventStatus::PendingResolution;
        on_tx!(self, conn => {
            // A pending resolution is due again now; the dispatcher pushes it.
            sqlx::query(
                "UPDATE webhook_events SET status = $1, status_detail = $2, target_user_id = $3, \
                     processed_at = $4, next_attempt_at = $5, dispatched_at = NULL \
                 WHERE project_id = $6 AND event_id = $7",
            )
            .bind(status.as_str())
            .bind(REPLAYED)
            .bind(target)
            .bind((!pending).then_some(now))
            .bind(pending.then_some(now))
            .bind(&event.project_id)
            .bind(&event.event_id)
            .execute(&mut *conn)
            .await?;
        });
        self.record_transition(Transition::of(
            event,
            HistoryAction::Replay,
            status,
            Some(REPLAYED),
        ))
        .await?;
        Ok(Replayed { status })
    }

    /// The user's ordering marker as this transaction sees it.
    async fn user_marker(
        &mut self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<EventMarker>, StoreError> {
        let row: Option<(Option<i64>, Option<String>)> = on_tx!(self, conn => {
            sqlx::query_as(
                "SELECT rc_event_timestamp_ms, rc_event_id FROM app_users WHERE project_id = $1 AND user_id = $2",
            )
            .bind(project_id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row.and_then(|(ts, id)| {
            ts.map(|timestamp_ms| EventMarker {
                timestamp_ms,
                event_id: id.unwrap_or_default(),
            })
        }))
    }
}
