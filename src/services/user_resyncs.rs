//! `revenuecat_user_resync`: fetch one user's state from RevenueCat and apply it.
//!
//! Retries are ours, not apalis's (whose storage retries immediately, without backoff): a
//! failed attempt puts the row back to `pending` with an exponential, jittered `run_after`
//! on the clock, and the dispatcher pushes it again when it is due. After
//! [`JobTimings::max_attempts`] the row ends `failed` with its error.

use std::time::Duration;

use rand::Rng;

use super::revenuecat_sync::SyncError;
use super::Services;
use crate::clock::ms;
use crate::config::JobTimings;
use crate::store::resyncs::{ClaimPolicy, ResyncOutcome, ResyncRequest, UserResync};
use crate::store::{Store, StoreError};

/// Requests a resync of one user after `delay`, joining a pending request if there is one
/// (so a burst of events for a user costs one RevenueCat fetch). Durable once this returns:
/// the row is committed and the dispatcher pushes its task when it is due.
pub async fn request(
    store: &Store,
    project_id: &str,
    user_id: &str,
    reason: &str,
    delay: Duration,
) -> Result<ResyncRequest, StoreError> {
    store
        .request_user_resync(project_id, user_id, reason, ms(delay))
        .await
}

/// When claims count as abandoned, from the timings.
pub fn claim_policy(timings: &JobTimings) -> ClaimPolicy {
    ClaimPolicy {
        instance_timeout_ms: ms(timings.instance_timeout),
        lease_ms: ms(timings.claim_lease),
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
pub async fn run(services: &Services, resync_id: &str) -> Result<(), StoreError> {
    let timings = &services.timings;
    let Some(row) = services
        .store
        .claim_user_resync(resync_id, &services.instance_id, claim_policy(timings))
        .await?
    else {
        tracing::debug!(%resync_id, "nothing to claim (not due, done, superseded or running)");
        return Ok(());
    };
    let attempt = if row.attempts > timings.max_attempts {
        // Only reachable through claims that never settled (crashes mid-attempt).
        Attempt::Retry("too many interrupted attempts".into())
    } else {
        let sync = services.sync.sync_user(&row.project_id, &row.user_id);
        // Finish well inside the claim's lease so no other worker takes over a live attempt.
        match tokio::time::timeout(timings.attempt_time_limit, sync).await {
            Ok(Ok(synced)) if synced.entitlements_only => Attempt::Partial,
            Ok(Ok(_)) => Attempt::Done,
            Ok(Err(
                e @ (SyncError::NotConfigured
                | SyncError::SubscriberNotFound
                | SyncError::AnonymousUser),
            )) => Attempt::Skip(e.to_string()),
            // RevenueCat failures, database faults and an event applied during the fetch alike:
            // bounded retries, then `failed`.
            Ok(Err(e)) => Attempt::Retry(super::error_chain(&e)),
            Err(_) => Attempt::Retry(format!("attempt exceeded {:?}", timings.attempt_time_limit)),
        }
    };
    settle(services, &row, attempt).await
}

/// Records how an attempt ended, scheduling the next one for transient failures.
async fn settle(services: &Services, row: &UserResync, attempt: Attempt) -> Result<(), StoreError> {
    let store = &services.store;
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
    if row.attempts >= services.timings.max_attempts {
        tracing::error!(resync_id = %row.id, error = %message, "user resync failed for good");
        return store
            .finish_user_resync(row, ResyncOutcome::Failed, Some(&message))
            .await;
    }
    let delay = retry_delay(&services.timings, row.attempts);
    tracing::warn!(resync_id = %row.id, attempt = row.attempts, retry_in = ?delay, error = %message, "user resync will retry");
    store
        .reschedule_user_resync(row, store.now_ms() + ms(delay), &message)
        .await?;
    Ok(())
}

/// `first_retry`, doubling per attempt, capped at `max_retry`, with ±20 % jitter so retries of
/// many users spread.
pub fn retry_delay(timings: &JobTimings, attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let base = timings
        .first_retry
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(timings.max_retry);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        let timings = JobTimings::default();
        let first = retry_delay(&timings, 1);
        assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
        assert!(retry_delay(&timings, 3) >= Duration::from_secs(32));
        assert!(retry_delay(&timings, 30) <= Duration::from_secs(720));
    }
}
