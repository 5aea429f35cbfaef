//! One-step setup (issue 16): creating the integration provisions the webhook in RevenueCat
//! (the fake, over HTTP), deleting it removes the webhook, the webhook can be inspected, and its
//! secret rotates with a grace period measured on an injected clock.

use std::sync::Arc;
use std::time::Duration;

use fake_revenuecat::{RateLimitDomain, WebhookIntegrationRecord};
use rcsync::clock::ManualClock;
use rcsync::domain::permission::Permission;
use serde_json::{json, Value};

use crate::helpers::{
    in_one_hour, jwt, raw_database_dump, spawn_app, spawn_app_with, spawn_app_with_clock,
    spawn_second_process_app, status_json, TestApp,
};
use crate::process::{create_tenant, open_test_store, start_server_with};
use crate::webhooks::{deliver, fixture, webhook_url};

/// What a key lacks when RevenueCat refuses to create or change webhooks.
const INTEGRATIONS_WRITE: &str = "project_configuration:integrations:read_write";

async fn create(app: &TestApp) -> (u16, Value) {
    let body = json!({"provider": "revenuecat", "config": {"api_key": app.fake.api_key()}});
    crate::integrations::create(app, body).await
}

async fn delete(app: &TestApp) -> (u16, Value) {
    let url = app.project_url("/integrations/revenuecat");
    status_json(app.delete(&url).send().await.unwrap()).await
}

async fn show_webhook(app: &TestApp) -> (u16, Value) {
    let url = app.project_url("/integrations/revenuecat/webhook");
    status_json(app.get(&url).send().await.unwrap()).await
}

async fn rotate(app: &TestApp, body: Option<Value>) -> (u16, Value) {
    let url = app.project_url("/integrations/revenuecat/webhook-secret/rotate");
    let request = match body {
        Some(body) => app.post(&url, &body),
        None => app.client.post(&url).bearer_auth(&app.api_key),
    };
    status_json(request.send().await.unwrap()).await
}

fn header_of(setup: &Value) -> String {
    setup["authorization_header"].as_str().unwrap().to_owned()
}

/// The webhooks the fake RevenueCat holds, write-only headers included.
fn revenuecat_webhooks(app: &TestApp) -> Vec<WebhookIntegrationRecord> {
    app.fake.webhook_integrations()
}

/// A TEST event (recorded, touches no user) with its own id.
fn test_event(id: &str) -> Value {
    let mut body = fixture("test");
    body["event"]["id"] = json!(id);
    body
}

async fn delivery_status(app: &TestApp, header: &str, event_id: &str) -> u16 {
    deliver(app, header, &test_event(event_id)).await.0
}

#[tokio::test]
async fn create_provisions_the_webhook_and_revenuecats_deliveries_are_accepted() {
    let app = spawn_app().await;
    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let setup = &created["webhook_setup"];
    assert_eq!(setup["provisioned"], true, "{setup}");
    assert!(setup.get("reason").is_none(), "{setup}");
    assert_eq!(setup["webhook_url"], webhook_url(&app));
    assert_eq!(setup["environment"], "Both Production and Sandbox");

    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 1, "{held:?}");
    let webhook = &held[0];
    assert_eq!(setup["revenuecat_webhook_id"], webhook.id.as_str());
    assert_eq!(webhook.url, webhook_url(&app));
    assert_eq!(webhook.name, format!("rcsync ({})", app.project_id));
    assert_eq!(webhook.environment, None, "both environments");
    assert_eq!(webhook.event_types, None, "every event type");
    assert_eq!(webhook.app_id, None, "every app");
    assert_eq!(
        webhook.authorization_header.as_deref(),
        Some(header_of(setup).as_str())
    );

    // RevenueCat delivers with the header it holds.
    let stored_header = webhook.authorization_header.clone().unwrap();
    assert_eq!(delivery_status(&app, &stored_header, "evt-1").await, 200);
    assert_eq!(
        delivery_status(&app, "Bearer whsec_wrong", "evt-2").await,
        401
    );

    let (status, shown) = show_webhook(&app).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id"], webhook.id.as_str());
    assert_eq!(shown["url"], webhook_url(&app));
    assert_eq!(shown["environment"], Value::Null);
    assert_eq!(shown["event_types"], Value::Null);
    assert_eq!(shown["provisioned"], true);
    assert_eq!(shown["url_matches"], true);
    assert_eq!(shown["authorization_header_status"], "current");
    assert_eq!(shown["points_to_rcsync"], true);
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));
    let text = shown.to_string();
    assert!(!text.contains("whsec_") && !text.contains(&app.fake.api_key()));

    // Every RevenueCat call went through rcsync's one client, webhook calls on the Project
    // Configuration budget.
    let log = app.fake.request_log();
    assert_eq!(app.services.sync.client().metrics().calls, log.len() as u64);
    let webhook_calls: Vec<_> = log
        .iter()
        .filter(|r| r.path_and_query.contains("/integrations/webhooks"))
        .collect();
    assert!(webhook_calls
        .iter()
        .all(|r| r.domain == Some(RateLimitDomain::ProjectConfiguration)));
    let creates = webhook_calls.iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 1, "{webhook_calls:?}");
}

