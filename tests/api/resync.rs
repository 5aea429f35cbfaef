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

#[tokio::test]
async fn without_an_integration_the_trigger_is_404_and_without_users_it_is_the_seeds_zero() {
    let app = spawn_app_with_fake(dataset(5, 1.0), |_| {}).await;
    let (status, body) = trigger(&app, "").await;
    assert_eq!(status, 404, "{body}");
    app.connect_fake().await;
    let (status, body) = trigger(&app, "").await;
    assert_eq!((status, body), (200, json!({"synced": 0, "total": 0})));
    // Anonymous users alone do not count either.
    add_users(
        &app,
        &["$RCAnonymousID:00000000000000000000000000000001".to_owned()],
    )
    .await;
    assert_eq!(trigger(&app, "").await.1, json!({"synced": 0, "total": 0}));
    // A disabled integration is the same 404 as none.
    add_users(&app, &[customer_id(0)]).await;
    let url = app.project_url("/integrations/revenuecat");
    let response = app
        .patch(&url, &json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(trigger(&app, "").await.0, 404);
    // Bad query parameters are refused before anything starts.
    assert_eq!(trigger(&app, "?import_missing=maybe").await.0, 400);
    assert_eq!(trigger(&app, "?nope=1").await.0, 400);
}

/// The database decides: of 20 concurrent triggers exactly one starts a run; the others
/// answer 409 naming it. Once it has ended, a new trigger starts a new run.
#[tokio::test]
async fn twenty_concurrent_triggers_make_exactly_one_run() {
    let app = fast_app(dataset(10, 1.0)).await;
    add_users(&app, &(0..10).map(customer_id).collect::<Vec<_>>()).await;
    let answers = futures::future::join_all((0..20).map(|_| trigger(&app, ""))).await;
    let started: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(started.len(), 1, "{answers:?}");
    let run_id = started[0]["job_run_id"].as_str().unwrap();
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["existing_run_id"], run_id);
        assert!(body["error"].as_str().unwrap().contains("already"));
    }
    let job = wait_for_end(&app, run_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let (status, again) = trigger(&app, "").await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["job_run_id"], run_id);
}

