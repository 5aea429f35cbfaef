//! The request log: every request the fake answered under `/v2` (429s and injected faults
//! included), in the order the fake took them up.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::rate_limit::RateLimitDomain;

#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// When the fake took the request up: after any hold and added latency, the instant its
    /// rate limiter saw it.
    #[serde(skip)]
    pub at: Instant,
    /// Milliseconds between the fake's start and `at`.
    pub ms_since_start: u64,
    pub method: String,
    /// As received (still percent-encoded).
    pub path_and_query: String,
    /// First 4 characters of the bearer key, if one was sent.
    pub api_key_hint: Option<String>,
    pub status: u16,
    /// The rate-limiting domain of the endpoint (`None` for unknown paths).
    pub domain: Option<RateLimitDomain>,
    /// For a 429: the wait it announced, in seconds (whatever the header's format).
    pub retry_after_secs: Option<u64>,
    /// For a 429: the `Retry-After` header exactly as sent.
    pub retry_after: Option<String>,
}

impl LoggedRequest {
    /// When a client that honours this 429 may ask again.
    pub fn retry_allowed_at(&self) -> Option<Instant> {
        self.retry_after_secs
            .map(|secs| self.at + Duration::from_secs(secs))
    }
}

/// The largest number of requests matching `filter` that fall into any half-open interval
/// `[t, t + window)` — e.g. `max_in_any_window(&log, 60 s, |r| r.status != 429)` is what a
/// client's limiter must keep at or below the configured per-minute limit.
pub fn max_in_any_window(
    log: &[LoggedRequest],
    window: Duration,
    filter: impl Fn(&LoggedRequest) -> bool,
) -> usize {
    let mut times: Vec<Instant> = log.iter().filter(|r| filter(r)).map(|r| r.at).collect();
    times.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