#[tokio::test]
async fn a_refusal_leaves_the_manual_setup_working_and_a_rotation_provisions_later() {
    let app = spawn_app().await;
    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let setup = &created["webhook_setup"];
    assert_eq!(setup["provisioned"], false, "{setup}");
    assert_eq!(setup["revenuecat_webhook_id"], Value::Null);
    assert_eq!(setup["revenuecat_status"], 403);
    let reason = setup["reason"].as_str().unwrap();
    assert!(
        reason.contains(INTEGRATIONS_WRITE),
        "RevenueCat's reason: {reason}"
    );
    assert!(revenuecat_webhooks(&app).is_empty());

    // The manual values work.
    let manual = header_of(setup);
    assert_eq!(delivery_status(&app, &manual, "evt-1").await, 200);
    let (status, shown) = show_webhook(&app).await;
    assert_eq!(status, 404, "{shown}");
    assert!(shown["error"].as_str().unwrap().contains("no webhook"));

    // Once the key may, a rotation sets RevenueCat up.
    app.fake.restore_permissions();
    let (status, rotated) = rotate(&app, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["webhook_setup"]["provisioned"], true);
    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].authorization_header.as_deref(),
        Some(header_of(&rotated["webhook_setup"]).as_str())
    );
}

#[tokio::test]
async fn an_unreachable_or_failing_revenuecat_does_not_hang_or_fail_the_create() {
    let app = spawn_app_with(|s| s.rc_deadline_secs = 2).await;
    let prefix = format!("/v2/projects/{}/integrations", app.fake.project_id());
    app.fake.set_unreachable(&prefix);
    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let setup = &created["webhook_setup"];
    assert_eq!(setup["provisioned"], false, "{setup}");
    assert_eq!(
        setup["reason"],
        "RevenueCat did not answer within 2 s; try again later"
    );
    assert!(setup.get("revenuecat_status").is_none());
    assert_eq!(
        delivery_status(&app, &header_of(setup), "evt-1").await,
        200,
        "manual values work"
    );
    app.fake.clear_unreachable();

    // A 4xx RevenueCat answers is reported with its status; the create still succeeds.
    let (status, _) = delete(&app).await;
    assert_eq!(status, 200);
    app.fake
        .fail_next_matching(1, 422, "/integrations/webhooks");
    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let setup = &created["webhook_setup"];
    assert_eq!(setup["provisioned"], false, "{setup}");
    assert_eq!(setup["revenuecat_status"], 422);
    assert!(setup["reason"]
        .as_str()
        .unwrap()
        .contains("Request is not able to be processed"));
    assert!(revenuecat_webhooks(&app).is_empty());
}

