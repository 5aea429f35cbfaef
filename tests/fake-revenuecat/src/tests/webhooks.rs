//! Seed 000: webhook integrations, as RevenueCat serves them.

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn webhook_integrations_crud() {
    let c = Client::new(config(1));
    let base = c.project_url("/integrations/webhooks");
    let post = |url: String, body: Value| {
        c.http
            .post(url)
            .bearer_auth(c.fake.api_key())
            .json(&body)
            .send()
    };
    let r = post(
        base.clone(),
        json!({
            "name": "rcsync",
            "url": "https://example.com/webhooks/revenuecat",
            "authorization_header": "Bearer s3cret",
            "environment": "production",
            "event_types": ["initial_purchase", "renewal"],
        }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["object"], "webhook_integration");
    assert!(created.get("authorization_header").is_none());
    assert_eq!(created["app_id"], Value::Null);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.fake.state().webhook_integrations()[0]
            .authorization_header
            .as_deref(),
        Some("Bearer s3cret")
    );

    // validation
    for bad in [
        json!({"name": "x", "url": "https://e.com", "bogus": 1}),
        json!({"name": "x", "url": "https://e.com", "event_types": ["INITIAL_PURCHASE"]}),
        json!({"name": "x", "url": "https://e.com", "environment": "PRODUCTION"}),
        json!({"name": "x"}),
        json!({"name": "x", "url": "not a url"}),
    ] {
        let r = post(base.clone(), bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "parameter_error", "{bad}");
    }

    // update is POST on the item
    let item = format!("{base}/{id}");
    let r = post(
        item.clone(),
        json!({"environment": null, "name": "renamed"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["environment"], Value::Null);
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["event_types"], json!(["initial_purchase", "renewal"]));
    let (_, list) = c.get_json(&base).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (s, got) = c.get_json(&item).await;
    assert_eq!(s, 200);
    assert_eq!(got["id"], id.as_str());
    let r = c
        .http
        .delete(&item)
        .bearer_auth(c.fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id.as_str());
    assert!(v["deleted_at"].is_i64());
    assert_eq!(c.get(&item).await.status(), 404);
    // integrations count against the project configuration domain
    assert!(c
        .fake
        .request_log()
        .iter()
        .all(|r| r.domain == Some(RateLimitDomain::ProjectConfiguration)));
    c.fake.stop().await;
}

fn hook(n: usize) -> Value {
    json!({"name": format!("hook {n}"), "url": format!("https://example.com/hooks/{n}")})
}

#[tokio::test]
async fn webhook_list_pages_with_limit_starting_after_and_a_null_last_next_page() {
    let c = Client::new(config(1));
    let base = c.project_url("/integrations/webhooks");
    let mut created = HashSet::new();
    for n in 0..21 {
        let (s, v) = c.post_json(&base, &hook(n)).await;
        assert_eq!(s, 201, "{v}");
        created.insert(v["id"].as_str().unwrap().to_string());
    }
    // default limit 20
    let (s, first) = c.get_json(&base).await;
    assert_eq!(s, 200);
    assert_eq!(first["object"], "list");
    assert_eq!(
        first["url"],
        format!("/v2/projects/{DEFAULT_PROJECT_ID}/integrations/webhooks")
    );
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    let next = first["next_page"].as_str().unwrap();
    assert!(next.contains("starting_after="), "{next}");
    let (_, last) = c.get_json(next).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["next_page"].is_null() && last.get("next_page").is_some());

    let (items, pages) = c.collect(&format!("{base}?limit=4")).await;
    assert_eq!(pages, 6);
    // `limit` outside 1–100 is clamped, not rejected; a non-integer is still a 400
    let (s, all) = c.get_json(&format!("{base}?limit=500")).await;
    assert_eq!(
        (s, all["items"].as_array().unwrap().len()),
        (200, 21),
        "{all}"
    );
    let (s, one) = c.get_json(&format!("{base}?limit=0")).await;
    assert_eq!(
        (s, one["items"].as_array().unwrap().len()),
        (200, 1),
        "{one}"
    );
    assert!(
        one["next_page"].as_str().unwrap().contains("limit=1"),
        "{one}"
    );
    let (s, bad) = c.get_json(&format!("{base}?limit=many")).await;
    assert_eq!((s, bad["param"].as_str()), (400, Some("limit")), "{bad}");
    let listed: HashSet<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, created);
    for i in &items {
        assert_eq!(i["object"], "webhook_integration");
        assert!(i.get("authorization_header").is_none(), "{i}");
    }
    // webhook integrations are Project Configuration requests
    assert!(c
        .fake
        .request_log()
        .iter()
        .all(|r| r.domain == Some(RateLimitDomain::ProjectConfiguration)));
    c.fake.stop().await;
}

