//! A process-wide rate limiter for RevenueCat's per-key, per-domain budgets.
//!
//! RevenueCat limits each API key per *rate-limiting domain* (Customer Information 480/min,
//! Project Configuration 60/min). Every caller in the process — full syncs, single-user syncs,
//! webhook-triggered resyncs — shares one pacer per (key, domain), so together they stay inside
//! the budget instead of each one believing it owns it. Checking a key rcsync has not seen
//! (integration create/PATCH) also passes one process-wide pacer, so a stream of made-up keys
//! cannot make rcsync an unpaced client of RevenueCat.
//!
//! Pacing is GCRA: requests are spaced `60s / limit` apart with a small burst allowance. A 429
//! calls [`RateLimiter::penalize`], which pushes *every* waiting and future caller of that
//! key+domain past the `Retry-After`, so one rejection slows the whole process down.
//!
//! A pacer idle long enough to be indistinguishable from a fresh one (no caller waiting, no
//! penalty running, no slot handed out in the future) is dropped, so the registry holds only
//! the keys in use, not every key ever seen.
//!
//! Callers of one key take turns by [`Priority`]: each class queues on its own, and the heads
//! of the classes alternate. So an admin's single-user sync waits at most a slot or two behind
//! a full resync however many of its requests are queued, and webhook follow-ups and a full
//! resync each get at least half of the budget while both want more.
//!
//! With a [`SharedBudget`] (PostgreSQL scale-out) each request also needs a token from the
//! budget every process on the database shares; see [`super::shared_budget`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::api_key::KeyFingerprint;
pub use super::limits::{DomainLimit, RateLimitDomain, RateLimits};
use super::shared_budget::{slice_size, SharedBudget, Stash};

/// Who is waiting for RevenueCat, which decides the order of service among callers of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// Someone is waiting on an HTTP answer: a single-user sync, a key check, provisioning.
    Interactive,
    /// Background work that keeps users current: webhook follow-up resyncs, anonymous-id
    /// resolution.
    #[default]
    FollowUp,
    /// A full-project resync.
    Bulk,
}

impl Priority {
    const COUNT: usize = 3;

    fn index(self) -> usize {
        match self {
            Priority::Interactive => 0,
            Priority::FollowUp => 1,
            Priority::Bulk => 2,
        }
    }
}

#[derive(Debug)]
struct PacerState {
    /// GCRA "theoretical arrival time" of the next request.
    next_slot: Instant,
    /// No request may start before this (set by a 429).
    blocked_until: Instant,
}

/// The budget shared with other processes, as one pacer uses it.
struct SharedSlot {
    budget: Arc<dyn SharedBudget>,
    key: KeyFingerprint,
    domain: RateLimitDomain,
    limit: DomainLimit,
    stash: Mutex<Stash>,
}

