//! A process-wide rate limiter for RevenueCat's per-key, per-domain budgets.
//!
//! RevenueCat limits each API key per *rate-limiting domain* (Customer Information 480/min,
//! Project Configuration 60/min). Every caller in the process — full syncs, single-user syncs,
//! webhook-triggered resyncs — shares one pacer per (key, domain), so together they stay inside
//! the budget instead of each one believing it owns it.
//!
//! Pacing is GCRA: requests are spaced `60s / limit` apart with a small burst allowance. A 429
//! calls [`RateLimiter::penalize`], which pushes *every* waiting and future caller of that
//! key+domain past the `Retry-After`, so one rejection slows the whole process down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::api_key::KeyFingerprint;

/// RevenueCat's rate-limiting domains rcsync uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitDomain {
    /// Customers, subscriptions, purchases, entitlements of a customer.
    CustomerInformation,
    /// Projects, products, entitlements, webhook integrations.
    ProjectConfiguration,
}

/// Budget of one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainLimit {
    pub per_minute: u32,
    /// How many requests may go out back to back after an idle period.
    pub burst: u32,
}

impl DomainLimit {
    fn interval(self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }
}

/// Limits per domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub customer_information: DomainLimit,
    pub project_configuration: DomainLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::REVENUECAT
    }
}

impl RateLimits {
    /// RevenueCat's published per-key budgets (the one place these numbers are written), with
    /// the small bursts rcsync allows itself after an idle period.
    pub const REVENUECAT: RateLimits = RateLimits {
        customer_information: DomainLimit {
            per_minute: 480,
            burst: 4,
        },
        project_configuration: DomainLimit {
            per_minute: 60,
            burst: 2,
        },
    };

    fn for_domain(&self, domain: RateLimitDomain) -> DomainLimit {
        match domain {
            RateLimitDomain::CustomerInformation => self.customer_information,
            RateLimitDomain::ProjectConfiguration => self.project_configuration,
        }
    }
}

#[derive(Debug)]
struct PacerState {
    /// GCRA "theoretical arrival time" of the next request.
    next_slot: Instant,
    /// No request may start before this (set by a 429).
    blocked_until: Instant,
    /// Bumped by every penalty so sleepers notice they must re-queue.
    penalties: u64,
}

/// Spacing for one (key, domain).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// Burst tolerance: how far ahead of `next_slot` a request may start.
    tolerance: Duration,
    state: Mutex<PacerState>,
}

