//! RevenueCat's budget shared by every process on one database.
//!
//! RevenueCat limits each API key, not each process: N `rcsync worker` processes pacing
//! themselves at the full rate would send N times too much. With a [`SharedBudget`] (a token
//! bucket per key and domain kept in PostgreSQL), a process's pacer also needs a token from
//! the bucket before each request. Tokens are leased in small slices, so the database sees a
//! few leases a second rather than a write per request; a slice that sits unused expires, so a
//! process that went quiet cannot later spend a stale burst. A 429 blocks the bucket for
//! everyone until its `Retry-After` has passed.
//!
//! The bucket lives behind this trait so the client knows nothing of storage; `services`
//! implements it over the store. Without one (SQLite, a single process), the local pacer alone
//! keeps the rate.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::api_key::KeyFingerprint;
use super::limits::{DomainLimit, RateLimitDomain};

/// What a lease got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Tokens granted (possibly fewer than asked for, possibly none).
    pub granted: u32,
    /// With none granted: how long until asking again can succeed.
    pub retry_in: Duration,
    /// A 429 some process received still holds the key for this long.
    pub blocked_for: Duration,
}

#[async_trait]
pub trait SharedBudget: Send + Sync + 'static {
    /// Takes up to `want` tokens of the bucket of `key` and `domain`, which refills at
    /// `limit.per_minute` and holds at most `capacity` tokens.
    async fn lease(
        &self,
        key: &KeyFingerprint,
        domain: RateLimitDomain,
        limit: DomainLimit,
        capacity: u32,
        want: u32,
    ) -> Result<Lease, String>;

    /// Holds the bucket for everyone for `wait` (RevenueCat answered 429).
    async fn block(
        &self,
        key: &KeyFingerprint,
        domain: RateLimitDomain,
        wait: Duration,
    ) -> Result<(), String>;
}

/// How long leased tokens stay spendable.
const STASH_TTL: Duration = Duration::from_secs(1);

/// Tokens one process leases at a time: about a quarter second of the budget (at least 1, at
/// most 25), so processes share it finely while the database sees only a few leases a second.
pub fn slice_size(limit: DomainLimit) -> u32 {
    (limit.per_minute / 240).clamp(1, 25)
}

/// Tokens a process holds for one (key, domain).
#[derive(Debug, Default)]
pub(super) struct Stash {
    tokens: u32,
    expires: Option<Instant>,
}

impl Stash {
    /// Spends one stashed token if a fresh one is there.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        if self.expires.is_some_and(|at| at <= now) {
            self.tokens = 0;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    pub(super) fn fill(&mut self, tokens: u32, now: Instant) {
        self.tokens = tokens;
        self.expires = Some(now + STASH_TTL);
    }

    /// A 429 anywhere voids what this process holds.
    pub(super) fn clear(&mut self) {
        self.tokens = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_a_quarter_second_of_the_budget_within_bounds() {
        let limit = |per_minute| DomainLimit {
            per_minute,
            burst: 1,
        };
        assert_eq!(slice_size(limit(60)), 1);
        assert_eq!(slice_size(limit(480)), 2);
        assert_eq!(slice_size(limit(6_000)), 25);
        assert_eq!(slice_size(limit(60_000)), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn stashed_tokens_expire() {
        let mut stash = Stash::default();
        let now = Instant::now();
        assert!(!stash.take(now));
        stash.fill(2, now);
        assert!(stash.take(now));
        assert!(!stash.take(now + STASH_TTL), "expired");
        stash.fill(1, now);
        stash.clear();
        assert!(!stash.take(now));
    }
}
