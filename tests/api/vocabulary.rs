//! The `rc_*` vocabulary where webhooks and syncs meet: a user's first webhook leaves a
//! complete state whatever its type, and lifetime access reads the same on both paths.

use fake_revenuecat::dataset::{expected_cases, DatasetCase};
use serde_json::{json, Value};

use crate::helpers::{fake_with_dataset, spawn_app, spawn_app_with_fake, TestApp};
use crate::webhooks::{deliver, event_for, with_webhook};

/// Delivers fixture `name` as the first event of a user with no properties and returns what
/// the user then holds.
async fn first_event(app: &TestApp, header: &str, name: &str) -> Value {
    let user = format!("first_{name}");
    let body = event_for(name, &user, &format!("evt-first-{name}"), 1_700_000_000_000);
    let (status, answer) = deliver(app, header, &body).await;
    assert_eq!(status, 200, "{name}: {answer}");
    let (status, stored) = app.get_user(&user).await;
    assert_eq!(status, 200, "{name}: the user exists: {stored}");
    stored["properties"].clone()
}

/// The first event of type `name` leaves exactly `expected` (all three state keys included).
async fn assert_first_event_leaves(name: &str, expected: Value) {
    let (app, header) = with_webhook(spawn_app().await).await;
    let properties = first_event(&app, &header, name).await;
    for key in ["rc_subscriber", "rc_status", "rc_will_renew"] {
        assert!(
            properties[key].is_string(),
            "{name} sets {key}: {properties}"
        );
    }
    assert_eq!(properties, expected, "{name}");
}

/// `premium_monthly` granting `premium`, as every lifecycle fixture describes it.
fn monthly(state: Value) -> Value {
    let mut properties = json!({
        "rc_product": "premium_monthly",
        "rc_entitlements": "premium",
        "rc_period_type": "normal",
        "rc_billing_period": "monthly",
    });
    properties
        .as_object_mut()
        .unwrap()
        .extend(state.as_object().unwrap().clone());
    properties
}

#[tokio::test]
async fn a_first_initial_purchase_leaves_a_complete_state() {
    let expected = monthly(json!({"rc_subscriber": "true", "rc_status": "active",
        "rc_will_renew": "true", "rc_last_purchase": "9.99 USD"}));
    assert_first_event_leaves("initial_purchase", expected).await;
}

#[tokio::test]
async fn a_first_renewal_leaves_a_complete_state() {
    let expected = monthly(json!({"rc_subscriber": "true", "rc_status": "active",
        "rc_will_renew": "true", "rc_last_purchase": "9.99 USD"}));
    assert_first_event_leaves("renewal", expected).await;
}

#[tokio::test]
async fn a_first_product_change_leaves_a_complete_state() {
    let expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "active", "rc_will_renew": "true"}));
    assert_first_event_leaves("product_change", expected).await;
}

#[tokio::test]
async fn a_first_uncancellation_leaves_a_complete_state() {
    let expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "active", "rc_will_renew": "true"}));
    assert_first_event_leaves("uncancellation", expected).await;
}

#[tokio::test]
async fn a_first_cancellation_leaves_a_complete_state() {
    let expected = monthly(
        json!({"rc_subscriber": "false", "rc_status": "cancelled", "rc_will_renew": "false"}),
    );
    assert_first_event_leaves("cancellation", expected).await;
}

#[tokio::test]
async fn a_first_billing_issue_in_its_grace_period_leaves_a_complete_state() {
    // Access lasts through the grace period; entitlements are left to EXPIRATION or a resync.
    let mut expected = monthly(
        json!({"rc_subscriber": "true", "rc_status": "billing_issue", "rc_will_renew": "true"}),
    );
    expected.as_object_mut().unwrap().remove("rc_entitlements");
    assert_first_event_leaves("billing_issue", expected).await;
}

