use rcsync::domain::permission::Permission;
use serde_json::json;

use crate::helpers::{in_one_hour, jwt, spawn_app, status_json, JWT_SECRET};

#[tokio::test]
async fn missing_or_garbled_credentials_are_401() {
    let app = spawn_app().await;
    let url = app.project_url("/integrations");
    let cases = [
        None,
        Some("Bearer"),
        Some("Basic abc"),
        Some("Bearer rcs_notarealkey"),
        Some("Bearer rcs_0000000000000000000000000000000000000000"),
        Some("Bearer not.a.jwt"),
    ];
    for header in cases {
        let mut request = app.client.get(&url);
        if let Some(h) = header {
            request = request.header("Authorization", h);
        }
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{header:?}");
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn revoked_keys_stop_working_and_use_is_recorded() {
    let app = spawn_app().await;
    let key = app.create_api_key(&app.team_id, &Permission::ALL).await;
    let url = app.project_url("/integrations");
    let response = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let keys = app.store.list_api_keys(&app.team_id).await.unwrap();
    let used = keys
        .iter()
        .find(|k| key.starts_with(&k.key_prefix) && k.last_used_at.is_some());
    assert!(used.is_some(), "last_used_at recorded");
    let id = used.unwrap().id.clone();
    assert!(app.store.revoke_api_key(&id).await.unwrap());
    let response = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn missing_permission_is_403_with_its_name() {
    let app = spawn_app().await;
    let key = app
        .create_api_key(&app.team_id, &[Permission::IntegrationsRead])
        .await;
    let response = app
        .client
        .post(app.project_url("/integrations"))
        .bearer_auth(&key)
        .json(&json!({"provider": "revenuecat", "config": {"api_key": "sk_x"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "Missing permission: integrations:write");
    let response = app
        .client
        .get(app.project_url("/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("Missing permission: users:read"))
    );
}

#[tokio::test]
async fn another_teams_project_is_indistinguishable_from_absence() {
    let app = spawn_app().await;
    let (_, other_project) = app.create_other_team().await;
    let foreign = app
        .get(&app.url(&format!("/v1/projects/{other_project}/integrations")))
        .send()
        .await
        .unwrap();
    let missing = app
        .get(&app.url("/v1/projects/does-not-exist/integrations"))
        .send()
        .await
        .unwrap();
    let (s1, b1) = status_json(foreign).await;
    let (s2, b2) = status_json(missing).await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(b1, b2);
}

#[tokio::test]
async fn jwt_roles_gate_writes_and_teams_gate_visibility() {
    let app = spawn_app().await;
    let url = app.project_url("/integrations");
    app.fake.add_api_key("sk_jwt");
    let body = json!({"provider": "revenuecat", "config": {"api_key": "sk_jwt"}});

    let member = jwt(
        json!([{"id": app.team_id, "role": "member"}]),
        Some(in_one_hour()),
    );
    let response = app
        .client
        .get(&url)
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "members may read");
    let response = app
        .client
        .post(&url)
        .bearer_auth(&member)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "members may not write");

    let admin = jwt(
        json!([{"id": app.team_id, "role": "admin"}]),
        Some(in_one_hour()),
    );
    let response = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let stranger = jwt(
        json!([{"id": "another-team", "role": "owner"}]),
        Some(in_one_hour()),
    );
    let response = app
        .client
        .get(&url)
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn expired_unsigned_or_exp_less_jwts_are_401() {
    let app = spawn_app().await;
    let url = app.project_url("/integrations");
    let teams = json!([{"id": app.team_id, "role": "owner"}]);
    let expired = jwt(teams.clone(), Some(chrono::Utc::now().timestamp() - 3600));
    let no_exp = jwt(teams.clone(), None);
    let wrong_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"teams": teams, "exp": in_one_hour()}),
        &jsonwebtoken::EncodingKey::from_secret(b"wrong"),
    )
    .unwrap();
    for token in [expired, no_exp, wrong_secret] {
        let response = app
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test]
async fn a_jwt_is_401_before_its_nbf_and_accepted_after_it() {
    let app = spawn_app().await;
    let url = app.project_url("/integrations");
    let signed = |nbf: i64| {
        let claims = json!({"teams": [{"id": app.team_id, "role": "owner"}],
                            "exp": in_one_hour(), "nbf": nbf});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    // Beyond the 30 s leeway in either direction.
    for (nbf, expected) in [(now + 600, 401), (now - 600, 200)] {
        let response = app.client.get(&url).bearer_auth(signed(nbf)).send().await;
        assert_eq!(response.unwrap().status(), expected, "nbf {nbf}, now {now}");
    }
}

#[tokio::test]
async fn jwts_are_rejected_when_jwt_auth_is_off() {
    let app = crate::helpers::spawn_app_with(|s| s.jwt_secret = None).await;
    let token = jwt(
        json!([{"id": app.team_id, "role": "owner"}]),
        Some(in_one_hour()),
    );
    let response = app
        .client
        .get(app.project_url("/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// `last_used_at` records a key's use, at most once a minute (authenticated reads must not
/// each take the database's write lock): on the injected clock, a use 30 s after the first
/// leaves it, one past the minute moves it.
#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    use rcsync::clock::Clock;
    let clock = std::sync::Arc::new(rcsync::clock::ManualClock::new());
    let app = crate::helpers::spawn_app_with_clock(clock.clone(), |_| {}).await;
    let last_used = || async {
        let keys = app.store.list_api_keys(&app.team_id).await.unwrap();
        assert_eq!(keys.len(), 1);
        keys[0].last_used_at
    };
    let use_key = || async {
        let response = app.get(&app.project_url("/users")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    };
    assert_eq!(last_used().await, None, "never used yet");
    let first = clock.now_ms();
    use_key().await;
    assert_eq!(last_used().await, Some(first));
    clock.advance(std::time::Duration::from_secs(30));
    use_key().await;
    use_key().await;
    assert_eq!(
        last_used().await,
        Some(first),
        "within the minute: unchanged"
    );
    clock.advance(std::time::Duration::from_secs(31));
    use_key().await;
    assert_eq!(
        last_used().await,
        Some(clock.now_ms()),
        "past the minute: moved"
    );
}
