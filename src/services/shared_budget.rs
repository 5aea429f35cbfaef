//! RevenueCat's budget shared by every process on a PostgreSQL database: the store's token
//! buckets behind the client's [`SharedBudget`] seam.

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::ms;
use crate::revenuecat::{DomainLimit, KeyFingerprint, Lease, RateLimitDomain, SharedBudget};
use crate::store::rate_budgets::BucketSpec;
use crate::store::Store;

pub struct StoreBudget {
    store: Store,
}

impl StoreBudget {
    /// `None` where one process serves the database (SQLite): its local pacing is the budget.
    pub fn for_store(store: &Store) -> Option<Self> {
        store.shares_rate_budgets().then(|| Self {
            store: store.clone(),
        })
    }
}

fn domain_name(domain: RateLimitDomain) -> &'static str {
    match domain {
        RateLimitDomain::CustomerInformation => "customer_information",
        RateLimitDomain::ProjectConfiguration => "project_configuration",
    }
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

#[async_trait]
impl SharedBudget for StoreBudget {
    async fn lease(
        &self,
        key: &KeyFingerprint,
        domain: RateLimitDomain,
        limit: DomainLimit,
        capacity: u32,
        want: u32,
    ) -> Result<Lease, String> {
        let key = key.to_hex();
        let bucket = BucketSpec {
            key: &key,
            domain: domain_name(domain),
            per_minute: limit.per_minute,
            capacity,
        };
        let lease = self
            .store
            .lease_rate_budget(bucket, want)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(Lease {
            granted: lease.granted,
            retry_in: duration(lease.retry_in_ms),
            blocked_for: duration(lease.blocked_for_ms),
        })
    }

    async fn block(
        &self,
        key: &KeyFingerprint,
        domain: RateLimitDomain,
        wait: Duration,
    ) -> Result<(), String> {
        self.store
            .block_rate_budget(&key.to_hex(), domain_name(domain), ms(wait))
            .await
            .map_err(|e| format!("{e:#}"))
    }
}
