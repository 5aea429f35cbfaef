//! `kill -9` and restart of the real `rcsync` binary: acknowledged webhooks survive it whole,
//! and a resync requested before it runs exactly once after the restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::FakeRevenueCat;
use futures::StreamExt;
use rcsync::domain::event_plan::EventPlan;
use rcsync::services::user_resyncs as user_resync;
use rcsync::services::webhooks;
use rcsync::store::resyncs::ResyncRequest;

use crate::helpers::{fake_with_dataset, wait_until, TestDatabase};
use crate::process::{create_tenant, open_test_store, start_server, ChildGuard, Tenant};

/// Events in the burst, users they spread over, and how many answers the kill waits for.
const BURST: usize = 400;
const BURST_USERS: usize = 50;
const KILL_AFTER_ACKS: usize = 200;
/// The most the burst may take to reach [`KILL_AFTER_ACKS`] answers: a server that stops
/// answering fails the test instead of hanging it.
const ACK_DEADLINE: Duration = Duration::from_secs(120);

struct BurstEvent {
    id: String,
    user: String,
    body: serde_json::Value,
}

fn burst_events() -> Vec<BurstEvent> {
    (0..BURST)
        .map(|i| {
            let id = format!("burst-{i:04}");
            let user = format!("burst_user_{}", i % BURST_USERS);
            let body = crate::webhooks::event_for("initial_purchase", &user, &id, 1_000 + i as i64);
            BurstEvent { id, user, body }
        })
        .collect()
}

/// Sends the burst (32 at a time) and kills the server with SIGKILL once
/// [`KILL_AFTER_ACKS`] events were answered 200; returns the ids answered 200.
async fn burst_then_kill_9(
    server: &mut ChildGuard,
    tenant: &Tenant,
    events: &[BurstEvent],
) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let sends = events.iter().map(|event| {
        let (client, acknowledged) = (client.clone(), acknowledged.clone());
        let request = client
            .post(&tenant.webhook_url)
            .header("Authorization", &tenant.webhook_auth)
            .json(&event.body);
        async move {
            if matches!(request.send().await, Ok(ref r) if r.status() == 200) {
                acknowledged.lock().unwrap().push(event.id.clone());
            }
        }
    });
    let burst = futures::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    // Killed while the rest of the burst is still in flight.
    let kill_at_threshold = async {
        while acknowledged.lock().unwrap().len() < KILL_AFTER_ACKS {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill9();
    };
    // If the burst ends or the deadline passes first, the test fails.
    let reached = tokio::time::timeout(ACK_DEADLINE, async {
        tokio::select! {
            _ = kill_at_threshold => true,
            _ = burst => false,
        }
    })
    .await;
    server.kill9();
    let acknowledged = acknowledged.lock().unwrap().clone();
    match reached {
        Ok(true) => acknowledged,
        Ok(false) => panic!(
            "the burst ended before the kill, with {} of {BURST} events acknowledged",
            acknowledged.len()
        ),
        Err(_) => panic!(
            "only {} of {BURST} events acknowledged within {ACK_DEADLINE:?}",
            acknowledged.len()
        ),
    }
}