impl Pacer {
    pub fn new(limit: DomainLimit) -> Self {
        let interval = limit.interval();
        let now = Instant::now();
        Self {
            interval,
            tolerance: interval * limit.burst.saturating_sub(1),
            state: Mutex::new(PacerState {
                next_slot: now,
                blocked_until: now,
                penalties: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PacerState> {
        // The state stays consistent even if a holder panicked: recover it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for this caller's turn. Turns are reserved in call order, so callers are served
    /// fairly and the lock is never held across an await.
    pub async fn acquire(&self) {
        loop {
            let (start_at, penalties_seen) = {
                let mut state = self.lock();
                let now = Instant::now();
                let slot = state.next_slot.max(now).max(state.blocked_until);
                let earliest = slot.checked_sub(self.tolerance).unwrap_or(now);
                let start_at = earliest.max(now).max(state.blocked_until);
                state.next_slot = slot + self.interval;
                (start_at, state.penalties)
            };
            tokio::time::sleep_until(start_at).await;
            let state = self.lock();
            if state.penalties == penalties_seen || Instant::now() >= state.blocked_until {
                return;
            }
            // A 429 arrived while we slept: queue again behind the penalty.
        }
    }

    /// Blocks every caller for `retry_after` and restarts pacing after it (no burst on
    /// resume, so the queue drains at the steady rate).
    pub fn penalize(&self, retry_after: Duration) {
        let mut state = self.lock();
        let until = Instant::now() + retry_after;
        state.blocked_until = state.blocked_until.max(until);
        state.next_slot = state.next_slot.max(state.blocked_until + self.tolerance);
        state.penalties += 1;
    }
}

/// Registry of pacers, keyed by a SHA-256 fingerprint of the API key (never the key itself).
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: RateLimits,
    pacers: Mutex<HashMap<(KeyFingerprint, RateLimitDomain), Arc<Pacer>>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            pacers: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// The shared pacer of a key and domain (created on first use).
    pub fn pacer(&self, key: &SecretString, domain: RateLimitDomain) -> Arc<Pacer> {
        let mut pacers = self
            .pacers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        pacers
            .entry((KeyFingerprint::of(key), domain))
            .or_insert_with(|| Arc::new(Pacer::new(self.limits.for_domain(domain))))
            .clone()
    }

    pub async fn acquire(&self, key: &SecretString, domain: RateLimitDomain) {
        self.pacer(key, domain).acquire().await;
    }

    pub fn penalize(&self, key: &SecretString, domain: RateLimitDomain, retry_after: Duration) {
        self.pacer(key, domain).penalize(retry_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, burst: u32) -> RateLimits {
        RateLimits {
            customer_information: DomainLimit { per_minute, burst },
            project_configuration: DomainLimit {
                per_minute: 60,
                burst: 1,
            },
        }
    }

    fn key(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    // Real time with fast rates: tokio's `test-util` (paused time) is not enabled in this crate.

    #[tokio::test]
    async fn paces_requests_at_the_configured_rate() {
        // 6000/min = one request per 10 ms, burst 4.
        let limiter = RateLimiter::new(limits(6000, 4));
        let key = key("sk_a");
        let started = Instant::now();
        for _ in 0..30 {
            limiter
                .acquire(&key, RateLimitDomain::CustomerInformation)
                .await;
        }
        // 4 free (burst), then 26 more spaced 10 ms apart.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(10 * 26), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(10 * 26 + 500),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_budget() {
        // 1200/min = 50 ms apart, no burst.
        let limiter = Arc::new(RateLimiter::new(limits(1200, 1)));
        let started = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter
                        .acquire(&key("sk_shared"), RateLimitDomain::CustomerInformation)
                        .await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn keys_and_domains_are_independent() {
        let limiter = RateLimiter::new(limits(60, 1));
        let started = Instant::now();
        limiter
            .acquire(&key("sk_a"), RateLimitDomain::CustomerInformation)
            .await;
        limiter
            .acquire(&key("sk_b"), RateLimitDomain::CustomerInformation)
            .await;
        limiter
            .acquire(&key("sk_a"), RateLimitDomain::ProjectConfiguration)
            .await;
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_penalty_delays_every_caller() {
        let limiter = Arc::new(RateLimiter::new(limits(60_000, 4)));
        let shared = key("sk_p");
        limiter
            .acquire(&shared, RateLimitDomain::CustomerInformation)
            .await;
        let started = Instant::now();
        // Two callers queued when the 429 arrives...
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter
                        .acquire(&key("sk_p"), RateLimitDomain::CustomerInformation)
                        .await;
                    Instant::now()
                })
            })
            .collect();
        limiter.penalize(
            &shared,
            RateLimitDomain::CustomerInformation,
            Duration::from_millis(400),
        );
        // ...and one arriving afterwards: all wait out the penalty.
        limiter
            .acquire(&shared, RateLimitDomain::CustomerInformation)
            .await;
        assert!(started.elapsed() >= Duration::from_millis(400));
        for waiter in waiters {
            let done_at = waiter.await.unwrap();
            assert!(done_at.duration_since(started) >= Duration::from_millis(400));
        }
        // Another key is unaffected.
        let other = Instant::now();
        limiter
            .acquire(&key("sk_other"), RateLimitDomain::CustomerInformation)
            .await;
        assert!(other.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn sleepers_requeue_after_a_penalty_issued_while_they_wait() {
        // 300/min = 200 ms apart.
        let limiter = Arc::new(RateLimiter::new(limits(300, 1)));
        let shared = key("sk_q");
        limiter
            .acquire(&shared, RateLimitDomain::CustomerInformation)
            .await;
        let started = Instant::now();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                // Reserves the slot at +200 ms.
                limiter
                    .acquire(&key("sk_q"), RateLimitDomain::CustomerInformation)
                    .await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        limiter.penalize(
            &shared,
            RateLimitDomain::CustomerInformation,
            Duration::from_millis(500),
        );
        let done_at = waiter.await.unwrap();
        assert!(done_at.duration_since(started) >= Duration::from_millis(600));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let limiter = RateLimiter::new(RateLimits::default());
        let _ = limiter.pacer(
            &key("sk_live_supersecret"),
            RateLimitDomain::CustomerInformation,
        );
        assert!(!format!("{limiter:?}").contains("supersecret"));
    }
}
