//! Everything fetched about one customer for a resync.

use std::collections::HashSet;

use super::model::{CustomerEntitlement, Purchase, Subscription};

/// The raw material of [`crate::revenuecat::mapping::map_customer`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerData {
    /// The canonical RevenueCat id (aliases resolved by RevenueCat), which may differ from
    /// the id that was looked up.
    pub customer_id: String,
    pub active_entitlements: Vec<CustomerEntitlement>,
    /// `None` = the `/subscriptions` fetch failed after retries: entitlements-only fallback.
    pub subscriptions: Option<Vec<Subscription>>,
    /// `None` = not fetched: either not needed (every active entitlement is explained by a
    /// subscription) or the fetch failed.
    pub purchases: Option<Vec<Purchase>>,
}

impl CustomerData {
    /// True when only entitlements are known; callers must count such users so a run is never
    /// silently partial.
    pub fn is_entitlements_only(&self) -> bool {
        self.subscriptions.is_none()
    }

    /// Active entitlement ids that no access-giving subscription grants: those can only come
    /// from a one-time purchase or a grant, and only they justify a `/purchases` call.
    pub fn unexplained_entitlements(&self) -> Vec<&str> {
        let explained: HashSet<&str> = self
            .subscriptions
            .iter()
            .flatten()
            .filter(|subscription| subscription.gives_access)
            .flat_map(Subscription::entitlement_ids)
            .collect();
        self.active_entitlements
            .iter()
            .map(|entitlement| entitlement.entitlement_id.as_str())
            .filter(|id| !explained.contains(id))
            .collect()
    }
}
