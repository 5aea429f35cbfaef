//! What one piece of work (a full resync run) asked of RevenueCat, by endpoint: the run's
//! result reports it beside the floor, and the process-wide counters stay in the client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Shared by every request of one piece of work; attach it with
/// [`super::RevenueCatClient::recording_into`].
#[derive(Debug, Default)]
pub struct CallLog {
    by_endpoint: Mutex<BTreeMap<&'static str, u64>>,
    rate_limited: AtomicU64,
}

/// A snapshot of a [`CallLog`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallCounts {
    /// Requests sent (retries included: each one spends budget).
    pub calls: u64,
    pub by_endpoint: BTreeMap<String, u64>,
    /// 429 answers received.
    pub rate_limited: u64,
}

impl CallLog {
    pub(super) fn record_call(&self, endpoint: &'static str) {
        let mut counts = self
            .by_endpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(endpoint).or_default() += 1;
    }

    pub(super) fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> CallCounts {
        let by_endpoint = self
            .by_endpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        CallCounts {
            calls: by_endpoint.values().sum(),
            by_endpoint: by_endpoint
                .iter()
                .map(|(endpoint, n)| ((*endpoint).to_owned(), *n))
                .collect(),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }
}

/// The endpoint a request path names, without the ids in it:
/// `/v2/projects/p/customers/c/subscriptions` is `subscriptions`.
pub fn endpoint_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(start) = segments.iter().position(|s| *s == "projects") else {
        return "other";
    };
    match &segments[start..] {
        ["projects"] => "projects",
        [_, _, "customers"] => "customers",
        [_, _, "customers", _] => "customer",
        [_, _, "customers", _, "subscriptions"] => "subscriptions",
        [_, _, "customers", _, "purchases"] => "purchases",
        [_, _, "customers", _, "active_entitlements"] => "active_entitlements",
        [_, _, "subscriptions", _, "entitlements"] => "subscription_entitlements",
        [_, _, "purchases", _, "entitlements"] => "purchase_entitlements",
        [_, _, "entitlements"] => "entitlements",
        [_, _, "products"] => "products",
        [_, _, "integrations", "webhooks", ..] => "webhook_integrations",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_named_by_shape_not_by_ids() {
        assert_eq!(endpoint_label("/v2/projects"), "projects");
        assert_eq!(endpoint_label("/v2/projects/p1/customers"), "customers");
        assert_eq!(endpoint_label("/v2/projects/p1/customers/u1"), "customer");
        // A customer whose id is an endpoint's name is still a customer.
        assert_eq!(
            endpoint_label("/v2/projects/p1/customers/subscriptions"),
            "customer"
        );
        assert_eq!(
            endpoint_label("/v2/projects/p1/customers/%24RCAnonymousID%3Aa/subscriptions"),
            "subscriptions"
        );
        assert_eq!(
            endpoint_label("/v2/projects/p1/customers/u1/purchases"),
            "purchases"
        );
        assert_eq!(endpoint_label("/v2/projects/p1/products"), "products");
        assert_eq!(
            endpoint_label("/v2/projects/p1/subscriptions/sub1/entitlements"),
            "subscription_entitlements"
        );
        assert_eq!(
            endpoint_label("/v2/projects/p1/purchases/pur1/entitlements"),
            "purchase_entitlements"
        );
        assert_eq!(
            endpoint_label("/v2/projects/p1/integrations/webhooks/wh1"),
            "webhook_integrations"
        );
        assert_eq!(endpoint_label("/v2/elsewhere"), "other");
    }

    #[test]
    fn counts_add_up_by_endpoint() {
        let log = CallLog::default();
        log.record_call("customer");
        log.record_call("customer");
        log.record_call("subscriptions");
        log.record_rate_limited();
        let counts = log.counts();
        assert_eq!(counts.calls, 3);
        assert_eq!(counts.by_endpoint["customer"], 2);
        assert_eq!(counts.rate_limited, 1);
    }
}