/// The "Done when", under group commit: a `kill -9` in the middle of a burst loses
/// none of the events answered 200, and leaves no event half-applied — an event's record and
/// its effect on the user commit together or not at all.
#[tokio::test]
async fn every_webhook_acknowledged_before_kill_9_survives_it() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(5)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project = tenant.project_id.as_str();

    let events = burst_events();
    let acknowledged: BTreeSet<String> = burst_then_kill_9(&mut server, &tenant, &events)
        .await
        .into_iter()
        .collect();

    // What the database holds after the kill, for every event sent.
    let mut stored = BTreeMap::new();
    for event in &events {
        if let Some(row) = store.get_webhook_event(project, &event.id).await.unwrap() {
            stored.insert(event.id.clone(), row);
        }
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    println!(
        "kill -9 during a burst: {} acknowledged, {} stored, {} acknowledged but lost",
        acknowledged.len(),
        stored.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");

    for event in &events {
        let user = store.get_user(project, &event.user).await.unwrap();
        let marker = store.event_marker(project, &event.user).await.unwrap();
        // The user's newest stored event: its effect must be the user's state.
        let newest = events
            .iter()
            .filter(|e| e.user == event.user)
            .filter_map(|e| stored.get(&e.id))
            .max_by_key(|row| row.ordering_marker());
        let Some(newest) = newest else {
            // None of the user's events committed: none of their effects did either.
            assert!(
                user.is_none(),
                "{}: a user row without any stored event",
                event.user
            );
            assert!(!acknowledged.contains(&event.id));
            continue;
        };
        assert_eq!(
            marker.as_ref(),
            Some(&newest.ordering_marker()),
            "{}: the ordering marker is not the newest stored event (an effect without its event, or an event without its effect)",
            event.user
        );
        assert_eq!(newest.status, "applied", "{}: {newest:?}", event.user);
        let user = user.unwrap_or_else(|| panic!("{}: stored events but no user", event.user));
        let patch = applied_patch(&newest.payload);
        for (key, value) in &patch {
            assert_eq!(
                user.properties.get(key).and_then(|v| v.as_str()),
                value.as_deref(),
                "{}: {key} is not what its newest event set",
                event.user
            );
        }
        // Every acknowledged event: recorded with an outcome, for its user, and its effect is
        // there (the user's state is at least as new as the event).
        if acknowledged.contains(&event.id) {
            let row = &stored[&event.id];
            assert!(
                row.status == "applied" || row.status == "superseded",
                "{}: {row:?}",
                event.id
            );
            assert_eq!(row.target_user_id.as_deref(), Some(event.user.as_str()));
            assert!(
                marker.as_ref() >= Some(&row.ordering_marker()),
                "{}",
                event.id
            );
        }
    }

    // After a restart, RevenueCat's retries of everything (acknowledged or not) complete the
    // picture: each event once, every user at its newest event.
    let (_server, base) = start_server(&db, &fake, 2).await;
    let webhook_url = format!("{base}/v1/webhooks/revenuecat/{project}");
    let client = reqwest::Client::new();
    for event in &events {
        let response = client
            .post(&webhook_url)
            .header("Authorization", &tenant.webhook_auth)
            .json(&event.body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", event.id);
    }
    let counts = store.count_webhook_events(project).await.unwrap();
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<i64>(),
        BURST as i64,
        "{counts:?}"
    );
    for user in events.iter().map(|e| &e.user).collect::<BTreeSet<_>>() {
        let newest = events
            .iter()
            .filter(|e| &e.user == user)
            .map(|e| &e.id)
            .max()
            .unwrap();
        let row = store
            .get_webhook_event(project, newest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "applied", "{row:?}");
        assert_eq!(
            store.event_marker(project, user).await.unwrap(),
            Some(row.ordering_marker()),
            "{user}"
        );
    }
}

/// The properties an event's payload sets (`None`: removes), as rcsync maps it.
fn applied_patch(payload: &str) -> rcsync::domain::app_user::PropertyPatch {
    let event = webhooks::parse_event(payload.as_bytes()).expect("stored payload parses");
    match webhooks::plan_event(&event, None) {
        EventPlan::Apply { patch, .. } => patch,
        other => panic!("expected an applicable event: {other:?}"),
    }
}

#[tokio::test]
async fn a_resync_pending_at_kill_9_runs_exactly_once_after_restart() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(20)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;

    // Tenancy and an API key, straight into the shared database.
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project_id = tenant.project_id;

    // Enqueue with a delay, then kill -9 before it can run.
    let user = customer_id(0);
    let request = user_resync::request(
        &store,
        &project_id,
        &user,
        "restart-test",
        Duration::from_secs(3),
    )
    .await
    .expect("enqueue");
    let ResyncRequest::Created { id, .. } = request else {
        panic!("expected a new request: {request:?}");
    };
    server.kill9();
    let row = store.get_user_resync(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "pending", "{row:?}");
    assert_eq!(row.attempts, 0);

    let started = std::time::Instant::now();
    let (_server, _base) = start_server(&db, &fake, 2).await;
    let done = wait_until(
        Duration::from_secs(40),
        "the resync after restart",
        || async {
            let row = store.get_user_resync(&id).await.unwrap().unwrap();
            (row.status == "succeeded").then_some(row)
        },
    )
    .await;
    println!(
        "resync succeeded {:?} after the restart (attempts {})",
        started.elapsed(),
        done.attempts
    );
    assert_eq!(done.attempts, 1, "{done:?}");
    // Let any duplicate task surface before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let suffix = format!("/customers/{user}");
    let fetches: Vec<String> = fake
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(fetches.len(), 1, "the job ran once: {fetches:?}");
    let user_row = store.get_user(&project_id, &user).await.unwrap().unwrap();
    assert_eq!(user_row.properties["rc_status"], "active");
}

