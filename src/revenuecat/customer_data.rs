//! Everything fetched about one customer for a resync, and the plan that decides which calls
//! fetch it.

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
    /// `None` = not fetched: either the plan did not need it or the fetch failed.
    pub purchases: Option<Vec<Purchase>>,
    /// The plan the data was fetched under; the mapping reads revenue tracking from it, so
    /// fetch and mapping cannot disagree about it.
    pub plan: FetchPlan,
}

impl CustomerData {
    /// True when only entitlements are known; callers must count such users so a run is never
    /// silently partial.
    pub fn is_entitlements_only(&self) -> bool {
        self.subscriptions.is_none()
    }

    /// Active entitlement ids that no access-giving subscription grants: those can only come
    /// from a one-time purchase or a grant.
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

/// Which RevenueCat calls one customer's sync makes. `GET customer` (active entitlements
/// inline) and `/subscriptions` are always needed: only subscriptions tell expired, paused,
/// billing retry and never-subscribed apart. The fetch asks [`FetchPlan::needs_purchases`]
/// whether `/purchases` follows, and a full resync computes its floor of calls per user for a
/// dataset with [`FetchPlan::floor_calls`]: one rule for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPlan {
    /// Exact gross revenue counts every one-time purchase (consumables, unlocks bought beside
    /// a subscription), and only `/purchases` shows them.
    pub track_revenue: bool,
}

impl Default for FetchPlan {
    /// Revenue tracking is on unless an integration turns it off.
    fn default() -> Self {
        Self {
            track_revenue: true,
        }
    }
}

/// `GET customer` + `/subscriptions`.
const BASE_CALLS: usize = 2;

impl FetchPlan {
    pub fn new(track_revenue: bool) -> Self {
        Self { track_revenue }
    }

    /// Whether `/purchases` must be fetched for `data` (customer and subscriptions already
    /// fetched): always when revenue is tracked, otherwise only to tell a lifetime purchase
    /// from a grant for an entitlement no subscription explains. Entitlements-only data can
    /// be neither exact nor explained, so it never needs them.
    pub fn needs_purchases(self, data: &CustomerData) -> bool {
        !data.is_entitlements_only()
            && (self.track_revenue || !data.unexplained_entitlements().is_empty())
    }

    /// The fewest Customer Information calls that sync a customer RevenueCat knows exactly,
    /// given its complete data (an unknown customer costs one call).
    pub fn floor_calls(self, data: &CustomerData) -> usize {
        BASE_CALLS + usize::from(self.needs_purchases(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revenuecat::model::{Entitlement, ListPage};

    fn entitled(ids: &[&str]) -> Vec<CustomerEntitlement> {
        ids.iter()
            .map(|id| CustomerEntitlement {
                entitlement_id: (*id).into(),
                expires_at: None,
            })
            .collect()
    }

    fn subscription_granting(id: &str) -> Subscription {
        Subscription {
            gives_access: true,
            entitlements: Some(ListPage {
                items: vec![Entitlement {
                    id: id.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn purchases_follow_revenue_tracking_or_an_unexplained_entitlement() {
        let explained = CustomerData {
            active_entitlements: entitled(&["entl_pro"]),
            subscriptions: Some(vec![subscription_granting("entl_pro")]),
            ..Default::default()
        };
        let unexplained = CustomerData {
            active_entitlements: entitled(&["entl_pro", "entl_lifetime"]),
            ..explained.clone()
        };
        let never_subscribed = CustomerData {
            subscriptions: Some(vec![]),
            ..Default::default()
        };
        let entitlements_only = CustomerData {
            subscriptions: None,
            ..unexplained.clone()
        };
        let (on, off) = (FetchPlan::new(true), FetchPlan::new(false));
        for (name, data, calls_on, calls_off) in [
            ("explained", &explained, 3, 2),
            ("unexplained", &unexplained, 3, 3),
            ("never subscribed", &never_subscribed, 3, 2),
        ] {
            assert_eq!(on.floor_calls(data), calls_on, "{name}, tracking on");
            assert_eq!(off.floor_calls(data), calls_off, "{name}, tracking off");
        }
        assert!(!on.needs_purchases(&entitlements_only));
        assert_eq!(FetchPlan::default(), on);
    }
}