#[tokio::test]
async fn a_webhook_already_pointing_at_rcsync_is_reused_not_duplicated() {
    let app = spawn_app().await;
    // Some hand-made webhooks, one of them for rcsync, with a list RevenueCat pages two by two.
    app.fake.set_page_cap(Some(2));
    let hooks = format!(
        "{}/projects/{}/integrations/webhooks",
        app.fake.base_url(),
        app.fake.project_id()
    );
    let mut manual_id = String::new();
    for (n, url) in [
        "https://elsewhere.example/one".to_owned(),
        "https://elsewhere.example/two".to_owned(),
        "https://elsewhere.example/three".to_owned(),
        webhook_url(&app),
        "https://elsewhere.example/four".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({
            "name": format!("manual {n}"), "url": url, "authorization_header": "Bearer typed_by_hand",
            "environment": "production", "event_types": ["renewal"],
        });
        let response = app
            .client
            .post(&hooks)
            .bearer_auth(app.fake.api_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, created) = status_json(response).await;
        assert_eq!(status, 201, "{created}");
        if url == webhook_url(&app) {
            manual_id = created["id"].as_str().unwrap().to_owned();
        }
    }

    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let setup = &created["webhook_setup"];
    assert_eq!(setup["provisioned"], true, "{setup}");
    assert_eq!(setup["revenuecat_webhook_id"], manual_id.as_str());
    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 5, "nothing created: {held:?}");
    let reused = held.iter().find(|w| w.id == manual_id).unwrap();
    assert_eq!(
        reused.authorization_header.as_deref(),
        Some(header_of(setup).as_str())
    );
    assert_eq!(reused.environment, None, "set to both");
    assert_eq!(reused.event_types, None, "set to every event type");
    assert!(held
        .iter()
        .filter(|w| w.id != manual_id)
        .all(|w| w.authorization_header.as_deref() == Some("Bearer typed_by_hand")));
}

#[tokio::test]
async fn delete_removes_the_webhook_reports_a_failure_and_a_restore_reuses_it() {
    let app = spawn_app().await;
    let (_, first) = create(&app).await;
    let first_id = first["webhook_setup"]["revenuecat_webhook_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_header = header_of(&first["webhook_setup"]);

    // RevenueCat refuses the removal: reported, and the soft delete happens anyway.
    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    let (status, deleted) = delete(&app).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    let removal = &deleted["revenuecat_webhook"];
    assert_eq!(removal["id"], first_id.as_str());
    assert_eq!(removal["removed"], false, "{removal}");
    assert_eq!(removal["revenuecat_status"], 403);
    assert!(removal["reason"]
        .as_str()
        .unwrap()
        .contains(INTEGRATIONS_WRITE));
    let active = app.store.list_active_integrations(&app.project_id).await;
    assert!(active.unwrap().is_empty(), "soft-deleted");
    assert_eq!(delivery_status(&app, &first_header, "evt-1").await, 404);
    assert_eq!(revenuecat_webhooks(&app).len(), 1, "still at RevenueCat");

    // The restore reuses the webhook left behind, with the new secret.
    app.fake.restore_permissions();
    let (status, restored) = create(&app).await;
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["id"], first["id"], "same row");
    let setup = &restored["webhook_setup"];
    assert_eq!(setup["revenuecat_webhook_id"], first_id.as_str(), "{setup}");
    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 1, "not duplicated: {held:?}");
    let new_header = header_of(setup);
    assert_eq!(
        held[0].authorization_header.as_deref(),
        Some(new_header.as_str())
    );
    assert_eq!(delivery_status(&app, &new_header, "evt-2").await, 200);
    assert_eq!(delivery_status(&app, &first_header, "evt-3").await, 401);

    // A delete RevenueCat accepts removes it; the next restore creates a fresh one.
    let (status, deleted) = delete(&app).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted["revenuecat_webhook"],
        json!({"id": first_id, "removed": true})
    );
    assert!(revenuecat_webhooks(&app).is_empty());
    let (_, again) = create(&app).await;
    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 1);
    assert_ne!(held[0].id, first_id);
    assert_eq!(
        again["webhook_setup"]["revenuecat_webhook_id"],
        held[0].id.as_str()
    );

    // Without a provisioned webhook there is nothing to remove.
    let (_, _) = delete(&app).await;
    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    let (_, manual) = create(&app).await;
    assert_eq!(manual["webhook_setup"]["provisioned"], false);
    let (status, deleted) = delete(&app).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"deleted": true, "revenuecat_webhook": null})
    );
}