/// What webhooks (or anything else) left wrong is corrected and reported per property, with
/// sample ids; properties that are not `rc_*` are never touched.
#[tokio::test]
async fn the_drift_report_names_what_the_run_corrected() {
    let app = fast_app(dataset(12, 1.0)).await;
    let ids: Vec<String> = (0..12).map(customer_id).collect();
    add_users(&app, &ids).await;
    // A first run brings every user to RevenueCat's state: the baseline.
    let (_, body) = trigger(&app, "").await;
    let first = wait_for_end(
        &app,
        body["job_run_id"].as_str().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(first["status"], "completed", "{first}");
    // Then two users drift: a stale status and a product written by someone else.
    let drifted = json!({"users": [
        {"user_id": ids[3], "properties": {"rc_status": "stale", "plan": "pro"}},
        {"user_id": ids[7], "properties": {"rc_product": "wrong_product", "rc_status": "stale"}},
    ]});
    let response = app
        .post(&app.project_url("/users"), &drifted)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (_, body) = trigger(&app, "").await;
    let second = wait_for_end(
        &app,
        body["job_run_id"].as_str().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    let drift = &second["result"]["drift"];
    assert_eq!(drift["rc_status"]["changed"], 2, "{drift}");
    let mut samples: Vec<&str> = drift["rc_status"]["sample_user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    samples.sort();
    assert_eq!(samples, [ids[3].as_str(), ids[7].as_str()]);
    let product_changed = drift["rc_product"]["changed"].as_i64().unwrap();
    assert_eq!(product_changed, 1, "{drift}");
    let keys: Vec<&String> = drift.as_object().unwrap().keys().collect();
    assert!(keys.iter().all(|k| k.starts_with("rc_")), "{keys:?}");
    assert_eq!(properties(&app, &ids[3]).await["plan"], "pro");
    assert_ne!(properties(&app, &ids[3]).await["rc_status"], "stale");
}

/// Customers RevenueCat knows and the project does not are imported only when asked; listing
/// follows RevenueCat's `next_page` across pages.
#[tokio::test]
async fn import_missing_pages_the_customer_list_and_imports_unknown_customers() {
    let mut fake = dataset(30, 0.5);
    fake.page_cap = Some(7);
    let app = fast_app(fake).await;
    add_users(&app, &(0..10).map(customer_id).collect::<Vec<_>>()).await;

    let (_, body) = trigger(&app, "").await;
    let plain = wait_for_end(
        &app,
        body["job_run_id"].as_str().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(plain["result"]["total"], 10);
    assert!(
        plain["result"]["api_calls_by_endpoint"]
            .get("customers")
            .is_none(),
        "no list paging"
    );
    assert_eq!(app.get_user(&customer_id(20)).await.0, 404);

    let (_, body) = trigger(&app, "?import_missing=true").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["strategy"], "lookup_then_list");
    assert_eq!(result["missing_in_project"], 20, "{result}");
    assert_eq!(result["imported"], 20);
    assert_eq!(result["total"], 30);
    assert_eq!(result["synced"], 30);
    // 30 customers at 7 per page: 5 pages, each asked for verbatim.
    assert_eq!(result["api_calls_by_endpoint"]["customers"], 5, "{result}");
    assert_eq!(job["params"], json!({"import_missing": true}));
    let (status, imported) = app.get_user(&customer_id(20)).await;
    assert_eq!(status, 200);
    assert!(
        imported["properties"].get("rc_status").is_some(),
        "{imported}"
    );
}

/// A run paced at `per_minute` against a roomy fake, so it is still running while the test
/// acts on it.
async fn paced_app(customers: usize, per_minute: u32) -> (TestApp, Vec<String>) {
    let app = spawn_app_with_fake(dataset(customers, 1.0), |raw| {
        raw.rc_rate_limit = per_minute
    })
    .await;
    app.connect_fake().await;
    let ids: Vec<String> = (0..customers).map(customer_id).collect();
    add_users(&app, &ids).await;
    (app, ids)
}

async fn wait_for_progress(app: &TestApp, run_id: &str, processed: i64) {
    wait_until(
        Duration::from_secs(30),
        "the run to make progress",
        || async {
            let job = get_job(app, run_id).await;
            (job["progress"]["processed"].as_i64().unwrap_or(0) >= processed).then_some(())
        },
    )
    .await;
}

async fn cancel(app: &TestApp, run_id: &str) -> (u16, Value) {
    let url = format!("{}/cancel", job_url(app, run_id));
    status_json(app.post(&url, &json!({})).send().await.unwrap()).await
}

/// Paths of the fake's log from `from` on.
fn paths_since(app: &TestApp, from: usize) -> Vec<String> {
    app.fake.request_log()[from..]
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect()
}

/// Cancel stops a running resync with its partial result, and its queued RevenueCat requests
/// with it: after the run reports `cancelled`, the next request through the same pacer is the
/// only one the fake sees.
#[tokio::test]
async fn cancel_stops_a_running_resync_and_its_revenuecat_calls() {
    let (app, ids) = paced_app(80, 600).await;
    let (_, body) = trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    wait_for_progress(&app, &run_id, 3).await;
    let (status, body) = cancel(&app, &run_id).await;
    assert_eq!(status, 200, "{body}");
    let job = wait_for_end(&app, &run_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    let result = &job["result"];
    let synced = result["synced"].as_i64().unwrap();
    assert!((3..80).contains(&synced), "{result}");
    assert_eq!(
        result["synced"].as_i64().unwrap()
            + result["not_found"].as_i64().unwrap()
            + result["errors"].as_i64().unwrap(),
        job["progress"]["processed"].as_i64().unwrap()
    );

    let seen = app.fake.request_log().len();
    let marker = &ids[79];
    assert_eq!(app.sync_user(marker).await.0, 200);
    let after: Vec<String> = paths_since(&app, seen);
    assert!(
        after.iter().all(|path| path.contains(marker.as_str())),
        "requests after the cancel: {after:?}"
    );
    // Only pending or running runs can be cancelled.
    let (status, body) = cancel(&app, &run_id).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
}

/// RevenueCat rejecting the key mid-run fails the run with RevenueCat's reason; the users
/// synced before stay synced and are counted.
#[tokio::test]
async fn a_key_rejected_mid_run_fails_the_run_with_revenuecats_message() {
    let (app, _) = paced_app(60, 1200).await;
    let (_, body) = trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    wait_for_progress(&app, &run_id, 2).await;
    app.fake.remove_api_key(&app.fake.api_key());
    let job = wait_for_end(&app, &run_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("RevenueCat rejected the API key"), "{error}");
    assert!(
        error.contains("Invalid API key"),
        "RevenueCat's own words: {error}"
    );
    assert!(job["result"]["synced"].as_i64().unwrap() >= 2, "{job}");
}

/// A webhook event applied to a user while the run was asking RevenueCat about them is never
/// overwritten by that (older) answer: the run's write is refused and the user fetched again;
/// the user's ordering marker stays the event's.
#[tokio::test]
async fn a_webhook_landing_mid_run_is_not_overwritten_by_the_older_fetch() {
    let app = spawn_app_with_fake(dataset(10, 1.0), |raw| raw.rc_rate_limit = FAST_RATE).await;
    let (app, header) = crate::webhooks::with_webhook(app).await;
    let ids: Vec<String> = (0..10).map(customer_id).collect();
    add_users(&app, &ids).await;
    let target = ids[4].clone();
    let hold = app.fake.hold_matching(&format!("/customers/{target}"));
    let (_, body) = trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    hold.arrived().await;

    let now = chrono::Utc::now().timestamp_millis();
    let event = crate::webhooks::event_for("cancellation", &target, "evt-mid-run", now);
    assert_eq!(crate::webhooks::deliver(&app, &header, &event).await.0, 200);
    hold.release();

    let job = wait_for_end(&app, &run_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["synced"], 10, "{job}");
    assert_eq!(job["result"]["errors"], 0, "{job}");
    let customer_fetches = app
        .fake
        .request_log()
        .iter()
        .filter(|r| r.path_and_query.ends_with(&format!("/customers/{target}")))
        .count();
    assert_eq!(customer_fetches, 2, "fetched again after the refused write");
    let marker = app
        .store
        .event_marker(&app.project_id, &target)
        .await
        .unwrap()
        .expect("the event's marker");
    assert_eq!(
        (marker.timestamp_ms, marker.event_id.as_str()),
        (now, "evt-mid-run")
    );
}

/// An admin's single-user sync is not queued behind a full resync: between its first and last
/// request, the fake serves at most one bulk request per request of the sync.
#[tokio::test]
async fn a_single_user_sync_keeps_its_turn_during_a_full_resync() {
    let (app, ids) = paced_app(60, 120).await;
    let (_, body) = trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    wait_for_progress(&app, &run_id, 1).await;
    let target = &ids[59];
    let seen = app.fake.request_log().len();
    assert_eq!(app.sync_user(target).await.0, 200);
    let after = paths_since(&app, seen);
    let first = after
        .iter()
        .position(|p| p.contains(target.as_str()))
        .unwrap();
    let last = after
        .iter()
        .rposition(|p| p.contains(target.as_str()))
        .unwrap();
    let own = after[first..=last]
        .iter()
        .filter(|p| p.contains(target.as_str()))
        .count();
    let bulk_between = (last + 1 - first) - own;
    assert!(
        bulk_between <= own,
        "{bulk_between} bulk requests went between the sync's {own}: {after:?}"
    );
    assert_eq!(cancel(&app, &run_id).await.0, 200);
}

/// RevenueCat answering 429 to much of a run (its budget far below ours) slows the run down
/// but fails no user: the run completes, every user exact, and the 429s are counted.
#[tokio::test]
async fn a_429_storm_completes_with_every_user_right_and_429s_counted() {
    let mut fake = dataset(40, 1.0);
    fake.customer_rate_limit_per_min = 40;
    fake.rate_limit_window = Duration::from_secs(1);
    let app = fast_app(fake).await;
    let ids: Vec<String> = (0..40).map(customer_id).collect();
    add_users(&app, &ids).await;
    let (_, body) = trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(
        (result["synced"].as_i64(), result["errors"].as_i64()),
        (Some(40), Some(0)),
        "{result}"
    );
    let answered_429 = app.fake.stats().rate_limited as i64;
    assert!(answered_429 > 0, "the storm happened");
    assert_eq!(
        result["rate_limited"].as_i64(),
        Some(answered_429),
        "{result}"
    );

    app.fake.reset_rate_limits();
    app.fake.set_rate_limit(
        fake_revenuecat::RateLimitDomain::CustomerInformation,
        FAST_RATE,
    );
    for id in &ids {
        let after_run = properties(&app, id).await;
        assert_eq!(app.sync_user(id).await.0, 200);
        assert_eq!(properties(&app, id).await, after_run, "{id}");
    }
}

/// A process runs at most `RCSYNC_MAX_RESYNC_RUNS` full resyncs at once (job slots stay free
/// for webhook follow-ups); another project's run waits, pending, and starts once one ends.
#[tokio::test]
async fn a_process_runs_at_most_its_share_of_full_resyncs_at_once() {
    let app = spawn_app_with_fake(dataset(10, 1.0), |raw| {
        raw.rc_rate_limit = FAST_RATE;
        raw.max_resync_runs = 1;
    })
    .await;
    app.connect_fake().await;
    let second = uuid::Uuid::new_v4().to_string();
    app.store
        .create_project(&second, &app.team_id, "Second project")
        .await
        .unwrap();
    let response = app
        .post(
            &app.url(&format!("/v1/projects/{second}/integrations")),
            &json!({"provider": "revenuecat", "config": {"api_key": app.fake.api_key()}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let ids: Vec<String> = (0..10).map(customer_id).collect();
    add_users(&app, &ids).await;
    let users: Vec<Value> = ids.iter().map(|id| json!({"user_id": id})).collect();
    let response = app
        .post(
            &app.url(&format!("/v1/projects/{second}/users")),
            &json!({ "users": users }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let hold = app.fake.hold_matching(&format!("/customers/{}", ids[9]));
    let (_, first) = trigger(&app, "").await;
    let first = first["job_run_id"].as_str().unwrap().to_owned();
    hold.arrived().await;
    let url = app.url(&format!(
        "/v1/projects/{second}/integrations/revenuecat/sync"
    ));
    let (_, other) = status_json(app.post(&url, &json!({})).send().await.unwrap()).await;
    let other = other["job_run_id"].as_str().unwrap().to_owned();
    // While the first holds the process's only slot, the second is offered, declined, and
    // waits; it runs once the first has ended.
    assert_eq!(get_job(&app, &first).await["status"], "running");
    hold.release();
    let first_job = wait_for_end(&app, &first, Duration::from_secs(30)).await;
    let other_job = wait_for_end(&app, &other, Duration::from_secs(30)).await;
    assert_eq!(
        (first_job["status"].as_str(), other_job["status"].as_str()),
        (Some("completed"), Some("completed"))
    );
    let first_done = first_job["completed_at"].as_str().unwrap().to_owned();
    let other_started = other_job["started_at"].as_str().unwrap().to_owned();
    assert!(
        other_started >= first_done,
        "{other_started} < {first_done}: ran at the same time"
    );
}
