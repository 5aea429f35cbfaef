use serde_json::json;

use crate::helpers::{spawn_app, status_json};

#[tokio::test]
async fn malformed_bodies_get_a_json_4xx() {
    let app = spawn_app().await;
    let url = app.project_url("/integrations");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", b"".to_vec(), 400),
        ("application/json", b"[1,2,3]".to_vec(), 400),
        ("application/json", b"\xff\xfe".to_vec(), 400),
        (
            "application/json",
            br#"{"provider":"revenuecat","config":{"api_key":"x"},"extra":1}"#.to_vec(),
            400,
        ),
        (
            "text/plain",
            br#"{"provider":"revenuecat","config":{}}"#.to_vec(),
            415,
        ),
    ];
    for (content_type, body, expected) in cases {
        let response = app
            .client
            .post(&url)
            .bearer_auth(&app.api_key)
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, json) = status_json(response).await;
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
        assert!(json["error"].is_string());
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let huge = "x".repeat(5 * 1024 * 1024);
    let response = app
        .post(
            &app.project_url("/users"),
            &json!({"users": [{"user_id": huge}]}),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("exceeds"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = status_json(app.get(&app.url("/v1/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = status_json(
        app.delete(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    assert!(body["error"].is_string());
}

/// PostgreSQL cannot store U+0000; every entry point refuses it with a 4xx on both backends.
#[tokio::test]
async fn nul_characters_anywhere_are_a_4xx_never_a_500() {
    let app = spawn_app().await;
    let (status, _) = status_json(
        app.post(
            &app.project_url("/users"),
            &json!({"users": [{"user_id": "a\u{0}b"}]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = status_json(
        app.post(
            &app.project_url("/users"),
            &json!({"users": [{"user_id": "ok", "properties": {"k\u{0}": "v", "v": "x\u{0}"}}]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    for (path, expected) in [
        ("/v1/projects/%00/integrations".to_owned(), 404),
        (format!("/v1/projects/{}/users/%00", app.project_id), 404),
        (
            format!(
                "/v1/projects/{}/users?property.rc_status=%00",
                app.project_id
            ),
            400,
        ),
        (
            format!("/v1/projects/{}/users?cursor=AA", app.project_id),
            400,
        ),
    ] {
        let (status, body) = status_json(app.get(&app.url(&path)).send().await.unwrap()).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    app.create_revenuecat_integration(&app.fake.api_key()).await;
    let sync = app.url(&format!(
        "/v1/projects/{}/integrations/revenuecat/sync/a%00b",
        app.project_id
    ));
    let (status, _) = status_json(
        app.client
            .post(sync)
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let webhook = app.url("/v1/webhooks/revenuecat/%00");
    let (status, _) = status_json(
        app.client
            .post(webhook)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}
