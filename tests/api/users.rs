use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, TestApp};

async fn upsert(app: &TestApp, users: Value) -> (u16, Value) {
    status_json(
        app.post(&app.project_url("/users"), &json!({"users": users}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get_user(app: &TestApp, user_id: &str) -> (u16, Value) {
    let encoded =
        percent_encoding::utf8_percent_encode(user_id, percent_encoding::NON_ALPHANUMERIC);
    status_json(
        app.get(&app.project_url(&format!("/users/{encoded}")))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn upsert_merges_properties_and_null_removes() {
    let app = spawn_app().await;
    let (status, body) = upsert(
        &app,
        json!([{"user_id": "u1", "properties": {"plan": "free", "country": "FR"}}]),
    )
    .await;
    assert_eq!((status, body["upserted"].as_i64()), (200, Some(1)));
    let (status, _) = upsert(
        &app,
        json!([{"user_id": "u1", "properties": {"plan": "pro", "country": null, "age": "30"}}]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, user) = get_user(&app, "u1").await;
    assert_eq!(status, 200);
    assert_eq!(user["properties"], json!({"plan": "pro", "age": "30"}));
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(user["user_id"], "u1");
    let (status, body) = upsert(&app, json!([{"user_id": "u1"}])).await;
    assert_eq!(
        (status, body["upserted"].as_i64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, user) = get_user(&app, "u1").await;
    assert_eq!(status, 200);
    assert_eq!(
        user["properties"],
        json!({"plan": "pro", "age": "30"}),
        "no properties = no change"
    );
}

#[tokio::test]
async fn anonymous_ids_are_flagged() {
    let app = spawn_app().await;
    let anon = "$RCAnonymousID:8f2b1c0d";
    upsert(&app, json!([{"user_id": anon, "is_anonymous": false}, {"user_id": "guest", "is_anonymous": true}])).await;
    let (status, user) = get_user(&app, anon).await;
    assert_eq!(status, 200);
    assert_eq!(user["is_anonymous"], true, "the prefix wins");
    let (_, user) = get_user(&app, "guest").await;
    assert_eq!(user["is_anonymous"], true);
}

#[tokio::test]
async fn upsert_rejects_bad_batches_without_writing_anything() {
    let app = spawn_app().await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"user_id": format!("u{i}")}))
        .collect();
    let cases = [
        json!([]),
        Value::Array(too_many),
        json!([{"user_id": ""}]),
        json!([{"user_id": "ok"}, {"user_id": "bad", "properties": {"n": 5}}]),
        json!([{"user_id": "ok", "properties": {"": "x"}}]),
        json!([{"nope": "x"}]),
    ];
    for users in cases {
        let (status, body) = upsert(&app, users).await;
        assert_eq!(status, 400);
        assert!(body["error"].is_string());
    }
    let (status, _) = get_user(&app, "ok").await;
    assert_eq!(status, 404, "a rejected batch writes nothing");
}

#[tokio::test]
async fn a_batch_of_1000_is_accepted() {
    let app = spawn_app().await;
    let users: Vec<Value> = (0..1000)
        .map(|i| json!({"user_id": format!("u{i:04}"), "properties": {"i": i.to_string()}}))
        .collect();
    let (status, body) = upsert(&app, Value::Array(users)).await;
    assert_eq!((status, body["upserted"].as_i64()), (200, Some(1000)));
}

#[tokio::test]
async fn list_filters_by_property_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let users: Vec<Value> = (0..25)
        .map(|i| json!({"user_id": format!("user_{i:02}"), "properties": {"rc_status": if i % 2 == 0 { "active" } else { "expired" }, "n": i.to_string()}}))
        .collect();
    upsert(&app, Value::Array(users)).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.project_url("/users?property.rc_status=active&limit=5");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = status_json(app.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 200);
        for user in page["users"].as_array().unwrap() {
            assert_eq!(user["properties"]["rc_status"], "active");
            seen.push(user["user_id"].as_str().unwrap().to_owned());
        }
        if page["has_more"] == false {
            assert!(page["cursor"].is_null());
            break;
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 13);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ordered, no duplicates");

    let (_, page) = status_json(
        app.get(&app.project_url("/users?property.rc_status=active&property.n=4"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    let (_, page) = status_json(app.get(&app.project_url("/users")).send().await.unwrap()).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn list_rejects_bad_queries_and_get_unknown_is_404() {
    let app = spawn_app().await;
    for query in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=%%%",
        "sort=desc",
        "property.=x",
    ] {
        let (status, body) = status_json(
            app.get(&app.project_url(&format!("/users?{query}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{query}");
        assert!(body["error"].is_string());
    }
    let (status, body) = get_user(&app, "nobody").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("User not found"))
    );
}

/// Ten property filters are served (each one narrows the result); an eleventh is a 400 that
/// names the limit, before any query runs.
#[tokio::test]
async fn at_most_ten_property_filters() {
    let app = spawn_app().await;
    let properties: serde_json::Map<String, serde_json::Value> =
        (0..11).map(|i| (format!("p{i}"), json!("v"))).collect();
    let (status, _) = upsert(
        &app,
        json!([
            {"user_id": "all", "properties": properties},
            {"user_id": "other", "properties": {"p0": "v"}},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let query = |n: usize| {
        (0..n)
            .map(|i| format!("property.p{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (status, body) = status_json(
        app.get(&app.project_url(&format!("/users?{}", query(10))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["all"], "{body}");
    let (status, body) = status_json(
        app.get(&app.project_url(&format!("/users?{}", query(11))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "At most 10 property filters are allowed");
}
