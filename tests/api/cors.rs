//! Browser clients: `RCSYNC_CORS_ORIGINS` lets a UI on those origins call the API; nobody else
//! gets CORS headers.

use reqwest::Method;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const UI: &str = "https://ui.example.com";

fn jobs_url(app: &TestApp) -> String {
    app.url(&format!("/v1/teams/{}/jobs", app.team_id))
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, jobs_url(app))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap()
}

fn allow_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_configured_origin_may_call_the_api_and_others_get_no_cors_headers() {
    let app =
        spawn_app_with(|raw| raw.cors_origins = Some(format!("{UI}, http://localhost:5173"))).await;

    let answer = preflight(&app, UI).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(allow_origin(&answer).as_deref(), Some(UI));
    let allowed_headers = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let polled = app
        .get(&jobs_url(&app))
        .header("Origin", UI)
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200);
    assert_eq!(allow_origin(&polled).as_deref(), Some(UI));
    // Errors carry the header too, or the UI could not read them.
    let denied = app
        .client
        .get(jobs_url(&app))
        .header("Origin", UI)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(allow_origin(&denied).as_deref(), Some(UI));

    let elsewhere = app
        .get(&jobs_url(&app))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        200,
        "served, but the browser is not told it may read it"
    );
    assert_eq!(allow_origin(&elsewhere), None);
    assert_eq!(
        allow_origin(&preflight(&app, "https://evil.example").await),
        None
    );
}

#[tokio::test]
async fn without_configured_origins_nobody_gets_cors_headers() {
    let app = spawn_app().await;
    assert_eq!(allow_origin(&preflight(&app, UI).await), None);
    let polled = app
        .get(&jobs_url(&app))
        .header("Origin", UI)
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&polled), None);
}
