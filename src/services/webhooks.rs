//! Receiving RevenueCat webhooks: authenticate, validate, then record and apply the event in
//! one transaction before answering 200.
//!
//! Decisions, documented once:
//! - Ordering: an event is applied only if its `event_timestamp_ms` is newer than the last one
//!   applied to the user; ties go to the larger event id. Older events are recorded as
//!   `superseded`.
//! - The user is `app_user_id` unless it is anonymous, then `original_app_user_id`, then the
//!   first non-anonymous alias. With only anonymous ids the event waits (`pending_resolution`)
//!   for a job that asks RevenueCat who the customer is; no user row is ever created for an
//!   anonymous id.
//! - Sandbox events are applied like production ones (the webhook setup asks RevenueCat for
//!   both, so testers see their state); the event log keeps the environment.
//! - Revenue-affecting events also request a resync of the user 2 s later (debounced: one
//!   pending resync per user), so revenue and authoritative state follow within seconds.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::user_resyncs;
use crate::crypto::{digests_match, secret_digest};
use crate::domain::app_user::{has_nul, is_anonymous_id};
use crate::domain::event_plan::EventPlan;
use crate::domain::integration::REVENUECAT;
use crate::queue::{JobQueue, Task};
use crate::revenuecat::{is_revenue_affecting, map_webhook_event, EventType, WebhookEvent};
use crate::store::webhook_events::{EventOutcome, EventStatus, IncomingEvent};
use crate::store::{Store, StoreError};

/// Debounce before the follow-up resync of a user touched by a revenue-affecting event.
pub const RESYNC_DEBOUNCE: Duration = Duration::from_secs(2);

/// Longest accepted event or user id (indexes stay well within PostgreSQL's limits).
pub const MAX_ID_LEN: usize = 512;
/// 2100-01-01: a later timestamp is garbage and would freeze the user's ordering marker.
const MAX_EVENT_TIMESTAMP_MS: i64 = 4_102_444_800_000;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("RevenueCat is not configured or is disabled for this project")]
    NotConfigured,
    #[error("Missing Authorization header")]
    MissingAuthorization,
    #[error("Invalid webhook authorization")]
    InvalidAuthorization,
    /// The delivery cannot be recorded as sent (the message says why).
    #[error("{0}")]
    InvalidPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> WebhookError {
    WebhookError::InvalidPayload(message.into())
}

/// What an event means for user state, decided from the payload alone (pure). `resolved_user`
/// is the user an anonymous-only event turned out to belong to; without it the event applies
/// to its first identified id, or waits for resolution.
pub fn plan_event(event: &WebhookEvent, resolved_user: Option<&str>) -> EventPlan {
    if event.event_type == EventType::Transfer {
        let ids: BTreeSet<String> = event
            .transferred_from
            .iter()
            .chain(&event.transferred_to)
            .filter(|id| !id.is_empty() && !is_anonymous_id(id))
            .cloned()
            .collect();
        return EventPlan::Resync(ids.into_iter().collect());
    }
    let Some(patch) = map_webhook_event(event) else {
        return EventPlan::Ignore;
    };
    match resolved_user.or_else(|| event.identified_user_id()) {
        Some(user_id) => EventPlan::Apply {
            user_id: user_id.to_owned(),
            patch,
            resync: is_revenue_affecting(&event.event_type),
        },
        None => EventPlan::Resolve,
    }
}

/// The debounce as the store wants it.
pub fn resync_debounce_ms() -> i64 {
    RESYNC_DEBOUNCE.as_millis() as i64
}

/// 404 unless the project has an enabled RevenueCat integration, 401 unless the header
/// carries its webhook secret (compared as digests, in constant time).
pub async fn authenticate(
    store: &Store,
    project_id: &str,
    authorization: Option<&str>,
) -> Result<(), WebhookError> {
    if has_nul(project_id) {
        return Err(WebhookError::NotConfigured);
    }
    let expected = store
        .webhook_secret_hash(project_id, REVENUECAT)
        .await?
        .ok_or(WebhookError::NotConfigured)?
        .ok_or(WebhookError::InvalidAuthorization)?;
    let presented = authorization
        .map(|h| h.strip_prefix("Bearer ").unwrap_or(h).trim())
        .filter(|t| !t.is_empty())
        .ok_or(WebhookError::MissingAuthorization)?;
    if digests_match(&secret_digest(presented), &expected) {
        Ok(())
    } else {
        Err(WebhookError::InvalidAuthorization)
    }
}