#[tokio::test]
async fn a_webhook_pointed_elsewhere_is_neither_deleted_nor_reused() {
    let app = spawn_app().await;
    let (_, created) = create(&app).await;
    let id = created["webhook_setup"]["revenuecat_webhook_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.fake.state().with(|store| {
        store.webhooks.get_mut(&id).unwrap().url = "https://elsewhere.example/hook".into();
    });
    let (status, shown) = show_webhook(&app).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["url_matches"], false);
    assert_eq!(shown["points_to_rcsync"], false);

    let (status, deleted) = delete(&app).await;
    assert_eq!(status, 200);
    let removal = &deleted["revenuecat_webhook"];
    assert_eq!(removal["removed"], false, "{removal}");
    assert!(removal["reason"]
        .as_str()
        .unwrap()
        .contains("left in place"));
    assert_eq!(revenuecat_webhooks(&app).len(), 1);

    let (_, restored) = create(&app).await;
    assert_ne!(
        restored["webhook_setup"]["revenuecat_webhook_id"],
        id.as_str()
    );
    assert_eq!(revenuecat_webhooks(&app).len(), 2);
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_then_only_the_new_one() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let (_, created) = create(&app).await;
    let webhook_id = created["webhook_setup"]["revenuecat_webhook_id"].clone();
    let first = header_of(&created["webhook_setup"]);
    assert_eq!(delivery_status(&app, &first, "evt-0").await, 200, "cached");

    let (status, rotated) = rotate(&app, Some(json!({"grace_period_seconds": 3600}))).await;
    assert_eq!(status, 200, "{rotated}");
    let setup = &rotated["webhook_setup"];
    let second = header_of(setup);
    assert_ne!(second, first);
    assert!(second.starts_with("Bearer whsec_") && second.len() == "Bearer whsec_".len() + 48);
    assert_eq!(setup["provisioned"], true);
    assert_eq!(
        setup["revenuecat_webhook_id"], webhook_id,
        "updated, not recreated"
    );
    assert_eq!(setup["webhook_url"], webhook_url(&app));
    assert_eq!(rotated["grace_period_seconds"], 3600);
    let until = rcsync::timestamp::iso_ms(app.store.now_ms() + 3_600_000);
    assert_eq!(rotated["previous_secret_valid_until"], until.as_str());
    let held = revenuecat_webhooks(&app);
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].authorization_header.as_deref(),
        Some(second.as_str())
    );

    // During the grace both are accepted; after it only the new one.
    assert_eq!(delivery_status(&app, &first, "evt-1").await, 200);
    assert_eq!(delivery_status(&app, &second, "evt-2").await, 200);
    clock.advance(Duration::from_secs(3599));
    assert_eq!(delivery_status(&app, &first, "evt-3").await, 200);
    clock.advance(Duration::from_secs(1));
    assert_eq!(delivery_status(&app, &first, "evt-4").await, 401);
    assert_eq!(delivery_status(&app, &second, "evt-5").await, 200);

    // No body: the default day. A rotation during a grace ends that grace.
    let (status, rotated) = rotate(&app, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["grace_period_seconds"], 86400);
    let third = header_of(&rotated["webhook_setup"]);
    let (_, rotated) = rotate(&app, Some(json!({}))).await;
    let fourth = header_of(&rotated["webhook_setup"]);
    assert_eq!(delivery_status(&app, &second, "evt-6").await, 401);
    assert_eq!(delivery_status(&app, &third, "evt-7").await, 200);
    assert_eq!(delivery_status(&app, &fourth, "evt-8").await, 200);
    clock.advance(Duration::from_secs(86400));
    assert_eq!(delivery_status(&app, &third, "evt-9").await, 401);

    // Grace 0 revokes at once.
    let (_, rotated) = rotate(&app, Some(json!({"grace_period_seconds": 0}))).await;
    assert_eq!(rotated["previous_secret_valid_until"], Value::Null);
    let fifth = header_of(&rotated["webhook_setup"]);
    assert_eq!(delivery_status(&app, &fourth, "evt-10").await, 401);
    assert_eq!(delivery_status(&app, &fifth, "evt-11").await, 200);
    assert_eq!(revenuecat_webhooks(&app).len(), 1);
    assert_eq!(
        revenuecat_webhooks(&app)[0].authorization_header.as_deref(),
        Some(fifth.as_str())
    );
}

