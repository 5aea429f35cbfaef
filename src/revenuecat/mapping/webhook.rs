//! Webhook events become partial `rc_*` patches (keys an event says nothing about are kept).
//!
//! Every event type that touches subscription state writes `rc_subscriber`, `rc_status` and
//! `rc_will_renew`, so a user whose first event it is has a complete state; product,
//! entitlements, period type and billing period come from whatever the event carries.
//!
//! Decisions:
//! - INITIAL_PURCHASE, RENEWAL, UNCANCELLATION, PRODUCT_CHANGE: subscriber, `active`
//!   (`trialing` when `period_type` is TRIAL), will renew.
//! - PRODUCT_CHANGE keeps `rc_product = product_id`: RevenueCat documents that the change "does
//!   not mean the new subscription is in effect immediately" and `new_product_id` is only sent
//!   for some stores; the RENEWAL that starts the new product carries it as `product_id`.
//! - CANCELLATION: `rc_subscriber=false`, `cancelled`, will not renew (as specified for rcsync,
//!   even though access lasts until EXPIRATION; a resync shows such users as subscriber=true
//!   until then). A refund (`cancel_reason=CUSTOMER_SUPPORT` or negative price) also removes
//!   `rc_entitlements`. `cancel_reason=BILLING_ERROR` is the companion of BILLING_ISSUE and maps
//!   to `billing_issue` like it.
//! - BILLING_ISSUE: `billing_issue`; `rc_subscriber=true` while a grace period runs
//!   (`grace_period_expiration_at_ms` after the event), otherwise `false` (billing retry
//!   without grace has no access, as a resync shows it); will renew (the store is retrying a
//!   renewal; a real cancellation arrives as its own event); entitlements untouched.
//! - EXPIRATION: not a subscriber, `expired`, will not renew, entitlements removed.
//! - SUBSCRIPTION_PAUSED: `paused`, will not renew, `rc_subscriber=true`: the pause starts at
//!   the end of the period and RevenueCat says not to revoke access on this event, only on the
//!   EXPIRATION that follows.
//! - NON_RENEWING_PURCHASE granting an entitlement: subscriber, `active`, will not renew;
//!   without an expiration it is lifetime access (`rc_period_type` and `rc_billing_period`
//!   `lifetime`), otherwise period type and billing period come from the event like a
//!   subscription's. A purchase granting no entitlement (a consumable) only updates
//!   `rc_last_purchase`: it says nothing about subscription state (subscribers buy them too).
//!   (The peer writes `lifetime` for every NON_RENEWING_PURCHASE, consumables included.)
//! - SUBSCRIPTION_EXTENDED: subscriber, running status, will renew (stores extend the renewal
//!   date of live subscriptions; the resync it requests corrects a cancelled one).
//! - TEMPORARY_ENTITLEMENT_GRANT: subscriber, running status, will not renew: RevenueCat's
//!   short grant while a store cannot confirm a purchase ends by itself, like a promotional
//!   grant (the INITIAL_PURCHASE that confirms the purchase says otherwise).
//! - REFUND_REVERSED restores what the refund took: subscriber, running status; a dated
//!   purchase is a subscription (will renew), an undated one lifetime access (will not).
//! - TEST, TRANSFER, SUBSCRIBER_ALIAS, INVOICE_ISSUANCE, VIRTUAL_CURRENCY_TRANSACTION,
//!   EXPERIMENT_ENROLLMENT and unknown types: `None`. (A TRANSFER moves purchases between
//!   customers: resync both sides instead of guessing.)
//! - `rc_billing_period` comes from `expiration_at_ms - purchased_at_ms`, except during a trial
//!   (the span is the trial's, not the plan's): then it is untouched. (The peer writes the
//!   trial's span.)
//! - `rc_last_purchase` is written by transaction events only (INITIAL_PURCHASE, RENEWAL,
//!   NON_RENEWING_PURCHASE) and removed when price or currency is missing.
//! - `rc_total_revenue_usd` never appears: it comes from a resync (revenue-affecting events
//!   request one).

use super::{
    BillingPeriod, PropertyPatch, RcStatus, SubscriberState, Update, PERIOD_TYPE_LIFETIME,
};
use crate::revenuecat::webhook_event::{EventType, PeriodType, WebhookEvent};

