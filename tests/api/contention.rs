//! Contention is not a fault: concurrent batches over the same users never deadlock, and a
//! database that stays contended answers 503 with `Retry-After` (RevenueCat retries a webhook
//! that gets one) instead of an opaque 500.

use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{spawn_app, status_json, TestApp};

fn batch(ids: impl Iterator<Item = usize>, value: &str) -> Value {
    let users: Vec<Value> = ids
        .map(|i| json!({"user_id": format!("user_{i:04}"), "properties": {"plan": value}}))
        .collect();
    json!({ "users": users })
}

async fn upsert(app: &TestApp, body: &Value) -> (u16, Value) {
    status_json(
        app.post(&app.project_url("/users"), body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Two batches naming the same users in opposite orders, sent at the same moment, many
/// times. Written in request order, each would lock rows the other holds and PostgreSQL would
/// abort one as a deadlock; rcsync writes every batch in user-id order.
#[tokio::test]
async fn concurrent_batches_with_the_same_users_in_opposite_order_never_fail() {
    let app = spawn_app().await;
    const USERS: usize = 300;
    for round in 0..10 {
        let forward = batch(0..USERS, &format!("forward_{round}"));
        let backward = batch((0..USERS).rev(), &format!("backward_{round}"));
        let (a, b) = tokio::join!(upsert(&app, &forward), upsert(&app, &backward));
        assert_eq!(a.0, 200, "round {round}: {}", a.1);
        assert_eq!(b.0, 200, "round {round}: {}", b.1);
    }
    // Each batch is all-or-nothing: every user holds the value of the same (last) batch.
    let listed = status_json(
        app.get(&app.project_url("/users?limit=200"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    let plans: std::collections::BTreeSet<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["properties"]["plan"].as_str().unwrap())
        .collect();
    assert_eq!(plans.len(), 1, "batches interleaved: {plans:?}");
}

/// A session outside rcsync holds a lock on the users table (a manual `LOCK`, a long
/// migration): a write that waits past the lock timeout is retried once, then answers 503
/// with `Retry-After`, and the data is untouched. PostgreSQL only: SQLite queues writers on
/// its single writer connection instead (its busy mapping is a unit test in `store::error`).
#[tokio::test]
async fn a_lock_held_elsewhere_answers_503_with_retry_after_not_500() {
    let app = spawn_app().await;
    if !app.db.is_postgres {
        return;
    }
    let (status, _) = upsert(&app, &batch(0..3, "before")).await;
    assert_eq!(status, 200);

    let mut outsider = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut outsider).await.unwrap();
    sqlx::query("LOCK TABLE app_users IN EXCLUSIVE MODE")
        .execute(&mut outsider)
        .await
        .unwrap();

    let response = app
        .post(&app.project_url("/users"), &batch(0..3, "during"))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_json(response).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");
    assert!(
        retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|secs| secs > 0)),
        "Retry-After in seconds"
    );

    sqlx::query("ROLLBACK")
        .execute(&mut outsider)
        .await
        .unwrap();
    let (_, user) = app.get_user("user_0001").await;
    assert_eq!(user["properties"]["plan"], "before");
    let (status, _) = upsert(&app, &batch(0..3, "after")).await;
    assert_eq!(status, 200, "the lock is gone, writes work again");
}