impl std::fmt::Debug for SharedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlot")
            .field("key", &self.key)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Spacing for one (key, domain).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// Burst tolerance: how far ahead of `next_slot` a request may start.
    tolerance: Duration,
    state: Mutex<PacerState>,
    /// Each priority class queues here first, in arrival order (tokio's mutex is fair)...
    class_turns: [tokio::sync::Mutex<()>; Priority::COUNT],
    /// ...and the head of each class then queues here, so the classes alternate.
    turn: tokio::sync::Mutex<()>,
    shared: Option<SharedSlot>,
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
            }),
            class_turns: Default::default(),
            turn: tokio::sync::Mutex::new(()),
            shared: None,
        }
    }

    /// A pacer whose requests also need tokens of a budget shared with other processes.
    fn with_shared(
        limit: DomainLimit,
        budget: Arc<dyn SharedBudget>,
        key: KeyFingerprint,
        domain: RateLimitDomain,
    ) -> Self {
        Self {
            shared: Some(SharedSlot {
                budget,
                key,
                domain,
                limit,
                stash: Mutex::new(Stash::default()),
            }),
            ..Self::new(limit)
        }
    }

    fn lock(&self) -> MutexGuard<'_, PacerState> {
        // The state stays consistent even if a holder panicked: recover it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for this caller's turn. Callers are served in arrival order, and a slot is taken
    /// only once the wait is over: a caller that gives up (its future dropped because its
    /// client went away or its deadline passed) leaves no reservation behind to delay the ones
    /// after it.
    pub async fn acquire(&self, priority: Priority) {
        let _class_turn = self.class_turns[priority.index()].lock().await;
        let _turn = self.turn.lock().await;
        self.wait_for_local_slot().await;
        if let Some(shared) = &self.shared {
            self.wait_for_shared_token(shared).await;
        }
        let mut state = self.lock();
        state.next_slot = state.next_slot.max(Instant::now()) + self.interval;
    }

    async fn wait_for_local_slot(&self) {
        loop {
            let earliest = {
                let state = self.lock();
                let paced = state.next_slot.checked_sub(self.tolerance);
                paced.map_or(state.blocked_until, |paced| paced.max(state.blocked_until))
            };
            if earliest <= Instant::now() {
                break;
            }
            // Re-read the state after sleeping: a 429 may have pushed `blocked_until` further.
            tokio::time::sleep_until(earliest).await;
        }
    }

    /// Spends a stashed token of the shared budget, leasing a slice when none is left. If the
    /// budget cannot be reached, the local pacing alone applies (a database hiccup must not
    /// stop RevenueCat work; the local rate is the configured one either way).
    async fn wait_for_shared_token(&self, shared: &SharedSlot) {
        let slice = slice_size(shared.limit);
        let capacity = slice.max(shared.limit.burst);
        loop {
            if lock(&shared.stash).take(Instant::now()) {
                return;
            }
            let lease = shared
                .budget
                .lease(&shared.key, shared.domain, shared.limit, capacity, slice)
                .await;
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    tracing::warn!(%error, "shared RevenueCat budget unavailable; pacing locally");
                    return;
                }
            };
            if !lease.blocked_for.is_zero() {
                // Another process was told to back off: so are we.
                self.penalize(lease.blocked_for);
            }
            if lease.granted > 0 {
                lock(&shared.stash).fill(lease.granted - 1, Instant::now());
                return;
            }
            let wait = lease
                .retry_in
                .max(lease.blocked_for)
                .max(Duration::from_millis(5));
            tokio::time::sleep(wait).await;
        }
    }

    /// Blocks every caller for `retry_after` and restarts pacing after it (no burst on
    /// resume, so the queue drains at the steady rate).
    pub fn penalize(&self, retry_after: Duration) {
        {
            let mut state = self.lock();
            let until = Instant::now() + retry_after;
            state.blocked_until = state.blocked_until.max(until);
            state.next_slot = state.next_slot.max(state.blocked_until + self.tolerance);
        }
        if let Some(shared) = &self.shared {
            lock(&shared.stash).clear();
        }
    }

    /// Whether a fresh pacer would behave exactly like this one from now on.
    fn is_idle(&self, now: Instant) -> bool {
        let state = self.lock();
        state.next_slot <= now && state.blocked_until <= now
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Pacers by key fingerprint and domain.
#[derive(Debug, Default)]
struct Registry {
    pacers: HashMap<(KeyFingerprint, RateLimitDomain), Arc<Pacer>>,
    /// Idle pacers are swept when the registry grows past this (amortised: it doubles).
    sweep_at: usize,
}

/// The registry never sweeps below this many pacers.
const MIN_SWEEP_AT: usize = 64;

impl Registry {
    fn sweep_idle(&mut self) {
        let now = Instant::now();
        // Only the registry holds an idle pacer: a caller inside `acquire` holds a clone.
        self.pacers
            .retain(|_, pacer| Arc::strong_count(pacer) > 1 || !pacer.is_idle(now));
        self.sweep_at = MIN_SWEEP_AT.max(self.pacers.len() * 2);
    }
}

/// Registry of pacers, keyed by a SHA-256 fingerprint of the API key (never the key itself).
pub struct RateLimiter {
    limits: RateLimits,
    registry: Mutex<Registry>,
    key_checks: Pacer,
    shared: Option<Arc<dyn SharedBudget>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .field("pacers", &self.pacer_count())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(RateLimits::default())
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            registry: Mutex::new(Registry {
                pacers: HashMap::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
            key_checks: Pacer::new(limits.key_checks),
            shared: None,
        }
    }

    /// Every request also takes a token of `budget`, shared with the other processes.
    pub fn with_shared_budget(mut self, budget: Arc<dyn SharedBudget>) -> Self {
        self.shared = Some(budget);
        self
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// The shared pacer of a key and domain (created on first use).
    pub fn pacer(&self, key: &SecretString, domain: RateLimitDomain) -> Arc<Pacer> {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fingerprint = KeyFingerprint::of(key);
        let id = (fingerprint, domain);
        if let Some(pacer) = registry.pacers.get(&id) {
            return pacer.clone();
        }
        let limit = self.limits.for_domain(domain);
        let pacer = Arc::new(match &self.shared {
            Some(budget) => Pacer::with_shared(limit, budget.clone(), fingerprint, domain),
            None => Pacer::new(limit),
        });
        registry.pacers.insert(id, pacer.clone());
        if registry.pacers.len() > registry.sweep_at {
            registry.sweep_idle();
        }
        pacer
    }

    /// How many (key, domain) pacers the registry holds.
    pub fn pacer_count(&self) -> usize {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pacers
            .len()
    }

    pub async fn acquire(&self, key: &SecretString, domain: RateLimitDomain, priority: Priority) {
        self.pacer(key, domain).acquire(priority).await;
    }

    /// The process-wide turn of a key check (before the key's own pacer).
    pub async fn acquire_key_check(&self) {
        self.key_checks.acquire(Priority::Interactive).await;
    }

    /// Holds every caller of `key` and `domain` for `retry_after` (a 429): in this process at
    /// once, and in every process sharing the budget at their next lease.
    pub fn penalize(&self, key: &SecretString, domain: RateLimitDomain, retry_after: Duration) {
        self.pacer(key, domain).penalize(retry_after);
        if let Some(budget) = &self.shared {
            let (budget, fingerprint) = (budget.clone(), KeyFingerprint::of(key));
            tokio::spawn(async move {
                if let Err(error) = budget.block(&fingerprint, domain, retry_after).await {
                    tracing::warn!(%error, "could not share a RevenueCat 429 with other processes");
                }
            });
        }
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
            key_checks: DomainLimit {
                per_minute: 60,
                burst: 2,
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
                .acquire(
                    &key,
                    RateLimitDomain::CustomerInformation,
                    Priority::FollowUp,
                )
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
                        .acquire(
                            &key("sk_shared"),
                            RateLimitDomain::CustomerInformation,
                            Priority::FollowUp,
                        )
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
            .acquire(
                &key("sk_a"),
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        limiter
            .acquire(
                &key("sk_b"),
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        limiter
            .acquire(
                &key("sk_a"),
                RateLimitDomain::ProjectConfiguration,
                Priority::FollowUp,
            )
            .await;
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_penalty_delays_every_caller() {
        let limiter = Arc::new(RateLimiter::new(limits(60_000, 4)));
        let shared = key("sk_p");
        limiter
            .acquire(
                &shared,
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        let started = Instant::now();
        // Two callers queued when the 429 arrives...
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter
                        .acquire(
                            &key("sk_p"),
                            RateLimitDomain::CustomerInformation,
                            Priority::FollowUp,
                        )
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
            .acquire(
                &shared,
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        assert!(started.elapsed() >= Duration::from_millis(400));
        for waiter in waiters {
            let done_at = waiter.await.unwrap();
            assert!(done_at.duration_since(started) >= Duration::from_millis(400));
        }
        // Another key is unaffected.
        let other = Instant::now();
        limiter
            .acquire(
                &key("sk_other"),
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        assert!(other.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn sleepers_requeue_after_a_penalty_issued_while_they_wait() {
        // 300/min = 200 ms apart.
        let limiter = Arc::new(RateLimiter::new(limits(300, 1)));
        let shared = key("sk_q");
        limiter
            .acquire(
                &shared,
                RateLimitDomain::CustomerInformation,
                Priority::FollowUp,
            )
            .await;
        let started = Instant::now();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                // Reserves the slot at +200 ms.
                limiter
                    .acquire(
                        &key("sk_q"),
                        RateLimitDomain::CustomerInformation,
                        Priority::FollowUp,
                    )
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

    // Paused time from here on: tokio advances the clock only when every task waits, so the
    // assertions on elapsed time are exact, not races.

    #[tokio::test(start_paused = true)]
    async fn idle_pacers_are_dropped_but_penalized_and_reserved_ones_stay() {
        // 60/min with burst 1: every acquire reserves the next second.
        let limiter = RateLimiter::new(limits(60, 1));
        let domain = RateLimitDomain::CustomerInformation;
        let penalized = key("sk_penalized");
        let reserved = key("sk_reserved");
        limiter.penalize(&penalized, domain, Duration::from_secs(600));
        for i in 0..1000 {
            limiter
                .acquire(&key(&format!("sk_random_{i}")), domain, Priority::FollowUp)
                .await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        limiter.acquire(&reserved, domain, Priority::FollowUp).await;
        // Growing past the sweep threshold drops every pacer a fresh one would replace.
        for i in 0..MIN_SWEEP_AT {
            limiter
                .acquire(&key(&format!("sk_later_{i}")), domain, Priority::FollowUp)
                .await;
        }
        let count = limiter.pacer_count();
        assert!(
            count <= MIN_SWEEP_AT + 2,
            "{count} pacers after 1000 idle keys"
        );
        // The penalty and the reservation survived the sweep: a fresh pacer would let both
        // callers through at once.
        let started = Instant::now();
        limiter.acquire(&reserved, domain, Priority::FollowUp).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "reservation kept"
        );
        limiter
            .acquire(&penalized, domain, Priority::FollowUp)
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(598), "penalty kept");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiters_leave_no_reservation_behind() {
        // 60/min, no burst: one slot per second.
        let limiter = Arc::new(RateLimiter::new(limits(60, 1)));
        let shared = key("sk_burst");
        let domain = RateLimitDomain::CustomerInformation;
        limiter.acquire(&shared, domain, Priority::FollowUp).await;
        // 100 callers give up after half a second, long before their turns would come.
        let aborted: Vec<_> = (0..100)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_millis(500),
                        limiter.acquire(
                            &key("sk_burst"),
                            RateLimitDomain::CustomerInformation,
                            Priority::FollowUp,
                        ),
                    )
                    .await
                })
            })
            .collect();
        for task in aborted {
            assert!(task.await.unwrap().is_err(), "every waiter timed out");
        }
        // The next caller gets the slot after the last one actually taken, not 100 s later.
        let started = Instant::now();
        limiter.acquire(&shared, domain, Priority::FollowUp).await;
        assert_eq!(started.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn key_checks_share_one_budget_across_keys() {
        // 60/min with burst 2: two checks at once, then one every 60/59 s (the steady rate
        // leaves room for the burst), whatever the key.
        let limiter = RateLimiter::new(limits(60_000, 4));
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire_key_check().await;
        }
        let expected = Duration::from_secs(60) / 59 * 3;
        let elapsed = started.elapsed();
        // Paused time sleeps in whole milliseconds.
        assert!(
            elapsed.abs_diff(expected) <= Duration::from_millis(2),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_interactive_caller_waits_at_most_two_slots_behind_a_bulk_queue() {
        // 60/min, no burst: one slot per second.
        let limiter = Arc::new(RateLimiter::new(limits(60, 1)));
        let domain = RateLimitDomain::CustomerInformation;
        limiter.acquire(&key("sk_k"), domain, Priority::Bulk).await;
        let bulk: Vec<_> = (0..20)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire(&key("sk_k"), domain, Priority::Bulk).await;
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let started = Instant::now();
        limiter
            .acquire(&key("sk_k"), domain, Priority::Interactive)
            .await;
        assert!(
            started.elapsed() <= Duration::from_secs(2),
            "{:?} behind 20 queued bulk requests",
            started.elapsed()
        );
        for task in bulk {
            task.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn follow_ups_and_bulk_alternate_while_both_queue() {
        let limiter = Arc::new(RateLimiter::new(limits(60, 1)));
        let domain = RateLimitDomain::CustomerInformation;
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |priority: Priority, n: usize| -> Vec<_> {
            (0..n)
                .map(|_| {
                    let (limiter, order) = (limiter.clone(), order.clone());
                    tokio::spawn(async move {
                        limiter.acquire(&key("sk_s"), domain, priority).await;
                        order.lock().unwrap().push(priority);
                    })
                })
                .collect()
        };
        let mut tasks = spawn(Priority::Bulk, 10);
        tokio::task::yield_now().await;
        tasks.extend(spawn(Priority::FollowUp, 10));
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap();
        let first_ten = &order[..10];
        let follow_ups = first_ten
            .iter()
            .filter(|p| **p == Priority::FollowUp)
            .count();
        assert!(
            (4..=6).contains(&follow_ups),
            "the first ten slots went {follow_ups} to follow-ups: {order:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_minute_holds_more_than_the_limit_burst_included() {
        let limiter = RateLimiter::new(limits(120, 4));
        let domain = RateLimitDomain::CustomerInformation;
        let started = Instant::now();
        let mut at = Vec::new();
        for _ in 0..300 {
            limiter.acquire(&key("sk_w"), domain, Priority::Bulk).await;
            at.push(started.elapsed());
        }
        let most_in_a_minute = (0..at.len())
            .map(|i| {
                at[i..]
                    .iter()
                    .take_while(|t| **t < at[i] + Duration::from_secs(60))
                    .count()
            })
            .max()
            .unwrap();
        assert!(most_in_a_minute <= 120, "{most_in_a_minute} in one minute");
        assert!(
            most_in_a_minute >= 119,
            "the budget is used: {most_in_a_minute}"
        );
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
