//! The RevenueCat webhook receiver: auth, validation, durability, idempotency, ordering,
//! mapping per event type, anonymous ids, TRANSFER and follow-up resyncs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    encode_segment, fake_with_dataset, spawn_app, spawn_app_with_fake, status_json, wait_until,
    TestApp,
};

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fixture re-addressed to `user` with a fresh event id and the given timestamp.
pub fn event_for(name: &str, user: &str, id: &str, timestamp_ms: i64) -> Value {
    let mut body = fixture(name);
    let event = body["event"].as_object_mut().unwrap();
    event.insert("id".into(), json!(id));
    event.insert("app_user_id".into(), json!(user));
    event.insert("original_app_user_id".into(), json!(user));
    event.insert("aliases".into(), json!([user]));
    event.insert("event_timestamp_ms".into(), json!(timestamp_ms));
    body
}

/// An app with a RevenueCat integration; returns the app and the webhook secret header.
pub async fn app_with_webhook() -> (TestApp, String) {
    with_webhook(spawn_app().await).await
}

pub async fn with_webhook(app: TestApp) -> (TestApp, String) {
    let created = app.create_revenuecat_integration(&app.fake.api_key()).await;
    let header = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, header)
}

pub fn webhook_url(app: &TestApp) -> String {
    app.url(&format!("/v1/webhooks/revenuecat/{}", app.project_id))
}

