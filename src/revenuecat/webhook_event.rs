//! The payload RevenueCat POSTs to our webhook endpoint.
//!
//! Parsing must never fail on what RevenueCat might add or omit: a rejected delivery is retried
//! for hours and then dropped. Only `id` and `type` are required (without them we can neither
//! dedupe nor interpret the event); everything else is optional and unknown fields are ignored.

use serde::{Deserialize, Serialize};

use super::lenient;
use super::model::{Environment, Store};
use crate::domain::app_user::is_anonymous_id;

/// `{"event": {...}, "api_version": "1.0"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub event: WebhookEvent,
    #[serde(default)]
    pub api_version: Option<String>,
}

string_enum! {
    /// `event.type`.
    pub enum EventType {
        Test => "TEST",
        InitialPurchase => "INITIAL_PURCHASE",
        Renewal => "RENEWAL",
        Cancellation => "CANCELLATION",
        Uncancellation => "UNCANCELLATION",
        NonRenewingPurchase => "NON_RENEWING_PURCHASE",
        SubscriptionPaused => "SUBSCRIPTION_PAUSED",
        Expiration => "EXPIRATION",
        BillingIssue => "BILLING_ISSUE",
        ProductChange => "PRODUCT_CHANGE",
        Transfer => "TRANSFER",
        SubscriberAlias => "SUBSCRIBER_ALIAS",
        SubscriptionExtended => "SUBSCRIPTION_EXTENDED",
        TemporaryEntitlementGrant => "TEMPORARY_ENTITLEMENT_GRANT",
        RefundReversed => "REFUND_REVERSED",
        InvoiceIssuance => "INVOICE_ISSUANCE",
        VirtualCurrencyTransaction => "VIRTUAL_CURRENCY_TRANSACTION",
        ExperimentEnrollment => "EXPERIMENT_ENROLLMENT",
    }
}

string_enum! {
    /// `event.period_type`.
    pub enum PeriodType {
        Normal => "NORMAL",
        Trial => "TRIAL",
        Intro => "INTRO",
        Promotional => "PROMOTIONAL",
        Prepaid => "PREPAID",
    }
}

/// The `event` object. Field docs follow RevenueCat's "Event Types and Fields" page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Unique per event; a redelivery carries the same id (dedupe key).
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Orders the events of one customer (deliveries are not ordered). 0 when missing or not
    /// a number: rcsync then orders the event by its receive time.
    #[serde(default, deserialize_with = "lenient::i64_or_zero")]
    pub event_timestamp_ms: i64,
    #[serde(default)]
    pub app_id: Option<String>,
    /// Null for some events (e.g. TRANSFER).
    #[serde(default)]
    pub app_user_id: Option<String>,
    #[serde(default)]
    pub original_app_user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_vec")]
    pub aliases: Vec<String>,
    /// Store product identifier (not the v2 `prod...` id).
    #[serde(default)]
    pub product_id: Option<String>,
    /// Entitlement lookup keys.
    #[serde(default, deserialize_with = "lenient::opt_string_vec")]
    pub entitlement_ids: Option<Vec<String>>,
    /// Deprecated single-entitlement field, still sent (often null).
    #[serde(default)]
    pub entitlement_id: Option<String>,
    #[serde(default)]
    pub period_type: Option<PeriodType>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub purchased_at_ms: Option<i64>,
    /// Null for non-renewing purchases.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub expiration_at_ms: Option<i64>,
    /// BILLING_ISSUE only: end of the grace period, if the store grants one.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub grace_period_expiration_at_ms: Option<i64>,
    /// SUBSCRIPTION_PAUSED only.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub auto_resume_at_ms: Option<i64>,
    #[serde(default)]
    pub environment: Option<Environment>,
    #[serde(default)]
    pub store: Option<Store>,
    /// Price in USD.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub price: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub price_in_purchased_currency: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    #[serde(default)]
    pub expiration_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_vec")]
    pub transferred_from: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_vec")]
    pub transferred_to: Vec<String>,
    /// PRODUCT_CHANGE only (and only for some stores).
    #[serde(default)]
    pub new_product_id: Option<String>,
    #[serde(default)]
    pub is_trial_conversion: Option<bool>,
    #[serde(default)]
    pub is_family_share: Option<bool>,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub presented_offering_id: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub original_transaction_id: Option<String>,
    #[serde(default)]
    pub offer_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub takehome_percentage: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub tax_percentage: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub commission_percentage: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub renewal_number: Option<i64>,
    /// Kept raw: we do not interpret subscriber attributes.
    #[serde(default)]
    pub subscriber_attributes: Option<serde_json::Value>,
}

fn non_empty(id: &Option<String>) -> Option<&str> {
    id.as_deref().filter(|id| !id.trim().is_empty())
}

impl WebhookEvent {
    /// The id the event applies to: `app_user_id`, else `original_app_user_id` (e.g. TRANSFER).
    pub fn target_user_id(&self) -> Option<&str> {
        non_empty(&self.app_user_id).or_else(|| non_empty(&self.original_app_user_id))
    }

