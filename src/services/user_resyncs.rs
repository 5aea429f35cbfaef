//! `revenuecat_user_resync`: fetch one user's state from RevenueCat and apply it.
//!
//! Retries are ours, not apalis's (whose storage retries immediately, without backoff): a
//! failed attempt puts the row back to `pending` with an exponential, jittered `run_after`
//! and pushes a delayed task. After [`MAX_ATTEMPTS`] the row ends `failed` with its error.

use std::time::Duration;

use rand::Rng;

use super::revenuecat_sync::SyncError;
use super::Services;
use crate::queue::{JobQueue, JobQueueError, Task};
use crate::store::resyncs::{ResyncOutcome, ResyncRequest, UserResync};
use crate::store::subscriber_state::ApplyMode;
use crate::store::{Store, StoreError};
use crate::timestamp::now_ms;

pub const MAX_ATTEMPTS: i64 = 8;
/// Below the store's running lease (5 min), including waits on RevenueCat 429s.
const ATTEMPT_TIME_LIMIT: Duration = Duration::from_secs(240);
const FIRST_RETRY: Duration = Duration::from_secs(10);
const MAX_RETRY: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] JobQueueError),
}

/// Requests a resync of one user after `delay`, joining a pending request if there is one
/// (so a burst of events for a user costs one RevenueCat fetch). Durable once this returns:
/// the row is committed, and if the push is lost the sweeper pushes it again.
pub async fn request(
    store: &Store,
    queue: &JobQueue,
    project_id: &str,
    user_id: &str,
    reason: &str,
    delay: Duration,
) -> Result<ResyncRequest, EnqueueError> {
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let request = store
        .request_user_resync(project_id, user_id, reason, delay_ms)
        .await?;
    if let ResyncRequest::Created { id, .. } = &request {
        push(queue, id, delay).await;
    }
    Ok(request)
}

/// Pushes the task of a committed resync row; a failed push is left to the sweeper.
pub async fn push(queue: &JobQueue, resync_id: &str, delay: Duration) {
    let task = Task::UserResync {
        resync_id: resync_id.to_owned(),
    };
    if let Err(e) = queue.push(task, delay).await {
        // The committed row is the promise; the sweeper will push it.
        tracing::warn!(error = %e, %resync_id, "push failed; the sweeper will retry");
    }
}

/// How an attempt ended, in the terms that decide what happens next.
enum Attempt {
    Done,
    /// Entitlements-only data was written; the full state still needs a retry.
    Partial,
    Skip(String),
    Retry(String),
}

/// Runs one attempt of the resync row `resync_id` (the `revenuecat_user_resync` task).
pub async fn run(ctx: &Services, resync_id: &str) -> Result<(), StoreError> {
    let Some(row) = ctx.store.claim_user_resync(resync_id).await? else {
        tracing::debug!(%resync_id, "nothing to claim (not due, done, superseded or running)");
        return Ok(());
    };
    let attempt = if row.attempts > MAX_ATTEMPTS {
        // Only reachable through claims that never settled (crashes mid-attempt).
        Attempt::Retry("too many interrupted attempts".into())
    } else {
        let sync = ctx
            .sync
            .sync_user(&row.project_id, &row.user_id, ApplyMode::UnlessNewer);
        // Finish well inside the claim's lease so no other worker reclaims a live attempt.
        match tokio::time::timeout(ATTEMPT_TIME_LIMIT, sync).await {
            Ok(Ok(synced)) if synced.entitlements_only => Attempt::Partial,
            Ok(Ok(_)) => Attempt::Done,
            Ok(Err(
                e @ (SyncError::NotConfigured
                | SyncError::SubscriberNotFound
                | SyncError::AnonymousUser),
            )) => Attempt::Skip(e.to_string()),
            // RevenueCat failures and database faults alike: bounded retries, then `failed`.
            Ok(Err(e)) => Attempt::Retry(format!("{e:#}")),
            Err(_) => Attempt::Retry(format!("attempt exceeded {ATTEMPT_TIME_LIMIT:?}")),
        }
    };
    settle(ctx, &row, attempt).await
}

/// Records how an attempt ended, scheduling the next one for transient failures.
async fn settle(ctx: &Services, row: &UserResync, attempt: Attempt) -> Result<(), StoreError> {
    let store = &ctx.store;
    let message = match attempt {
        Attempt::Done => {
            return store
                .finish_user_resync(row, ResyncOutcome::Succeeded, None)
                .await
        }
        Attempt::Skip(reason) => {
            tracing::info!(resync_id = %row.id, %reason, "user resync skipped");
            return store
                .finish_user_resync(row, ResyncOutcome::Skipped, Some(&reason))
                .await;
        }
        Attempt::Partial => {
            "subscriptions unavailable; only entitlements were refreshed".to_owned()
        }
        Attempt::Retry(message) => message,
    };
    if row.attempts >= MAX_ATTEMPTS {
        tracing::error!(resync_id = %row.id, error = %message, "user resync failed for good");
        return store
            .finish_user_resync(row, ResyncOutcome::Failed, Some(&message))
            .await;
    }
    let delay = retry_delay(row.attempts);
    let run_after = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    tracing::warn!(resync_id = %row.id, attempt = row.attempts, retry_in = ?delay, error = %message, "user resync will retry");
    if store
        .reschedule_user_resync(row, run_after, &message)
        .await?
    {
        push(&ctx.queue, &row.id, delay).await;
    }
    Ok(())
}

/// 10 s, 20 s, 40 s … capped at 10 min, with ±20 % jitter so retries of many users spread.
pub(crate) fn retry_delay(attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let base = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        assert!(
            retry_delay(1) >= Duration::from_secs(8) && retry_delay(1) <= Duration::from_secs(12)
        );
        assert!(retry_delay(3) >= Duration::from_secs(32));
        assert!(retry_delay(30) <= Duration::from_secs(720));
    }
}