/// A second process on the same database learns of a rotation, or of an integration created
/// elsewhere, from the first delivery that presents the new header, not when its 5 s secret
/// cache expires: a header it does not know makes it read the secrets again (at most once a
/// second per project, on the clock).
#[tokio::test]
async fn another_process_accepts_a_rotated_secret_and_a_new_integration_at_once() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let other =
        spawn_second_process_app(&app, rcsync::clock::SharedClock::new(clock.clone())).await;
    let deliver_to_other = |header: String, event_id: &'static str| {
        let request = app
            .client
            .post(format!("{other}/v1/webhooks/revenuecat/{}", app.project_id))
            .header("Authorization", header)
            .json(&test_event(event_id));
        async move { status_json(request.send().await.unwrap()).await.0 }
    };

    // Before the integration exists the other process answers 404, and remembers it.
    let unknown = "Bearer whsec_000000000000000000000000000000000000000000000000".to_owned();
    assert_eq!(deliver_to_other(unknown, "evt-0").await, 404);
    let (status, created) = create(&app).await;
    assert_eq!(status, 201, "{created}");
    let first = header_of(&created["webhook_setup"]);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        deliver_to_other(first.clone(), "evt-1").await,
        200,
        "new integration"
    );

    let (status, rotated) = rotate(&app, Some(json!({"grace_period_seconds": 3600}))).await;
    assert_eq!(status, 200, "{rotated}");
    let second = header_of(&rotated["webhook_setup"]);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        deliver_to_other(second.clone(), "evt-2").await,
        200,
        "rotated"
    );
    assert_eq!(deliver_to_other(first.clone(), "evt-3").await, 200, "grace");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        deliver_to_other(first, "evt-4").await,
        401,
        "after the grace"
    );
    assert_eq!(deliver_to_other(second, "evt-5").await, 200);
}

#[tokio::test]
async fn a_rotation_revenuecat_refuses_is_reported_and_the_old_header_holds_for_the_grace() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let (_, created) = create(&app).await;
    let first = header_of(&created["webhook_setup"]);

    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    let (status, rotated) = rotate(&app, Some(json!({"grace_period_seconds": 600}))).await;
    assert_eq!(status, 200, "{rotated}");
    let setup = &rotated["webhook_setup"];
    assert_eq!(setup["provisioned"], false, "{setup}");
    assert_eq!(setup["revenuecat_status"], 403);
    assert_eq!(
        revenuecat_webhooks(&app)[0].authorization_header.as_deref(),
        Some(first.as_str()),
        "RevenueCat still sends the old header"
    );
    let (_, shown) = show_webhook(&app).await;
    assert_eq!(shown["authorization_header_status"], "previous", "{shown}");
    let until = rotated["previous_secret_valid_until"].clone();
    assert_eq!(shown["previous_secret_valid_until"], until);
    assert_eq!(shown["points_to_rcsync"], true);
    assert_eq!(delivery_status(&app, &first, "evt-1").await, 200);

    clock.advance(Duration::from_secs(600));
    let (_, shown) = show_webhook(&app).await;
    assert_eq!(shown["authorization_header_status"], "revoked", "{shown}");
    assert_eq!(shown["points_to_rcsync"], false);
    assert_eq!(delivery_status(&app, &first, "evt-2").await, 401);
    let manual = header_of(setup);
    assert_eq!(
        delivery_status(&app, &manual, "evt-3").await,
        200,
        "pasted by hand"
    );
}