/// Parses and validates a body. Unknown event types and fields are accepted.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("Malformed JSON: {e}")))?;
    if contains_nul(&json) {
        return Err(invalid("Payload contains NUL (\\u0000) characters"));
    }
    let event = json
        .get("event")
        .filter(|e| e.is_object())
        .ok_or_else(|| invalid("Payload has no `event` object"))?;
    let event: WebhookEvent = serde_json::from_value(event.clone())
        .map_err(|e| invalid(format!("Invalid event: {e}")))?;
    if event.id.trim().is_empty() {
        return Err(invalid("event.id must not be empty"));
    }
    let ids = [
        Some(event.id.as_str()),
        event.app_user_id.as_deref(),
        event.original_app_user_id.as_deref(),
    ];
    let too_long = ids
        .into_iter()
        .flatten()
        .chain(event.aliases.iter().map(String::as_str))
        .chain(event.transferred_from.iter().map(String::as_str))
        .chain(event.transferred_to.iter().map(String::as_str))
        .any(|id| id.len() > MAX_ID_LEN);
    if too_long {
        return Err(invalid(format!(
            "Event ids and user ids must be at most {MAX_ID_LEN} bytes"
        )));
    }
    if !(0..=MAX_EVENT_TIMESTAMP_MS).contains(&event.event_timestamp_ms) {
        return Err(invalid(
            "event.event_timestamp_ms is not a plausible time in milliseconds",
        ));
    }
    if event.event_type != EventType::Transfer && event.target_user_id().is_none() {
        return Err(invalid(
            "Event has neither app_user_id nor original_app_user_id",
        ));
    }
    Ok(event)
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => has_nul(s),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| has_nul(k) || contains_nul(v)),
        _ => false,
    }
}

/// Records and applies one delivery; returns once it is committed.
pub async fn receive(
    store: &Store,
    queue: &JobQueue,
    project_id: &str,
    body: &[u8],
) -> Result<EventOutcome, WebhookError> {
    let event = parse_event(body)?;
    let payload = std::str::from_utf8(body).map_err(|_| invalid("Body is not UTF-8"))?;
    let plan = plan_event(&event, None);
    let incoming = IncomingEvent {
        project_id,
        event_id: &event.id,
        event_type: event.event_type.as_str(),
        app_user_id: event.app_user_id.as_deref(),
        environment: event.environment.as_ref().map(|e| e.as_str()),
        timestamp_ms: event.event_timestamp_ms,
        payload,
    };
    let outcome = store
        .ingest_webhook_event(&incoming, &plan, resync_debounce_ms())
        .await?;
    if let EventOutcome::Recorded {
        status,
        new_resync_ids,
    } = &outcome
    {
        tracing::info!(event_id = %event.id, event_type = %event.event_type.as_str(), status = status.as_str(), "webhook event recorded");
        dispatch_follow_ups(queue, project_id, &event.id, *status, new_resync_ids).await;
    }
    Ok(outcome)
}

/// Pushes the tasks for work committed with the event. A failed push is not an error for
/// RevenueCat: the rows are committed and the sweeper pushes them again.
pub async fn dispatch_follow_ups(
    queue: &JobQueue,
    project_id: &str,
    event_id: &str,
    status: EventStatus,
    new_resync_ids: &[String],
) {
    for id in new_resync_ids {
        user_resyncs::push(queue, id, RESYNC_DEBOUNCE).await;
    }
    if status == EventStatus::PendingResolution {
        let task = Task::ResolveWebhookEvent {
            project_id: project_id.to_owned(),
            event_id: event_id.to_owned(),
        };
        if let Err(e) = queue.push(task, Duration::ZERO).await {
            tracing::warn!(error = %e, %event_id, "resolution push failed; the sweeper will retry");
        }
    }
}
