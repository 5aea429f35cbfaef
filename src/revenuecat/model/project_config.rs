//! Project configuration objects: projects, entitlements, products.

use serde::{Deserialize, Serialize};

use super::ProductType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// An entitlement: customer data only carries its opaque `id`; users see `lookup_key`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entitlement {
    pub id: String,
    #[serde(default)]
    pub lookup_key: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// A product: customer data carries its opaque `id`; users see `store_identifier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub store_identifier: String,
    #[serde(default, rename = "type")]
    pub product_type: ProductType,
    #[serde(default)]
    pub subscription: Option<SubscriptionProduct>,
    #[serde(default)]
    pub one_time: Option<OneTimeProduct>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Subscription details of a product; durations are ISO-8601 (`P1M`, `P1Y`, `P3D`...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionProduct {
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub grace_period_duration: Option<String>,
    #[serde(default)]
    pub trial_duration: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OneTimeProduct {
    #[serde(default)]
    pub is_consumable: Option<bool>,
}
