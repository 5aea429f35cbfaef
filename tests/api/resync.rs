//! The full-project resync (`revenuecat_sync` job runs): seed 001's trigger, DESIGN's jobs API,
//! exactness against single-user sync, the call floor, cancel, failures and the drift report.

use std::collections::BTreeMap;
use std::time::Duration;

use fake_revenuecat::{DatasetSpec, FakeConfig};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_fake, status_json, wait_until, TestApp};

/// A generated dataset behind a fake with a roomy budget (tests are about behaviour; pacing at
/// RevenueCat's real 480/min is measured by `make bench`).
pub fn dataset(customers: usize, subscriber_share: f64) -> FakeConfig {
    FakeConfig {
        dataset: Some(DatasetSpec {
            customers,
            subscriber_share,
            seed: 11,
            anonymous_aliases: 0,
        }),
        customer_rate_limit_per_min: FAST_RATE,
        ..FakeConfig::default()
    }
}

pub const FAST_RATE: u32 = 30_000;

/// An app pacing itself at [`FAST_RATE`] against `fake`.
pub async fn fast_app(fake: FakeConfig) -> TestApp {
    let app = spawn_app_with_fake(fake, |raw| raw.rc_rate_limit = FAST_RATE).await;
    app.connect_fake().await;
    app
}

pub fn customer_id(index: usize) -> String {
    format!("user_{:06}", index + 1)
}

/// Registers users with the platform (the ids the project knows).
pub async fn add_users(app: &TestApp, ids: &[String]) {
    for chunk in ids.chunks(1000) {
        let users: Vec<Value> = chunk.iter().map(|id| json!({"user_id": id})).collect();
        let response = app
            .post(&app.project_url("/users"), &json!({ "users": users }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

pub async fn trigger(app: &TestApp, query: &str) -> (u16, Value) {
    let url = app.project_url(&format!("/integrations/revenuecat/sync{query}"));
    status_json(app.post(&url, &json!({})).send().await.unwrap()).await
}

pub fn job_url(app: &TestApp, run_id: &str) -> String {
    app.url(&format!("/v1/teams/{}/jobs/{run_id}", app.team_id))
}

pub async fn get_job(app: &TestApp, run_id: &str) -> Value {
    let (status, body) = status_json(app.get(&job_url(app, run_id)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the run until it has ended.
pub async fn wait_for_end(app: &TestApp, run_id: &str, timeout: Duration) -> Value {
    wait_until(timeout, "the job run to end", || async {
        let job = get_job(app, run_id).await;
        matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
        .then_some(job)
    })
    .await
}

async fn properties(app: &TestApp, user_id: &str) -> Value {
    let (status, body) = app.get_user(user_id).await;
    assert_eq!(status, 200, "{body}");
    body["properties"].clone()
}

/// Every identified user ends with exactly the properties a single-user sync gives them, the
/// counters add up, and the run spends no call beyond the floor.
#[tokio::test]
async fn a_full_resync_equals_single_user_syncs_for_every_user() {
    let app = fast_app(dataset(60, 0.6)).await;
    let mut ids: Vec<String> = (0..60).map(customer_id).collect();
    ids.extend([
        "not_in_revenuecat_1".to_owned(),
        "not_in_revenuecat_2".to_owned(),
    ]);
    add_users(&app, &ids).await;
    // Anonymous users are not synced (nor counted in `total`).
    add_users(
        &app,
        &["$RCAnonymousID:0000000000000000000000000000abcd".to_owned()],
    )
    .await;

    let (status, body) = trigger(&app, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["syncing"], true);
    assert_eq!(body["total"], 62);
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["total"], 62);
    assert_eq!(result["synced"], 60);
    assert_eq!(result["not_found"], 2);
    assert_eq!(result["errors"], 0);
    assert_eq!(
        result["active"].as_i64().unwrap() + result["inactive"].as_i64().unwrap(),
        60
    );
    assert_eq!(result["strategy"], "lookup");
    assert!(
        result["calls_per_user"].as_f64().unwrap()
            <= result["floor_calls_per_user"].as_f64().unwrap(),
        "{result}"
    );
    assert_eq!(job["progress"]["processed"], 62);
    assert_eq!(job["progress"]["total"], 62);

    let after_run: BTreeMap<String, Value> = {
        let mut map = BTreeMap::new();
        for id in &ids {
            map.insert(id.clone(), properties(&app, id).await);
        }
        map
    };
    for id in &ids {
        let (status, _) = app.sync_user(id).await;
        let expected = if id.starts_with("not_in") { 404 } else { 200 };
        assert_eq!(status, expected, "{id}");
        assert_eq!(properties(&app, id).await, after_run[id], "{id}");
    }
}