pub async fn deliver(app: &TestApp, header: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(webhook_url(app))
        .header("Authorization", header)
        .json(body)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

async fn user_properties(app: &TestApp, user_id: &str) -> Option<Value> {
    app.store
        .get_user(&app.project_id, user_id)
        .await
        .unwrap()
        .map(|u| Value::Object(u.properties))
}

async fn event_status(app: &TestApp, event_id: &str) -> String {
    app.store
        .get_webhook_event(&app.project_id, event_id)
        .await
        .unwrap()
        .map(|e| e.status)
        .unwrap_or_default()
}

/// Waits (up to 15 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until(Duration::from_secs(15), what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

#[tokio::test]
async fn missing_or_disabled_integration_is_404() {
    let app = spawn_app().await;
    let (status, body) = deliver(&app, "Bearer whsec_x", &fixture("initial_purchase")).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (app, header) = with_webhook(app).await;
    app.patch(
        &app.project_url("/integrations/revenuecat"),
        &json!({"enabled": false}),
    )
    .send()
    .await
    .unwrap();
    let (status, _) = deliver(&app, &header, &fixture("initial_purchase")).await;
    assert_eq!(status, 404, "disabled");
    let unknown = app.url("/v1/webhooks/revenuecat/no-such-project");
    let response = app
        .client
        .post(unknown)
        .header("Authorization", &header)
        .json(&fixture("test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn wrong_or_missing_authorization_is_401() {
    let (app, header) = app_with_webhook().await;
    let body = fixture("initial_purchase");
    for auth in [None, Some("Bearer whsec_000000"), Some(""), Some("Bearer ")] {
        let mut request = app.client.post(webhook_url(&app)).json(&body);
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let (status, json) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(json["error"].is_string());
    }
    let (status, _) = deliver(&app, &header, &body).await;
    assert_eq!(status, 200);
    // A deleted and re-created integration has a fresh secret; the old one stops working.
    app.delete(&app.project_url("/integrations/revenuecat"))
        .send()
        .await
        .unwrap();
    let (app, new_header) = with_webhook(app).await;
    assert_ne!(header, new_header);
    let (status, _) = deliver(&app, &header, &fixture("renewal")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn malformed_payloads_are_400_and_never_500() {
    let (app, header) = app_with_webhook().await;
    let mut no_user = fixture("renewal");
    no_user["event"]["app_user_id"] = Value::Null;
    no_user["event"]["original_app_user_id"] = Value::Null;
    let mut no_id = fixture("renewal");
    no_id["event"].as_object_mut().unwrap().remove("id");
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"api_version\":\"1.0\"}".to_vec(),
        b"{\"event\": 5}".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        serde_json::to_vec(&no_user).unwrap(),
        serde_json::to_vec(&no_id).unwrap(),
    ];
    for body in bodies {
        let response = app
            .client
            .post(webhook_url(&app))
            .header("Authorization", &header)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, json) = status_json(response).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(json["error"].is_string());
    }
    let counts = app
        .store
        .count_webhook_events(&app.project_id)
        .await
        .unwrap();
    assert!(counts.is_empty(), "nothing recorded: {counts:?}");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (app, header) = app_with_webhook().await;
    let mut body = fixture("initial_purchase");
    body["event"]["subscriber_attributes"] = json!({"big": "x".repeat(1024 * 1024 + 10)});
    let (status, json) = deliver(&app, &header, &body).await;
    assert_eq!(status, 413);
    assert!(json["error"].as_str().unwrap().contains("exceeds"));
    // Just under the limit is fine.
    let mut body = fixture("initial_purchase");
    body["event"]["subscriber_attributes"] = json!({"big": "x".repeat(512 * 1024)});
    let (status, _) = deliver(&app, &header, &body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn every_fixture_is_acknowledged_and_the_lifecycle_lands_on_the_user() {
    let (app, header) = app_with_webhook().await;
    app.post(&app.project_url("/users"), &json!({"users": [{"user_id": "demo_user_1", "properties": {"plan": "team", "rc_stale": "keep"}}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = deliver(&app, &header, &fixture("initial_purchase")).await;
    assert_eq!((status, body), (200, json!({"received": true})));
    let props = user_properties(&app, "demo_user_1").await.unwrap();
    assert_eq!(props["rc_subscriber"], "true");
    assert_eq!(props["rc_status"], "active");
    assert_eq!(props["rc_will_renew"], "true");
    assert_eq!(props["rc_product"], "premium_monthly");
    assert_eq!(props["rc_entitlements"], "premium");
    assert_eq!(props["rc_period_type"], "normal");
    assert_eq!(props["rc_billing_period"], "monthly");
    assert_eq!(props["rc_last_purchase"], "9.99 USD");
    assert_eq!(props["plan"], "team", "non-rc properties are never lost");
    assert_eq!(
        props["rc_stale"], "keep",
        "an event writes only the properties it maps, even under the rc_ prefix"
    );

    for name in [
        "renewal",
        "product_change",
        "cancellation",
        "uncancellation",
        "billing_issue",
        "expiration",
        "subscription_paused",
        "subscription_extended",
        "temporary_entitlement_grant",
        "refund_reversed",
        "non_renewing_purchase",
        "subscriber_alias",
        "transfer",
        "test",
        "anonymous_initial_purchase",
    ] {
        let (status, body) = deliver(&app, &header, &fixture(name)).await;
        assert_eq!((status, body), (200, json!({"received": true})), "{name}");
    }
    let props = user_properties(&app, "demo_user_1").await.unwrap();
    assert_eq!(
        props["rc_billing_period"], "lifetime",
        "NON_RENEWING_PURCHASE is the newest state event"
    );
    assert_eq!(props["plan"], "team");
    let event = app
        .store
        .get_webhook_event(
            &app.project_id,
            fixture("test")["event"]["id"].as_str().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.status, "ignored");
    assert_eq!(
        event
            .environment
            .as_deref()
            .map(str::to_uppercase)
            .as_deref(),
        Some("SANDBOX")
    );
    assert!(
        user_properties(&app, "0a1b2c3d-test-user").await.is_none(),
        "TEST touches no user"
    );
}

#[tokio::test]
async fn each_event_type_maps_to_the_shared_vocabulary() {
    let (app, header) = app_with_webhook().await;
    let cases = [
        ("initial_purchase", "true", "active", "true"),
        ("renewal", "true", "active", "true"),
        ("product_change", "true", "active", "true"),
        ("uncancellation", "true", "active", "true"),
        ("cancellation", "false", "cancelled", "false"),
        ("expiration", "false", "expired", "false"),
        ("non_renewing_purchase", "true", "active", "false"),
    ];
    for (i, (name, subscriber, status, will_renew)) in cases.into_iter().enumerate() {
        let user = format!("mapped_{i}");
        let (code, _) = deliver(
            &app,
            &header,
            &event_for(name, &user, &format!("evt-map-{i}"), 1_000),
        )
        .await;
        assert_eq!(code, 200);
        let props = user_properties(&app, &user).await.unwrap();
        assert_eq!(props["rc_subscriber"], subscriber, "{name}");
        assert_eq!(props["rc_status"], status, "{name}");
        assert_eq!(props["rc_will_renew"], will_renew, "{name}");
    }
    let (code, _) = deliver(
        &app,
        &header,
        &event_for("billing_issue", "billing", "evt-bi", 1_000),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        user_properties(&app, "billing").await.unwrap()["rc_status"],
        "billing_issue"
    );
    let (code, _) = deliver(
        &app,
        &header,
        &event_for("subscription_paused", "paused", "evt-p", 1_000),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        user_properties(&app, "paused").await.unwrap()["rc_status"],
        "paused"
    );
    let props = user_properties(&app, "mapped_6").await.unwrap();
    assert_eq!(props["rc_billing_period"], "lifetime");
    let props = user_properties(&app, "mapped_5").await.unwrap();
    assert!(
        props.get("rc_entitlements").is_none(),
        "EXPIRATION clears entitlements: {props}"
    );
}

#[tokio::test]
async fn unknown_event_types_and_fields_are_accepted() {
    let (app, header) = app_with_webhook().await;
    let mut body = event_for("renewal", "future_user", "evt-future", 5);
    body["event"]["type"] = json!("SOMETHING_NEW_2027");
    body["event"]["brand_new_field"] = json!({"nested": [1, 2, 3]});
    body["brand_new_top_level"] = json!(true);
    let (status, _) = deliver(&app, &header, &body).await;
    assert_eq!(status, 200);
    assert_eq!(event_status(&app, "evt-future").await, "ignored");
    assert!(user_properties(&app, "future_user").await.is_none());
}

#[tokio::test]
async fn redelivery_changes_nothing_even_when_concurrent() {
    let (app, header) = app_with_webhook().await;
    let purchase = event_for("initial_purchase", "dup_user", "evt-dup-1", 1_000);
    let expiration = event_for("expiration", "dup_user", "evt-dup-2", 2_000);
    assert_eq!(deliver(&app, &header, &purchase).await.0, 200);
    assert_eq!(deliver(&app, &header, &expiration).await.0, 200);
    let deliveries = (0..50).map(|_| deliver(&app, &header, &purchase));
    let results = futures::future::join_all(deliveries).await;
    assert!(
        results.iter().all(|(s, _)| *s == 200),
        "every redelivery is acknowledged"
    );
    let props = user_properties(&app, "dup_user").await.unwrap();
    assert_eq!(
        props["rc_status"], "expired",
        "the purchase was not applied again"
    );
    let counts = app
        .store
        .count_webhook_events(&app.project_id)
        .await
        .unwrap();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 2);
}

#[tokio::test]
async fn fifty_concurrent_first_deliveries_apply_once() {
    let (app, header) = app_with_webhook().await;
    let purchase = event_for("initial_purchase", "race_user", "evt-race", 1_000);
    let results =
        futures::future::join_all((0..50).map(|_| deliver(&app, &header, &purchase))).await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    let counts = app
        .store
        .count_webhook_events(&app.project_id)
        .await
        .unwrap();
    assert_eq!(counts, vec![("applied".to_owned(), 1)]);
    assert_eq!(
        user_properties(&app, "race_user").await.unwrap()["rc_status"],
        "active"
    );
}

#[tokio::test]
async fn an_older_event_never_overwrites_newer_state() {
    let (app, header) = app_with_webhook().await;
    let expiration = event_for("expiration", "late_user", "evt-exp", 2_000);
    let renewal = event_for("renewal", "late_user", "evt-ren", 1_000);
    assert_eq!(deliver(&app, &header, &expiration).await.0, 200);
    assert_eq!(deliver(&app, &header, &renewal).await.0, 200);
    let props = user_properties(&app, "late_user").await.unwrap();
    assert_eq!(props["rc_status"], "expired");
    assert_eq!(props["rc_subscriber"], "false");
    assert_eq!(event_status(&app, "evt-ren").await, "superseded");
    assert_eq!(event_status(&app, "evt-exp").await, "applied");
}

#[tokio::test]
async fn equal_timestamps_are_ordered_by_event_id_whatever_the_delivery_order() {
    let (app, header) = app_with_webhook().await;
    for (user, order) in [("tie_a", ["evt-b", "evt-a"]), ("tie_b", ["evt-a", "evt-b"])] {
        for id in order {
            let name = if id == "evt-b" {
                "expiration"
            } else {
                "renewal"
            };
            let body = event_for(name, user, &format!("{user}-{id}"), 5_000);
            assert_eq!(deliver(&app, &header, &body).await.0, 200);
        }
        // `…-evt-b` sorts after `…-evt-a`: the expiration wins in both orders.
        assert_eq!(
            user_properties(&app, user).await.unwrap()["rc_status"],
            "expired",
            "{user}"
        );
    }
}

#[tokio::test]
async fn anonymous_app_user_ids_use_the_identified_alias() {
    let (app, header) = app_with_webhook().await;
    let body = fixture("anonymous_initial_purchase");
    assert_eq!(deliver(&app, &header, &body).await.0, 200);
    let props = user_properties(&app, "demo_user_2")
        .await
        .expect("applied to the alias");
    assert_eq!(props["rc_status"], "trialing");
    let anonymous = body["event"]["app_user_id"].as_str().unwrap();
    assert!(
        user_properties(&app, anonymous).await.is_none(),
        "no user row for an anonymous id"
    );
}

#[tokio::test]
async fn anonymous_only_events_are_resolved_through_revenuecat() {
    let app = spawn_app_with_fake(fake_with_dataset(12), |_| {}).await;
    let (app, header) = with_webhook(app).await;
    let (_, summary) = app.fake.dataset().unwrap();
    let (anonymous, real) = summary
        .aliases
        .first()
        .expect("dataset has aliases")
        .clone();
    let mut body = event_for("initial_purchase", &anonymous, "evt-anon", 9_000);
    body["event"]["aliases"] = json!([anonymous]);
    // Hold RevenueCat's answer about the anonymous id: the event waits, recorded, meanwhile.
    let hold = app.fake.hold_matching(&encode_segment(&anonymous));
    assert_eq!(deliver(&app, &header, &body).await.0, 200);
    tokio::time::timeout(Duration::from_secs(10), hold.arrived())
        .await
        .expect("the resolution asks RevenueCat");
    assert_eq!(event_status(&app, "evt-anon").await, "pending_resolution");
    assert!(
        user_properties(&app, &real).await.is_none(),
        "nothing applied yet"
    );
    hold.release();
    eventually("the event is resolved and applied", || async {
        event_status(&app, "evt-anon").await == "applied"
    })
    .await;
    let event = app
        .store
        .get_webhook_event(&app.project_id, "evt-anon")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.target_user_id.as_deref(), Some(real.as_str()));
    assert!(user_properties(&app, &real)
        .await
        .unwrap()
        .get("rc_status")
        .is_some());
    assert!(user_properties(&app, &anonymous).await.is_none());
}

#[tokio::test]
async fn an_anonymous_id_revenuecat_does_not_know_ends_skipped() {
    let (app, header) = app_with_webhook().await;
    let anonymous = "$RCAnonymousID:00000000000000000000000000000bad";
    let mut body = event_for("initial_purchase", anonymous, "evt-never", 9_000);
    body["event"]["aliases"] = json!([anonymous]);
    assert_eq!(deliver(&app, &header, &body).await.0, 200);
    eventually("the event is skipped", || async {
        event_status(&app, "evt-never").await == "skipped"
    })
    .await;
    assert!(user_properties(&app, anonymous).await.is_none());
}

#[tokio::test]
async fn transfer_and_revenue_events_trigger_resyncs_from_revenuecat() {
    let app = spawn_app_with_fake(fake_with_dataset(12), |_| {}).await;
    let (app, header) = with_webhook(app).await;
    let mut transfer = fixture("transfer");
    transfer["event"]["transferred_from"] = json!(["user_000001", "$RCAnonymousID:abc"]);
    transfer["event"]["transferred_to"] = json!(["user_000002"]);
    assert_eq!(deliver(&app, &header, &transfer).await.0, 200);
    // Both identified users end with RevenueCat's state (what a single-user sync computes,
    // which then changes nothing); the anonymous id is never asked about or created.
    for user in ["user_000001", "user_000002"] {
        let resynced = wait_until(
            Duration::from_secs(15),
            "transferred users are resynced",
            || async {
                user_properties(&app, user)
                    .await
                    .filter(|p| p.get("rc_subscriber").is_some())
            },
        )
        .await;
        let (status, synced) = app.sync_user(user).await;
        assert_eq!(status, 200, "{synced}");
        assert_eq!(resynced, synced["properties"], "{user}");
    }
    assert!(user_properties(&app, "$RCAnonymousID:abc").await.is_none());
    assert!(
        !app.fake
            .request_log()
            .iter()
            .any(|r| r.path_and_query.contains("RCAnonymousID")),
        "the anonymous id is not resynced"
    );
    let stored = app
        .store
        .get_webhook_event(&app.project_id, transfer["event"]["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the transfer is recorded");
    assert_eq!(stored.status, "applied", "{stored:?}");
    // A revenue-affecting event: the webhook state lands at once, the resync adds revenue.
    let now = chrono::Utc::now().timestamp_millis();
    let purchase = event_for("initial_purchase", "user_000003", "evt-rev", now - 60_000);
    assert_eq!(deliver(&app, &header, &purchase).await.0, 200);
    assert!(user_properties(&app, "user_000003")
        .await
        .unwrap()
        .get("rc_total_revenue_usd")
        .is_none());
    eventually("the follow-up resync writes revenue", || async {
        user_properties(&app, "user_000003")
            .await
            .is_some_and(|p| p.get("rc_total_revenue_usd").is_some())
    })
    .await;
}

#[tokio::test]
async fn nul_characters_in_a_payload_are_400() {
    let (app, header) = app_with_webhook().await;
    let body = event_for("renewal", "nul\u{0}user", "evt-nul", 1);
    let (status, json) = deliver(&app, &header, &body).await;
    assert_eq!(status, 400, "{json}");
    let mut body = event_for("renewal", "fine_user", "evt-nul-2", 1);
    body["event"]["product_id"] = json!("premium\u{0}");
    assert_eq!(deliver(&app, &header, &body).await.0, 400);
}

#[tokio::test]
async fn huge_ids_are_400() {
    let (app, header) = app_with_webhook().await;
    let long_user = "u".repeat(4096);
    let body = event_for("renewal", &long_user, "evt-long", 1);
    assert_eq!(deliver(&app, &header, &body).await.0, 400);
    let body = event_for("renewal", "fine_user", &"e".repeat(513), 1);
    assert_eq!(deliver(&app, &header, &body).await.0, 400);
    assert!(user_properties(&app, "fine_user").await.is_none());
}

#[tokio::test]
async fn implausible_timestamps_are_recorded_flagged_and_ordered_by_receipt() {
    let (app, header) = app_with_webhook().await;
    let now = chrono::Utc::now().timestamp_millis();
    // RevenueCat's own TRANSFER sample carries a timestamp from the year 4466: a RENEWAL like it
    // must not freeze the user's ordering marker in the far future.
    let far_future = event_for("renewal", "ts_user", "evt-ts-future", 78_789_789_798_798);
    assert_eq!(deliver(&app, &header, &far_future).await.0, 200);
    let mut not_a_number = event_for("cancellation", "ts_user", "evt-ts-text", 0);
    not_a_number["event"]["event_timestamp_ms"] = json!({"not": "a number"});
    assert_eq!(deliver(&app, &header, &not_a_number).await.0, 200);
    let mut missing = event_for("expiration", "ts_user", "evt-ts-missing", 0);
    missing["event"]
        .as_object_mut()
        .unwrap()
        .remove("event_timestamp_ms");
    assert_eq!(deliver(&app, &header, &missing).await.0, 200);
    for id in ["evt-ts-future", "evt-ts-text", "evt-ts-missing"] {
        let stored = app
            .store
            .get_webhook_event(&app.project_id, id)
            .await
            .unwrap()
            .expect("recorded");
        assert!(!stored.timestamp_trusted, "{id} is flagged");
        assert!(stored
            .status_detail
            .unwrap()
            .contains("not a plausible time"));
        assert_eq!(
            stored.status, "applied",
            "ordered by receipt, each applies in turn"
        );
    }
    assert_eq!(
        user_properties(&app, "ts_user").await.unwrap()["rc_status"],
        "expired"
    );
    // A genuine event from a minute ago still applies: nothing was frozen in the future.
    let renewal = event_for("renewal", "ts_user", "evt-ts-real", now + 60_000);
    assert_eq!(deliver(&app, &header, &renewal).await.0, 200);
    assert_eq!(event_status(&app, "evt-ts-real").await, "applied");
    assert_eq!(
        user_properties(&app, "ts_user").await.unwrap()["rc_status"],
        "active"
    );
}

#[tokio::test]
async fn a_superseded_or_partial_resync_never_hides_a_later_correction() {
    // The partial path: /subscriptions keeps failing, the resync writes entitlements only and
    // must not claim to be newer than the CANCELLATION that RevenueCat redelivers afterwards.
    let app = spawn_app_with_fake(fake_with_dataset(12), |_| {}).await;
    let (app, header) = with_webhook(app).await;
    app.fake.fail_next_matching(10_000, 500, "/subscriptions");
    let (status, body) = status_json(
        app.client
            .post(app.project_url("/integrations/revenuecat/sync/user_000001"))
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["partial"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let now = chrono::Utc::now().timestamp_millis();
    let cancellation = event_for(
        "cancellation",
        "user_000001",
        "evt-late-cancel",
        now - 5_000,
    );
    assert_eq!(deliver(&app, &header, &cancellation).await.0, 200);
    assert_eq!(event_status(&app, "evt-late-cancel").await, "applied");
    assert_eq!(
        user_properties(&app, "user_000001").await.unwrap()["rc_status"],
        "cancelled"
    );
}

/// Sandbox purchases (TestFlight, review builds) are real state for their users: applied
/// like production ones, each event keeping the environment it came from.
#[tokio::test]
async fn sandbox_events_are_applied_and_keep_their_environment() {
    let (app, header) = app_with_webhook().await;
    let now = chrono::Utc::now().timestamp_millis();
    for (user, environment) in [
        ("sandbox_user", "SANDBOX"),
        ("production_user", "PRODUCTION"),
    ] {
        let id = format!("evt-{user}");
        let mut body = event_for("initial_purchase", user, &id, now - 60_000);
        body["event"]["environment"] = json!(environment);
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
        let stored = app
            .store
            .get_webhook_event(&app.project_id, &id)
            .await
            .unwrap()
            .expect("recorded");
        assert_eq!(stored.status, "applied", "{stored:?}");
        // Stored normalised, as the event log filters it.
        assert_eq!(
            stored.environment.as_deref(),
            Some(environment.to_lowercase().as_str())
        );
        let props = user_properties(&app, user).await.expect("the user exists");
        assert_eq!(props["rc_status"], "active", "{environment}: {props}");
        assert_eq!(
            props["rc_product"], "premium_monthly",
            "{environment}: {props}"
        );
    }
}
