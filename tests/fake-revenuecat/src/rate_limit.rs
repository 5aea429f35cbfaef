//! Per-API-key, per-domain rate limiting as RevenueCat describes it: every request of a domain
//! counts against that key's budget for the domain; the period is one minute.
//!
//! The fake uses a **sliding window log**: for each (key, domain) it keeps the instants of the
//! requests it accepted during the last `window` (60 s by default). A request is accepted when
//! fewer than `limit` accepted requests lie in `(now - window, now]`; so *no* window of that
//! length, wherever it starts, ever contains more than `limit` accepted requests. Rejected
//! (429) requests are not counted. `Retry-After` is the whole number of seconds (at least 1)
//! until the oldest accepted request leaves the window.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// RevenueCat's rate-limiting domains (`x-revenuecat-rate-limiting-domain`) the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitDomain {
    /// Customers and their sub-resources (480/min at RevenueCat).
    CustomerInformation,
    /// Projects, apps, products, entitlements, integrations (60/min at RevenueCat).
    ProjectConfiguration,
}

impl RateLimitDomain {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitDomain::CustomerInformation => "customer_information",
            RateLimitDomain::ProjectConfiguration => "project_configuration",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        usage: u32,
        limit: u32,
    },
    Limited {
        usage: u32,
        limit: u32,
        retry_after_secs: u64,
    },
}

#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    limits: HashMap<RateLimitDomain, u32>,
    accepted: HashMap<(String, RateLimitDomain), VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(customer_per_window: u32, config_per_window: u32, window: Duration) -> Self {
        let mut limits = HashMap::new();
        limits.insert(RateLimitDomain::CustomerInformation, customer_per_window);
        limits.insert(RateLimitDomain::ProjectConfiguration, config_per_window);
        RateLimiter {
            window,
            limits,
            accepted: HashMap::new(),
        }
    }

    pub fn set_limit(&mut self, domain: RateLimitDomain, per_window: u32) {
        self.limits.insert(domain, per_window);
    }

    pub fn limit(&self, domain: RateLimitDomain) -> u32 {
        self.limits.get(&domain).copied().unwrap_or(u32::MAX)
    }

    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Forget all counted requests.
    pub fn reset(&mut self) {
        self.accepted.clear();
    }

    pub fn check(&mut self, key: &str, domain: RateLimitDomain, now: Instant) -> Decision {
        let limit = self.limit(domain);
        let window = self.window;
        let q = self.accepted.entry((key.to_string(), domain)).or_default();
        while let Some(&front) = q.front() {
            if now.duration_since(front) >= window {
                q.pop_front();
            } else {
                break;
            }
        }
        let in_window = q.len() as u32;
        if in_window < limit {
            q.push_back(now);
            Decision::Allowed {
                usage: in_window + 1,
                limit,
            }
        } else {
            let wait = match q.front() {
                Some(&oldest) => window.saturating_sub(now.duration_since(oldest)),
                None => window,
            };
            let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
            Decision::Limited {
                usage: in_window,
                limit,
                retry_after_secs: secs,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_limits_and_recovers() {
        let mut rl = RateLimiter::new(3, 1, Duration::from_secs(60));
        let t0 = Instant::now();
        let d = RateLimitDomain::CustomerInformation;
        for i in 1..=3 {
            assert_eq!(
                rl.check("k", d, t0),
                Decision::Allowed { usage: i, limit: 3 }
            );
        }
        match rl.check("k", d, t0 + Duration::from_secs(10)) {
            Decision::Limited {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 50),
            other => panic!("{other:?}"),
        }
        // other key and other domain have their own budgets
        assert!(matches!(rl.check("k2", d, t0), Decision::Allowed { .. }));
        assert!(matches!(
            rl.check("k", RateLimitDomain::ProjectConfiguration, t0),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            rl.check("k", d, t0 + Duration::from_secs(60)),
            Decision::Allowed { usage: 1, .. }
        ));
    }
}