#[tokio::test]
async fn authorization_header_is_write_only_and_readable_through_the_test_handle() {
    let c = Client::new(config(1));
    let base = c.project_url("/integrations/webhooks");
    let before = chrono::Utc::now().timestamp_millis();
    let (s, created) = c
        .post_json(
            &base,
            &json!({"name": "rcsync", "url": "https://rcsync.example/v1/webhooks/revenuecat/p1",
                    "authorization_header": "Bearer whsec_first", "environment": "sandbox",
                    "app_id": "app1a2b3c4d"}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["environment"], "sandbox");
    assert_eq!(created["app_id"], "app1a2b3c4d");
    assert_eq!(created["project_id"], DEFAULT_PROJECT_ID);
    assert_eq!(created["event_types"], Value::Null);
    let created_at = created["created_at"].as_i64().unwrap();
    assert!(created_at >= before && created_at <= chrono::Utc::now().timestamp_millis());
    assert!(created.get("authorization_header").is_none());
    assert_eq!(
        c.fake.webhook_authorization_header(&id).as_deref(),
        Some("Bearer whsec_first")
    );

    let item = format!("{base}/{id}");
    let (s, updated) = c
        .post_json(
            &item,
            &json!({"authorization_header": "Bearer whsec_second", "event_types": ["renewal"]}),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert!(updated.get("authorization_header").is_none());
    assert_eq!(updated["created_at"], created_at);
    assert_eq!(
        c.fake.webhook_authorization_header(&id).as_deref(),
        Some("Bearer whsec_second")
    );
    let (_, got) = c.get_json(&item).await;
    assert!(got.get("authorization_header").is_none());
    let (s, _) = c
        .post_json(&item, &json!({"authorization_header": null}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(c.fake.webhook_authorization_header(&id), None);
    assert_eq!(c.fake.webhook_integrations().len(), 1);

    // the delete answer names the deleted object and when
    let (s, deleted) = c.delete_json(&item).await;
    assert_eq!(s, 200);
    assert_eq!(deleted["object"], "webhook_integration");
    assert_eq!(deleted["id"], id.as_str());
    assert!(deleted["deleted_at"].as_i64().unwrap() >= created_at);
    let (s, v) = c.delete_json(&item).await;
    assert_eq!((s, v["type"].as_str()), (404, Some("resource_missing")));
    assert!(c.fake.webhook_integrations().is_empty());
    c.fake.stop().await;
}

#[tokio::test]
async fn bad_webhook_bodies_get_revenuecat_400s_naming_the_parameter() {
    let c = Client::new(config(1));
    let base = c.project_url("/integrations/webhooks");
    let ok = |extra: Value| {
        let mut b = json!({"name": "x", "url": "https://e.com/h"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for (body, param) in [
        (
            ok(json!({"event_types": ["initial_purchase", "bogus_event"]})),
            "event_types",
        ),
        (ok(json!({"event_types": ["RENEWAL"]})), "event_types"),
        (ok(json!({"event_types": "renewal"})), "event_types"),
        (ok(json!({"environment": "staging"})), "environment"),
        (ok(json!({"environment": ""})), "environment"),
        (ok(json!({"secret": "x"})), "secret"),
        (ok(json!({"app_id": 7})), "app_id"),
        (json!({"url": "https://e.com/h"}), "name"),
        (json!({"name": "x", "url": "ftp://e.com"}), "url"),
    ] {
        let (s, v) = c.post_json(&base, &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["type"], "parameter_error", "{body}");
        assert_eq!(v["param"], param, "{body}");
        assert_eq!(v["retryable"], false);
    }
    // every documented lower-case event type is accepted
    let (s, v) = c
        .post_json(
            &base,
            &ok(json!({"event_types": crate::webhooks::EVENT_TYPES, "environment": "production"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // a body that is not JSON
    let r = c
        .http
        .post(&base)
        .bearer_auth(c.fake.api_key())
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "invalid_request");
    // updating an unknown integration
    let (s, v) = c
        .post_json(&format!("{base}/wh_nope"), &json!({"name": "y"}))
        .await;
    assert_eq!((s, v["type"].as_str()), (404, Some("resource_missing")));
    c.fake.stop().await;
}

#[tokio::test]
async fn a_key_without_the_integrations_permission_gets_403() {
    let c = Client::new(config(2));
    let base = c.project_url("/integrations/webhooks");
    c.fake
        .revoke_permission("project_configuration:integrations:read_write");
    let (s, v) = c.post_json(&base, &hook(1)).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["object"], "error");
    assert_eq!(v["type"], "authorization_error");
    assert_eq!(v["retryable"], false);
    assert_eq!(v["doc_url"], "https://errors.rev.cat/authorization-error");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("project_configuration:integrations:read_write"));
    // reading needs only :read, which the key still has; customers are another resource
    assert_eq!(c.get(&base).await.status(), 200);
    assert_eq!(
        c.get(&c.project_url("/customers/user_000001"))
            .await
            .status(),
        200
    );
    c.fake
        .revoke_permission("project_configuration:integrations:read");
    let (s, v) = c.get_json(&base).await;
    assert_eq!((s, v["type"].as_str()), (403, Some("authorization_error")));

    // one key only
    c.fake.restore_permissions();
    c.fake.add_api_key("sk_limited");
    c.fake.revoke_key_permission(
        "sk_limited",
        "project_configuration:integrations:read_write",
    );
    let limited = c
        .http
        .post(&base)
        .bearer_auth("sk_limited")
        .json(&hook(2))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 403);
    let other = c
        .http
        .post(&base)
        .bearer_auth(DEFAULT_API_KEY)
        .json(&hook(3))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    assert!(c
        .fake
        .webhook_integrations()
        .iter()
        .all(|w| w.name == "hook 3"));
    c.fake.stop().await;
}

#[tokio::test]
async fn an_unreachable_prefix_times_clients_out_until_cleared() {
    let c = Client::new(config(2));
    let base = c.project_url("/integrations/webhooks");
    let prefix = format!("/v2/projects/{DEFAULT_PROJECT_ID}/integrations");
    c.fake.set_unreachable(&prefix);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient
        .post(&base)
        .bearer_auth(c.fake.api_key())
        .json(&hook(1))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err:?}");
    // other paths answer; the lost request reached nothing and is not logged
    assert_eq!(
        c.get(&c.project_url("/customers/user_000001"))
            .await
            .status(),
        200
    );
    assert_eq!(
        c.fake.unanswered_requests(),
        vec![format!("{prefix}/webhooks")]
    );
    assert!(c
        .fake
        .request_log()
        .iter()
        .all(|r| !r.path_and_query.starts_with(&prefix)));
    assert!(c.fake.webhook_integrations().is_empty());
    c.fake.clear_unreachable();
    // the lost request never takes effect, not even once the path is reachable again
    c.fake.shared.network.until_none_unreachable_waiting().await;
    assert!(c.fake.webhook_integrations().is_empty());
    let (s, _) = c.post_json(&base, &hook(2)).await;
    assert_eq!(s, 201);
    assert_eq!(c.fake.webhook_integrations().len(), 1);
    c.fake.stop().await;
}
