//! Group commit: concurrent deliveries share a transaction, and the guarantees of one delivery
//! hold inside a batch — a poisoned event fails alone, and reordering within or across
//! batches never overwrites newer state.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use tokio::task::JoinHandle;

use crate::helpers::{spawn_app, status_json, wait_until, TestApp};
use crate::webhooks::{deliver, event_for, with_webhook};

/// A second project of the app's team with its own RevenueCat integration; returns its id and
/// webhook `Authorization` value.
async fn second_project(app: &TestApp) -> (String, String) {
    let project_id = uuid::Uuid::new_v4().to_string();
    app.store
        .create_project(&project_id, &app.team_id, "Doomed project")
        .await
        .unwrap();
    let (status, created) = status_json(
        app.post(
            &app.url(&format!("/v1/projects/{project_id}/integrations")),
            &json!({"provider": "revenuecat", "config": {"api_key": app.fake.api_key()}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let header = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();
    (project_id, header)
}

/// Deletes a project the way another rcsync process (or an operator) would: straight in the
/// database, so this process's cached webhook secret still admits its deliveries.
async fn delete_project_elsewhere(app: &TestApp, project_id: &str) {
    let sql = "DELETE FROM projects WHERE id = $1";
    if app.db.is_postgres {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query(sql)
            .bind(project_id)
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(sql)
            .bind(project_id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// Holds up every write to the app's project from a connection of its own, so that the
/// writers stall and deliveries pile up in the queue: on SQLite the write lock (`BEGIN
/// IMMEDIATE`), on PostgreSQL the project's row (every insert's foreign-key check waits on it).
enum WriteBlock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteBlock {
    async fn hold(app: &TestApp) -> Self {
        if app.db.is_postgres {
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE")
                .bind(&app.project_id)
                .execute(&mut conn)
                .await
                .unwrap();
            WriteBlock::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            WriteBlock::Sqlite(conn)
        }
    }

    async fn release(self) {
        match self {
            WriteBlock::Postgres(mut conn) => {
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
            WriteBlock::Sqlite(mut conn) => {
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
        }
    }
}

fn spawn_delivery(
    app: &TestApp,
    project_id: &str,
    header: &str,
    body: Value,
) -> JoinHandle<(u16, Value)> {
    let request = app
        .client
        .post(app.url(&format!("/v1/webhooks/revenuecat/{project_id}")))
        .header("Authorization", header)
        .json(&body);
    tokio::spawn(async move { status_json(request.send().await.unwrap()).await })
}

/// One event of a batch violates a constraint only when the batch is written (its project was
/// deleted after its delivery was authenticated, so its insert breaks the foreign key): it
/// alone fails, with a 404, and leaves nothing behind; the 200 other events of its batch are
/// committed and applied. The writers are held up first so that all 201 ride in one batch.
#[tokio::test]
async fn a_poisoned_event_in_a_batch_fails_alone() {
    let (app, header) = with_webhook(spawn_app().await).await;
    let (doomed, doomed_header) = second_project(&app).await;
    // Authenticates (and caches the secret of) the doomed project, then it disappears.
    let warm_up = event_for("initial_purchase", "doomed_user", "doomed-0", 1_000);
    let warmed_up = spawn_delivery(&app, &doomed, &doomed_header, warm_up);
    assert_eq!(warmed_up.await.unwrap().0, 200);
    delete_project_elsewhere(&app, &doomed).await;
    let receiver = &app.services.webhooks;
    let stats = || receiver.writer_stats();

    // Every writer takes one delivery and stalls on the held-up write.
    let block = WriteBlock::hold(&app).await;
    let writers = stats().writers;
    let mut plugs = Vec::new();
    for n in 1..=writers {
        let body = event_for(
            "initial_purchase",
            &format!("plug_{n}"),
            &format!("plug-{n}"),
            1_000,
        );
        plugs.push(spawn_delivery(&app, &app.project_id, &header, body));
        wait_until(
            Duration::from_secs(15),
            "a writer to take the plug",
            || async {
                let s = stats();
                (s.busy == n && s.queued == 0).then_some(())
            },
        )
        .await;
    }

    // The batch: 200 healthy events with the poisoned one among them, all queued.
    const HEALTHY: usize = 200;
    let mut healthy = Vec::new();
    for i in 0..HEALTHY {
        let user = format!("healthy_{i}");
        let body = event_for("initial_purchase", &user, &format!("healthy-{i}"), 2_000);
        healthy.push(spawn_delivery(&app, &app.project_id, &header, body));
        if i == HEALTHY / 2 {
            let poisoned = event_for("initial_purchase", "doomed_user", "doomed-1", 2_000);
            healthy.push(spawn_delivery(&app, &doomed, &doomed_header, poisoned));
        }
    }
    wait_until(Duration::from_secs(15), "the batch to queue up", || async {
        (stats().queued == HEALTHY + 1).then_some(())
    })
    .await;
    block.release().await;

    let mut answers = Vec::new();
    for delivery in plugs.into_iter().chain(healthy) {
        answers.push(delivery.await.unwrap());
    }
    let poisoned_answer = answers.remove(writers + HEALTHY / 2 + 1);
    assert_eq!(poisoned_answer.0, 404, "{}", poisoned_answer.1);
    assert_eq!(poisoned_answer.1["error"], "The project no longer exists");
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(
        stats().split_batches,
        1,
        "one batch failed whole and was split"
    );

    let counts = app
        .store
        .count_webhook_events(&app.project_id)
        .await
        .unwrap();
    assert_eq!(
        counts,
        vec![("applied".to_owned(), (writers + HEALTHY) as i64)]
    );
    for i in 0..HEALTHY {
        let user = app
            .store
            .get_user(&app.project_id, &format!("healthy_{i}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("healthy_{i} was not applied"));
        assert_eq!(user.properties["rc_status"], "active", "healthy_{i}");
    }
    assert!(app
        .store
        .get_webhook_event(&doomed, "doomed-1")
        .await
        .unwrap()
        .is_none());
    assert!(app
        .store
        .get_user(&doomed, "doomed_user")
        .await
        .unwrap()
        .is_none());
}

/// Many events of few users delivered at once, newest first, ride in shared batches: whatever
/// order they are committed in, each user ends at its newest event.
#[tokio::test]
async fn reordered_events_in_concurrent_batches_never_overwrite_newer_state() {
    let (app, header) = with_webhook(spawn_app().await).await;
    const USERS: usize = 5;
    const PER_USER: usize = 40;
    // Each user's newest event (the highest timestamp) is an expiration; the rest renewals.
    let mut bodies = Vec::new();
    for n in (0..PER_USER).rev() {
        for u in 0..USERS {
            let kind = if n == PER_USER - 1 {
                "expiration"
            } else {
                "renewal"
            };
            let id = format!("reorder-{u}-{n:02}");
            bodies.push(event_for(
                kind,
                &format!("reorder_{u}"),
                &id,
                10_000 + n as i64,
            ));
        }
    }
    let answers =
        futures::future::join_all(bodies.iter().map(|body| deliver(&app, &header, body))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");

    for u in 0..USERS {
        let user = format!("reorder_{u}");
        let stored = app
            .store
            .get_user(&app.project_id, &user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.properties["rc_status"], "expired", "{user}");
        let newest = app
            .store
            .get_webhook_event(&app.project_id, &format!("reorder-{u}-{:02}", PER_USER - 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(newest.status, "applied");
        assert_eq!(
            app.store
                .event_marker(&app.project_id, &user)
                .await
                .unwrap(),
            Some(newest.ordering_marker()),
            "{user}"
        );
    }
    let counts = app
        .store
        .count_webhook_events(&app.project_id)
        .await
        .unwrap();
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, (USERS * PER_USER) as i64, "{counts:?}");
}