#[tokio::test]
async fn concurrent_rotations_leave_one_webhook_holding_the_secret_in_force() {
    let app = spawn_app().await;
    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    let (_, created) = create(&app).await;
    assert_eq!(created["webhook_setup"]["provisioned"], false);
    app.fake.restore_permissions();

    let app = &app;
    let rotations = futures::future::join_all(
        (0..5).map(|_| rotate(app, Some(json!({"grace_period_seconds": 0})))),
    )
    .await;
    let mut headers = Vec::new();
    for (status, rotated) in rotations {
        assert_eq!(status, 200, "{rotated}");
        headers.push(header_of(&rotated["webhook_setup"]));
    }
    let held = revenuecat_webhooks(app);
    assert_eq!(
        held.len(),
        1,
        "one webhook, however the rotations interleaved: {held:?}"
    );
    let at_revenuecat = held[0].authorization_header.clone().unwrap();
    for (n, header) in headers.iter().enumerate() {
        let expected = if *header == at_revenuecat { 200 } else { 401 };
        let status = delivery_status(app, header, &format!("evt-{n}")).await;
        assert_eq!(
            status, expected,
            "only the header RevenueCat holds is in force"
        );
    }
    assert!(headers.contains(&at_revenuecat));
}

#[tokio::test]
async fn rotation_and_inspection_are_authorized_and_validated() {
    let app = spawn_app().await;
    let rotate_url = app.project_url("/integrations/revenuecat/webhook-secret/rotate");
    let webhook = app.project_url("/integrations/revenuecat/webhook");
    let (status, body) = rotate(&app, None).await;
    assert_eq!((status, body["error"].is_string()), (404, true), "{body}");
    let (status, _) = show_webhook(&app).await;
    assert_eq!(status, 404, "no integration");
    create(&app).await;

    let member = jwt(
        json!([{"id": app.team_id, "role": "member"}]),
        Some(in_one_hour()),
    );
    let admin = jwt(
        json!([{"id": app.team_id, "role": "admin"}]),
        Some(in_one_hour()),
    );
    let as_member = app.client.post(&rotate_url).bearer_auth(&member).send();
    assert_eq!(as_member.await.unwrap().status(), 403);
    let read = app.client.get(&webhook).bearer_auth(&member).send();
    assert_eq!(read.await.unwrap().status(), 200, "members may read");
    let reader = app
        .create_api_key(&app.team_id, &[Permission::IntegrationsRead])
        .await;
    let as_reader = app.client.post(&rotate_url).bearer_auth(&reader).send();
    let (status, body) = status_json(as_reader.await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "Missing permission: integrations:write");
    let as_admin = app.client.post(&rotate_url).bearer_auth(&admin).send();
    assert_eq!(as_admin.await.unwrap().status(), 200);
    let anonymous = app.client.post(&rotate_url).send();
    assert_eq!(anonymous.await.unwrap().status(), 401);
    let (other_team, _) = app.create_other_team().await;
    let stranger = app.create_api_key(&other_team, &Permission::ALL).await;
    let as_stranger = app.client.post(&rotate_url).bearer_auth(&stranger).send();
    assert_eq!(as_stranger.await.unwrap().status(), 404);

    for bad in [
        json!({"grace_period_seconds": -1}),
        json!({"grace_period_seconds": 604_801}),
        json!({"grace_period_seconds": "60"}),
        json!({"grace_period_seconds": 1.5}),
        json!({"grace_period_seconds": 1e30}),
        json!({"grace": 60}),
        json!([60]),
    ] {
        let (status, body) = rotate(&app, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}");
    }
    let malformed = app
        .client
        .post(&rotate_url)
        .bearer_auth(&app.api_key)
        .header("Content-Type", "application/json")
        .body("{\"grace_period_seconds\":")
        .send();
    assert_eq!(malformed.await.unwrap().status(), 400);
    let not_json = app
        .client
        .post(&rotate_url)
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("grace_period_seconds=60")
        .send();
    assert_eq!(not_json.await.unwrap().status(), 415);
    let (status, body) = rotate(&app, Some(json!({"grace_period_seconds": 604_800}))).await;
    assert_eq!(
        (status, &body["grace_period_seconds"]),
        (200, &json!(604_800))
    );
    let wrong_method = app
        .client
        .delete(&rotate_url)
        .bearer_auth(&app.api_key)
        .send();
    assert_eq!(wrong_method.await.unwrap().status(), 405);
}