/// The patch a webhook event implies, or `None` when the event does not touch subscription
/// state. Pure: "now" is the event's own timestamp.
pub fn map_webhook_event(event: &WebhookEvent) -> Option<PropertyPatch> {
    use EventType::*;
    let trial = event.period_type == Some(PeriodType::Trial);
    let running = if trial {
        RcStatus::Trialing
    } else {
        RcStatus::Active
    };
    let mut state = SubscriberState::default();
    match &event.event_type {
        InitialPurchase | Renewal | Uncancellation | ProductChange => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(true);
            state.status = Update::Set(running);
            state.will_renew = Update::Set(true);
            if matches!(event.event_type, InitialPurchase | Renewal) {
                state.last_purchase = last_purchase(event);
            }
        }
        NonRenewingPurchase => {
            state.last_purchase = last_purchase(event);
            let grants_entitlement = event
                .entitlement_keys()
                .is_some_and(|keys| !keys.is_empty());
            if grants_entitlement {
                describe_plan(&mut state, event);
                state.subscriber = Update::Set(true);
                state.status = Update::Set(RcStatus::Active);
                state.will_renew = Update::Set(false);
                describe_lifetime_access(&mut state, event);
            }
        }
        Cancellation => {
            describe_plan(&mut state, event);
            let billing_error = event
                .cancel_reason
                .as_deref()
                .is_some_and(|reason| reason.eq_ignore_ascii_case("BILLING_ERROR"));
            state.subscriber = Update::Set(false);
            state.status = Update::Set(if billing_error {
                RcStatus::BillingIssue
            } else {
                RcStatus::Cancelled
            });
            state.will_renew = Update::Set(false);
            if event.is_refund() {
                state.entitlements = Update::Clear;
            }
        }
        BillingIssue => {
            describe_plan(&mut state, event);
            state.status = Update::Set(RcStatus::BillingIssue);
            let in_grace_period = event
                .grace_period_expiration_at_ms
                .is_some_and(|grace_end| grace_end > event.event_timestamp_ms);
            state.subscriber = Update::Set(in_grace_period);
            state.will_renew = Update::Set(true);
            // Entitlements the store revoked disappear with the EXPIRATION or the next resync.
            state.entitlements = Update::Keep;
        }
        Expiration => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(false);
            state.status = Update::Set(RcStatus::Expired);
            state.will_renew = Update::Set(false);
            state.entitlements = Update::Clear;
        }
        SubscriptionPaused => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(true);
            state.status = Update::Set(RcStatus::Paused);
            state.will_renew = Update::Set(false);
        }
        SubscriptionExtended => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(true);
            state.status = Update::Set(running);
            state.will_renew = Update::Set(true);
        }
        TemporaryEntitlementGrant => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(true);
            state.status = Update::Set(running);
            state.will_renew = Update::Set(false);
        }
        RefundReversed => {
            describe_plan(&mut state, event);
            state.subscriber = Update::Set(true);
            state.status = Update::Set(running);
            state.will_renew = Update::Set(event.expiration_at_ms.is_some());
            describe_lifetime_access(&mut state, event);
        }
        Test
        | Transfer
        | SubscriberAlias
        | InvoiceIssuance
        | VirtualCurrencyTransaction
        | ExperimentEnrollment
        | Other(_) => return None,
    }
    Some(state.into_patch())
}

/// Product, entitlements, period type and billing period, from whatever the event carries.
fn describe_plan(state: &mut SubscriberState, event: &WebhookEvent) {
    state.product = Update::set_or_keep(
        event
            .product_id
            .as_deref()
            .filter(|id| !id.trim().is_empty())
            .map(str::to_owned),
    );
    state.entitlements = Update::set_or_keep(event.entitlement_keys());
    state.period_type = Update::set_or_keep(
        event
            .period_type
            .as_ref()
            .map(|period_type| period_type.as_str().to_ascii_lowercase())
            .filter(|period_type| !period_type.is_empty()),
    );
    let trial = event.period_type == Some(PeriodType::Trial);
    state.billing_period = match (trial, event.purchased_at_ms, event.expiration_at_ms) {
        (false, Some(start), Some(end)) => {
            Update::set_or_keep(BillingPeriod::from_span_ms(start, end))
        }
        _ => Update::Keep,
    };
}

/// Access without an expiration is lifetime access, in both period properties.
fn describe_lifetime_access(state: &mut SubscriberState, event: &WebhookEvent) {
    if event.expiration_at_ms.is_none() {
        state.period_type = Update::Set(PERIOD_TYPE_LIFETIME.to_owned());
        state.billing_period = Update::Set(BillingPeriod::Lifetime);
    }
}

