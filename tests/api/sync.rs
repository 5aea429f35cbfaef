//! `POST /v1/projects/:p/integrations/revenuecat/sync/:userId` against the fake RevenueCat.

use std::time::{Duration, Instant};

use fake_revenuecat::dataset::{customer_id, SUBSCRIBER_CASES};
use fake_revenuecat::{
    CustomerRecord, DatasetCase, FakeRevenueCat, LoggedRequest, RateLimitDomain,
};
use rcsync::domain::permission::Permission;
use serde_json::{json, Value};

use crate::helpers::{fake_with_dataset, spawn_app, spawn_app_with_fake, status_json, TestApp};

/// 40 customers, every one a subscriber: `user_000001` is Monthly, `user_000002` Yearly, …
/// following `SUBSCRIBER_CASES` round-robin.
async fn dataset_app() -> TestApp {
    let app = spawn_app_with_fake(fake_with_dataset(40), |_| {}).await;
    app.connect_fake().await;
    app
}

/// The first dataset customer in `case` (dataset of `fake_with_dataset`, share 1.0).
fn user_of(app: &TestApp, case: DatasetCase) -> String {
    let (spec, _) = app.fake.dataset().expect("dataset");
    (0..spec.customers)
        .map(customer_id)
        .find(|id| fake_revenuecat::dataset::expected_case(spec, id) == Some(case))
        .unwrap_or_else(|| panic!("no customer in case {case:?}"))
}

fn prop<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

fn v2_requests(fake: &FakeRevenueCat) -> Vec<LoggedRequest> {
    fake.request_log()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/v2"))
        .collect()
}

/// A customer RevenueCat knows who holds nothing, with revenue tracking on (the default).
fn never_paid() -> Value {
    json!({
        "rc_subscriber": "false",
        "rc_status": "expired",
        "rc_will_renew": "false",
        "rc_total_revenue_usd": "0.00",
    })
}

