//! API requests that wait on RevenueCat: a deadline (then 504), no reservations left behind by
//! requests that gave up, and one paced budget for checking keys, so made-up keys neither
//! reach RevenueCat unpaced nor grow rcsync's state.

use std::time::{Duration, Instant};

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::RateLimitDomain;
use rand::distributions::{Alphanumeric, DistString};
use rcsync::revenuecat::RateLimits;
use serde_json::{json, Value};

use crate::helpers::{
    fake_with_dataset, spawn_app_with, spawn_app_with_fake, status_json, wait_until, TestApp,
};

/// A client that gives up after 20 s, so a missing deadline fails the test instead of hanging it.
fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn patch_key(app: &TestApp, client: &reqwest::Client, api_key: &str) -> (u16, Value) {
    let response = client
        .patch(app.project_url("/integrations/revenuecat"))
        .bearer_auth(&app.api_key)
        .json(&json!({"config": {"api_key": api_key}}))
        .send()
        .await
        .expect("an answer within 20 s");
    status_json(response).await
}

fn random_key() -> String {
    format!(
        "sk_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 30)
    )
}

#[tokio::test]
async fn a_sync_answers_504_when_revenuecat_hangs_past_the_deadline() {
    let app = spawn_app_with_fake(fake_with_dataset(5), |s| s.rc_deadline_secs = 1).await;
    app.connect_fake().await;
    app.fake.set_latency(Duration::from_secs(60));
    let url = app.project_url(&format!("/integrations/revenuecat/sync/{}", customer_id(0)));
    let started = Instant::now();
    let response = impatient_client()
        .post(url)
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("an answer within 20 s");
    let elapsed = started.elapsed();
    let (status, body) = status_json(response).await;
    println!("504 after {elapsed:?}: {body}");
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        body["error"],
        "RevenueCat did not answer within 1 s; try again later"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn key_checks_answer_504_while_revenuecat_rate_limits_them() {
    let app = spawn_app_with(|s| s.rc_deadline_secs = 1).await;
    app.create_revenuecat_integration("sk_first_key").await;
    app.fake.add_api_key("sk_second_key");
    // Every configuration request is refused with `Retry-After: 600`.
    app.fake
        .set_rate_limit(RateLimitDomain::ProjectConfiguration, 0);
    app.fake.set_rate_limit_window(Duration::from_secs(600));
    let client = impatient_client();

    let started = Instant::now();
    let (status, body) = patch_key(&app, &client, "sk_second_key").await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        list["integrations"][0]["config"]["api_key"], "sk_f****",
        "old key kept"
    );

    let deleted = app.delete(&app.project_url("/integrations/revenuecat"));
    assert_eq!(deleted.send().await.unwrap().status(), 200);
    let started = Instant::now();
    let response = client
        .post(app.project_url("/integrations"))
        .bearer_auth(&app.api_key)
        .json(&json!({"provider": "revenuecat", "config": {"api_key": "sk_second_key"}}))
        .send()
        .await
        .expect("an answer within 20 s");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"], json!([]), "nothing stored");
}

#[tokio::test]
async fn syncs_that_gave_up_do_not_delay_the_next_one() {
    // One Customer Information request every 250 ms (burst 4); syncs give up after 2 s.
    let app = spawn_app_with_fake(fake_with_dataset(40), |s| {
        s.rc_deadline_secs = 2;
        s.rc_rate_limit = 240;
    })
    .await;
    app.connect_fake().await;
    // Provisioning the webhook spent the key's Project Configuration budget (60/min) that the
    // catalog needs too, so the first sync may give up before its turn: sync until cached.
    wait_until(Duration::from_secs(20), "catalog cached", || async {
        (app.sync_user(&customer_id(0)).await.0 == 200).then_some(())
    })
    .await;

    // 30 syncs need about 65 requests, 15 s of pacing: most give up at their deadline.
    let app = &app;
    let burst = futures::future::join_all((1..31).map(|i| async move {
        let user = customer_id(i);
        app.sync_user(&user).await.0
    }))
    .await;
    let gave_up = burst.iter().filter(|status| **status == 504).count();
    println!("burst of 30 syncs: {burst:?}");
    assert!(gave_up >= 5, "{burst:?}");
    assert!(burst.iter().all(|s| *s == 200 || *s == 504), "{burst:?}");

    // Had the abandoned syncs kept their pacer slots, this one would wait seconds for them.
    let (status, body) = app.sync_user(&customer_id(35)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn made_up_keys_pass_one_paced_budget_and_leave_no_state_behind() {
    // One key check a minute after the burst allowance; PATCHes give up after 1 s.
    let app = spawn_app_with(|s| {
        s.rc_deadline_secs = 1;
        s.rc_key_check_rate_limit = 1;
    })
    .await;
    app.connect_fake().await;
    app.fake.clear_log();
    // Connecting spent one check of the burst.
    let checks_left = RateLimits::REVENUECAT.key_checks.burst as usize - 1;
    let client = impatient_client();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (status, body) = patch_key(&app, &client, &random_key()).await;
        assert!(body["error"].is_string(), "{body}");
        statuses.push(status);
    }
    println!("10 PATCHes with made-up keys: {statuses:?}");
    let mut expected = vec![400; checks_left];
    expected.resize(10, 504);
    assert_eq!(
        statuses, expected,
        "the burst reaches RevenueCat, the rest waits"
    );
    let log = app.fake.request_log();
    assert_eq!(log.len(), checks_left, "{log:?}");
    assert!(
        log.iter()
            .all(|r| r.status == 401 && r.path_and_query.starts_with("/v2/projects")),
        "{log:?}"
    );

    // Only the connected key is remembered: rejected keys leave no cache entry, and pacers
    // exist only for keys that reached RevenueCat.
    assert_eq!(app.services.sync.cache_sizes().await.key_projects, 1);
    let pacers = app.services.sync.client().rate_limiter().pacer_count();
    assert!(pacers <= 1 + checks_left, "{pacers} pacers");
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        list["integrations"][0]["config"]["api_key"], "sk_t****",
        "key unchanged"
    );
}