#[tokio::test]
async fn a_first_billing_issue_without_grace_period_leaves_no_access() {
    let (app, header) = with_webhook(spawn_app().await).await;
    let mut body = event_for(
        "billing_issue",
        "retrying",
        "evt-no-grace",
        1_700_000_000_000,
    );
    body["event"]["grace_period_expiration_at_ms"] = Value::Null;
    let (status, _) = deliver(&app, &header, &body).await;
    assert_eq!(status, 200);
    let (_, stored) = app.get_user("retrying").await;
    let p = &stored["properties"];
    assert_eq!(p["rc_subscriber"], "false", "{p}");
    assert_eq!(p["rc_status"], "billing_issue", "{p}");
    assert_eq!(p["rc_will_renew"], "true", "the store keeps retrying: {p}");
}

#[tokio::test]
async fn a_first_expiration_leaves_a_complete_state() {
    // The fixture's span (46 days, grace included) names no billing period.
    let expected = json!({"rc_subscriber": "false", "rc_status": "expired",
        "rc_will_renew": "false", "rc_product": "premium_monthly", "rc_period_type": "normal"});
    assert_first_event_leaves("expiration", expected).await;
}

#[tokio::test]
async fn a_first_subscription_paused_keeps_access_until_the_pause_starts() {
    let expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "paused", "rc_will_renew": "false"}));
    assert_first_event_leaves("subscription_paused", expected).await;
}

#[tokio::test]
async fn a_first_subscription_extended_leaves_a_complete_state() {
    // Extended by 7 days: the 37-day span names no billing period.
    let mut expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "active", "rc_will_renew": "true"}));
    expected
        .as_object_mut()
        .unwrap()
        .remove("rc_billing_period");
    assert_first_event_leaves("subscription_extended", expected).await;
}

#[tokio::test]
async fn a_first_temporary_entitlement_grant_leaves_a_complete_state() {
    // A 24-hour grant that ends by itself.
    let mut expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "active", "rc_will_renew": "false"}));
    expected
        .as_object_mut()
        .unwrap()
        .remove("rc_billing_period");
    assert_first_event_leaves("temporary_entitlement_grant", expected).await;
}

#[tokio::test]
async fn a_first_refund_reversed_leaves_a_complete_state() {
    let expected =
        monthly(json!({"rc_subscriber": "true", "rc_status": "active", "rc_will_renew": "true"}));
    assert_first_event_leaves("refund_reversed", expected).await;
}

#[tokio::test]
async fn a_first_lifetime_non_renewing_purchase_is_lifetime_in_both_period_properties() {
    let expected = json!({
        "rc_subscriber": "true",
        "rc_status": "active",
        "rc_will_renew": "false",
        "rc_product": "premium_lifetime",
        "rc_entitlements": "premium",
        "rc_period_type": "lifetime",
        "rc_billing_period": "lifetime",
        "rc_last_purchase": "99.99 USD",
    });
    assert_first_event_leaves("non_renewing_purchase", expected).await;
}

/// The state keys a webhook and a sync both write for access.
const ACCESS_KEYS: [&str; 7] = [
    "rc_subscriber",
    "rc_status",
    "rc_will_renew",
    "rc_product",
    "rc_entitlements",
    "rc_period_type",
    "rc_billing_period",
];

#[tokio::test]
async fn a_paid_lifetime_purchase_reads_the_same_from_a_webhook_and_a_sync() {
    let (app, header) =
        with_webhook(spawn_app_with_fake(fake_with_dataset(10), |_| {}).await).await;
    let (spec, _) = app.fake.dataset().unwrap();
    let (lifetime_user, _) = expected_cases(spec)
        .into_iter()
        .find(|(_, case)| *case == DatasetCase::Lifetime)
        .unwrap();
    let (status, synced) = app.sync_user(&lifetime_user).await;
    assert_eq!(status, 200, "{synced}");
    let synced = &synced["properties"];
    assert_eq!(synced["rc_period_type"], "lifetime", "{synced}");
    assert_eq!(synced["rc_billing_period"], "lifetime", "{synced}");

    let delivered = first_event(&app, &header, "non_renewing_purchase").await;
    for key in ACCESS_KEYS {
        assert_eq!(
            delivered[key], synced[key],
            "{key}: webhook {delivered}, sync {synced}"
        );
    }
}