/// Asserts the documented properties of one dataset case.
fn assert_case(case: DatasetCase, user: &str, p: &Value) {
    let ctx = format!("{case:?} {user}: {p}");
    let status = prop(p, "rc_status");
    let subscriber = prop(p, "rc_subscriber");
    let renew = prop(p, "rc_will_renew");
    let product = prop(p, "rc_product");
    let entitlements = prop(p, "rc_entitlements");
    let period_type = prop(p, "rc_period_type");
    let billing = prop(p, "rc_billing_period");
    // Monthly/yearly products: the billing period follows the product.
    let plan_matches = |p: Option<&str>, b: Option<&str>| {
        matches!(
            (p, b),
            (Some("premium_monthly"), Some("monthly")) | (Some("premium_yearly"), Some("yearly"))
        )
    };
    for key in p.as_object().unwrap().keys() {
        assert!(key.starts_with("rc_"), "only rc_* keys: {ctx}");
    }
    assert_eq!(prop(p, "rc_last_purchase"), None, "{ctx}");
    match case {
        DatasetCase::Monthly | DatasetCase::Yearly => {
            assert_eq!(status, Some("active"), "{ctx}");
            assert_eq!(subscriber, Some("true"), "{ctx}");
            assert_eq!(renew, Some("true"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "{ctx}");
            assert_eq!(period_type, Some("normal"), "{ctx}");
            let (want_product, want_period) = if case == DatasetCase::Monthly {
                ("premium_monthly", "monthly")
            } else {
                ("premium_yearly", "yearly")
            };
            assert_eq!(product, Some(want_product), "{ctx}");
            assert_eq!(billing, Some(want_period), "{ctx}");
        }
        DatasetCase::Trial => {
            assert_eq!(status, Some("trialing"), "{ctx}");
            assert_eq!(subscriber, Some("true"), "{ctx}");
            assert_eq!(renew, Some("true"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "{ctx}");
            assert_eq!(period_type, Some("trial"), "{ctx}");
            assert_eq!(product, Some("premium_monthly"), "{ctx}");
            assert_eq!(billing, Some("monthly"), "{ctx}");
        }
        DatasetCase::CancelledActive => {
            assert_eq!(status, Some("cancelled"), "{ctx}");
            assert_eq!(subscriber, Some("false"), "{ctx}");
            assert_eq!(renew, Some("false"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "still entitled: {ctx}");
            assert_eq!(period_type, Some("normal"), "{ctx}");
            assert!(plan_matches(product, billing), "{ctx}");
        }
        DatasetCase::BillingRetry => {
            assert_eq!(status, Some("billing_issue"), "{ctx}");
            assert_eq!(subscriber, Some("false"), "no access: {ctx}");
            assert_eq!(renew, Some("true"), "{ctx}");
            assert_eq!(entitlements, None, "{ctx}");
            assert_eq!(product, Some("premium_monthly"), "{ctx}");
            assert_eq!(billing, Some("monthly"), "{ctx}");
        }
        DatasetCase::GracePeriod => {
            assert_eq!(status, Some("billing_issue"), "{ctx}");
            assert_eq!(subscriber, Some("true"), "grace gives access: {ctx}");
            assert_eq!(renew, Some("true"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "{ctx}");
            assert_eq!(product, Some("premium_monthly"), "{ctx}");
            assert_eq!(billing, Some("monthly"), "{ctx}");
        }
        DatasetCase::Paused => {
            assert_eq!(status, Some("paused"), "{ctx}");
            assert_eq!(subscriber, Some("false"), "{ctx}");
            assert_eq!(entitlements, None, "{ctx}");
            assert_eq!(product, Some("premium_monthly"), "{ctx}");
            assert_eq!(billing, Some("monthly"), "{ctx}");
        }
        DatasetCase::Lifetime => {
            assert_eq!(status, Some("active"), "{ctx}");
            assert_eq!(subscriber, Some("true"), "{ctx}");
            assert_eq!(renew, Some("false"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "{ctx}");
            assert_eq!(product, Some("premium_lifetime"), "{ctx}");
            assert_eq!(period_type, Some("lifetime"), "{ctx}");
            assert_eq!(billing, Some("lifetime"), "{ctx}");
            assert_eq!(prop(p, "rc_total_revenue_usd"), Some("99.99"), "{ctx}");
        }
        DatasetCase::Promotional => {
            assert_eq!(status, Some("active"), "{ctx}");
            assert_eq!(subscriber, Some("true"), "{ctx}");
            assert_eq!(renew, Some("false"), "{ctx}");
            assert_eq!(entitlements, Some("premium"), "{ctx}");
            assert_eq!(period_type, Some("promotional"), "{ctx}");
            assert_eq!(product, None, "a grant has no product: {ctx}");
            assert!(matches!(billing, None | Some("lifetime")), "{ctx}");
            assert_eq!(prop(p, "rc_total_revenue_usd"), Some("0.00"), "{ctx}");
        }
        DatasetCase::Expired => {
            assert_eq!(status, Some("expired"), "{ctx}");
            assert_eq!(subscriber, Some("false"), "{ctx}");
            assert_eq!(renew, Some("false"), "{ctx}");
            assert_eq!(entitlements, None, "{ctx}");
            assert!(plan_matches(product, billing), "{ctx}");
        }
        DatasetCase::NeverSubscribed => {
            assert_eq!(p, &never_paid(), "{ctx}");
        }
    }
    let revenue = prop(p, "rc_total_revenue_usd").expect("revenue set");
    assert!(revenue.parse::<f64>().is_ok(), "{ctx}");
}

#[tokio::test]
async fn every_dataset_case_maps_to_its_documented_properties() {
    let app = dataset_app().await;
    // With subscriber_share 1.0 the dataset has no never-subscribed customer: add one.
    app.fake
        .state()
        .upsert_customer(CustomerRecord::new("never_subscribed_1", 1_700_000_000_000));
    let mut cases: Vec<(DatasetCase, String)> = SUBSCRIBER_CASES
        .iter()
        .map(|case| (*case, user_of(&app, *case)))
        .collect();
    cases.push((DatasetCase::NeverSubscribed, "never_subscribed_1".into()));
    for (case, user) in &cases {
        let (status, body) = app.sync_user(user).await;
        assert_eq!(status, 200, "{case:?} {user}: {body}");
        assert_eq!(body["updated"], 1, "{body}");
        assert!(body.get("partial").is_none(), "{body}");
        let props = &body["properties"];
        assert_case(*case, user, props);

        let (status, stored) = app.get_user(user).await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(&stored["properties"], props, "{case:?}: stored = returned");
    }
}

#[tokio::test]
async fn a_resync_removes_keys_that_no_longer_apply_and_keeps_other_properties() {
    let app = dataset_app().await;
    let monthly = user_of(&app, DatasetCase::Monthly);
    let yearly = user_of(&app, DatasetCase::Yearly);
    for user in [&monthly, &yearly] {
        let (status, _) = status_json(
            app.post(
                &app.project_url("/users"),
                &json!({"users": [{"user_id": user, "properties": {"plan": "pro", "country": "DE"}}]}),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let (status, body) = app.sync_user(user).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["properties"]["rc_status"], "active");
    }

    // Monthly: the subscription expired and the entitlement is gone.
    app.fake.state().with(|store| {
        let c = store.customer_mut(&monthly).unwrap();
        c.active_entitlements.clear();
        let sub = c.subscriptions.last_mut().unwrap();
        sub.status = "expired".into();
        sub.gives_access = false;
        sub.auto_renewal_status = "will_not_renew".into();
    });
    let (status, body) = app.sync_user(&monthly).await;
    assert_eq!(status, 200, "{body}");
    let (_, stored) = app.get_user(&monthly).await;
    let p = &stored["properties"];
    assert_eq!(p["plan"], "pro", "{p}");
    assert_eq!(p["country"], "DE", "{p}");
    assert_eq!(p["rc_status"], "expired", "{p}");
    assert_eq!(p["rc_subscriber"], "false", "{p}");
    assert_eq!(p["rc_will_renew"], "false", "{p}");
    assert!(p.get("rc_entitlements").is_none(), "stale key removed: {p}");

    // Yearly: RevenueCat now knows nothing about any purchase of theirs.
    let first_seen = app.fake.state().customer(&yearly).unwrap().first_seen_at;
    app.fake
        .state()
        .upsert_customer(CustomerRecord::new(yearly.clone(), first_seen));
    let (status, body) = app.sync_user(&yearly).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["properties"], never_paid());
    let (_, stored) = app.get_user(&yearly).await;
    let mut expected = never_paid();
    expected["plan"] = json!("pro");
    expected["country"] = json!("DE");
    assert_eq!(stored["properties"], expected);
}

#[tokio::test]
async fn sync_error_statuses() {
    let app = spawn_app_with_fake(fake_with_dataset(10), |_| {}).await;
    let user = customer_id(0);

    // No integration yet.
    let (status, body) = app.sync_user(&user).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not configured"));

    app.connect_fake().await;
    let (status, body) = app.sync_user(&user).await;
    assert_eq!(status, 200, "{body}");

    // Unknown subscriber.
    let (status, body) = app.sync_user("nobody_here").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "Subscriber not found in RevenueCat");
    let (status, _) = app.get_user("nobody_here").await;
    assert_eq!(status, 404, "nothing written for an unknown subscriber");

    // Anonymous ids (percent-encoded `$` and `:`), known to RevenueCat or not.
    let (_, summary) = app.fake.dataset().unwrap();
    let mut anonymous = vec!["$RCAnonymousID:0123456789abcdef".to_string()];
    anonymous.extend(summary.aliases.iter().map(|(anon, _)| anon.clone()));
    for anon in &anonymous {
        let (status, body) = app.sync_user(anon).await;
        assert_eq!(status, 400, "{anon}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("Anonymous"),
            "{body}"
        );
    }

    // Missing permission.
    let read_only = app
        .create_api_key(
            &app.team_id,
            &[Permission::IntegrationsRead, Permission::UsersRead],
        )
        .await;
    let url = app.project_url(&format!("/integrations/revenuecat/sync/{user}"));
    let (status, body) = status_json(
        app.client
            .post(&url)
            .bearer_auth(&read_only)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "Missing permission: integrations:write");

    // Another team's project looks like a project that does not exist.
    let (_, other_project) = app.create_other_team().await;
    let url = app.url(&format!(
        "/v1/projects/{other_project}/integrations/revenuecat/sync/{user}"
    ));
    let (status, body) = status_json(app.post(&url, &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 404, "{body}");

    // Disabled integration.
    let (status, body) = status_json(
        app.patch(
            &app.project_url("/integrations/revenuecat"),
            &json!({"enabled": false}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.sync_user(&user).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
}

#[tokio::test]
async fn revenuecat_failing_after_retries_is_502_with_its_status() {
    let app = spawn_app_with_fake(fake_with_dataset(10), |_| {}).await;
    app.connect_fake().await;
    app.fake.fail_next(200, 500);
    let started = Instant::now();
    let (status, body) = app.sync_user(&customer_id(0)).await;
    println!("502 after {:?}: {body}", started.elapsed());
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["revenuecat_status"], 500, "{body}");
    assert!(body["revenuecat_message"].is_string(), "{body}");
    let failed = v2_requests(&app.fake)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    assert_eq!(failed, 6, "one try and five retries");
}

#[tokio::test]
async fn a_key_revoked_at_revenuecat_is_502_on_sync() {
    let app = spawn_app_with_fake(fake_with_dataset(10), |_| {}).await;
    app.connect_fake().await;
    let (status, _) = app.sync_user(&customer_id(0)).await;
    assert_eq!(status, 200);
    app.fake.remove_api_key(&app.fake.api_key());
    app.fake.clear_log();
    let (status, body) = app.sync_user(&customer_id(1)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Invalid API key"),
        "{body}"
    );
    assert_eq!(body["revenuecat_status"], 401, "{body}");
    assert!(body["revenuecat_message"].is_string(), "{body}");
    let log = v2_requests(&app.fake);
    assert_eq!(log.len(), 1, "a 401 is not retried: {log:?}");
    assert_eq!(log[0].status, 401);
}

#[tokio::test]
async fn subscriptions_failing_falls_back_to_entitlements_only() {
    let app = dataset_app().await;
    let user = user_of(&app, DatasetCase::Monthly);
    app.fake.fail_next_matching(10_000, 500, "/subscriptions");
    let (status, body) = app.sync_user(&user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partial"], true, "{body}");
    assert_eq!(
        body["properties"],
        json!({"rc_subscriber": "true", "rc_entitlements": "premium"})
    );
    let (_, stored) = app.get_user(&user).await;
    let p = &stored["properties"];
    assert_eq!(p["rc_subscriber"], "true");
    assert_eq!(p["rc_entitlements"], "premium");
    for key in [
        "rc_status",
        "rc_product",
        "rc_will_renew",
        "rc_total_revenue_usd",
    ] {
        assert!(p.get(key).is_none(), "{key} not written: {p}");
    }
}

#[tokio::test]
async fn a_single_user_sync_costs_three_calls_or_two_without_revenue_tracking() {
    let app = dataset_app().await;
    for track_revenue in [true, false] {
        if !track_revenue {
            let (status, body) = status_json(
                app.patch(
                    &app.project_url("/integrations/revenuecat"),
                    &json!({"config": {"track_revenue": "false"}}),
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        // Warm-up: the catalog (entitlements + products) is fetched once and cached.
        let (status, _) = app.sync_user(&user_of(&app, DatasetCase::Yearly)).await;
        assert_eq!(status, 200);
        for case in SUBSCRIBER_CASES {
            let user = user_of(&app, case);
            app.fake.clear_log();
            let (status, body) = app.sync_user(&user).await;
            assert_eq!(status, 200, "{body}");
            let log = v2_requests(&app.fake);
            let paths: Vec<&str> = log.iter().map(|r| r.path_and_query.as_str()).collect();
            println!(
                "calls per sync (track_revenue {track_revenue}): {case:?} ({user}) = {} {paths:?}",
                log.len()
            );
            assert!(log.iter().all(|r| r.status == 200), "{paths:?}");
            let customer = format!("/customers/{user}");
            assert!(paths[0].ends_with(&customer), "{paths:?}");
            assert!(
                paths[1].contains(&format!("{customer}/subscriptions")),
                "{paths:?}"
            );
            let expected = match case {
                // Exact revenue needs every one-time purchase.
                _ if track_revenue => 3,
                // Entitlements no subscription explains: purchases tell lifetime from grant.
                DatasetCase::Lifetime | DatasetCase::Promotional => 3,
                _ => 2,
            };
            assert_eq!(log.len(), expected, "{case:?}: {paths:?}");
            if expected == 3 {
                assert!(
                    paths[2].contains(&format!("{customer}/purchases")),
                    "{paths:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_burst_of_500s_is_retried() {
    let app = dataset_app().await;
    let (status, _) = app.sync_user(&user_of(&app, DatasetCase::Yearly)).await;
    assert_eq!(status, 200);
    app.fake.clear_log();
    app.fake.fail_next(3, 500);
    let user = user_of(&app, DatasetCase::Monthly);
    let (status, body) = app.sync_user(&user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["properties"]["rc_status"], "active");
    let statuses: Vec<u16> = v2_requests(&app.fake).iter().map(|r| r.status).collect();
    println!("500 burst: {statuses:?}");
    assert_eq!(statuses, vec![500, 500, 500, 200, 200, 200], "{statuses:?}");
}

/// Syncs `users` concurrently; returns their statuses and the wall time.
async fn sync_concurrently(app: &TestApp, users: &[String]) -> (Vec<(u16, Value)>, Duration) {
    let started = Instant::now();
    let results = futures::future::join_all(users.iter().map(|u| app.sync_user(u))).await;
    (results, started.elapsed())
}

fn customer_info_accepted(fake: &FakeRevenueCat) -> Vec<LoggedRequest> {
    fake.request_log()
        .into_iter()
        .filter(|r| r.domain == Some(RateLimitDomain::CustomerInformation) && r.status != 429)
        .collect()
}

/// Requests rcsync sent to `domain` that arrived at the fake while a 429 it had already
/// answered still forbade them (before that 429's `Retry-After` elapsed). `in_flight` spares
/// requests that had left rcsync before the 429 reached it.
fn sent_before_retry_after(
    log: &[LoggedRequest],
    domain: RateLimitDomain,
    in_flight: Duration,
) -> Vec<String> {
    let in_domain: Vec<&LoggedRequest> = log.iter().filter(|r| r.domain == Some(domain)).collect();
    let mut violations = Vec::new();
    for rejected in in_domain.iter().filter(|r| r.status == 429) {
        let allowed_at = rejected
            .retry_allowed_at()
            .expect("a 429 announces its wait");
        for early in in_domain
            .iter()
            .filter(|r| r.at > rejected.at + in_flight && r.at < allowed_at)
        {
            violations.push(format!(
                "{} at {} ms, {} ms after a 429 at {} ms that said Retry-After {} s",
                early.path_and_query,
                early.ms_since_start,
                early.ms_since_start - rejected.ms_since_start,
                rejected.ms_since_start,
                rejected.retry_after_secs.unwrap_or_default(),
            ));
        }
    }
    violations
}

/// RevenueCat allowing far less than rcsync's own budget: every user still syncs, and what
/// rcsync controls holds. After a 429 it sends nothing to that domain until the 429's
/// `Retry-After` has elapsed, and it provokes few 429s (one per wait, not one per request).
/// The fake rejecting over its limit is the fake's behaviour and asserts nothing of rcsync.
#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_every_retry_after() {
    let app = spawn_app_with_fake(fake_with_dataset(40), |s| s.rc_rate_limit = 600).await;
    app.connect_fake().await;
    let (status, _) = app.sync_user(&customer_id(0)).await;
    assert_eq!(status, 200);
    const FAKE_LIMIT: u32 = 10;
    app.fake
        .set_rate_limit(RateLimitDomain::CustomerInformation, FAKE_LIMIT);
    app.fake.set_rate_limit_window(Duration::from_secs(2));
    app.fake.reset_rate_limits();
    app.fake.clear_log();

    // 17 syncs × 3 calls (revenue tracked) = 51 requests; rcsync would send 10/s, the fake
    // accepts 10 per 2 s.
    let users: Vec<String> = (1..18).map(customer_id).collect();
    let (results, _) = sync_concurrently(&app, &users).await;
    for (user, (status, body)) in users.iter().zip(&results) {
        assert_eq!(*status, 200, "{user}: {body}");
        assert!(body.get("partial").is_none(), "{user}: {body}");
    }
    let log = app.fake.request_log();
    let accepted = customer_info_accepted(&app.fake).len();
    let rejected = log.iter().filter(|r| r.status == 429).count();
    println!("429 storm: {accepted} accepted customer requests, {rejected} 429s");
    assert!(rejected > 0, "the storm happened");
    let early = sent_before_retry_after(
        &log,
        RateLimitDomain::CustomerInformation,
        Duration::from_millis(100),
    );
    assert!(early.is_empty(), "requests before Retry-After: {early:#?}");
    // Honouring each wait, a 429 comes at most once per fake window's worth of accepted
    // requests (plus the requests in flight when it came); ignoring them, about one per
    // accepted request.
    assert!(
        rejected <= accepted / FAKE_LIMIT as usize + 3,
        "{rejected} 429s for {accepted} accepted requests"
    );
}

/// rcsync's own limiter keeps RevenueCat's budget: no 429 and never more than the limit in
/// any minute, nor more than its pace plus the burst in any 10 s. How fast it goes is a
/// benchmark's business (`make bench`), not asserted here.
#[tokio::test]
async fn our_limiter_never_exceeds_the_configured_rate() {
    const OUR_LIMIT: u32 = 120;
    let app = spawn_app_with_fake(fake_with_dataset(40), |s| s.rc_rate_limit = OUR_LIMIT).await;
    app.connect_fake().await;
    // Warm-up: the catalog is cached, so only Customer Information requests follow.
    let (status, _) = app.sync_user(&customer_id(0)).await;
    assert_eq!(status, 200);
    app.fake.clear_log();
    // 10 syncs × 3 calls (revenue tracked) = 30 requests: past the burst, into the pace.
    let users: Vec<String> = (1..11).map(customer_id).collect();
    let (results, elapsed) = sync_concurrently(&app, &users).await;
    for (user, (status, body)) in users.iter().zip(&results) {
        assert_eq!(*status, 200, "{user}: {body}");
    }
    let stats = app.fake.stats();
    let accepted = customer_info_accepted(&app.fake);
    let max_in = |secs| {
        app.fake.max_accepted_in_window(
            RateLimitDomain::CustomerInformation,
            Duration::from_secs(secs),
        )
    };
    let (max_60, max_5) = (max_in(60), max_in(5));
    println!(
        "limiter pacing: {} syncs in {elapsed:?}, {} customer requests, max in 60 s = {max_60}, max in 5 s = {max_5}, 429s = {}",
        users.len(),
        accepted.len(),
        stats.rate_limited
    );
    assert_eq!(accepted.len(), 30);
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(max_60 <= OUR_LIMIT as usize);
    // 5 s at 2/s, plus the burst allowance and one slot of edge.
    assert!(max_5 <= 10 + 4 + 1, "max in 5 s = {max_5}");
}

#[tokio::test]
async fn creating_with_a_rejected_key_is_400_and_stores_nothing() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.post(
            &app.project_url("/integrations"),
            &json!({"provider": "revenuecat", "config": {"api_key": "sk_not_known"}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("Invalid API key"),
        "RevenueCat's message: {error}"
    );
    assert!(!error.contains("sk_not_known"), "key not echoed: {error}");
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"], json!([]));
    let log = v2_requests(&app.fake);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].path_and_query.starts_with("/v2/projects"), "{log:?}");
    assert_eq!(log[0].status, 401);
}

#[tokio::test]
async fn patching_in_a_rejected_key_is_400_and_keeps_the_old_key() {
    let app = spawn_app_with_fake(fake_with_dataset(10), |_| {}).await;
    app.create_revenuecat_integration("sk_good_key").await;
    let (status, body) = status_json(
        app.patch(
            &app.project_url("/integrations/revenuecat"),
            &json!({"config": {"api_key": "sk_rejected"}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Invalid API key"),
        "{body}"
    );
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"][0]["config"]["api_key"], "sk_g****");
    // And the old key still works.
    let (status, body) = app.sync_user(&customer_id(0)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn concurrent_syncs_fetch_the_catalog_once() {
    let app = spawn_app_with_fake(fake_with_dataset(40), |_| {}).await;
    app.connect_fake().await;
    app.fake.clear_log();
    let users: Vec<String> = (0..10).map(customer_id).collect();
    let (results, elapsed) = sync_concurrently(&app, &users).await;
    for (user, (status, body)) in users.iter().zip(&results) {
        assert_eq!(*status, 200, "{user}: {body}");
    }
    let config_calls: Vec<String> = app
        .fake
        .request_log()
        .into_iter()
        .filter(|r| r.domain == Some(RateLimitDomain::ProjectConfiguration))
        .map(|r| r.path_and_query)
        .collect();
    println!(
        "cold cache: {} syncs in {elapsed:?} made {} Project Configuration calls",
        users.len(),
        config_calls.len()
    );
    // One catalog fetch: entitlements + products.
    assert_eq!(config_calls.len(), 2, "{config_calls:?}");
}
