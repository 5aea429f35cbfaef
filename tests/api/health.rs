use crate::helpers::{spawn_api_only_app, spawn_app, status_json};

#[tokio::test]
async fn healthz_and_readyz_answer_ok() {
    let app = spawn_app().await;
    let (status, body) =
        status_json(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) =
        status_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, body["database"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let app = spawn_api_only_app().await;
    app.store.close().await;
    let (status, body) =
        status_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["database"], "unreachable");
}
