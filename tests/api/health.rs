use std::time::Duration;

use crate::helpers::{spawn_api_only_app, spawn_app, status_json, wait_until, TestApp};

async fn readyz(app: &TestApp) -> (u16, serde_json::Value) {
    status_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await
}

#[tokio::test]
async fn healthz_and_readyz_answer_ok() {
    let app = spawn_app().await;
    let (status, body) =
        status_json(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    // The monitor marks its workers running once they have started.
    let body = wait_until(Duration::from_secs(10), "workers running", || async {
        let (status, body) = readyz(&app).await;
        (status == 200 && body["workers"] == "running").then_some(body)
    })
    .await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
}

#[tokio::test]
async fn readyz_of_an_api_only_process_does_not_depend_on_workers() {
    let app = spawn_api_only_app().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workers"], "not run by this process", "{body}");
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let app = spawn_api_only_app().await;
    app.store.close().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["database"], "unreachable");
    assert_eq!(body["status"], "unavailable");
}
