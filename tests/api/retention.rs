//! Retention on the injected clock: rows older than `RCSYNC_EVENT_RETENTION_DAYS` are pruned
//! (events with their history, finished resync rows, finished job runs, finished queue tasks),
//! newer ones are kept, and the counts pruned show in the metrics.

use std::sync::Arc;
use std::time::Duration;

use rcsync::clock::{Clock, ManualClock};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{spawn_app_with_clock, status_json, wait_until, TestApp};
use crate::metrics::{scrape, value};
use crate::webhooks::{deliver, event_for, with_webhook};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// One number from the test's database (`queue_table` stands for apalis's table).
async fn count(app: &TestApp, sql: &str) -> i64 {
    let queue_table = if app.db.is_postgres {
        "apalis.jobs"
    } else {
        "Jobs"
    };
    let sql = sqlx::AssertSqlSafe(sql.replace("queue_table", queue_table));
    if app.db.is_postgres {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

const FINISHED_RESYNCS: &str =
    "SELECT COUNT(*) FROM user_resyncs WHERE status IN ('succeeded', 'skipped', 'failed', 'superseded')";
const FINISHED_TASKS: &str = "SELECT COUNT(*) FROM queue_table WHERE status IN ('Done', 'Killed')";

/// Triggers a full resync and waits for it to complete; returns its id.
async fn full_resync(app: &TestApp) -> String {
    let url = app.project_url("/integrations/revenuecat/sync");
    let (status, body) = status_json(app.post(&url, &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let run_url = app.url(&format!("/v1/teams/{}/jobs/{run_id}", app.team_id));
    wait_until(Duration::from_secs(30), "the run to complete", || {
        let request = app.get(&run_url);
        async move {
            let (_, run) = status_json(request.send().await.unwrap()).await;
            (run["status"] == "completed").then_some(())
        }
    })
    .await;
    run_id
}

async fn get_status(app: &TestApp, url: &str) -> u16 {
    app.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn rows_past_retention_are_pruned_and_newer_ones_kept() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |raw| raw.event_retention_days = 30).await;
    let (app, header) = with_webhook(app).await;

    // Day 0: three applied events (each requests a follow-up resync), a full resync.
    let t0 = clock.now_ms();
    for n in 0..3 {
        let body = event_for(
            "renewal",
            &format!("old-user-{n}"),
            &format!("old-{n}"),
            t0 - 1_000,
        );
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    let old_run = full_resync(&app).await;
    // The follow-ups come due and run (RevenueCat does not know these users: skipped).
    clock.advance(Duration::from_secs(3));
    wait_until(Duration::from_secs(30), "the follow-ups to finish", || {
        let app = &app;
        async move { (count(app, FINISHED_RESYNCS).await == 3).then_some(()) }
    })
    .await;

    // Day 20: new events that request nothing (TEST events are ignored), another run.
    clock.advance(20 * DAY);
    for n in 0..2 {
        let body = event_for(
            "test",
            &format!("new-user-{n}"),
            &format!("new-{n}"),
            clock.now_ms(),
        );
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    let new_run = full_resync(&app).await;
    // 3 follow-ups and 2 runs (apalis acknowledges completions in batches).
    let finished_tasks = wait_until(Duration::from_secs(30), "the tasks to be done", || {
        let app = &app;
        async move { Some(count(app, FINISHED_TASKS).await).filter(|n| *n >= 5) }
    })
    .await;
    let before = scrape(&app).await;
    let pruned = "rcsync_retention_pruned_rows_total";
    assert_eq!(value(&before, pruned, &[("table", "webhook_events")]), 0.0);

    // Day 31: day 0 is past the 30 days, day 20 is not.
    clock.advance(11 * DAY);
    let after = wait_until(Duration::from_secs(30), "a retention round", || {
        let app = &app;
        async move {
            let m = scrape(app).await;
            (value(&m, pruned, &[("table", "queue_tasks")]) > 0.0).then_some(m)
        }
    })
    .await;
    assert_eq!(value(&after, pruned, &[("table", "webhook_events")]), 3.0);
    assert_eq!(value(&after, pruned, &[("table", "user_resyncs")]), 3.0);
    assert_eq!(value(&after, pruned, &[("table", "job_runs")]), 1.0);
    // apalis stamps tasks with the database's own (real) clock: all are older than day 1.
    assert_eq!(
        value(&after, pruned, &[("table", "queue_tasks")]),
        finished_tasks as f64
    );

    let events = app.project_url("/integrations/revenuecat/events");
    let (_, page) = status_json(app.get(&events).send().await.unwrap()).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["new-1", "new-0"]);
    let old_event = app.project_url("/integrations/revenuecat/events/old-0");
    assert_eq!(get_status(&app, &old_event).await, 404);
    let run = |id: &str| app.url(&format!("/v1/teams/{}/jobs/{id}", app.team_id));
    assert_eq!(get_status(&app, &run(&old_run)).await, 404);
    assert_eq!(get_status(&app, &run(&new_run)).await, 200);
    assert_eq!(count(&app, FINISHED_RESYNCS).await, 0);
    assert_eq!(count(&app, FINISHED_TASKS).await, 0);
    // Users are not events: they stay.
    let (status, user) = app.get_user("old-user-0").await;
    assert_eq!(status, 200, "{user}");
    assert_ne!(user["properties"], Value::Null);
}

#[tokio::test]
async fn retention_days_are_validated() {
    for bad in ["0", "3651", "thirty"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rcsync"))
            .args(["serve", "--database-url", "sqlite::memory:"])
            .env("RCSYNC_EVENT_RETENTION_DAYS", bad)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("RCSYNC_EVENT_RETENTION_DAYS")
                || stderr.contains("event-retention-days"),
            "{bad}: {stderr}"
        );
    }
}