/// `"<price_in_purchased_currency> <currency>"`, or remove when either is missing.
fn last_purchase(event: &WebhookEvent) -> Update<String> {
    let currency = event
        .currency
        .as_deref()
        .map(str::trim)
        .filter(|currency| !currency.is_empty());
    match (event.price_in_purchased_currency, currency) {
        (Some(price), Some(currency)) if price.is_finite() => {
            Update::Set(format!("{price} {currency}"))
        }
        _ => Update::Clear,
    }
}

/// Whether an event of this type can change a customer's revenue (and so deserves a resync of
/// `rc_total_revenue_usd`). CANCELLATION counts because refunds arrive as cancellations; use
/// [`WebhookEvent::is_refund`] to narrow it down.
pub fn is_revenue_affecting(event_type: &EventType) -> bool {
    use EventType::*;
    matches!(
        event_type,
        InitialPurchase
            | Renewal
            | ProductChange
            | NonRenewingPurchase
            | Cancellation
            | Uncancellation
            | Expiration
            | RefundReversed
            | SubscriptionExtended
            | Transfer
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revenuecat::webhook_event::WebhookPayload;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_700_000_000_000;

    fn event(event_type: &str, extra: serde_json::Value) -> WebhookEvent {
        let mut json = serde_json::json!({
            "id": "evt", "type": event_type, "event_timestamp_ms": T0 + 1000,
            "app_user_id": "user-1", "product_id": "premium_monthly",
            "entitlement_ids": ["pro", "basic"], "period_type": "NORMAL",
            "purchased_at_ms": T0, "expiration_at_ms": T0 + 30 * DAY,
            "price": 9.99, "price_in_purchased_currency": 8.99, "currency": "EUR",
            "store": "APP_STORE", "environment": "PRODUCTION"
        });
        if let (Some(base), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                base.insert(key.clone(), value.clone());
            }
        }
        serde_json::from_value::<WebhookPayload>(serde_json::json!({"event": json}))
            .expect("valid event")
            .event
    }

    fn patch(pairs: &[(&str, Option<&str>)]) -> Option<PropertyPatch> {
        Some(
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.map(str::to_owned)))
                .collect(),
        )
    }

    const PLAN: [(&str, Option<&str>); 4] = [
        ("rc_product", Some("premium_monthly")),
        ("rc_entitlements", Some("basic,pro")),
        ("rc_period_type", Some("normal")),
        ("rc_billing_period", Some("monthly")),
    ];

    fn with_plan(extra: &[(&'static str, Option<&'static str>)]) -> Option<PropertyPatch> {
        let mut pairs: Vec<(&str, Option<&str>)> = PLAN.to_vec();
        pairs.extend_from_slice(extra);
        patch(&pairs)
    }

    const RUNNING: [(&str, Option<&str>); 3] = [
        ("rc_subscriber", Some("true")),
        ("rc_status", Some("active")),
        ("rc_will_renew", Some("true")),
    ];

    #[test]
    fn every_event_type() {
        let purchase = [
            RUNNING.as_slice(),
            &[("rc_last_purchase", Some("8.99 EUR"))],
        ]
        .concat();
        let cases: Vec<(&str, serde_json::Value, Option<PropertyPatch>)> = vec![
            (
                "INITIAL_PURCHASE",
                serde_json::json!({}),
                with_plan(&purchase),
            ),
            (
                "RENEWAL",
                serde_json::json!({"is_trial_conversion": true}),
                with_plan(&purchase),
            ),
            ("UNCANCELLATION", serde_json::json!({}), with_plan(&RUNNING)),
            (
                "PRODUCT_CHANGE",
                serde_json::json!({"new_product_id": "premium_yearly"}),
                with_plan(&RUNNING),
            ),
            (
                "CANCELLATION",
                serde_json::json!({"cancel_reason": "UNSUBSCRIBE"}),
                with_plan(&[
                    ("rc_subscriber", Some("false")),
                    ("rc_status", Some("cancelled")),
                    ("rc_will_renew", Some("false")),
                ]),
            ),
            (
                "EXPIRATION",
                serde_json::json!({"expiration_reason": "UNSUBSCRIBE"}),
                patch(&[
                    ("rc_product", Some("premium_monthly")),
                    ("rc_entitlements", None),
                    ("rc_period_type", Some("normal")),
                    ("rc_billing_period", Some("monthly")),
                    ("rc_subscriber", Some("false")),
                    ("rc_status", Some("expired")),
                    ("rc_will_renew", Some("false")),
                ]),
            ),
            (
                "BILLING_ISSUE",
                serde_json::json!({"grace_period_expiration_at_ms": null}),
                patch(&[
                    ("rc_product", Some("premium_monthly")),
                    ("rc_period_type", Some("normal")),
                    ("rc_billing_period", Some("monthly")),
                    ("rc_subscriber", Some("false")),
                    ("rc_status", Some("billing_issue")),
                    ("rc_will_renew", Some("true")),
                ]),
            ),
            (
                "SUBSCRIPTION_PAUSED",
                serde_json::json!({"auto_resume_at_ms": T0 + 60 * DAY}),
                with_plan(&[
                    ("rc_subscriber", Some("true")),
                    ("rc_status", Some("paused")),
                    ("rc_will_renew", Some("false")),
                ]),
            ),
            (
                "NON_RENEWING_PURCHASE",
                serde_json::json!({"expiration_at_ms": null, "product_id": "lifetime"}),
                patch(&[
                    ("rc_product", Some("lifetime")),
                    ("rc_entitlements", Some("basic,pro")),
                    ("rc_period_type", Some("lifetime")),
                    ("rc_billing_period", Some("lifetime")),
                    ("rc_subscriber", Some("true")),
                    ("rc_status", Some("active")),
                    ("rc_will_renew", Some("false")),
                    ("rc_last_purchase", Some("8.99 EUR")),
                ]),
            ),
            (
                "SUBSCRIPTION_EXTENDED",
                serde_json::json!({}),
                with_plan(&RUNNING),
            ),
            (
                "TEMPORARY_ENTITLEMENT_GRANT",
                serde_json::json!({}),
                with_plan(&[
                    ("rc_subscriber", Some("true")),
                    ("rc_status", Some("active")),
                    ("rc_will_renew", Some("false")),
                ]),
            ),
            (
                "REFUND_REVERSED",
                serde_json::json!({}),
                with_plan(&RUNNING),
            ),
            ("TEST", serde_json::json!({}), None),
            ("TRANSFER", serde_json::json!({"app_user_id": null}), None),
            ("SUBSCRIBER_ALIAS", serde_json::json!({}), None),
            ("INVOICE_ISSUANCE", serde_json::json!({}), None),
            ("VIRTUAL_CURRENCY_TRANSACTION", serde_json::json!({}), None),
            ("EXPERIMENT_ENROLLMENT", serde_json::json!({}), None),
            ("SOMETHING_NEW", serde_json::json!({}), None),
        ];
        for (event_type, extra, expected) in cases {
            let event = event(event_type, extra);
            let actual = map_webhook_event(&event);
            assert_eq!(actual, expected, "event type {event_type}");
            if let Some(patch) = actual {
                assert!(!patch.contains_key("rc_total_revenue_usd"), "{event_type}");
            }
        }
    }

    #[test]
    fn trial_purchase_is_trialing_and_keeps_billing_period() {
        let trial = event(
            "INITIAL_PURCHASE",
            serde_json::json!({"period_type": "TRIAL", "expiration_at_ms": T0 + 3 * DAY, "price": 0, "price_in_purchased_currency": 0}),
        );
        let patch = map_webhook_event(&trial).unwrap();
        assert_eq!(patch["rc_status"].as_deref(), Some("trialing"));
        assert_eq!(patch["rc_period_type"].as_deref(), Some("trial"));
        assert_eq!(patch["rc_last_purchase"].as_deref(), Some("0 EUR"));
        assert!(!patch.contains_key("rc_billing_period"));
    }

    #[test]
    fn billing_periods_from_transaction_span() {
        for (days, expected) in [
            (7, "weekly"),
            (14, "two_weeks"),
            (28, "monthly"),
            (31, "monthly"),
            (61, "two_months"),
            (91, "three_months"),
            (182, "six_months"),
            (365, "yearly"),
        ] {
            let renewal = event(
                "RENEWAL",
                serde_json::json!({"expiration_at_ms": T0 + days * DAY}),
            );
            let patch = map_webhook_event(&renewal).unwrap();
            assert_eq!(
                patch["rc_billing_period"].as_deref(),
                Some(expected),
                "{days} days"
            );
        }
    }

    #[test]
    fn odd_and_missing_fields() {
        let missing_price = event(
            "RENEWAL",
            serde_json::json!({"currency": null, "period_type": "INTRO", "entitlement_ids": null, "entitlement_id": "legacy"}),
        );
        let patch = map_webhook_event(&missing_price).unwrap();
        assert_eq!(patch["rc_last_purchase"], None);
        assert_eq!(patch["rc_period_type"].as_deref(), Some("intro"));
        assert_eq!(patch["rc_entitlements"].as_deref(), Some("legacy"));

        let bare = event(
            "UNCANCELLATION",
            serde_json::json!({"product_id": null, "entitlement_ids": null, "period_type": null, "purchased_at_ms": null}),
        );
        assert_eq!(map_webhook_event(&bare), patch_of(&RUNNING),);
    }

    fn patch_of(pairs: &[(&str, Option<&str>)]) -> Option<PropertyPatch> {
        patch(pairs)
    }

    #[test]
    fn cancellation_variants() {
        let refund = event(
            "CANCELLATION",
            serde_json::json!({"cancel_reason": "CUSTOMER_SUPPORT", "price": -9.99}),
        );
        let patch = map_webhook_event(&refund).unwrap();
        assert_eq!(patch["rc_entitlements"], None);
        assert_eq!(patch["rc_status"].as_deref(), Some("cancelled"));

        let billing = event(
            "CANCELLATION",
            serde_json::json!({"cancel_reason": "BILLING_ERROR"}),
        );
        let patch = map_webhook_event(&billing).unwrap();
        assert_eq!(patch["rc_status"].as_deref(), Some("billing_issue"));
    }

    #[test]
    fn billing_issue_in_grace_period_keeps_access() {
        let grace = event(
            "BILLING_ISSUE",
            serde_json::json!({"grace_period_expiration_at_ms": T0 + 16 * DAY}),
        );
        let patch = map_webhook_event(&grace).unwrap();
        assert_eq!(patch["rc_subscriber"].as_deref(), Some("true"));
        assert_eq!(patch["rc_status"].as_deref(), Some("billing_issue"));
        assert_eq!(patch["rc_will_renew"].as_deref(), Some("true"));
    }

    #[test]
    fn access_without_expiration_is_lifetime_in_both_period_properties() {
        let pass = event(
            "NON_RENEWING_PURCHASE",
            serde_json::json!({"period_type": "PREPAID"}),
        );
        let patch = map_webhook_event(&pass).unwrap();
        assert_eq!(patch["rc_period_type"].as_deref(), Some("prepaid"));
        assert_eq!(patch["rc_billing_period"].as_deref(), Some("monthly"));

        let restored_unlock = event(
            "REFUND_REVERSED",
            serde_json::json!({"expiration_at_ms": null}),
        );
        let patch = map_webhook_event(&restored_unlock).unwrap();
        assert_eq!(patch["rc_period_type"].as_deref(), Some("lifetime"));
        assert_eq!(patch["rc_billing_period"].as_deref(), Some("lifetime"));
        assert_eq!(patch["rc_will_renew"].as_deref(), Some("false"));
    }

    /// The state keys every state-changing event writes, so a user's first event leaves a
    /// complete state.
    #[test]
    fn every_state_event_writes_subscriber_status_and_renewal() {
        for event_type in [
            "INITIAL_PURCHASE",
            "RENEWAL",
            "UNCANCELLATION",
            "PRODUCT_CHANGE",
            "NON_RENEWING_PURCHASE",
            "CANCELLATION",
            "BILLING_ISSUE",
            "EXPIRATION",
            "SUBSCRIPTION_PAUSED",
            "SUBSCRIPTION_EXTENDED",
            "TEMPORARY_ENTITLEMENT_GRANT",
            "REFUND_REVERSED",
        ] {
            let patch = map_webhook_event(&event(event_type, serde_json::json!({}))).unwrap();
            for key in ["rc_subscriber", "rc_status", "rc_will_renew"] {
                assert!(
                    matches!(patch.get(key), Some(Some(_))),
                    "{event_type} sets {key}: {patch:?}"
                );
            }
        }
    }

    #[test]
    fn consumable_non_renewing_purchase_only_records_the_purchase() {
        let consumable = event(
            "NON_RENEWING_PURCHASE",
            serde_json::json!({"entitlement_ids": [], "expiration_at_ms": null}),
        );
        assert_eq!(
            map_webhook_event(&consumable),
            patch(&[("rc_last_purchase", Some("8.99 EUR"))])
        );
    }

    #[test]
    fn revenue_affecting_types() {
        use EventType::*;
        for (event_type, expected) in [
            (InitialPurchase, true),
            (Renewal, true),
            (ProductChange, true),
            (NonRenewingPurchase, true),
            (Cancellation, true),
            (Uncancellation, true),
            (Expiration, true),
            (RefundReversed, true),
            (SubscriptionExtended, true),
            (Test, false),
            (BillingIssue, false),
            (SubscriberAlias, false),
            (SubscriptionPaused, false),
            (Other("X".into()), false),
        ] {
            assert_eq!(is_revenue_affecting(&event_type), expected, "{event_type}");
        }
    }
}