#[tokio::test]
async fn no_secret_is_stored_in_any_table() {
    let app = spawn_app().await;
    let (_, created) = create(&app).await;
    let mut secrets = vec![app.fake.api_key(), header_of(&created["webhook_setup"])];
    for grace in [json!({"grace_period_seconds": 3600}), json!({})] {
        let (status, rotated) = rotate(&app, Some(grace)).await;
        assert_eq!(status, 200);
        secrets.push(header_of(&rotated["webhook_setup"]));
    }
    let last = secrets.last().unwrap().clone();
    assert_eq!(delivery_status(&app, &last, "evt-1").await, 200);
    show_webhook(&app).await;
    app.fake.revoke_permission(INTEGRATIONS_WRITE);
    delete(&app).await;

    let dump = raw_database_dump(&app).await;
    assert!(dump.contains(&app.project_id), "the dump holds the data");
    for secret in &secrets {
        let bare = secret.trim_start_matches("Bearer ");
        assert!(!dump.contains(bare), "a secret is stored in plaintext");
    }
    assert!(!dump.contains("whsec_"), "no webhook secret of any form");
}

/// The real binary at `debug` log level: what it logs through create, rotation, inspection,
/// deliveries and delete holds no secret.
#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let db = crate::helpers::TestDatabase::create().await;
    let fake = fake_revenuecat::FakeRevenueCat::start(Default::default()).unwrap();
    let (mut server, base) = start_server_with(&db, &fake, 1, &[("RUST_LOG", "debug")]).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let client = reqwest::Client::new();
    let project = format!(
        "{base}/v1/projects/{}/integrations/revenuecat",
        tenant.project_id
    );
    let (status, rotated) = status_json(
        client
            .post(format!("{project}/webhook-secret/rotate"))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["webhook_setup"]["provisioned"], true);
    let new_header = header_of(&rotated["webhook_setup"]);
    for (n, header) in [&tenant.webhook_auth, &new_header].into_iter().enumerate() {
        let response = client
            .post(&tenant.webhook_url)
            .header("Authorization", header)
            .json(&test_event(&format!("evt-{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let show = client
        .get(format!("{project}/webhook"))
        .bearer_auth(&tenant.api_key);
    assert_eq!(show.send().await.unwrap().status(), 200);
    let delete = client.delete(&project).bearer_auth(&tenant.api_key);
    assert_eq!(delete.send().await.unwrap().status(), 200);
    server.kill9();

    let log = std::fs::read_to_string(db.dir.path().join("rcsync-1.log")).unwrap();
    assert!(
        log.contains("RevenueCat webhook provisioned"),
        "logging was on"
    );
    for secret in [
        tenant.webhook_auth.trim_start_matches("Bearer "),
        new_header.trim_start_matches("Bearer "),
        fake.api_key().as_str(),
        tenant.api_key.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret is in the log");
    }
    assert!(!log.contains("whsec_"), "no webhook secret of any form");
}
