use serde::{Deserialize, Serialize};

use super::{Entitlement, Environment, ListPage, MonetaryAmount, Ownership, PurchaseStatus, Store};

/// A one-time (non-subscription) purchase (`/customers/{id}/purchases`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub original_customer_id: Option<String>,
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub purchased_at: Option<i64>,
    #[serde(default)]
    pub revenue_in_usd: Option<MonetaryAmount>,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub status: PurchaseStatus,
    #[serde(default)]
    pub presented_offering_id: Option<String>,
    #[serde(default)]
    pub entitlements: Option<ListPage<Entitlement>>,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub store_purchase_identifier: Option<String>,
    #[serde(default)]
    pub ownership: Ownership,
    #[serde(default)]
    pub country: Option<String>,
}

impl Purchase {
    /// Ids of the entitlements this purchase grants (empty when the list is absent).
    pub fn entitlement_ids(&self) -> impl Iterator<Item = &str> {
        self.entitlements
            .iter()
            .flat_map(|list| list.items.iter())
            .map(|entitlement| entitlement.id.as_str())
    }
}
