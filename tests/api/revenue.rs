//! The `track_revenue` integration setting and `rc_total_revenue_usd`: exact gross while it is
//! on, never written while it is off, and what each setting costs in RevenueCat calls.

use fake_revenuecat::dataset::{
    customer_id, expected_cases, DatasetCase, PREMIUM_ENTITLEMENT_ID, PRODUCT_LIFETIME_ID,
};
use fake_revenuecat::{
    ActiveEntitlementRecord, CustomerRecord, DatasetSpec, FakeConfig, FakeRevenueCat, Money,
    ProductRecord, PurchaseRecord, RateLimitDomain, SubscriptionRecord,
};
use serde_json::{json, Value};

use crate::helpers::{fake_with_dataset, spawn_app_with_fake, status_json, TestApp};

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

/// `POST …/integrations` with the fake's key plus `extra` config fields.
async fn create_integration(app: &TestApp, extra: Value) -> (u16, Value) {
    let mut config = json!({"api_key": app.fake.api_key()});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    status_json(
        app.post(
            &app.project_url("/integrations"),
            &json!({"provider": "revenuecat", "config": config}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
}

async fn set_track_revenue(app: &TestApp, value: &str) -> (u16, Value) {
    status_json(
        app.patch(
            &app.project_url("/integrations/revenuecat"),
            &json!({"config": {"track_revenue": value}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
}

/// A fake with 20 generated customers and an integration created with `extra` config.
async fn connected_app(extra: Value) -> TestApp {
    let app = spawn_app_with_fake(fake_with_dataset(20), |_| {}).await;
    let (status, body) = create_integration(&app, extra).await;
    assert_eq!(status, 201, "{body}");
    app
}

/// Customer Information requests made since the log was last cleared, as paths.
fn customer_calls(fake: &FakeRevenueCat) -> Vec<String> {
    fake.request_log()
        .into_iter()
        .filter(|r| r.domain == Some(RateLimitDomain::CustomerInformation))
        .map(|r| r.path_and_query)
        .collect()
}

fn first_user_in(app: &TestApp, case: DatasetCase) -> String {
    let (spec, _) = app.fake.dataset().expect("dataset");
    expected_cases(spec)
        .into_iter()
        .find(|(_, c)| *c == case)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("no customer in case {case:?}"))
}

/// An active monthly subscription worth `gross` that grants `premium` until `T0 + 30 days`.
fn monthly_subscription(app: &TestApp, customer: &str, gross: f64) -> SubscriptionRecord {
    let template = app
        .fake
        .state()
        .customer(&first_user_in(app, DatasetCase::Monthly))
        .unwrap()
        .subscriptions
        .pop()
        .unwrap();
    SubscriptionRecord {
        id: format!("sub_{customer}"),
        customer_id: customer.into(),
        original_customer_id: customer.into(),
        starts_at: T0,
        current_period_starts_at: T0,
        current_period_ends_at: Some(T0 + 30 * DAY),
        ends_at: Some(T0 + 30 * DAY),
        total_revenue_in_usd: Money::usd(gross),
        ..template
    }
}

fn purchase(customer: &str, id: &str, product: &str, gross: f64, status: &str) -> PurchaseRecord {
    PurchaseRecord {
        id: id.into(),
        customer_id: customer.into(),
        original_customer_id: customer.into(),
        product_id: product.into(),
        purchased_at: T0 + DAY,
        revenue_in_usd: Money::usd(gross),
        quantity: 1,
        status: status.into(),
        presented_offering_id: None,
        entitlement_ids: if product == PRODUCT_LIFETIME_ID {
            vec![PREMIUM_ENTITLEMENT_ID.into()]
        } else {
            vec![]
        },
        environment: "production".into(),
        store: "app_store".into(),
        store_purchase_identifier: format!("2000000{id}"),
        ownership: "purchased".into(),
        country: None,
    }
}

const COINS_PRODUCT_ID: &str = "prodc01n5a1b2c";

/// A consumable in the fake's catalog (attached to no entitlement).
fn add_coins_product(app: &TestApp) {
    let app_id = app.fake.state().lock().app_id.clone();
    app.fake.state().upsert_product(ProductRecord {
        id: COINS_PRODUCT_ID.into(),
        store_identifier: "coins_100".into(),
        product_type: "one_time".into(),
        duration: None,
        grace_period_duration: None,
        trial_duration: None,
        is_consumable: Some(true),
        created_at: T0,
        app_id,
        display_name: Some("100 coins".into()),
    });
}

/// A customer with the monthly subscription (9.99 gross) and the given purchases.
fn subscriber_with_purchases(app: &TestApp, id: &str, purchases: Vec<PurchaseRecord>) {
    let mut customer = CustomerRecord::new(id, T0);
    customer.subscriptions = vec![monthly_subscription(app, id, 9.99)];
    customer.purchases = purchases;
    customer.active_entitlements = vec![ActiveEntitlementRecord {
        entitlement_id: PREMIUM_ENTITLEMENT_ID.into(),
        expires_at: Some(T0 + 30 * DAY),
    }];
    app.fake.state().upsert_customer(customer);
}

fn revenue(properties: &Value) -> Option<&str> {
    properties
        .get("rc_total_revenue_usd")
        .and_then(Value::as_str)
}

#[tokio::test]
async fn the_providers_list_shows_track_revenue_as_an_optional_plain_choice() {
    let app = spawn_app_with_fake(FakeConfig::default(), |_| {}).await;
    let (status, body) = status_json(
        app.get(&app.project_url("/integrations/providers"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fields = body["providers"][0]["configFields"].as_array().unwrap();
    let field = fields
        .iter()
        .find(|f| f["key"] == "track_revenue")
        .unwrap_or_else(|| panic!("track_revenue listed: {body}"));
    assert_eq!(field["label"], "Track revenue");
    assert_eq!(field["required"], false);
    assert_eq!(field["sensitive"], false);
    assert_eq!(field["placeholder"], "true");
    let description = field["description"].as_str().unwrap();
    assert!(description.contains("\"true\" (default)"), "{description}");
    assert!(description.contains("\"false\""), "{description}");
    assert_eq!(
        field.as_object().unwrap().len(),
        6,
        "seed 001's field shape: {field}"
    );
}

#[tokio::test]
async fn track_revenue_accepts_only_true_or_false_and_a_refusal_asks_nothing_of_revenuecat() {
    let app = spawn_app_with_fake(FakeConfig::default(), |_| {}).await;
    for refused in [json!("yes"), json!(""), json!("TRUE"), json!(false)] {
        app.fake.clear_log();
        let (status, body) = create_integration(&app, json!({"track_revenue": refused})).await;
        assert_eq!(status, 400, "{refused}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("track_revenue"), "{refused}: {error}");
        assert!(
            app.fake.request_log().is_empty(),
            "{refused}: checked locally"
        );
    }
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"], json!([]), "nothing stored");

    let (status, body) = create_integration(&app, json!({"track_revenue": "false"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["config"]["track_revenue"], "false", "shown unredacted");

    let (status, body) = set_track_revenue(&app, "maybe").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "Config field 'track_revenue' must be one of: \"true\", \"false\""
    );
    let (status, body) = set_track_revenue(&app, "true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["track_revenue"], "true");
    assert_eq!(body["config"]["api_key"], "sk_t****", "merged, key kept");
}

#[tokio::test]
async fn revenue_is_exact_gross_of_subscriptions_and_every_owned_purchase() {
    // No `track_revenue` in the config: the default is on.
    let app = connected_app(json!({})).await;
    add_coins_product(&app);
    let coins = |customer: &str| {
        vec![
            purchase(customer, "p1", COINS_PRODUCT_ID, 2.50, "owned"),
            purchase(customer, "p2", COINS_PRODUCT_ID, 4.99, "refunded"),
        ]
    };
    subscriber_with_purchases(&app, "sub_and_coins", coins("sub_and_coins"));
    subscriber_with_purchases(
        &app,
        "sub_and_unlock",
        vec![purchase(
            "sub_and_unlock",
            "p3",
            PRODUCT_LIFETIME_ID,
            99.99,
            "owned",
        )],
    );

    for (user, gross) in [("sub_and_coins", "12.49"), ("sub_and_unlock", "109.98")] {
        app.fake.clear_log();
        let (status, body) = app.sync_user(user).await;
        assert_eq!(status, 200, "{body}");
        let p = &body["properties"];
        assert_eq!(revenue(p), Some(gross), "{user}: {p}");
        assert_eq!(p["rc_status"], "active", "{user}: {p}");
        assert_eq!(p["rc_product"], "premium_monthly", "the subscription: {p}");
        let calls = customer_calls(&app.fake);
        assert!(
            calls[2].contains(&format!("/customers/{user}/purchases")),
            "{calls:?}"
        );
        let (_, stored) = app.get_user(user).await;
        assert_eq!(revenue(&stored["properties"]), Some(gross));
    }
}

#[tokio::test]
async fn with_track_revenue_false_revenue_is_never_written_and_explained_subscribers_skip_purchases(
) {
    let app = connected_app(json!({"track_revenue": "false"})).await;
    add_coins_product(&app);
    let coins = vec![purchase(
        "coins_buyer",
        "p1",
        COINS_PRODUCT_ID,
        2.5,
        "owned",
    )];
    subscriber_with_purchases(&app, "coins_buyer", coins);
    let lifetime = first_user_in(&app, DatasetCase::Lifetime);
    for (user, expected_calls) in [("coins_buyer", 2), (lifetime.as_str(), 3)] {
        app.fake.clear_log();
        let (status, body) = app.sync_user(user).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(revenue(&body["properties"]), None, "{user}: {body}");
        let calls = customer_calls(&app.fake);
        assert_eq!(calls.len(), expected_calls, "{user}: {calls:?}");
        let fetched_purchases = calls.iter().any(|c| c.contains("/purchases"));
        assert_eq!(fetched_purchases, expected_calls == 3, "{user}: {calls:?}");
        let (_, stored) = app.get_user(user).await;
        assert_eq!(revenue(&stored["properties"]), None, "{stored}");
    }
    let (_, stored) = app.get_user(&lifetime).await;
    assert_eq!(
        stored["properties"]["rc_period_type"], "lifetime",
        "purchases still tell a lifetime unlock from a grant"
    );
}

#[tokio::test]
async fn turning_track_revenue_off_leaves_the_last_exact_value_and_on_again_corrects_it() {
    let app = connected_app(json!({})).await;
    add_coins_product(&app);
    let user = "later_buyer";
    subscriber_with_purchases(&app, user, vec![]);
    let (status, body) = app.sync_user(user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(revenue(&body["properties"]), Some("9.99"));

    let (status, body) = set_track_revenue(&app, "false").await;
    assert_eq!(status, 200, "{body}");
    app.fake
        .state()
        .add_purchase(user, purchase(user, "p1", COINS_PRODUCT_ID, 2.5, "owned"));
    app.fake.clear_log();
    let (status, body) = app.sync_user(user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(revenue(&body["properties"]), None, "not written: {body}");
    let (_, stored) = app.get_user(user).await;
    assert_eq!(
        revenue(&stored["properties"]),
        Some("9.99"),
        "left alone: {stored}"
    );
    let calls = customer_calls(&app.fake);
    assert!(!calls.iter().any(|c| c.contains("/purchases")), "{calls:?}");

    let (status, body) = set_track_revenue(&app, "true").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.sync_user(user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(revenue(&body["properties"]), Some("12.49"));
}

#[tokio::test]
async fn a_known_customer_who_never_paid_is_expired_with_zero_revenue_and_an_unknown_one_gets_nothing(
) {
    let app = connected_app(json!({})).await;
    for id in ["never_paid", "never_paid_untracked"] {
        app.fake
            .state()
            .upsert_customer(CustomerRecord::new(id, T0));
    }
    let (status, body) = app.sync_user("never_paid").await;
    assert_eq!(status, 200, "{body}");
    let expected = json!({
        "rc_subscriber": "false",
        "rc_status": "expired",
        "rc_will_renew": "false",
        "rc_total_revenue_usd": "0.00",
    });
    assert_eq!(body["properties"], expected);
    let (_, stored) = app.get_user("never_paid").await;
    assert_eq!(stored["properties"], expected);
    let (status, listed) =
        status_json(
            app.get(&app.project_url(
                "/users?property.rc_status=expired&property.rc_total_revenue_usd=0.00",
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["users"][0]["user_id"], "never_paid", "{listed}");

    let (status, body) = set_track_revenue(&app, "false").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.sync_user("never_paid_untracked").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["properties"],
        json!({"rc_subscriber": "false", "rc_status": "expired", "rc_will_renew": "false"})
    );

    let (status, body) = app.sync_user("unknown_to_revenuecat").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app.get_user("unknown_to_revenuecat").await;
    assert_eq!(status, 404, "no user written for a 404");
}

/// Syncs every customer of the fake's dataset once; returns Customer Information calls per
/// customer, as measured and as the plan's floor computed from each customer's case.
async fn calls_per_user(app: &TestApp, track_revenue: bool) -> (f64, f64) {
    let (spec, _) = app.fake.dataset().expect("dataset");
    let cases = expected_cases(spec);
    app.fake.clear_log();
    for (user, case) in &cases {
        let (status, body) = app.sync_user(user).await;
        assert_eq!(status, 200, "{case:?} {user}: {body}");
    }
    let measured = customer_calls(&app.fake).len();
    // Customer + subscriptions, plus purchases when revenue is tracked or an entitlement
    // comes from a one-time purchase or a grant.
    let floor: usize = cases
        .iter()
        .map(|(_, case)| {
            let unexplained = matches!(case, DatasetCase::Lifetime | DatasetCase::Promotional);
            2 + usize::from(track_revenue || unexplained)
        })
        .sum();
    let users = cases.len() as f64;
    (measured as f64 / users, floor as f64 / users)
}

#[tokio::test]
async fn calls_per_user_on_the_fakes_default_dataset_meet_the_floor_with_tracking_on_and_off() {
    let fake = FakeConfig {
        dataset: Some(DatasetSpec::default()),
        customer_rate_limit_per_min: 100_000,
        ..FakeConfig::default()
    };
    let app = spawn_app_with_fake(fake, |s| s.rc_rate_limit = 100_000).await;
    app.connect_fake().await;
    let (spec, summary) = app.fake.dataset().unwrap();
    assert_eq!(spec, &DatasetSpec::default());
    assert_eq!(customer_id(spec.customers - 1), "user_000100");

    let (on, on_floor) = calls_per_user(&app, true).await;
    let (status, body) = set_track_revenue(&app, "false").await;
    assert_eq!(status, 200, "{body}");
    let (off, off_floor) = calls_per_user(&app, false).await;
    println!(
        "calls per user on the default dataset ({} customers, {} subscribers): \
         track_revenue on = {on:.2} (floor {on_floor:.2}), off = {off:.2} (floor {off_floor:.2})",
        summary.customers, summary.subscribers
    );
    assert_eq!(on, on_floor);
    assert_eq!(off, off_floor);
    assert_eq!(on, 3.0);
    assert!(off < on, "{off} < {on}");
}
