//! The durable per-user resync job (`revenuecat_user_resync`), run by the app's own workers.

use std::sync::Arc;
use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use rcsync::clock::{Clock, ManualClock};
use rcsync::config::JobTimings;
use rcsync::services::user_resyncs as user_resync;
use rcsync::store::resyncs::{ResyncRequest, UserResync};

use crate::helpers::{
    fake_with_dataset, spawn_app_with_clock_and_timings, spawn_app_with_fake, wait_until, TestApp,
};

async fn app_with_integration() -> TestApp {
    let app = spawn_app_with_fake(fake_with_dataset(20), |_| {}).await;
    app.connect_fake().await;
    app
}

/// [`app_with_integration`] on a manual clock, RevenueCat's client repeating failed requests
/// after a few milliseconds (instead of seconds of real time).
async fn clocked_app_with_integration() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock_and_timings(
        fake_with_dataset(20),
        clock.clone(),
        |timings| {
            timings.rc_first_backoff = Duration::from_millis(1);
            timings.rc_max_backoff = Duration::from_millis(5);
        },
        |_| {},
    )
    .await;
    app.connect_fake().await;
    (app, clock)
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
    let (app, clock) = clocked_app_with_integration().await;
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
    clock.advance(Duration::from_secs(1));
    wait_for_status(&app, &id, "succeeded", Duration::from_secs(10)).await;
    // One row, settled: a duplicate task of it finds nothing to claim, so these counts are
    // final (no need to wait for strays).
    assert_eq!(
        app.customer_fetches(&user),
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
    let (app, clock) = clocked_app_with_integration().await;
    let user = customer_id(2);
    app.fake.fail_next(10_000, 500);
    let request = enqueue(&app, &user, Duration::ZERO).await;
    let id = id_of(&request);
    // The first attempt exhausts the client's retries (milliseconds here), then the row waits.
    let retrying = wait_until(Duration::from_secs(10), "a rescheduled attempt", || async {
        let r = row(&app, &id).await;
        (r.status == "pending" && r.attempts == 1).then_some(r)
    })
    .await;
    let error = retrying.last_error.clone().expect("last_error recorded");
    assert!(error.contains("RevenueCat"), "{error}");
    // The clock has not moved since the attempt: the wait is exactly the retry delay, the
    // first one (10 s) ±20 % jitter.
    let wait_ms = retrying.run_after - clock.now_ms();
    let first = rcsync::clock::ms(JobTimings::default().first_retry);
    assert!(
        (first * 4 / 5..=first * 6 / 5).contains(&wait_ms),
        "retry {first} ms ±20 % later: {wait_ms} ms"
    );

    app.fake.clear_faults();
    clock.advance(Duration::from_millis(u64::try_from(wait_ms).unwrap()));
    let done = wait_for_status(&app, &id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(done.attempts, 2);
    let (_, stored) = app.get_user(&user).await;
    assert_eq!(stored["properties"]["rc_status"], "trialing", "{stored}");
}
