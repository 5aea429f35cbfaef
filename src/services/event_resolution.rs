//! Resolving webhook events that carry only anonymous ids: ask RevenueCat who the customer
//! is (its customer endpoint resolves aliases), then apply the event to that user.
//!
//! An anonymous user usually logs in within minutes: an event whose customer is still
//! anonymous is retried with the resync backoff until [`JobTimings::resolution_window`] has
//! passed since it arrived, then given up (`skipped`). Errors (RevenueCat down, database
//! faults) are retried the same way and end `failed`.

use super::revenuecat_sync::SyncError;
use super::user_resyncs::retry_delay;
use super::webhooks::plan_event;
use super::Services;
use crate::clock::ms;
use crate::config::JobTimings;
use crate::domain::app_user::is_anonymous_id;
use crate::revenuecat::{WebhookEvent, WebhookPayload};
use crate::store::webhook_events::{EventStatus, ResolutionRetry, StoredWebhookEvent};
use crate::store::StoreError;

/// One resolution attempt of a `pending_resolution` event (the `ResolveWebhookEvent` task).
pub async fn run(services: &Services, project_id: &str, event_id: &str) -> Result<(), StoreError> {
    let Some(stored) = services
        .store
        .begin_event_resolution(project_id, event_id)
        .await?
    else {
        return Ok(());
    };
    let Ok(payload) = serde_json::from_str::<WebhookPayload>(&stored.payload) else {
        return give_up(
            services,
            &stored,
            EventStatus::Failed,
            "stored payload no longer parses",
        )
        .await;
    };
    let event = payload.event;
    let anonymous_id = event.target_user_id().unwrap_or_default().to_owned();
    match services
        .sync
        .canonical_customer_id(project_id, &anonymous_id)
        .await
    {
        Ok(Some(user_id)) if !is_anonymous_id(&user_id) => {
            match apply_to(services, &stored, &event, &user_id).await {
                Ok(()) => Ok(()),
                // A database fault is retried like an upstream one: bounded, never forever.
                Err(e) => {
                    retry_or_give_up(
                        services,
                        &stored,
                        EventStatus::Failed,
                        &super::error_chain(&e),
                    )
                    .await
                }
            }
        }
        // Known to RevenueCat but still anonymous: the user may log in soon.
        Ok(Some(_)) => {
            retry_or_give_up(
                services,
                &stored,
                EventStatus::Skipped,
                "RevenueCat has no identified user for this id yet",
            )
            .await
        }
        // RevenueCat sends events only for customers it knows; an unknown id never resolves.
        Ok(None) => {
            give_up(
                services,
                &stored,
                EventStatus::Skipped,
                "RevenueCat does not know this customer",
            )
            .await
        }
        Err(SyncError::NotConfigured) => {
            give_up(
                services,
                &stored,
                EventStatus::Skipped,
                "RevenueCat integration removed or disabled",
            )
            .await
        }
        Err(e) => retry_or_give_up(services, &stored, EventStatus::Failed, &e.to_string()).await,
    }
}

async fn apply_to(
    services: &Services,
    stored: &StoredWebhookEvent,
    event: &WebhookEvent,
    user_id: &str,
) -> Result<(), StoreError> {
    let plan = plan_event(event, Some(user_id));
    let mut tx = services.store.begin().await?;
    let follow_up_at = tx.now_ms() + ms(services.timings.follow_up_debounce);
    if let Some(status) = tx
        .settle_resolved_event(stored, &plan, follow_up_at)
        .await?
    {
        tx.commit().await?;
        tracing::info!(event_id = %stored.event_id, status = status.as_str(), "anonymous webhook event resolved");
    }
    Ok(())
}

/// Whether the event has been waiting longer than the resolution window.
fn window_passed(timings: &JobTimings, stored: &StoredWebhookEvent, now_ms: i64) -> bool {
    now_ms - stored.received_at >= ms(timings.resolution_window)
}

async fn retry_or_give_up(
    services: &Services,
    stored: &StoredWebhookEvent,
    final_status: EventStatus,
    detail: &str,
) -> Result<(), StoreError> {
    let now = services.store.now_ms();
    if window_passed(&services.timings, stored, now) {
        return give_up(services, stored, final_status, detail).await;
    }
    let next_attempt_at = now + ms(retry_delay(&services.timings, stored.attempts));
    services
        .store
        .retry_event_resolution(
            stored,
            ResolutionRetry::At {
                next_attempt_at,
                detail,
            },
        )
        .await
}

async fn give_up(
    services: &Services,
    stored: &StoredWebhookEvent,
    status: EventStatus,
    detail: &str,
) -> Result<(), StoreError> {
    tracing::warn!(event_id = %stored.event_id, %detail, status = status.as_str(), "anonymous webhook event given up");
    services
        .store
        .retry_event_resolution(stored, ResolutionRetry::GiveUp { status, detail })
        .await
}
