//! The webhook event log (DESIGN §2 "Event log"): listing a project's events, one event with
//! its payload and history, and replaying an event through the live path.

use super::webhooks::{parse_event, plan_event};
use super::Services;
use crate::clock::ms;
use crate::domain::integration::REVENUECAT;
use crate::store::event_history::HistoryEntry;
use crate::store::event_log::{EventFilter, EventPage, PageFrom};
use crate::store::webhook_events::StoredWebhookEvent;
use crate::store::{retry_transient_once, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("Event not found")]
    NotFound,
    #[error("RevenueCat is not configured or is disabled for this project")]
    NotConfigured,
    /// The stored payload no longer passes the checks of a live delivery.
    #[error("The event cannot be replayed: {0}")]
    Unreplayable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One event with its stored payload and what happened to it since it was received.
pub struct EventDetail {
    pub event: StoredWebhookEvent,
    pub history: Vec<HistoryEntry>,
}

pub async fn list(
    services: &Services,
    project_id: &str,
    filter: &EventFilter<'_>,
    from: PageFrom,
    limit: u32,
) -> Result<EventPage, EventLogError> {
    Ok(services
        .store
        .list_events(project_id, filter, from, limit)
        .await?)
}

pub async fn get(
    services: &Services,
    project_id: &str,
    event_id: &str,
) -> Result<EventDetail, EventLogError> {
    let event = services
        .store
        .get_webhook_event(project_id, event_id)
        .await?
        .ok_or(EventLogError::NotFound)?;
    let history = services.store.event_history(project_id, event_id).await?;
    Ok(EventDetail { event, history })
}

/// Applies a recorded event again as a live delivery would: the same checks and plan, the same
/// ordering rule (an event older than what the user has since received ends `superseded` and
/// changes nothing), the same follow-up resync. An event that was resolved from an anonymous
/// id is applied to the user it was resolved to; one that never was waits for resolution
/// again. Needs an enabled integration, like a delivery. Returns the event as it now stands.
pub async fn replay(
    services: &Services,
    project_id: &str,
    event_id: &str,
) -> Result<StoredWebhookEvent, EventLogError> {
    let store = &services.store;
    let stored = store
        .get_webhook_event(project_id, event_id)
        .await?
        .ok_or(EventLogError::NotFound)?;
    if store
        .webhook_secrets(project_id, REVENUECAT)
        .await?
        .is_none()
    {
        return Err(EventLogError::NotConfigured);
    }
    let event = parse_event(stored.payload.as_bytes())
        .map_err(|e| EventLogError::Unreplayable(e.to_string()))?;
    let plan = plan_event(&event, stored.target_user_id.as_deref());
    let debounce = ms(services.timings.follow_up_debounce);
    let replayed = retry_transient_once(|| async {
        let mut tx = store.begin().await?;
        let follow_up_at = tx.now_ms() + debounce;
        let replayed = tx.replay_event(&stored, &plan, follow_up_at).await?;
        tx.commit().await?;
        Ok(replayed)
    })
    .await?;
    tracing::info!(
        project_id,
        event_id,
        previous = %stored.status,
        status = replayed.status.as_str(),
        "webhook event replayed"
    );
    store
        .get_webhook_event(project_id, event_id)
        .await?
        .ok_or(EventLogError::NotFound)
}

/// An event type as the log stores it (RevenueCat's spelling, whatever case was asked for).
pub fn canonical_event_type(value: &str) -> String {
    crate::revenuecat::EventType::parse(value)
        .as_str()
        .to_owned()
}

/// An environment as the log stores it (`production`, `sandbox`; any case accepted).
pub fn canonical_environment(value: &str) -> String {
    crate::revenuecat::model::Environment::parse(value)
        .as_str()
        .to_owned()
}
