//! The durable per-user resync job (`revenuecat_user_resync`), run by the app's own workers.

use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use rcsync::services::user_resyncs as user_resync;
use rcsync::store::resyncs::{ResyncRequest, UserResync};

use crate::helpers::{fake_with_dataset, spawn_app_with_fake, wait_until, TestApp};

async fn app_with_integration() -> TestApp {
    let app = spawn_app_with_fake(fake_with_dataset(20), |_| {}).await;
    app.connect_fake().await;
    app
}

async fn enqueue(app: &TestApp, user_id: &str, delay: Duration) -> ResyncRequest {
    user_resync::request(&app.store, &app.project_id, user_id, "test", delay)
        .await
        .expect("enqueue")
}

fn id_of(request: &ResyncRequest) -> String {
    match request {
        ResyncRequest::Created { id, .. } | ResyncRequest::AlreadyPending { id } => id.clone(),
    }
}

async fn row(app: &TestApp, id: &str) -> UserResync {
    app.store
        .get_user_resync(id)
        .await
        .unwrap()
        .expect("resync row")
}

/// Waits until the row reaches `status`.
async fn wait_for_status(app: &TestApp, id: &str, status: &str, timeout: Duration) -> UserResync {
    wait_until(timeout, &format!("resync {id} to be {status}"), || async {
        let r = row(app, id).await;
        (r.status == status).then_some(r)
    })
    .await
}

/// Requests for `GET …/customers/<user>` itself (not its sub-resources).
fn customer_fetches(app: &TestApp, user_id: &str) -> usize {
    let suffix = format!("/customers/{user_id}");
    app.fake
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
        .count()
}

#[tokio::test]
async fn an_enqueued_resync_runs_and_writes_the_properties() {
    let app = app_with_integration().await;
    let user = customer_id(0); // Monthly
    let request = enqueue(&app, &user, Duration::ZERO).await;
    assert!(
        matches!(request, ResyncRequest::Created { .. }),
        "{request:?}"
    );
    let done = wait_for_status(&app, &id_of(&request), "succeeded", Duration::from_secs(10)).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(done.last_error, None);
    let (status, stored) = app.get_user(&user).await;
    assert_eq!(status, 200, "{stored}");
    let p = &stored["properties"];
    assert_eq!(p["rc_subscriber"], "true", "{p}");
    assert_eq!(p["rc_status"], "active", "{p}");
    assert_eq!(p["rc_product"], "premium_monthly", "{p}");
    assert_eq!(p["rc_entitlements"], "premium", "{p}");
}

#[tokio::test]
async fn concurrent_requests_for_one_user_are_deduplicated() {
    let app = app_with_integration().await;
    let user = customer_id(1);
    let requests = (0..20).map(|_| enqueue(&app, &user, Duration::from_secs(1)));
    let results = futures::future::join_all(requests).await;
    let created: Vec<&ResyncRequest> = results
        .iter()
        .filter(|r| matches!(r, ResyncRequest::Created { .. }))
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let id = id_of(created[0]);
    assert!(
        results.iter().all(|r| id_of(r) == id),
        "all joined the same row: {results:?}"
    );
    wait_for_status(&app, &id, "succeeded", Duration::from_secs(10)).await;
    // Give any stray duplicate task a chance to run before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        customer_fetches(&app, &user),
        1,
        "{:?}",
        app.fake.request_log()
    );
    assert_eq!(row(&app, &id).await.attempts, 1);
}

#[tokio::test]
async fn an_unknown_subscriber_is_skipped() {
    let app = app_with_integration().await;
    let request = enqueue(&app, "not_in_revenuecat", Duration::ZERO).await;
    let done = wait_for_status(&app, &id_of(&request), "skipped", Duration::from_secs(10)).await;
    assert_eq!(
        done.last_error.as_deref(),
        Some("Subscriber not found in RevenueCat")
    );
    let (status, _) = app.get_user("not_in_revenuecat").await;
    assert_eq!(status, 404, "nothing written");
}

#[tokio::test]
async fn revenuecat_down_reschedules_with_backoff_then_succeeds() {
    let app = app_with_integration().await;
    let user = customer_id(2);
    app.fake.fail_next(10_000, 500);
    let request = enqueue(&app, &user, Duration::ZERO).await;
    let id = id_of(&request);
    // The first attempt exhausts the client's retries (~10–16 s), then the row waits.
    let retrying = wait_until(Duration::from_secs(30), "a rescheduled attempt", || async {
        let r = row(&app, &id).await;
        (r.status == "pending" && r.attempts == 1).then_some(r)
    })
    .await;
    let error = retrying.last_error.clone().expect("last_error recorded");
    assert!(error.contains("RevenueCat"), "{error}");
    let wait_ms = retrying.run_after - rcsync::timestamp::now_ms();
    println!("rescheduled: run_after in {wait_ms} ms, last_error = {error}");
    assert!(
        (5_000..=12_500).contains(&wait_ms),
        "retry ~10 s later: {wait_ms} ms"
    );

    app.fake.clear_faults();
    let done = wait_for_status(&app, &id, "succeeded", Duration::from_secs(25)).await;
    assert_eq!(done.attempts, 2);
    let (_, stored) = app.get_user(&user).await;
    assert_eq!(stored["properties"]["rc_status"], "trialing", "{stored}");
}
