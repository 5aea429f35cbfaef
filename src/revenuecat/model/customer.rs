use serde::{Deserialize, Serialize};

use super::ListPage;

/// `GET /projects/{p}/customers/{id}` (and items of the customer list).
///
/// `id` is the canonical customer id: RevenueCat resolves aliases on lookup, so it may differ
/// from the id we asked for. `active_entitlements` is only present on the single-customer
/// endpoint, never on list items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub first_seen_at: Option<i64>,
    #[serde(default)]
    pub last_seen_at: Option<i64>,
    #[serde(default)]
    pub active_entitlements: Option<ListPage<CustomerEntitlement>>,
}

/// One active entitlement of a customer: an opaque entitlement id (`entl...`) and its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEntitlement {
    pub entitlement_id: String,
    /// `None` for entitlements that never expire (lifetime purchases, lifetime grants).
    #[serde(default)]
    pub expires_at: Option<i64>,
}
