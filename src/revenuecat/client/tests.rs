//! Client behaviour against a scripted local server (real sockets, real time).

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::json;

use super::test_server::{Recorded, Reply, TestServer};
use super::{parse_retry_after, ClientConfig, RevenueCatClient, MAX_RATE_LIMIT_WAIT};
use crate::revenuecat::customer_data::FetchPlan;
use crate::revenuecat::error::RevenueCatError;
use crate::revenuecat::model::{NewWebhookIntegration, WebhookIntegrationUpdate};

fn key() -> SecretString {
    SecretString::from("sk_test_secret_key")
}

fn client_for(server: &TestServer, tweak: impl FnOnce(&mut ClientConfig)) -> RevenueCatClient {
    let mut config = ClientConfig::new(server.base_url.clone());
    config.base_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(50);
    config.customer_rate_limit_per_min = 60_000;
    config.config_rate_limit_per_min = 60_000;
    tweak(&mut config);
    RevenueCatClient::new(config).expect("client")
}

fn customer_json(id: &str) -> serde_json::Value {
    json!({"object": "customer", "id": id, "project_id": "proj1", "first_seen_at": 1,
           "last_seen_at": null,
           "active_entitlements": {"object": "list", "items": [], "next_page": null, "url": "/x"}})
}

fn list(items: Vec<serde_json::Value>, next_page: Option<&str>) -> serde_json::Value {
    json!({"object": "list", "items": items, "next_page": next_page, "url": "/v2/x"})
}

#[tokio::test]
async fn follows_next_page_verbatim_with_an_anonymous_cursor() {
    const NEXT: &str = "/v2/projects/proj1/customers?starting_after=$RCAnonymousID:abc&limit=2";
    let server = TestServer::start(|index, _| match index {
        0 => Reply::json(
            200,
            list(vec![customer_json("$RCAnonymousID:abc")], Some(NEXT)),
        ),
        _ => Reply::json(
            200,
            json!({"object": "list", "items": [customer_json("u2")], "url": "/v2/x"}),
        ),
    })
    .await;
    let client = client_for(&server, |_| {});
    let first = client
        .list_customers_page(&key(), "proj1", 2, None)
        .await
        .unwrap();
    assert_eq!(first.next_page(), Some(NEXT));
    let second = client
        .list_customers_page(&key(), "proj1", 2, first.next_page())
        .await
        .unwrap();
    assert_eq!(second.next_page(), None);
    assert_eq!(second.items[0].id, "u2");
    assert_eq!(
        server.targets(),
        ["/v2/projects/proj1/customers?limit=2", NEXT]
    );
}

#[tokio::test]
async fn list_subscriptions_encodes_the_id_and_follows_all_pages() {
    const NEXT: &str =
        "/v2/projects/proj1/customers/%24RCAnonymousID%3Aabc/subscriptions?starting_after=sub1";
    let server = TestServer::start(|index, _| match index {
        0 => Reply::json(200, list(vec![json!({"id": "sub1"})], Some(NEXT))),
        _ => Reply::json(200, list(vec![json!({"id": "sub2"})], None)),
    })
    .await;
    let client = client_for(&server, |config| config.page_limit = 1);
    let subscriptions = client
        .list_subscriptions(&key(), "proj1", "$RCAnonymousID:abc")
        .await
        .unwrap();
    assert_eq!(subscriptions.len(), 2);
    assert_eq!(
        server.targets(),
        [
            "/v2/projects/proj1/customers/%24RCAnonymousID%3Aabc/subscriptions?limit=1",
            NEXT
        ]
    );
    let request = &server.requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk_test_secret_key")
    );
}

