//! Resolving webhook events that carry only anonymous ids: ask RevenueCat who the customer
//! is (its customer endpoint resolves aliases), then apply the event to that user.

use std::time::Duration;

use super::revenuecat_sync::SyncError;
use super::user_resyncs::retry_delay;
use super::webhooks::{dispatch_follow_ups, plan_event, resync_debounce_ms};
use super::Services;
use crate::domain::app_user::is_anonymous_id;
use crate::queue::Task;
use crate::revenuecat::WebhookEvent;
use crate::store::webhook_events::{
    parse_stored_payload, EventOutcome, ResolutionRetry, StoredWebhookEvent,
};
use crate::store::StoreError;
use crate::timestamp::now_ms;

/// An anonymous user usually logs in within minutes; after ~20 min of retries we stop.
pub const MAX_ATTEMPTS: i64 = 7;

/// One resolution attempt of a `pending_resolution` event (the `ResolveWebhookEvent` task).
pub async fn run(ctx: &Services, project_id: &str, event_id: &str) -> Result<(), StoreError> {
    let Some(stored) = ctx
        .store
        .begin_event_resolution(project_id, event_id)
        .await?
    else {
        return Ok(());
    };
    let event: WebhookEvent = match parse_stored_payload(&stored)
        .ok()
        .and_then(|payload| payload.get("event").cloned())
        .map(serde_json::from_value)
    {
        Some(Ok(event)) => event,
        _ => return give_up(ctx, &stored, "stored payload no longer parses").await,
    };
    let anonymous_id = event.target_user_id().unwrap_or_default().to_owned();
    match ctx
        .sync
        .canonical_customer_id(project_id, &anonymous_id)
        .await
    {
        Ok(Some(user_id)) if !is_anonymous_id(&user_id) => {
            match apply_to(ctx, &stored, &event, user_id).await {
                Ok(()) => Ok(()),
                // A database fault is retried like an upstream one: bounded, never forever.
                Err(e) => retry_or_give_up(ctx, &stored, &format!("{e:#}")).await,
            }
        }
        // Known to RevenueCat but still anonymous: the user may log in soon.
        Ok(Some(_)) => {
            retry_or_give_up(
                ctx,
                &stored,
                "RevenueCat has no identified user for this id yet",
            )
            .await
        }
        // RevenueCat sends events only for customers it knows; an unknown id never resolves.
        Ok(None) => give_up(ctx, &stored, "RevenueCat does not know this customer").await,
        Err(SyncError::NotConfigured) => {
            give_up(ctx, &stored, "RevenueCat integration removed or disabled").await
        }
        Err(e) => retry_or_give_up(ctx, &stored, &e.to_string()).await,
    }
}

async fn apply_to(
    ctx: &Services,
    stored: &StoredWebhookEvent,
    event: &WebhookEvent,
    user_id: String,
) -> Result<(), StoreError> {
    let plan = plan_event(event, Some(&user_id));
    let outcome = ctx
        .store
        .settle_resolved_event(stored, &plan, resync_debounce_ms())
        .await?;
    if let EventOutcome::Recorded {
        status,
        new_resync_ids,
    } = outcome
    {
        tracing::info!(event_id = %stored.event_id, status = status.as_str(), "anonymous webhook event resolved");
        dispatch_follow_ups(
            &ctx.queue,
            &stored.project_id,
            &stored.event_id,
            status,
            &new_resync_ids,
        )
        .await;
    }
    Ok(())
}

async fn retry_or_give_up(
    ctx: &Services,
    stored: &StoredWebhookEvent,
    detail: &str,
) -> Result<(), StoreError> {
    if stored.attempts >= MAX_ATTEMPTS {
        return give_up(ctx, stored, detail).await;
    }
    let delay = retry_delay(stored.attempts);
    let next_attempt_at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    ctx.store
        .retry_event_resolution(
            &stored.project_id,
            &stored.event_id,
            ResolutionRetry::At {
                next_attempt_at,
                detail,
            },
        )
        .await?;
    let task = Task::ResolveWebhookEvent {
        project_id: stored.project_id.clone(),
        event_id: stored.event_id.clone(),
    };
    if let Err(e) = ctx
        .queue
        .push(task, delay.max(Duration::from_secs(1)))
        .await
    {
        tracing::warn!(error = %e, "resolution retry push failed; the sweeper will retry");
    }
    Ok(())
}

async fn give_up(
    ctx: &Services,
    stored: &StoredWebhookEvent,
    detail: &str,
) -> Result<(), StoreError> {
    tracing::warn!(event_id = %stored.event_id, %detail, "anonymous webhook event skipped");
    ctx.store
        .retry_event_resolution(
            &stored.project_id,
            &stored.event_id,
            ResolutionRetry::GiveUp { detail },
        )
        .await
}
