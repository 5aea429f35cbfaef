//! The history of a webhook event after it was received: resolution attempts, giving up,
//! replays. Written only when an event's status changes after receipt (never on the ingestion
//! path); read with the event.

use sqlx::FromRow;

use super::tx::on_tx;
use super::{with_pool, Store, StoreError, Tx};

/// Something that happened to an event after it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryAction {
    /// An attempt to resolve an anonymous-only event (retried, given up, or applied).
    Resolution,
    /// A replay through the live path.
    Replay,
}

impl HistoryAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            HistoryAction::Resolution => "resolution",
            HistoryAction::Replay => "replay",
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryEntry {
    pub at: i64,
    pub action: String,
    pub status: String,
    pub status_detail: Option<String>,
    pub previous_status: String,
    pub previous_detail: Option<String>,
}

/// A status change of one event, for its history.
pub struct Transition<'a> {
    pub project_id: &'a str,
    pub event_id: &'a str,
    pub action: HistoryAction,
    /// The status and detail it left the event in.
    pub status: &'static str,
    pub detail: Option<&'a str>,
    /// The status and detail it found.
    pub previous_status: &'a str,
    pub previous_detail: Option<&'a str>,
}

impl Store {
    /// What happened to an event after it was received, oldest first.
    pub async fn event_history(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT at, action, status, status_detail, previous_status, previous_detail \
                 FROM webhook_event_history WHERE project_id = $1 AND event_id = $2 ORDER BY id",
            )
            .bind(project_id)
            .bind(event_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

impl Tx {
    /// Notes a status change in the event's history (the caller changed the row).
    pub async fn record_transition(&mut self, change: Transition<'_>) -> Result<(), StoreError> {
        let now = self.now_ms();
        on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO webhook_event_history (project_id, event_id, at, action, status, \
                 status_detail, previous_status, previous_detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(change.project_id)
            .bind(change.event_id)
            .bind(now)
            .bind(change.action.as_str())
            .bind(change.status)
            .bind(change.detail)
            .bind(change.previous_status)
            .bind(change.previous_detail)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}