#[tokio::test]
async fn a_repeated_next_page_is_an_error_not_a_loop() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            200,
            list(vec![], Some("/v2/projects/p/products?starting_after=x")),
        )
    })
    .await;
    let client = client_for(&server, |_| {});
    let error = client.list_products(&key(), "p").await.unwrap_err();
    assert!(
        matches!(error, RevenueCatError::InvalidRequest(_)),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retries_a_500_then_succeeds() {
    let server = TestServer::start(|index, _| match index {
        0 => Reply::json(
            500,
            json!({"type": "server_error", "message": "boom", "retryable": true}),
        ),
        _ => Reply::json(200, customer_json("u1")),
    })
    .await;
    let client = client_for(&server, |_| {});
    let customer = client.get_customer(&key(), "proj1", "u1").await.unwrap();
    assert_eq!(customer.unwrap().id, "u1");
    let metrics = client.metrics();
    assert_eq!((metrics.calls, metrics.retries, metrics.errors), (2, 1, 0));
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = TestServer::start(|_, _| Reply::json(503, json!({"message": "down"}))).await;
    let client = client_for(&server, |config| config.max_retries = 2);
    let error = client
        .get_customer(&key(), "proj1", "u1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RevenueCatError::RetriesExhausted { attempts: 3, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(503));
    assert_eq!(error.message(), "down");
    assert_eq!(client.metrics().errors, 1);
}

#[tokio::test]
async fn honours_retry_after_on_429_and_slows_the_shared_limiter() {
    let server = TestServer::start(|index, _| match index {
        0 => Reply::json(
            429,
            json!({"type": "rate_limit_error", "message": "Rate limit exceeded", "retryable": true, "backoff_ms": 200}),
        )
        .header("Retry-After", "1"),
        _ => Reply::json(200, customer_json("u1")),
    })
    .await;
    let client = client_for(&server, |_| {});
    let started = Instant::now();
    let customer = client.get_customer(&key(), "proj1", "u1").await.unwrap();
    assert!(customer.is_some());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let metrics = client.metrics();
    assert_eq!(
        (metrics.calls, metrics.rate_limited, metrics.retries),
        (2, 1, 1)
    );
}

#[test]
fn retry_after_is_read_in_both_forms() {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let in_90_s = httpdate::fmt_http_date(now + Duration::from_secs(90));
    let an_hour_ago = httpdate::fmt_http_date(now - Duration::from_secs(3600));
    let cases: [(&str, Option<Duration>); 8] = [
        ("7", Some(Duration::from_secs(7))),
        (" 1.5 ", Some(Duration::from_millis(1500))),
        ("0", Some(Duration::ZERO)),
        (&in_90_s, Some(Duration::from_secs(90))),
        (&an_hour_ago, Some(Duration::ZERO)),
        ("86400", Some(MAX_RATE_LIMIT_WAIT)),
        ("-3", None),
        ("soon", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
    }
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(Duration::ZERO),
        "RFC 9110's example date"
    );
}

#[tokio::test]
async fn an_http_date_retry_after_holds_the_key_until_that_date() {
    let server = TestServer::start(|index, _| match index {
        0 => {
            // Whole seconds only: two seconds ahead waits between one and two.
            let date =
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
            Reply::json(429, json!({"message": "Rate limit exceeded"})).header("Retry-After", &date)
        }
        _ => Reply::json(200, customer_json("u1")),
    })
    .await;
    let client = client_for(&server, |_| {});
    let started = Instant::now();
    let customer = client.get_customer(&key(), "proj1", "u1").await.unwrap();
    assert!(customer.is_some());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert_eq!(client.metrics().rate_limited, 1);
}

#[tokio::test]
async fn one_call_waits_at_most_max_rate_limited_wait_for_429s() {
    let server = TestServer::start(|_, _| {
        Reply::json(429, json!({"message": "Rate limit exceeded"})).header("Retry-After", "100")
    })
    .await;
    let client = client_for(&server, |config| {
        config.max_rate_limited_wait = Duration::from_secs(10)
    });
    // A wait beyond the cap fails the call at once instead of sleeping 100 s first.
    let error = tokio::time::timeout(
        Duration::from_secs(30),
        client.get_customer(&key(), "proj1", "u1"),
    )
    .await
    .expect("the call gave up instead of waiting")
    .unwrap_err();
    assert!(
        matches!(error, RevenueCatError::RetriesExhausted { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(429));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn the_429_waits_of_one_call_add_up_to_the_cap() {
    let server = TestServer::start(|_, _| {
        Reply::json(429, json!({"message": "Rate limit exceeded"})).header("Retry-After", "0.2")
    })
    .await;
    let client = client_for(&server, |config| {
        config.max_rate_limited_wait = Duration::from_millis(500)
    });
    let error = client
        .get_customer(&key(), "proj1", "u1")
        .await
        .unwrap_err();
    // 0.2 + 0.2 fit the 0.5 s cap; the third 429 would exceed it.
    assert!(
        matches!(error, RevenueCatError::RetriesExhausted { attempts: 3, .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn an_oversized_answer_is_refused_not_buffered() {
    let server = TestServer::start(|_, _| {
        let mut reply = Reply::json(200, json!({}));
        reply.body = format!("\"{}\"", "x".repeat(17 * 1024 * 1024));
        reply
    })
    .await;
    let client = client_for(&server, |_| {});
    let error = client.list_projects(&key()).await.unwrap_err();
    assert!(
        matches!(&error, RevenueCatError::Decode(message) if message.contains("larger than 16 MiB")),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn rate_limit_retries_have_their_own_cap() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            429,
            json!({"message": "Rate limit exceeded", "backoff_ms": 1}),
        )
        .header("Retry-After", "0")
    })
    .await;
    let client = client_for(&server, |config| {
        config.max_retries = 0;
        config.max_rate_limited_retries = 3;
    });
    let error = client
        .get_customer(&key(), "proj1", "u1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RevenueCatError::RetriesExhausted { attempts: 4, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(429));
}

#[tokio::test]
async fn unknown_customer_is_none() {
    let server = TestServer::start(|_, _| {
        Reply::json(404, json!({"type": "resource_missing", "message": "Customer not found", "retryable": false}))
    })
    .await;
    let client = client_for(&server, |_| {});
    assert!(client
        .get_customer(&key(), "proj1", "ghost")
        .await
        .unwrap()
        .is_none());
    assert!(client
        .fetch_customer_data(&key(), "proj1", "ghost", FetchPlan::default())
        .await
        .unwrap()
        .is_none());
    assert_eq!(client.metrics().errors, 0);
}

#[tokio::test]
async fn unauthorized_carries_revenuecats_message() {
    let server = TestServer::start(|_, _| {
        Reply::json(401, json!({"type": "authentication_error", "message": "Invalid API key.", "retryable": false}))
    })
    .await;
    let client = client_for(&server, |_| {});
    let error = client.list_projects(&key()).await.unwrap_err();
    assert!(error.is_unauthorized());
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.message(), "Invalid API key.");
    assert_eq!(server.requests().len(), 1, "401 is not retried");
    assert!(!format!("{error} {error:?} {client:?}").contains("sk_test_secret"));
}

#[tokio::test]
async fn other_4xx_fail_immediately_with_message() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            422,
            json!({"type": "unprocessable_entity_error", "message": "nope", "param": "x"}),
        )
    })
    .await;
    let client = client_for(&server, |_| {});
    let error = client
        .get_customer(&key(), "proj1", "u1")
        .await
        .unwrap_err();
    match error {
        RevenueCatError::Api {
            status,
            message,
            error_type,
            ..
        } => {
            assert_eq!((status, message.as_str()), (422, "nope"));
            assert_eq!(error_type.as_deref(), Some("unprocessable_entity_error"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_rejected_page_size_falls_back_to_the_default() {
    let server = TestServer::start(|_, request: &Recorded| {
        if request.target.contains("limit=") {
            Reply::json(
                400,
                json!({"type": "parameter_error", "param": "limit", "message": "limit too large"}),
            )
        } else {
            Reply::json(
                200,
                list(vec![json!({"id": "entl1", "lookup_key": "pro"})], None),
            )
        }
    })
    .await;
    let client = client_for(&server, |config| config.page_limit = 10_000);
    let entitlements = client.list_entitlements(&key(), "proj1").await.unwrap();
    assert_eq!(entitlements[0].lookup_key, "pro");
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = TestServer::start(|index, _| {
        let reply = Reply::json(200, customer_json("u1"));
        if index == 0 {
            reply.delayed(Duration::from_secs(3))
        } else {
            reply
        }
    })
    .await;
    let client = client_for(&server, |config| {
        config.request_timeout = Duration::from_millis(300)
    });
    let customer = client.get_customer(&key(), "proj1", "u1").await.unwrap();
    assert!(customer.is_some());
    assert_eq!(client.metrics().calls, 2);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let base_url = server.base_url.clone();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut config = ClientConfig::new(base_url);
    config.base_backoff = Duration::from_millis(5);
    config.max_retries = 1;
    let client = RevenueCatClient::new(config).unwrap();
    let error = client.get_customer(&key(), "p", "u").await.unwrap_err();
    assert!(error.is_upstream_failure(), "{error:?}");
    assert_eq!(client.metrics().calls, 2);
}

fn subscription_json(id: &str, entitlement: &str, gives_access: bool) -> serde_json::Value {
    json!({"id": id, "product_id": "prod_m", "status": "active", "gives_access": gives_access,
           "auto_renewal_status": "will_renew", "current_period_starts_at": 0,
           "current_period_ends_at": 2_592_000_000i64,
           "entitlements": {"items": [{"id": entitlement, "lookup_key": "pro"}], "next_page": null}})
}

#[tokio::test]
async fn fetch_customer_data_uses_the_canonical_id_and_skips_purchases_when_explained_and_revenue_is_off(
) {
    let server = TestServer::start(|_, request: &Recorded| {
        if request.target.contains("/subscriptions") {
            Reply::json(
                200,
                list(vec![subscription_json("sub1", "entl_pro", true)], None),
            )
        } else {
            let mut customer = customer_json("canonical-7");
            customer["active_entitlements"]["items"] =
                json!([{"entitlement_id": "entl_pro", "expires_at": 2_592_000_000i64}]);
            Reply::json(200, customer)
        }
    })
    .await;
    let client = client_for(&server, |_| {});
    let data = client
        .fetch_customer_data(
            &key(),
            "proj1",
            "$RCAnonymousID:alias",
            FetchPlan::new(false),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data.customer_id, "canonical-7");
    assert!(data.purchases.is_none());
    assert_eq!(
        server.targets(),
        [
            "/v2/projects/proj1/customers/%24RCAnonymousID%3Aalias",
            "/v2/projects/proj1/customers/canonical-7/subscriptions?limit=100",
        ]
    );
}

#[tokio::test]
async fn fetch_customer_data_fetches_purchases_for_unexplained_entitlements() {
    let server = TestServer::start(|_, request: &Recorded| {
        if request.target.contains("/subscriptions") {
            Reply::json(
                200,
                list(vec![subscription_json("sub1", "entl_other", false)], None),
            )
        } else if request.target.contains("/purchases") {
            Reply::json(
                200,
                list(vec![json!({"id": "purch1", "status": "owned"})], None),
            )
        } else {
            let mut customer = customer_json("u1");
            customer["active_entitlements"]["items"] =
                json!([{"entitlement_id": "entl_life", "expires_at": null}]);
            Reply::json(200, customer)
        }
    })
    .await;
    let client = client_for(&server, |_| {});
    let data = client
        .fetch_customer_data(&key(), "proj1", "u1", FetchPlan::new(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data.purchases.map(|p| p.len()), Some(1));
    assert_eq!(client.metrics().calls, 3);
}

#[tokio::test]
async fn fetch_customer_data_falls_back_when_subscriptions_keep_failing() {
    let server = TestServer::start(|_, request: &Recorded| {
        if request.target.contains("/subscriptions") {
            Reply::json(500, json!({"message": "boom"}))
        } else {
            Reply::json(200, customer_json("u1"))
        }
    })
    .await;
    let client = client_for(&server, |config| config.max_retries = 1);
    let data = client
        .fetch_customer_data(&key(), "proj1", "u1", FetchPlan::default())
        .await
        .unwrap()
        .unwrap();
    assert!(data.is_entitlements_only());
    assert_eq!(client.metrics().calls, 3);
}

#[tokio::test]
async fn fetch_catalog_reads_entitlements_and_products() {
    let server = TestServer::start(|_, request: &Recorded| {
        if request.target.contains("/entitlements") {
            Reply::json(200, list(vec![json!({"id": "entl1", "lookup_key": "pro"})], None))
        } else {
            Reply::json(
                200,
                list(
                    vec![json!({"id": "prod1", "store_identifier": "premium_monthly", "type": "subscription",
                                "subscription": {"duration": "P1M"}})],
                    None,
                ),
            )
        }
    })
    .await;
    let client = client_for(&server, |_| {});
    let catalog = client.fetch_catalog(&key(), "proj1").await.unwrap();
    assert_eq!(catalog.entitlement_lookup_key("entl1"), Some("pro"));
    assert_eq!(
        catalog.product("prod1").unwrap().duration.as_deref(),
        Some("P1M")
    );
}

#[tokio::test]
async fn webhook_integration_crud_uses_post_for_create_and_update() {
    let integration = json!({"object": "webhook_integration", "id": "wh1", "project_id": "proj1",
        "name": "rcsync", "url": "https://x/hook", "environment": null, "event_types": null,
        "app_id": null, "created_at": 1});
    let server = TestServer::start(move |_, request: &Recorded| match request.method.as_str() {
        "DELETE" => Reply::json(
            200,
            json!({"object": "webhook_integration", "id": "wh1", "deleted_at": 2}),
        ),
        "GET" if request.target.ends_with("/webhooks?limit=100") => {
            Reply::json(200, list(vec![integration.clone()], None))
        }
        _ => Reply::json(200, integration.clone()),
    })
    .await;
    let client = client_for(&server, |_| {});
    let new = NewWebhookIntegration {
        name: "rcsync".into(),
        url: "https://x/hook".into(),
        authorization_header: Some(SecretString::from("Bearer whsec")),
        environment: None,
        event_types: None,
        app_id: None,
    };
    let created = client
        .create_webhook_integration(&key(), "proj1", &new)
        .await
        .unwrap();
    assert_eq!(created.id, "wh1");
    let update = WebhookIntegrationUpdate {
        url: Some("https://y/hook".into()),
        ..Default::default()
    };
    client
        .update_webhook_integration(&key(), "proj1", "wh1", &update)
        .await
        .unwrap();
    assert!(client
        .get_webhook_integration(&key(), "proj1", "wh1")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        client
            .list_webhook_integrations(&key(), "proj1")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .delete_webhook_integration(&key(), "proj1", "wh1")
            .await
            .unwrap()
            .id,
        "wh1"
    );

    let requests = server.requests();
    let summary: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "/v2/projects/proj1/integrations/webhooks"),
            ("POST", "/v2/projects/proj1/integrations/webhooks/wh1"),
            ("GET", "/v2/projects/proj1/integrations/webhooks/wh1"),
            ("GET", "/v2/projects/proj1/integrations/webhooks?limit=100"),
            ("DELETE", "/v2/projects/proj1/integrations/webhooks/wh1"),
        ]
    );
    let created_body: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    assert_eq!(created_body["authorization_header"], "Bearer whsec");
    let update_body: serde_json::Value = serde_json::from_str(&requests[1].body).unwrap();
    assert_eq!(update_body, json!({"url": "https://y/hook"}));
}

#[tokio::test]
async fn create_is_not_retried_after_a_server_error() {
    let server = TestServer::start(|_, _| Reply::json(500, json!({"message": "boom"}))).await;
    let client = client_for(&server, |_| {});
    let new = NewWebhookIntegration {
        name: "n".into(),
        url: "u".into(),
        authorization_header: None,
        environment: None,
        event_types: None,
        app_id: None,
    };
    let error = client
        .create_webhook_integration(&key(), "p", &new)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert_eq!(server.requests().len(), 1);
}