/// Issue 18 item 2: `kill -9` while a resync attempt is in flight (its customer fetch held at
/// the fake, so the window is certain). The restarted process takes the dead one's claim over
/// (after `instance_timeout`) and runs the resync to completion exactly once more: one attempt
/// that runs to the end, the row `succeeded` at its second attempt, and nothing after that.
#[tokio::test]
async fn a_resync_in_flight_at_kill_9_runs_to_completion_once_after_restart() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(20)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project_id = tenant.project_id;

    let user = customer_id(3);
    let suffix = format!("/customers/{user}");
    let customer_fetches = || {
        fake.request_log()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
            .count()
    };
    let hold = fake.hold_matching(&suffix);
    let request = user_resync::request(
        &store,
        &project_id,
        &user,
        "restart-in-flight-test",
        Duration::ZERO,
    )
    .await
    .expect("enqueue");
    let ResyncRequest::Created { id, .. } = request else {
        panic!("expected a new request: {request:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .expect("the resync's customer fetch reached the fake");
    // The attempt is in flight: claimed, first attempt, its fetch unanswered.
    let row = store.get_user_resync(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("running", 1),
        "{row:?}"
    );
    assert_eq!(customer_fetches(), 0, "nothing answered yet");
    server.kill9();
    // The fake answers the dead process's request (RevenueCat received it); nobody reads it.
    hold.release();
    let row = store.get_user_resync(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("running", 1),
        "the killed attempt settled nothing: {row:?}"
    );
    assert!(
        store.get_user(&project_id, &user).await.unwrap().is_none(),
        "the killed attempt wrote nothing"
    );
    let before_restart = customer_fetches();
    assert!(before_restart <= 1, "{before_restart}");

    let restarted_at = std::time::Instant::now();
    let (_server, _base) = start_server(&db, &fake, 2).await;
    let done = wait_until(
        Duration::from_secs(60),
        "the in-flight resync to complete after the restart",
        || async {
            let row = store.get_user_resync(&id).await.unwrap().unwrap();
            (row.status != "running" && row.status != "pending").then_some(row)
        },
    )
    .await;
    println!(
        "resync settled {:?} after the restart: {done:?}",
        restarted_at.elapsed()
    );
    assert_eq!(done.status, "succeeded", "{done:?}");
    assert_eq!(
        done.attempts, 2,
        "the killed attempt and one re-run: {done:?}"
    );
    // Two ways bring the killed attempt back: the dispatcher re-pushes the abandoned claim,
    // and apalis re-runs the dead worker's task. Wait until both are through (no task left
    // unfinished in the queue) before counting: the later one must find nothing to do.
    wait_until(
        Duration::from_secs(60),
        "every queue task, the dead worker's included, to finish",
        || async { (unfinished_queue_tasks(&db).await == 0).then_some(()) },
    )
    .await;
    // Only an attempt that lived past its customer fetch asks for the subscriptions, so they
    // count the attempts that ran to the end. The dead process's customer fetch is no such
    // count: the fake logs it when it takes it up after the release, which may be before or
    // after the restart, or never if the fake notices the closed connection first.
    let log: Vec<_> = fake
        .request_log()
        .into_iter()
        .filter(|r| r.path_and_query.contains(&suffix))
        .map(|r| (r.path_and_query, r.status))
        .collect();
    let subscriptions = format!("{suffix}/subscriptions");
    let complete_attempts = log
        .iter()
        .filter(|(path, _)| path.contains(&subscriptions))
        .count();
    assert_eq!(
        complete_attempts, 1,
        "exactly one attempt ran to the end: {log:?}"
    );
    let fetches = customer_fetches();
    assert!(
        (1..=2).contains(&fetches),
        "the killed fetch and one re-run at most: {log:?}"
    );
    let row = store.get_user_resync(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("succeeded", 2),
        "{row:?}"
    );
    let user_row = store.get_user(&project_id, &user).await.unwrap().unwrap();
    assert!(
        user_row.properties.get("rc_status").is_some(),
        "{user_row:?}"
    );
}

/// Tasks in apalis's queue not finished yet (the dead worker's, still `Running`, included).
async fn unfinished_queue_tasks(db: &TestDatabase) -> i64 {
    use sqlx::Connection;
    const UNFINISHED: &str = "status NOT IN ('Done', 'Failed', 'Killed')";
    if db.is_postgres {
        let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let sql = format!("SELECT COUNT(*) FROM apalis.jobs WHERE {UNFINISHED}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    } else {
        let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let sql = format!("SELECT COUNT(*) FROM Jobs WHERE {UNFINISHED}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    }
}
