use serde::{Deserialize, Serialize};

use super::{
    AutoRenewalStatus, Entitlement, Environment, ListPage, Ownership, Product, Store,
    SubscriptionStatus,
};

/// An amount in USD as RevenueCat reports revenue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonetaryAmount {
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub gross: f64,
    #[serde(default)]
    pub commission: f64,
    #[serde(default)]
    pub tax: f64,
    #[serde(default)]
    pub proceeds: f64,
}

/// `pending_changes`: present when `auto_renewal_status` is `will_change_product`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingChanges {
    #[serde(default)]
    pub product: Option<Product>,
}

/// A subscription of a customer (`/customers/{id}/subscriptions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub original_customer_id: Option<String>,
    /// RevenueCat product id (`prod...`); null for promotional grants.
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub current_period_starts_at: Option<i64>,
    /// Null when paused until an indefinite date.
    #[serde(default)]
    pub current_period_ends_at: Option<i64>,
    /// Equals `current_period_ends_at` unless already renewed; do not read renewal from it.
    #[serde(default)]
    pub ends_at: Option<i64>,
    #[serde(default)]
    pub gives_access: bool,
    #[serde(default)]
    pub pending_payment: bool,
    #[serde(default)]
    pub auto_renewal_status: AutoRenewalStatus,
    #[serde(default)]
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub total_revenue_in_usd: Option<MonetaryAmount>,
    #[serde(default)]
    pub presented_offering_id: Option<String>,
    /// The entitlements this subscription grants (full objects, with `lookup_key`).
    #[serde(default)]
    pub entitlements: Option<ListPage<Entitlement>>,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub store_subscription_identifier: Option<String>,
    #[serde(default)]
    pub ownership: Ownership,
    #[serde(default)]
    pub pending_changes: Option<PendingChanges>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub management_url: Option<String>,
}

impl Subscription {
    /// Ids of the entitlements this subscription grants (empty when the list is absent).
    pub fn entitlement_ids(&self) -> impl Iterator<Item = &str> {
        self.entitlements
            .iter()
            .flat_map(|list| list.items.iter())
            .map(|entitlement| entitlement.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_shape_and_tolerates_nulls() {
        let json = r#"{
            "object": "subscription", "id": "sub1", "customer_id": "c1",
            "original_customer_id": "c1", "product_id": "prod1", "starts_at": 1,
            "current_period_starts_at": 2, "current_period_ends_at": null, "ends_at": null,
            "gives_access": false, "pending_payment": false,
            "auto_renewal_status": "will_renew", "status": "paused",
            "total_revenue_in_usd": {"currency":"USD","gross":9.99,"commission":3,"tax":0.5,"proceeds":6.49},
            "presented_offering_id": null,
            "entitlements": {"object":"list","items":[{"object":"entitlement","id":"entl1","lookup_key":"pro","display_name":"Pro","project_id":"p","created_at":1}],"next_page":null,"url":"/x"},
            "environment": "production", "store": "app_store",
            "store_subscription_identifier": "123", "ownership": "purchased",
            "pending_changes": null, "country": null, "management_url": null,
            "brand_new_field": {"nested": true}
        }"#;
        let subscription: Subscription = serde_json::from_str(json).unwrap();
        assert_eq!(subscription.status, SubscriptionStatus::Paused);
        assert_eq!(subscription.current_period_ends_at, None);
        assert_eq!(
            subscription.entitlement_ids().collect::<Vec<_>>(),
            ["entl1"]
        );
        let minimal: Subscription = serde_json::from_str(r#"{"id":"s"}"#).unwrap();
        assert!(!minimal.gives_access);
    }
}
