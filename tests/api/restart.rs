//! The "Done when": a resync requested before a `kill -9` runs exactly once after a
//! restart on the same database. Runs the real `rcsync` binary.

use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::FakeRevenueCat;
use futures::StreamExt;
use rcsync::services::user_resyncs as user_resync;
use rcsync::store::resyncs::ResyncRequest;

use crate::helpers::{fake_with_dataset, wait_until, TestDatabase};
use crate::process::{create_tenant, open_test_store, start_server};

#[tokio::test]
async fn every_webhook_acknowledged_before_kill_9_survives_it() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(5)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;

    // A burst of 400 distinct events; the server is killed -9 once 200 have been answered.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let sends = (0..400).map(|i| {
        let event_id = format!("burst-{i:04}");
        let body = crate::webhooks::event_for(
            "initial_purchase",
            &format!("burst_user_{}", i % 50),
            &event_id,
            1_000 + i,
        );
        let (client, tenant_url, auth, acknowledged) = (
            client.clone(),
            tenant.webhook_url.clone(),
            tenant.webhook_auth.clone(),
            acknowledged.clone(),
        );
        async move {
            let response = client
                .post(tenant_url)
                .header("Authorization", auth)
                .json(&body)
                .send()
                .await;
            if matches!(response, Ok(ref r) if r.status() == 200) {
                acknowledged.lock().unwrap().push(event_id);
            }
        }
    });
    let burst = futures::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    let killer = async {
        while acknowledged.lock().unwrap().len() < 200 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill9();
    };
    futures::future::join(burst, killer).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "{}", acknowledged.len());

    let (_server, _base) = start_server(&db, &fake, 2).await;
    let mut missing = Vec::new();
    for event_id in &acknowledged {
        if store
            .get_webhook_event(&tenant.project_id, event_id)
            .await
            .unwrap()
            .is_none()
        {
            missing.push(event_id.clone());
        }
    }
    let stored: i64 = store
        .count_webhook_events(&tenant.project_id)
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    println!(
        "kill -9 during a burst: {} acknowledged, {stored} stored, {} acknowledged but missing",
        acknowledged.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged events lost: {missing:?}");
    assert!(stored >= acknowledged.len() as i64);
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
