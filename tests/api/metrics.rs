//! `/metrics`: Prometheus text without authentication, and values that match a scripted burst
//! exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcsync::clock::{Clock, ManualClock};
use serde_json::json;

use crate::helpers::{spawn_app_with_clock, TestApp};
use crate::webhooks::{deliver, event_for, webhook_url, with_webhook};

/// `name{a="x",b="y"} value` lines: (name, labels) → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

pub async fn scrape(app: &TestApp) -> Samples {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap();
                (key.to_owned(), value.trim_matches('"').to_owned())
            })
            .collect();
        samples.insert((name.to_owned(), labels), value.parse().unwrap());
    }
    samples
}

/// The value of `name` with exactly these labels (0 when the series does not exist).
pub fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or_default()
}

/// The sum of `name` over the series whose labels include `filter`.
fn sum(samples: &Samples, name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && filter
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_scripted_burst_shows_exactly_in_the_counters() {
    // A still clock: no follow-up resync comes due, so RevenueCat hears only what we script.
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let (app, header) = with_webhook(app).await;
    let now = clock.now_ms();

    // 5 purchases applied, 2 older renewals of the same users superseded, 3 redeliveries,
    // 2 TEST events ignored, 1 malformed body.
    for n in 0..5 {
        let body = event_for(
            "initial_purchase",
            &format!("u{n}"),
            &format!("p{n}"),
            now - 1_000,
        );
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    for n in 0..2 {
        let body = event_for("renewal", &format!("u{n}"), &format!("r{n}"), now - 9_000);
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    for n in 0..3 {
        let body = event_for(
            "initial_purchase",
            &format!("u{n}"),
            &format!("p{n}"),
            now - 1_000,
        );
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    for n in 0..2 {
        let body = event_for("test", &format!("t{n}"), &format!("t{n}"), now);
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
    }
    let malformed = app
        .client
        .post(webhook_url(&app))
        .header("Authorization", &header)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    // One single-user sync whose first request fails once with a 500 (then RevenueCat does
    // not know the user).
    app.fake.clear_log();
    let before = scrape(&app).await;
    app.fake.fail_next_matching(1, 500, "/customers/");
    let (status, _) = app.sync_user("nobody_here").await;
    assert_eq!(status, 404);

    let m = scrape(&app).await;
    let webhooks = "rcsync_webhooks_total";
    assert_eq!(
        value(
            &m,
            webhooks,
            &[("type", "INITIAL_PURCHASE"), ("outcome", "applied")]
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            webhooks,
            &[("type", "RENEWAL"), ("outcome", "superseded")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            webhooks,
            &[("type", "INITIAL_PURCHASE"), ("outcome", "duplicate")]
        ),
        3.0
    );
    assert_eq!(
        value(&m, webhooks, &[("type", "TEST"), ("outcome", "ignored")]),
        2.0
    );
    assert_eq!(
        value(
            &m,
            webhooks,
            &[("type", "UNPARSED"), ("outcome", "invalid")]
        ),
        1.0
    );
    assert_eq!(sum(&m, webhooks, &[]), 13.0);
    assert_eq!(sum(&m, "rcsync_webhook_duration_seconds_count", &[]), 13.0);
    // Every delivery that reached the writer rode in some batch.
    assert_eq!(value(&m, "rcsync_webhook_batch_size_sum", &[]), 12.0);
    let batches = value(&m, "rcsync_webhook_batch_size_count", &[]);
    assert!((1.0..=12.0).contains(&batches), "{batches}");

    // RevenueCat: what the fake saw since the log was cleared, by endpoint.
    let log = app.fake.request_log();
    let customer_requests = log
        .iter()
        .filter(|r| r.path_and_query.contains("/customers/"))
        .count();
    assert_eq!(customer_requests, 2, "{log:?}");
    let calls = "rcsync_revenuecat_calls_total";
    let ci = ("domain", "customer_information");
    assert_eq!(
        value(&m, calls, &[("endpoint", "customer"), ci])
            - value(&before, calls, &[("endpoint", "customer"), ci]),
        2.0
    );
    assert_eq!(
        sum(&m, calls, &[]) - sum(&before, calls, &[]),
        log.len() as f64
    );
    let retries = "rcsync_revenuecat_retries_total";
    assert_eq!(
        value(&m, retries, &[("endpoint", "customer"), ci])
            - value(&before, retries, &[("endpoint", "customer"), ci]),
        1.0
    );
    assert_eq!(sum(&m, "rcsync_revenuecat_rate_limited_total", &[]), 0.0);
    assert_eq!(
        value(&m, "rcsync_revenuecat_budget_per_minute", &[ci]),
        480.0
    );
    assert_eq!(
        value(&m, "rcsync_revenuecat_requests_in_flight", &[ci]),
        0.0
    );

    // Database state: the follow-ups the applied and superseded events requested wait on the
    // still clock (one per user: u0–u4).
    assert_eq!(
        value(&m, "rcsync_queue_depth", &[("queue", "follow_up_backlog")]),
        5.0
    );
    assert_eq!(
        value(&m, "rcsync_queue_depth", &[("queue", "pending_runs")]),
        0.0
    );
    let main_max = value(
        &m,
        "rcsync_db_pool_connections",
        &[("pool", "main"), ("state", "max")],
    );
    assert!(main_max >= 1.0, "{main_max}");
    assert!(m
        .keys()
        .any(|(name, _)| name == "rcsync_retention_pruned_rows_total"));
}

#[tokio::test]
async fn metrics_need_no_credentials_and_count_jobs_by_status() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.connect_fake().await;
    let upsert = json!({"users": [{"user_id": "someone"}]});
    app.post(&app.project_url("/users"), &upsert)
        .send()
        .await
        .unwrap();
    let trigger = app.project_url("/integrations/revenuecat/sync");
    let response = app.post(&trigger, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let m = crate::helpers::wait_until(
        std::time::Duration::from_secs(30),
        "the run to finish",
        || {
            let app = &app;
            async move {
                let m = scrape(app).await;
                (value(
                    &m,
                    "rcsync_jobs",
                    &[("type", "revenuecat_sync"), ("status", "completed")],
                ) == 1.0)
                    .then_some(m)
            }
        },
    )
    .await;
    assert_eq!(
        value(
            &m,
            "rcsync_jobs",
            &[("type", "revenuecat_sync"), ("status", "pending")]
        ),
        0.0
    );
    assert_eq!(
        value(&m, "rcsync_queue_depth", &[("queue", "pending_runs")]),
        0.0
    );
}
