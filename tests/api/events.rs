//! The webhook event log: paging both ways with every filter, under concurrent inserts and
//! with many events sharing a timestamp; one event with payload and history; replay;
//! permissions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rcsync::clock::{Clock, ManualClock};
use rcsync::domain::permission::Permission;
use serde_json::{json, Value};

use crate::helpers::{in_one_hour, jwt, spawn_app_with_clock, status_json, TestApp};
use crate::webhooks::{deliver, event_for, with_webhook};

/// An app on a manual clock with a RevenueCat integration: every event received while the
/// clock stands still shares one `received_at`.
async fn app_on_clock() -> (TestApp, String, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let (app, header) = with_webhook(app).await;
    (app, header, clock)
}

fn events_url(app: &TestApp) -> String {
    app.project_url("/integrations/revenuecat/events")
}

async fn page(app: &TestApp, query: &str) -> Value {
    let url = format!("{}?{query}", events_url(app));
    let (status, body) = status_json(app.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every event matching `filter`, read forward (`after`) `limit` at a time, newest first.
async fn read_forward(app: &TestApp, filter: &str, limit: u32) -> Vec<String> {
    let mut all = Vec::new();
    let mut query = format!("limit={limit}{filter}");
    loop {
        let body = page(app, &query).await;
        all.extend(ids(&body));
        if !body["has_next_page"].as_bool().unwrap() {
            return all;
        }
        let cursor = body["end_cursor"].as_str().unwrap();
        query = format!("limit={limit}{filter}&after={cursor}");
    }
}

/// The same set read backward: the oldest page, then `before` its start toward the newest.
async fn read_backward(app: &TestApp, filter: &str, limit: u32) -> Vec<String> {
    let mut oldest = page(app, &format!("limit={limit}{filter}")).await;
    while oldest["has_next_page"].as_bool().unwrap() {
        let cursor = oldest["end_cursor"].as_str().unwrap();
        oldest = page(app, &format!("limit={limit}{filter}&after={cursor}")).await;
    }
    let mut all = ids(&oldest);
    if let Some(start) = oldest["start_cursor"].as_str() {
        all = [read_newer_than(app, filter, limit, start).await, all].concat();
    }
    all
}

/// Every event newer than `cursor`, read backward with `before`, newest first.
async fn read_newer_than(app: &TestApp, filter: &str, limit: u32, cursor: &str) -> Vec<String> {
    let mut pages = Vec::new();
    let mut query = format!("limit={limit}{filter}&before={cursor}");
    loop {
        let body = page(app, &query).await;
        pages.push(ids(&body));
        if !body["has_previous_page"].as_bool().unwrap() {
            break;
        }
        let cursor = body["start_cursor"].as_str().unwrap();
        query = format!("limit={limit}{filter}&before={cursor}");
    }
    // Each page is newest first; the last page read holds the newest events.
    pages.into_iter().rev().flatten().collect()
}

fn distinct(ids: &[String]) -> usize {
    ids.iter().collect::<BTreeSet<_>>().len()
}

/// Delivers `event` (a fixture name) with the given id, user and extras; asserts 200.
async fn send(
    app: &TestApp,
    header: &str,
    fixture: &str,
    id: &str,
    user: &str,
    ts: i64,
    extra: Value,
) {
    let mut body = event_for(fixture, user, id, ts);
    if let Value::Object(extra) = extra {
        body["event"].as_object_mut().unwrap().extend(extra);
    }
    let (status, answer) = deliver(app, header, &body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn paging_over_events_that_share_a_timestamp_neither_repeats_nor_skips() {
    let (app, header, clock) = app_on_clock().await;
    let ts = clock.now_ms() - 60_000;
    for n in 0..23 {
        send(
            &app,
            &header,
            "renewal",
            &format!("evt-{n:02}"),
            &format!("user-{n}"),
            ts + n,
            json!({}),
        )
        .await;
    }
    let first = page(&app, "limit=200").await;
    let newest_first = ids(&first);
    assert_eq!(newest_first.len(), 23);
    let received: BTreeSet<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["received_at"].as_str().unwrap())
        .collect();
    assert_eq!(received.len(), 1, "all share one received_at: {received:?}");
    // Newest first: the last delivered comes first.
    assert_eq!(newest_first[0], "evt-22");
    assert_eq!(newest_first[22], "evt-00");

    for limit in [1, 4, 7, 23, 50] {
        let forward = read_forward(&app, "", limit).await;
        assert_eq!(forward, newest_first, "forward, limit {limit}");
        let backward = read_backward(&app, "", limit).await;
        assert_eq!(backward, newest_first, "backward, limit {limit}");
    }

    let first_page = page(&app, "limit=5").await;
    assert_eq!(first_page["has_previous_page"], false);
    assert_eq!(first_page["has_next_page"], true);
    let last = page(
        &app,
        &format!("limit=5&after={}", cursor_of(&app, "evt-03").await),
    )
    .await;
    assert_eq!(ids(&last), ["evt-02", "evt-01", "evt-00"]);
    assert_eq!(last["has_next_page"], false);
    assert_eq!(last["has_previous_page"], true);
}

/// The cursor of the page that ends with `event_id` (reading the whole log).
async fn cursor_of(app: &TestApp, event_id: &str) -> String {
    let mut query = "limit=1".to_owned();
    loop {
        let body = page(app, &query).await;
        let cursor = body["end_cursor"].as_str().unwrap().to_owned();
        if ids(&body) == [event_id] {
            return cursor;
        }
        query = format!("limit=1&after={cursor}");
    }
}

#[tokio::test]
async fn every_filter_pages_both_ways() {
    let (app, header, clock) = app_on_clock().await;
    let ts = clock.now_ms() - 3_600_000;
    // Early group: renewals of alice in production, expirations of bob in sandbox.
    for n in 0..6 {
        send(
            &app,
            &header,
            "renewal",
            &format!("a-{n}"),
            "alice",
            ts + n,
            json!({"environment": "PRODUCTION"}),
        )
        .await;
        send(
            &app,
            &header,
            "expiration",
            &format!("b-{n}"),
            "bob",
            ts + n,
            json!({"environment": "SANDBOX"}),
        )
        .await;
    }
    clock.advance(Duration::from_secs(60));
    let middle = rcsync::timestamp::iso_ms(clock.now_ms());
    // Late group: one older renewal for alice (superseded), TEST events (ignored).
    send(
        &app,
        &header,
        "renewal",
        "a-old",
        "alice",
        ts - 1_000,
        json!({}),
    )
    .await;
    for n in 0..3 {
        send(
            &app,
            &header,
            "test",
            &format!("t-{n}"),
            &format!("tester-{n}"),
            ts,
            json!({"environment": "PRODUCTION"}),
        )
        .await;
    }

    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "&type=RENEWAL",
            vec!["a-old", "a-5", "a-4", "a-3", "a-2", "a-1", "a-0"],
        ),
        (
            "&topic=expiration",
            vec!["b-5", "b-4", "b-3", "b-2", "b-1", "b-0"],
        ),
        ("&status=superseded", vec!["a-old"]),
        ("&status=ignored", vec!["t-2", "t-1", "t-0"]),
        (
            "&user_id=alice",
            vec!["a-old", "a-5", "a-4", "a-3", "a-2", "a-1", "a-0"],
        ),
        (
            "&environment=sandbox",
            vec!["b-5", "b-4", "b-3", "b-2", "b-1", "b-0"],
        ),
        (
            "&environment=PRODUCTION&user_id=alice&status=applied",
            vec!["a-5", "a-4", "a-3", "a-2", "a-1", "a-0"],
        ),
        ("&from_date=MIDDLE", vec!["t-2", "t-1", "t-0", "a-old"]),
        (
            "&to_date=MIDDLE&type=EXPIRATION",
            vec!["b-5", "b-4", "b-3", "b-2", "b-1", "b-0"],
        ),
    ];
    for (filter, expected) in cases {
        let filter = filter.replace("MIDDLE", &urlencode(&middle));
        for limit in [1, 2, 5] {
            let forward = read_forward(&app, &filter, limit).await;
            assert_eq!(forward, expected, "forward {filter} limit {limit}");
            let backward = read_backward(&app, &filter, limit).await;
            assert_eq!(backward, expected, "backward {filter} limit {limit}");
        }
    }
    let none = page(&app, "user_id=nobody").await;
    assert_eq!(none["items"], json!([]));
    assert_eq!(none["start_cursor"], Value::Null);
    assert_eq!(none["has_next_page"], false);
    assert_eq!(none["has_previous_page"], false);

    let item = &page(&app, "limit=1&status=superseded").await["items"][0];
    assert_eq!(item["type"], "RENEWAL");
    assert_eq!(item["app_user_id"], "alice");
    assert_eq!(item["user_id"], "alice");
    assert_eq!(item["environment"], "production");
    assert_eq!(
        item["event_timestamp"],
        rcsync::timestamp::iso_ms(ts - 1_000)
    );
    assert!(item["status_detail"].is_null());

    for bad in [
        "limit=0",
        "limit=201",
        "status=done",
        "from_date=yesterday",
        "after=%%%",
        "colour=blue",
        "type=RENEWAL&topic=EXPIRATION",
    ] {
        let url = format!("{}?{bad}", events_url(&app));
        let (status, body) = status_json(app.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn paging_stays_exact_while_events_arrive() {
    let (app, header, clock) = app_on_clock().await;
    let ts = clock.now_ms() - 60_000;
    for n in 0..30 {
        send(
            &app,
            &header,
            "renewal",
            &format!("old-{n:02}"),
            &format!("u{n}"),
            ts,
            json!({}),
        )
        .await;
    }
    let expected_old: Vec<String> = read_forward(&app, "", 200).await;
    assert_eq!(expected_old.len(), 30);

    // A reader takes the first page; then new events arrive (many at once, same timestamp)
    // while it pages on.
    let first = page(&app, "limit=4").await;
    let start_cursor = first["start_cursor"].as_str().unwrap().to_owned();
    let arrivals = {
        let (client, url, header) = (
            app.client.clone(),
            crate::webhooks::webhook_url(&app),
            header.clone(),
        );
        tokio::spawn(async move {
            let sends = (0..30).map(|n| {
                let body = event_for("renewal", &format!("n{n}"), &format!("new-{n:02}"), ts);
                let request = client
                    .post(&url)
                    .header("Authorization", &header)
                    .json(&body);
                async move { request.send().await.unwrap().status().as_u16() }
            });
            futures::future::join_all(sends).await
        })
    };
    let mut seen = ids(&first);
    let mut cursor = first["end_cursor"].as_str().unwrap().to_owned();
    loop {
        let body = page(&app, &format!("limit=4&after={cursor}")).await;
        seen.extend(ids(&body));
        if !body["has_next_page"].as_bool().unwrap() {
            break;
        }
        cursor = body["end_cursor"].as_str().unwrap().to_owned();
        tokio::task::yield_now().await;
    }
    let statuses = arrivals.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // New events are newer than the first page: reading on from it finds exactly the events
    // that existed, each once.
    assert_eq!(
        seen, expected_old,
        "forward read skipped or repeated an event"
    );

    // Reading backward from the first page finds every event that arrived after it, once.
    let newer = read_newer_than(&app, "", 3, &start_cursor).await;
    assert_eq!(distinct(&newer), 30, "{newer:?}");
    assert!(newer.iter().all(|id| id.starts_with("new-")), "{newer:?}");
    let everything = read_forward(&app, "", 7).await;
    assert_eq!(everything.len(), 60);
    assert_eq!(distinct(&everything), 60);
}

#[tokio::test]
async fn one_event_shows_its_payload_and_history() {
    let (app, header, clock) = app_on_clock().await;
    let body = event_for(
        "initial_purchase",
        "carol",
        "evt-carol",
        clock.now_ms() - 1000,
    );
    deliver(&app, &header, &body).await;
    let url = app.project_url("/integrations/revenuecat/events/evt-carol");
    let (status, event) = status_json(app.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["id"], "evt-carol");
    assert_eq!(event["status"], "applied");
    assert_eq!(event["payload"], body);
    let history = event["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["action"], "received");
    assert_eq!(history[0]["status"], "applied");
    assert_eq!(history[0]["at"], event["received_at"]);

    let missing = app.project_url("/integrations/revenuecat/events/nope");
    let (status, _) = status_json(app.get(&missing).send().await.unwrap()).await;
    assert_eq!(status, 404);
}

async fn replay(app: &TestApp, event_id: &str) -> (u16, Value) {
    let url = app.project_url(&format!(
        "/integrations/revenuecat/events/{event_id}/replay"
    ));
    status_json(app.post(&url, &json!({})).send().await.unwrap()).await
}

#[tokio::test]
async fn replaying_a_superseded_event_changes_nothing_and_an_applied_one_is_written_again() {
    let (app, header, clock) = app_on_clock().await;
    let now = clock.now_ms();
    send(
        &app,
        &header,
        "initial_purchase",
        "new",
        "dave",
        now - 1_000,
        json!({}),
    )
    .await;
    send(
        &app,
        &header,
        "expiration",
        "old",
        "dave",
        now - 5_000,
        json!({}),
    )
    .await;
    let (_, before) = app.get_user("dave").await;
    assert_eq!(before["properties"]["rc_status"], "active", "{before}");

    let (status, replayed) = replay(&app, "old").await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["id"], "old");
    assert_eq!(replayed["status"], "superseded");
    let (_, after) = app.get_user("dave").await;
    assert_eq!(
        after["properties"], before["properties"],
        "an old event changed nothing"
    );

    // The newest event, replayed over a user changed by hand, is written again.
    let upsert = json!({"users": [{"user_id": "dave", "properties": {"rc_status": "expired", "rc_product": null}}]});
    let response = app
        .post(&app.project_url("/users"), &upsert)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, replayed) = replay(&app, "new").await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["status"], "applied");
    assert_eq!(replayed["status_detail"], "replayed");
    let (_, restored) = app.get_user("dave").await;
    assert_eq!(restored["properties"], before["properties"]);

    // An event newer than the user's state that was superseded... cannot exist; but an old
    // event replayed after the newer one is gone stays superseded (the marker remembers).
    let url = app.project_url("/integrations/revenuecat/events/old");
    let (_, detail) = status_json(app.get(&url).send().await.unwrap()).await;
    let actions: Vec<(&str, &str)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].as_str().unwrap(), h["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("received", "superseded"), ("replay", "superseded")]
    );
    let url = app.project_url("/integrations/revenuecat/events/new");
    let (_, detail) = status_json(app.get(&url).send().await.unwrap()).await;
    assert_eq!(detail["history"][1]["action"], "replay");
    assert_eq!(detail["history"][1]["status"], "applied");

    let (status, _) = replay(&app, "missing").await;
    assert_eq!(status, 404);
    // Without an enabled integration nothing is replayed, like a delivery.
    app.patch(
        &app.project_url("/integrations/revenuecat"),
        &json!({"enabled": false}),
    )
    .send()
    .await
    .unwrap();
    let (status, body) = replay(&app, "new").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn reading_needs_integrations_read_replaying_needs_write_and_other_teams_see_nothing() {
    let (app, header, clock) = app_on_clock().await;
    send(
        &app,
        &header,
        "renewal",
        "evt-1",
        "erin",
        clock.now_ms() - 1_000,
        json!({}),
    )
    .await;
    let list = events_url(&app);
    let one = app.project_url("/integrations/revenuecat/events/evt-1");
    let replay_url = app.project_url("/integrations/revenuecat/events/evt-1/replay");
    let status_of = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };

    let reader = app
        .create_api_key(&app.team_id, &[Permission::IntegrationsRead])
        .await;
    assert_eq!(
        status_of(app.client.get(&list).bearer_auth(&reader)).await,
        200
    );
    assert_eq!(
        status_of(app.client.get(&one).bearer_auth(&reader)).await,
        200
    );
    assert_eq!(
        status_of(app.client.post(&replay_url).bearer_auth(&reader)).await,
        403
    );

    let users_only = app
        .create_api_key(&app.team_id, &[Permission::UsersRead])
        .await;
    assert_eq!(
        status_of(app.client.get(&list).bearer_auth(&users_only)).await,
        403
    );
    assert_eq!(
        status_of(app.client.get(&one).bearer_auth(&users_only)).await,
        403
    );

    let member = jwt(
        json!([{"id": app.team_id, "role": "member"}]),
        Some(in_one_hour()),
    );
    assert_eq!(
        status_of(app.client.get(&list).bearer_auth(&member)).await,
        200
    );
    assert_eq!(
        status_of(app.client.post(&replay_url).bearer_auth(&member)).await,
        403
    );
    let admin = jwt(
        json!([{"id": app.team_id, "role": "admin"}]),
        Some(in_one_hour()),
    );
    assert_eq!(
        status_of(app.client.post(&replay_url).bearer_auth(&admin)).await,
        200
    );

    let (other_team, _) = app.create_other_team().await;
    let stranger = app.create_api_key(&other_team, &Permission::ALL).await;
    for request in [
        app.client.get(&list).bearer_auth(&stranger),
        app.client.get(&one).bearer_auth(&stranger),
        app.client.post(&replay_url).bearer_auth(&stranger),
    ] {
        assert_eq!(status_of(request).await, 404);
    }
    assert_eq!(status_of(app.client.get(&list)).await, 401);
}
