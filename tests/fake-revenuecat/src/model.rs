//! Records the fake stores. They mirror RevenueCat API v2 objects (field names and value
//! vocabularies from RevenueCat's published OpenAPI document, `openapi-spec/api-v2.yaml`),
//! but nested lists (a subscription's entitlements, a customer's active entitlements) are kept
//! as ids here and expanded into RevenueCat `list` objects when rendered (see `render.rs`).
//!
//! Enum-like fields are plain strings on purpose: a test can store a value RevenueCat may add
//! in the future (`status: "some_new_state"`) and check that a client copes.

use serde::{Deserialize, Serialize};

/// Subscription `status` values documented by RevenueCat.
pub mod sub_status {
    pub const TRIALING: &str = "trialing";
    pub const ACTIVE: &str = "active";
    pub const EXPIRED: &str = "expired";
    pub const IN_GRACE_PERIOD: &str = "in_grace_period";
    pub const IN_BILLING_RETRY: &str = "in_billing_retry";
    pub const PAUSED: &str = "paused";
    pub const UNKNOWN: &str = "unknown";
    pub const INCOMPLETE: &str = "incomplete";
}

/// Subscription `auto_renewal_status` values documented by RevenueCat.
pub mod auto_renewal {
    pub const WILL_RENEW: &str = "will_renew";
    pub const WILL_NOT_RENEW: &str = "will_not_renew";
    pub const WILL_CHANGE_PRODUCT: &str = "will_change_product";
    pub const WILL_PAUSE: &str = "will_pause";
    pub const REQUIRES_PRICE_INCREASE_CONSENT: &str = "requires_price_increase_consent";
    pub const HAS_ALREADY_RENEWED: &str = "has_already_renewed";
}

/// `MonetaryAmount` (always USD in `total_revenue_in_usd` / `revenue_in_usd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub currency: String,
    pub gross: f64,
    pub commission: f64,
    pub tax: f64,
    pub proceeds: f64,
}

impl Money {
    pub fn zero() -> Self {
        Self::usd(0.0)
    }

    /// A USD amount with a 30 % store commission and no tax.
    pub fn usd(gross: f64) -> Self {
        let round = |v: f64| (v * 100.0).round() / 100.0;
        let commission = round(gross * 0.3);
        Money {
            currency: "USD".into(),
            gross: round(gross),
            commission,
            tax: 0.0,
            proceeds: round(gross - commission),
        }
    }
}

/// `Project`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// `Product` (`type` is `subscription` or `one_time`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub id: String,
    pub store_identifier: String,
    /// `subscription` | `one_time`.
    pub product_type: String,
    /// ISO-8601 durations, only for subscriptions.
    pub duration: Option<String>,
    pub grace_period_duration: Option<String>,
    pub trial_duration: Option<String>,
    /// Only for one-time products.
    pub is_consumable: Option<bool>,
    pub created_at: i64,
    pub app_id: String,
    pub display_name: Option<String>,
}

/// `Entitlement`, with the ids of the products attached to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitlementRecord {
    pub id: String,
    pub lookup_key: String,
    pub display_name: String,
    pub created_at: i64,
    pub product_ids: Vec<String>,
}

/// `CustomerEntitlement` (object `customer.active_entitlement`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveEntitlementRecord {
    pub entitlement_id: String,
    /// `None` = never expires (lifetime purchase, indefinite promotional grant).
    pub expires_at: Option<i64>,
}

/// `CustomerAlias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub id: String,
    pub created_at: i64,
}

/// `CustomerAttribute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeRecord {
    pub name: String,
    pub value: Option<String>,
    pub updated_at: i64,
}

/// `ExperimentEnrollment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRecord {
    pub id: String,
    pub name: String,
    pub variant: String,
}

/// `Subscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub id: String,
    pub customer_id: String,
    pub original_customer_id: String,
    /// `None` only for store `promotional`.
    pub product_id: Option<String>,
    pub starts_at: i64,
    pub current_period_starts_at: i64,
    /// `None` for an indefinite pause.
    pub current_period_ends_at: Option<i64>,
    /// Equals `current_period_ends_at` unless `has_already_renewed`; `None` when paused.
    pub ends_at: Option<i64>,
    pub gives_access: bool,
    pub pending_payment: bool,
    pub auto_renewal_status: String,
    pub status: String,
    pub total_revenue_in_usd: Money,
    pub presented_offering_id: Option<String>,
    pub entitlement_ids: Vec<String>,
    /// `production` | `sandbox`.
    pub environment: String,
    /// `app_store` | `play_store` | `stripe` | `promotional` | ...
    pub store: String,
    pub store_subscription_identifier: String,
    /// `purchased` | `family_shared`.
    pub ownership: String,
    /// Product id of a pending product change (rendered as `{"product": <Product>}`).
    pub pending_change_product_id: Option<String>,
    pub country: Option<String>,
    pub management_url: Option<String>,
}

/// `Purchase` (one-time purchases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseRecord {
    pub id: String,
    pub customer_id: String,
    pub original_customer_id: String,
    pub product_id: String,
    pub purchased_at: i64,
    pub revenue_in_usd: Money,
    pub quantity: u32,
    /// `owned` | `refunded`.
    pub status: String,
    pub presented_offering_id: Option<String>,
    pub entitlement_ids: Vec<String>,
    pub environment: String,
    pub store: String,
    pub store_purchase_identifier: String,
    pub ownership: String,
    pub country: Option<String>,
}

/// `Customer` plus everything hanging off it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub id: String,
    pub first_seen_at: i64,
    pub last_seen_at: Option<i64>,
    pub last_seen_app_version: Option<String>,
    pub last_seen_country: Option<String>,
    pub last_seen_platform: Option<String>,
    pub last_seen_platform_version: Option<String>,
    pub experiment: Option<ExperimentRecord>,
    pub active_entitlements: Vec<ActiveEntitlementRecord>,
    pub subscriptions: Vec<SubscriptionRecord>,
    pub purchases: Vec<PurchaseRecord>,
    /// Other ids of this customer (RevenueCat lists the customer's own id too; the fake adds
    /// it when rendering if it is missing).
    pub aliases: Vec<AliasRecord>,
    pub attributes: Vec<AttributeRecord>,
}

impl CustomerRecord {
    /// A customer seen once, with nothing else.
    pub fn new(id: impl Into<String>, first_seen_at: i64) -> Self {
        CustomerRecord {
            id: id.into(),
            first_seen_at,
            last_seen_at: Some(first_seen_at),
            last_seen_app_version: None,
            last_seen_country: None,
            last_seen_platform: None,
            last_seen_platform_version: None,
            experiment: None,
            active_entitlements: Vec::new(),
            subscriptions: Vec::new(),
            purchases: Vec::new(),
            aliases: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// `WebhookIntegration` (the `authorization_header` is stored but never rendered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookIntegrationRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub authorization_header: Option<String>,
    pub environment: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub app_id: Option<String>,
    pub created_at: i64,
}
