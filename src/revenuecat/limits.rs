//! RevenueCat's rate-limiting domains and their budgets: the numbers every pacer, shared or
//! not, works from.

use std::time::Duration;

/// RevenueCat's rate-limiting domains rcsync uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitDomain {
    /// Customers, subscriptions, purchases, entitlements of a customer.
    CustomerInformation,
    /// Projects, products, entitlements, webhook integrations.
    ProjectConfiguration,
}

impl RateLimitDomain {
    /// The domain's name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RateLimitDomain::CustomerInformation => "customer_information",
            RateLimitDomain::ProjectConfiguration => "project_configuration",
        }
    }
}

/// Budget of one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainLimit {
    pub per_minute: u32,
    /// How many requests may go out back to back after an idle period.
    pub burst: u32,
}

impl DomainLimit {
    /// Spacing of paced requests. A burst lets `burst - 1` requests go early, so the steady
    /// rate leaves room for them: no minute, wherever it starts, holds more than
    /// `per_minute` requests (RevenueCat may count in a sliding window).
    pub(super) fn interval(self) -> Duration {
        let steady = self.per_minute.saturating_sub(self.burst.saturating_sub(1));
        Duration::from_secs(60) / steady.max(1)
    }
}

/// Limits per domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub customer_information: DomainLimit,
    pub project_configuration: DomainLimit,
    /// rcsync's own budget for checking keys it has not verified yet, all keys together.
    pub key_checks: DomainLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::REVENUECAT
    }
}

impl RateLimits {
    /// RevenueCat's published per-key budgets (the one place these numbers are written), with
    /// the small bursts rcsync allows itself after an idle period, and rcsync's key-check
    /// budget: creating or rotating a key is rare, so 30 a minute serves every tenant while a
    /// loop of made-up keys costs RevenueCat one call every 2 s at most.
    pub const REVENUECAT: RateLimits = RateLimits {
        customer_information: DomainLimit {
            per_minute: 480,
            burst: 4,
        },
        project_configuration: DomainLimit {
            per_minute: 60,
            burst: 2,
        },
        key_checks: DomainLimit {
            per_minute: 30,
            burst: 5,
        },
    };

    pub(super) fn for_domain(&self, domain: RateLimitDomain) -> DomainLimit {
        match domain {
            RateLimitDomain::CustomerInformation => self.customer_information,
            RateLimitDomain::ProjectConfiguration => self.project_configuration,
        }
    }
}
