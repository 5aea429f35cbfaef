//! `/openapi.json` documents every route the app mounts (and nothing it does not), with the
//! security schemes and error bodies.

use serde_json::Value;

use crate::helpers::{spawn_app, status_json};

#[tokio::test]
async fn every_mounted_route_is_in_the_document_and_nothing_else() {
    let app = spawn_app().await;
    let (status, doc) = status_json(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let routes = rcsync::http::route_table();
    let mut missing = Vec::new();
    for (method, path) in &routes {
        let operation = &paths.get(*path).unwrap_or(&Value::Null)[method.as_str().to_lowercase()];
        if !operation.is_object() {
            missing.push(format!("{method} {path}"));
            continue;
        }
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let documented: usize = paths
        .values()
        .map(|item| {
            ["get", "post", "patch", "delete", "put"]
                .iter()
                .filter(|m| item.get(**m).is_some())
                .count()
        })
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document describes a route that is not mounted"
    );

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["webhook"]["scheme"], "bearer");
    let list = &paths["/v1/projects/{project_id}/integrations/revenuecat/events"]["get"];
    assert_eq!(list["security"][0]["bearer"], serde_json::json!([]));
    assert!(list["responses"]["401"]["content"]["application/json"].is_object());
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "limit",
        "after",
        "before",
        "type",
        "topic",
        "status",
        "user_id",
        "environment",
        "from_date",
        "to_date",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
