use serde_json::{json, Value};

use crate::helpers::{raw_database_dump, spawn_app, status_json, TestApp};

pub async fn create(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(
        app.post(&app.project_url("/integrations"), &body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn providers_lists_revenuecat_with_its_config_schema() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.get(&app.project_url("/integrations/providers"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let rc = &body["providers"][0];
    assert_eq!(rc["id"], "revenuecat");
    assert_eq!(rc["name"], "RevenueCat");
    let field = &rc["configFields"][0];
    assert_eq!(field["key"], "api_key");
    assert_eq!(field["required"], true);
    assert_eq!(field["sensitive"], true);
    assert_eq!(field["placeholder"], "sk_...");
}

#[tokio::test]
async fn create_returns_redacted_config_and_one_time_webhook_setup() {
    let app = spawn_app().await;
    let body = app
        .create_revenuecat_integration("sk_your_revenuecat_secret_key")
        .await;
    assert_eq!(body["provider"], "revenuecat");
    assert_eq!(body["project_id"], app.project_id.as_str());
    assert_eq!(body["config"], json!({"api_key": "sk_y****"}));
    assert_eq!(body["enabled"], true);
    let created_at = body["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    let setup = &body["webhook_setup"];
    assert_eq!(
        setup["webhook_url"],
        format!("{}/v1/webhooks/revenuecat/{}", app.address, app.project_id)
    );
    let header = setup["authorization_header"].as_str().unwrap();
    let secret = header
        .strip_prefix("Bearer whsec_")
        .expect("Bearer whsec_ prefix");
    assert_eq!(secret.len(), 48);
    assert!(secret
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(setup["environment"], "Both Production and Sandbox");
    assert_eq!(setup["events_filter"], "All apps, All events");

    let (status, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let items = list["integrations"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["config"]["api_key"], "sk_y****");
    assert!(
        items[0].get("webhook_setup").is_none(),
        "secret never shown again"
    );
}

#[tokio::test]
async fn public_url_shapes_the_webhook_url() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.public_url = Some("https://sync.example.com/base/".into())
    })
    .await;
    let body = app.create_revenuecat_integration("sk_abc").await;
    assert_eq!(
        body["webhook_setup"]["webhook_url"],
        format!(
            "https://sync.example.com/base/v1/webhooks/revenuecat/{}",
            app.project_id
        )
    );
}

#[tokio::test]
async fn invalid_create_requests_are_400_with_a_reason() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"provider": "stripe", "config": {"api_key": "x"}}),
            "Unsupported provider: stripe",
        ),
        (
            json!({"provider": "revenuecat", "config": {"api_key": "x", "extra": "y"}}),
            "Unknown config field: extra",
        ),
        (
            json!({"provider": "revenuecat", "config": {"api_key": 42}}),
            "Config field 'api_key' must be a string",
        ),
        (
            json!({"provider": "revenuecat", "config": {}}),
            "Missing required config field: api_key",
        ),
        (
            json!({"provider": "revenuecat", "config": {"api_key": "  "}}),
            "Config field 'api_key' must be printable ASCII without spaces",
        ),
        (
            json!({"provider": "revenuecat", "config": {"api_key": "sk_a\nb"}}),
            "Config field 'api_key' must be printable ASCII without spaces",
        ),
    ];
    for (body, message) in cases {
        let (status, response) = create(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(response["error"], message, "{body}");
    }
    for body in [
        json!({"provider": "revenuecat"}),
        json!({"config": {}}),
        json!({"provider": 1, "config": {}}),
        json!({"provider": "revenuecat", "config": "sk"}),
    ] {
        let (status, response) = create(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(response["error"].is_string());
    }
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"], json!([]), "nothing stored");
}

#[tokio::test]
async fn a_key_that_cannot_be_a_revenuecat_secret_key_is_400_without_calling_revenuecat() {
    let app = spawn_app().await;
    let kilobytes = format!("sk_{}", "a".repeat(8 * 1024));
    let bad_keys = [
        kilobytes.as_str(),
        "pk_public_app_key",
        "appl_AbCdEf",
        "sk_",
        "sk_with-dash",
    ];
    for key in bad_keys {
        let (status, body) = create(
            &app,
            json!({"provider": "revenuecat", "config": {"api_key": key}}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"],
            "Config field 'api_key' must be `sk_` followed by letters, digits or underscores, \
             at most 128 characters in all"
        );
    }
    assert!(
        app.fake.request_log().is_empty(),
        "no create reached RevenueCat"
    );
    app.create_revenuecat_integration("sk_valid_key_1").await;
    app.fake.clear_log();
    let url = app.project_url("/integrations/revenuecat");
    for key in bad_keys {
        let (status, body) = status_json(
            app.patch(&url, &json!({"config": {"api_key": key}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    assert!(
        app.fake.request_log().is_empty(),
        "RevenueCat never saw a malformed key: {:?}",
        app.fake.request_log()
    );
}

#[tokio::test]
async fn user_supplied_webhook_secret_is_ignored() {
    let app = spawn_app().await;
    app.fake.add_api_key("sk_abc");
    let (status, body) = create(
        &app,
        json!({"provider": "revenuecat", "config": {"api_key": "sk_abc", "webhook_secret": "whsec_mine"}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["config"], json!({"api_key": "sk_a****"}));
    assert_ne!(
        body["webhook_setup"]["authorization_header"],
        "Bearer whsec_mine"
    );
}

#[tokio::test]
async fn second_active_integration_is_409() {
    let app = spawn_app().await;
    app.create_revenuecat_integration("sk_one").await;
    app.fake.add_api_key("sk_two");
    let (status, body) = create(
        &app,
        json!({"provider": "revenuecat", "config": {"api_key": "sk_two"}}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap().contains("already exists"));
}

#[tokio::test]
async fn concurrent_identical_creates_yield_exactly_one_201() {
    let app = spawn_app().await;
    app.fake.add_api_key("sk_race");
    let body = json!({"provider": "revenuecat", "config": {"api_key": "sk_race"}});
    let requests = (0..20).map(|_| app.post(&app.project_url("/integrations"), &body).send());
    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(
        app.fake.webhook_integrations().len(),
        1,
        "one RevenueCat webhook provisioned"
    );
}

#[tokio::test]
async fn patch_merges_config_and_validates_the_result() {
    let app = spawn_app().await;
    app.create_revenuecat_integration("sk_original").await;
    app.fake.add_api_key("sk_rotated");
    let url = app.project_url("/integrations/revenuecat");

    let (status, body) = status_json(
        app.patch(&url, &json!({"enabled": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    assert_eq!(
        body["config"]["api_key"], "sk_o****",
        "unspecified fields kept"
    );
    assert!(body.get("webhook_setup").is_none());

    let (status, body) = status_json(
        app.patch(&url, &json!({"config": {"api_key": "sk_rotated"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["config"]["api_key"], "sk_r****");
    assert_eq!(body["enabled"], false, "enabled kept");

    let bad = [
        json!({"enabled": "yes"}),
        json!({"config": {"nope": "x"}}),
        json!({"config": {"api_key": 5}}),
        json!({"config": {"api_key": ""}}),
        json!({"config": "string"}),
    ];
    for body in bad {
        let (status, response) = status_json(app.patch(&url, &body).send().await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert!(response["error"].is_string());
    }
    let (status, body) = status_json(
        app.patch(&url, &json!({"config": {"webhook_secret": "x"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "internal fields are ignored, not rejected");
    assert_eq!(body["config"], json!({"api_key": "sk_r****"}));
}

#[tokio::test]
async fn patch_and_delete_of_missing_or_unsupported_integrations() {
    let app = spawn_app().await;
    let (status, _) = status_json(
        app.patch(
            &app.project_url("/integrations/revenuecat"),
            &json!({"enabled": true}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = status_json(
        app.delete(&app.project_url("/integrations/revenuecat"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = status_json(
        app.patch(
            &app.project_url("/integrations/stripe"),
            &json!({"enabled": true}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("Unsupported provider: stripe"))
    );
}

#[tokio::test]
async fn delete_soft_deletes_and_recreate_restores_the_same_row() {
    let app = spawn_app().await;
    let first = app.create_revenuecat_integration("sk_first").await;
    let url = app.project_url("/integrations/revenuecat");
    let (status, body) = status_json(app.delete(&url).send().await.unwrap()).await;
    assert_eq!((status, &body["deleted"]), (200, &json!(true)), "{body}");
    let (_, list) = status_json(
        app.get(&app.project_url("/integrations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["integrations"], json!([]));
    let (status, _) = status_json(app.delete(&url).send().await.unwrap()).await;
    assert_eq!(status, 404, "already deleted");

    let kept = app
        .store
        .list_active_integrations(&app.project_id)
        .await
        .unwrap();
    assert!(kept.is_empty());

    let second = app.create_revenuecat_integration("sk_second").await;
    assert_eq!(second["id"], first["id"], "same row restored");
    assert_eq!(second["config"]["api_key"], "sk_s****");
    assert_ne!(
        second["webhook_setup"]["authorization_header"],
        first["webhook_setup"]["authorization_header"],
        "fresh secret"
    );
}

#[tokio::test]
async fn secrets_are_never_stored_in_plaintext() {
    let app = spawn_app().await;
    let api_key = "sk_plaintext_canary_9f8e7d6c5b4a";
    let created = app.create_revenuecat_integration(api_key).await;
    let header = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap();
    let webhook_secret = header.trim_start_matches("Bearer ").to_owned();
    app.get(&app.project_url("/integrations"))
        .send()
        .await
        .unwrap();
    let canaries = [api_key.to_owned(), webhook_secret, app.api_key.clone()];

    let dump = raw_database_dump(&app).await;
    for canary in &canaries {
        assert!(
            !dump.contains(canary.as_str()),
            "found a secret in the database"
        );
    }
    assert!(
        dump.contains(&app.project_id),
        "the dump does contain the data"
    );
}

/// A server started with the wrong master key cannot decrypt stored RevenueCat keys: the API
/// says so (503, naming the remedy) instead of an opaque 500, and webhooks keep flowing
/// because they only need the secret's digest.
#[tokio::test]
async fn a_wrong_master_key_is_a_clear_503_and_webhooks_still_work() {
    let app = spawn_app().await;
    let created = app.create_revenuecat_integration(&app.fake.api_key()).await;
    let header = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut raw = app.db.raw_settings();
    raw.master_key = Some("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".into());
    raw.revenuecat_api_url = app.fake.base_url();
    let settings = raw.resolve().unwrap();
    let store = rcsync::startup::open_store(&settings).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let other = rcsync::startup::Application::build_with(
        settings,
        store,
        listener,
        rcsync::startup::Role::ApiOnly,
    )
    .await
    .unwrap();
    tokio::spawn(other.run_until_stopped());

    let response = app
        .client
        .get(format!(
            "{address}/v1/projects/{}/integrations",
            app.project_id
        ))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("RCSYNC_MASTER_KEY"));

    let event = crate::webhooks::fixture("initial_purchase");
    let response = app
        .client
        .post(format!(
            "{address}/v1/webhooks/revenuecat/{}",
            app.project_id
        ))
        .header("Authorization", header)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Recorded and applied by the process that cannot read the integration's secrets.
    let stored = app
        .store
        .get_webhook_event(&app.project_id, event["event"]["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the event is recorded");
    assert_eq!(stored.status, "applied", "{stored:?}");
    let user = event["event"]["app_user_id"].as_str().unwrap();
    let (status, body) = app.get_user(user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["properties"]["rc_status"], "active", "{body}");
}

/// Concurrent PATCHes of different fields all land (none is lost to another's write): each
/// is re-applied on the row as it then is, so the result holds every change.
#[tokio::test]
async fn concurrent_patches_of_different_fields_all_land() {
    let app = spawn_app().await;
    app.create_revenuecat_integration(&app.fake.api_key()).await;
    let url = app.project_url("/integrations/revenuecat");
    for round in 0..4 {
        let enabled = round % 2 == 1;
        let track_revenue = if round % 2 == 0 { "false" } else { "true" };
        let hours = (round + 1).to_string();
        let patches = [
            json!({"enabled": enabled}),
            json!({"config": {"track_revenue": track_revenue}}),
            json!({"config": {"resync_interval_hours": hours}}),
        ];
        let answers = futures::future::join_all(patches.iter().map(|patch| async {
            status_json(app.patch(&url, patch).send().await.unwrap()).await
        }))
        .await;
        for (patch, (status, body)) in patches.iter().zip(&answers) {
            assert_eq!(*status, 200, "{patch}: {body}");
        }
        let (status, list) = status_json(
            app.get(&app.project_url("/integrations"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        let body = &list["integrations"][0];
        assert_eq!(body["enabled"], enabled, "round {round}: {body}");
        assert_eq!(
            body["config"]["track_revenue"], track_revenue,
            "round {round}: {body}"
        );
        assert_eq!(
            body["config"]["resync_interval_hours"], hours,
            "round {round}: {body}"
        );
    }
}