    /// Every id RevenueCat knows this customer by, in priority order, without duplicates:
    /// `app_user_id`, `original_app_user_id`, then `aliases`.
    pub fn canonical_user_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        let candidates = non_empty(&self.app_user_id)
            .into_iter()
            .chain(non_empty(&self.original_app_user_id))
            .chain(self.aliases.iter().map(String::as_str));
        for id in candidates {
            if !id.trim().is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// The first id that is not a `$RCAnonymousID:` (the one our app users are keyed by).
    pub fn identified_user_id(&self) -> Option<&str> {
        self.canonical_user_ids()
            .into_iter()
            .find(|id| !is_anonymous_id(id))
    }

    /// Entitlement lookup keys: `entitlement_ids`, falling back to the deprecated
    /// `entitlement_id`. `None` when the event says nothing about entitlements.
    pub fn entitlement_keys(&self) -> Option<Vec<String>> {
        match (&self.entitlement_ids, non_empty(&self.entitlement_id)) {
            (Some(ids), _) if !ids.is_empty() => Some(ids.clone()),
            (_, Some(single)) => Some(vec![single.to_owned()]),
            (Some(empty), None) => Some(empty.clone()),
            (None, None) => None,
        }
    }

    /// A CANCELLATION caused by a refund (`CUSTOMER_SUPPORT` is RevenueCat's refund reason)
    /// or carrying a negative price.
    pub fn is_refund(&self) -> bool {
        self.event_type == EventType::Cancellation
            && (self
                .cancel_reason
                .as_deref()
                .is_some_and(|reason| reason.eq_ignore_ascii_case("CUSTOMER_SUPPORT"))
                || self.price.is_some_and(|price| price < 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL_PURCHASE: &str = r#"{
        "event": {
            "event_timestamp_ms": 1658726378679, "product_id": "com.subscription.weekly",
            "period_type": "NORMAL", "purchased_at_ms": 1658726374000,
            "expiration_at_ms": 1659331174000, "environment": "PRODUCTION",
            "entitlement_id": null, "entitlement_ids": ["pro"], "presented_offering_id": null,
            "transaction_id": "123456789012345", "original_transaction_id": "123456789012345",
            "is_family_share": false, "country_code": "US", "app_user_id": "1234567890",
            "aliases": ["$RCAnonymousID:8069238d6049ce87cc529853916d624c"],
            "original_app_user_id": "$RCAnonymousID:87c6049c58069238dce29853916d624c",
            "currency": "USD", "price": 4.99, "price_in_purchased_currency": 4.99,
            "subscriber_attributes": {"$email": {"updated_at_ms": 1662955084635, "value": "a@b.c"}},
            "store": "APP_STORE", "takehome_percentage": 0.7, "tax_percentage": 0.0,
            "commission_percentage": 0.3, "offer_code": null, "type": "INITIAL_PURCHASE",
            "id": "12345678-1234-1234-1234-123456789012", "app_id": "1234567890",
            "experiments": [{"experiment_id": "prexp123", "experiment_variant": "b"}]
        },
        "api_version": "1.0"
    }"#;

    #[test]
    fn parses_revenuecats_sample_initial_purchase() {
        let payload: WebhookPayload = serde_json::from_str(INITIAL_PURCHASE).unwrap();
        let event = payload.event;
        assert_eq!(event.event_type, EventType::InitialPurchase);
        assert_eq!(event.store, Some(Store::AppStore));
        assert_eq!(event.environment, Some(Environment::Production));
        assert_eq!(event.period_type, Some(PeriodType::Normal));
        assert_eq!(event.entitlement_keys(), Some(vec!["pro".to_string()]));
        assert_eq!(event.target_user_id(), Some("1234567890"));
        assert_eq!(payload.api_version.as_deref(), Some("1.0"));
    }

    #[test]
    fn minimal_and_unknown_events_parse() {
        let json = r#"{"event":{"id":"e1","type":"SOMETHING_NEW","event_timestamp_ms":1.0,
            "aliases":null,"transferred_from":null,"entitlement_ids":null,"price":"1.5",
            "unknown_field":[1,2]}}"#;
        let payload: WebhookPayload = serde_json::from_str(json).unwrap();
        let event = payload.event;
        assert_eq!(event.event_type, EventType::Other("SOMETHING_NEW".into()));
        assert_eq!(event.event_timestamp_ms, 1);
        assert!(event.aliases.is_empty());
        assert_eq!(event.price, Some(1.5));
        assert_eq!(event.target_user_id(), None);
        assert_eq!(event.entitlement_keys(), None);
    }

    #[test]
    fn missing_id_or_type_is_rejected() {
        assert!(serde_json::from_str::<WebhookPayload>(
            r#"{"event":{"type":"TEST","event_timestamp_ms":1}}"#
        )
        .is_err());
    }

    #[test]
    fn user_id_helpers() {
        let json = r#"{"event":{"id":"e","type":"TRANSFER","event_timestamp_ms":1,
            "app_user_id":null,"original_app_user_id":"$RCAnonymousID:abc",
            "aliases":["$RCAnonymousID:abc","user-7"],
            "transferred_from":["$RCAnonymousID:abc"],"transferred_to":["user-7"]}}"#;
        let event = serde_json::from_str::<WebhookPayload>(json).unwrap().event;
        assert_eq!(event.target_user_id(), Some("$RCAnonymousID:abc"));
        assert_eq!(event.canonical_user_ids(), ["$RCAnonymousID:abc", "user-7"]);
        assert_eq!(event.identified_user_id(), Some("user-7"));
        assert!(is_anonymous_id("$RCAnonymousID:x"));
        assert!(!is_anonymous_id("user-7"));
    }

    #[test]
    fn entitlement_id_fallback_and_refund_detection() {
        let json = r#"{"event":{"id":"e","type":"CANCELLATION","event_timestamp_ms":1,
            "entitlement_ids":[],"entitlement_id":"pro","cancel_reason":"CUSTOMER_SUPPORT"}}"#;
        let event = serde_json::from_str::<WebhookPayload>(json).unwrap().event;
        assert_eq!(event.entitlement_keys(), Some(vec!["pro".to_string()]));
        assert!(event.is_refund());
    }
}
