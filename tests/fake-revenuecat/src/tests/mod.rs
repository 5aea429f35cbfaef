//! End-to-end tests of the fake over HTTP (reqwest), as a RevenueCat client would see it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::dataset::{self, DatasetCase, DatasetSpec};
use super::*;

mod cases;
mod failures;
mod fixtures;
mod lists;
mod scale;
mod webhooks;

const NOW: i64 = 1_750_000_000_000;

fn config(customers: usize) -> FakeConfig {
    FakeConfig {
        dataset: Some(DatasetSpec {
            customers,
            subscriber_share: 0.5,
            seed: 11,
            anonymous_aliases: 5,
        }),
        now_ms: Some(NOW),
        ..Default::default()
    }
}

struct Client {
    http: reqwest::Client,
    fake: FakeRevenueCat,
}

impl Client {
    fn new(cfg: FakeConfig) -> Client {
        Client {
            http: reqwest::Client::new(),
            fake: FakeRevenueCat::start(cfg).expect("start fake"),
        }
    }

    fn project_url(&self, rest: &str) -> String {
        format!(
            "{}/projects/{}{rest}",
            self.fake.base_url(),
            self.fake.project_id()
        )
    }

    /// GET an absolute URL or a `/v2/...` path (as found in `next_page`).
    async fn get(&self, url: &str) -> reqwest::Response {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.fake.root_url())
        } else {
            url.to_string()
        };
        self.http
            .get(url)
            .bearer_auth(self.fake.api_key())
            .send()
            .await
            .expect("request")
    }

    async fn get_json(&self, url: &str) -> (u16, Value) {
        let r = self.get(url).await;
        let s = r.status().as_u16();
        (s, r.json().await.expect("json body"))
    }

    /// POST `body` as JSON with the fake's key.
    async fn post_json(&self, url: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(url)
            .bearer_auth(self.fake.api_key())
            .json(body)
            .send()
            .await
            .expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.expect("json body"))
    }

    async fn delete_json(&self, url: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(url)
            .bearer_auth(self.fake.api_key())
            .send()
            .await
            .expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.expect("json body"))
    }

    /// Follow `next_page` verbatim until it is null; returns all items.
    async fn collect(&self, first: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut url = first.to_string();
        let mut pages = 0;
        loop {
            let (s, v) = self.get_json(&url).await;
            assert_eq!(s, 200, "{url}: {v}");
            assert_eq!(v["object"], "list");
            pages += 1;
            items.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_page"].as_str() {
                Some(n) => url = n.to_string(),
                None => break,
            }
            assert!(pages < 10_000, "paging does not terminate");
        }
        (items, pages)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_customers_pages_to_the_end_without_duplicates() {
    let c = Client::new(config(53));
    let (items, pages) = c.collect(&c.project_url("/customers?limit=7")).await;
    assert_eq!(items.len(), 53);
    assert_eq!(pages, 8);
    let ids: HashSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 53);
    for i in &items {
        assert_eq!(i["object"], "customer");
        assert_eq!(i["project_id"], DEFAULT_PROJECT_ID);
        assert!(i.get("active_entitlements").is_none(), "{i}");
        assert!(i.get("attributes").is_none());
        for k in [
            "last_seen_at",
            "last_seen_app_version",
            "last_seen_country",
            "last_seen_platform",
            "last_seen_platform_version",
        ] {
            assert!(i.get(k).is_some(), "{k} missing: {i}");
        }
    }
    // url is the list base; default limit is 20
    let (_, v) = c.get_json(&c.project_url("/customers")).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 20);
    assert_eq!(
        v["url"],
        format!("/v2/projects/{DEFAULT_PROJECT_ID}/customers")
    );
    let next = v["next_page"].as_str().unwrap();
    assert!(next.starts_with(&format!(
        "/v2/projects/{DEFAULT_PROJECT_ID}/customers?starting_after=user_000020"
    )));
    c.fake.stop().await;
}

#[tokio::test]
async fn list_customers_can_include_entitlements() {
    let mut cfg = config(10);
    cfg.list_customers_includes_entitlements = true;
    let c = Client::new(cfg);
    let (_, v) = c.get_json(&c.project_url("/customers")).await;
    for i in v["items"].as_array().unwrap() {
        assert_eq!(i["active_entitlements"]["object"], "list");
    }
    c.fake.set_list_customers_includes_entitlements(false);
    let (_, v) = c.get_json(&c.project_url("/customers")).await;
    assert!(v["items"][0].get("active_entitlements").is_none());
    c.fake.stop().await;
}

#[tokio::test]
async fn paging_works_with_anonymous_ids() {
    let c = Client::new(FakeConfig {
        now_ms: Some(NOW),
        ..Default::default()
    });
    for id in [
        "$RCAnonymousID:0001",
        "$RCAnonymousID:0002",
        "a+b c&d=e",
        "user_1",
        "ü/slash",
    ] {
        c.fake.state().upsert_customer(CustomerRecord::new(id, NOW));
    }
    let (items, pages) = c.collect(&c.project_url("/customers?limit=1")).await;
    assert_eq!(pages, 5);
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5);
    // each id can be fetched through its percent-encoded path
    for id in &ids {
        let url = c.project_url(&format!("/customers/{}", render::encode_segment(id)));
        let (s, v) = c.get_json(&url).await;
        assert_eq!(s, 200, "{id}: {v}");
        assert_eq!(v["id"], *id);
    }
    c.fake.stop().await;
}

#[tokio::test]
async fn anonymous_alias_resolves_to_canonical_customer() {
    let c = Client::new(config(30));
    let (anon, owner) = c.fake.dataset().unwrap().1.aliases[0].clone();
    let url = c.project_url(&format!("/customers/{}", render::encode_segment(&anon)));
    assert!(url.contains("%24RCAnonymousID%3A"));
    let (s, v) = c.get_json(&url).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], owner);
    assert_eq!(v["active_entitlements"]["object"], "list");
    assert!(v.get("attributes").is_none());
    // sub-resources resolve too
    let (s, v) = c.get_json(&format!("{url}/aliases")).await;
    assert_eq!(s, 200);
    let aliases: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(aliases.contains(&anon.as_str()) && aliases.contains(&owner.as_str()));
    let (s, v) = c.get_json(&format!("{url}/subscriptions")).await;
    assert_eq!(s, 200);
    for sub in v["items"].as_array().unwrap() {
        assert_eq!(sub["customer_id"], owner);
    }
    // expand=attributes
    let (_, v) = c
        .get_json(&c.project_url(&format!("/customers/{owner}?expand=attributes")))
        .await;
    assert_eq!(v["attributes"]["object"], "list");
    // unknown customer
    let (s, v) = c.get_json(&c.project_url("/customers/nobody")).await;
    assert_eq!(s, 404);
    assert_eq!(v["object"], "error");
    assert_eq!(v["type"], "resource_missing");
    assert_eq!(v["retryable"], false);
    c.fake.stop().await;
}

#[tokio::test]
async fn authentication_and_authorization_errors() {
    let c = Client::new(config(3));
    let r = c
        .http
        .get(c.project_url("/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "error");
    assert_eq!(v["type"], "authentication_error");
    assert_eq!(v["retryable"], false);
    assert_eq!(v["doc_url"], "https://errors.rev.cat/authentication-error");
    let r = c
        .http
        .get(c.project_url("/customers"))
        .bearer_auth("sk_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // key of another project
    c.fake.add_api_key_for_project("sk_other", "projother");
    let r = c
        .http
        .get(c.project_url("/customers"))
        .bearer_auth("sk_other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "authorization_error");
    // an added key works
    c.fake.add_api_key("sk_second");
    let r = c
        .http
        .get(c.project_url("/products"))
        .bearer_auth("sk_second")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = c.fake.request_log();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].api_key_hint, None);
    assert_eq!(log[1].api_key_hint.as_deref(), Some("sk_w"));
    assert_eq!(log[0].status, 401);
    c.fake.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut cfg = config(3);
    cfg.customer_rate_limit_per_min = 5;
    let c = Client::new(cfg);
    let url = c.project_url("/customers/user_000001");
    for i in 1..=5u32 {
        let r = c.get(&url).await;
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert_eq!(
            h["revenuecat-rate-limit-current-usage"].to_str().unwrap(),
            i.to_string()
        );
        assert_eq!(h["revenuecat-rate-limit-current-limit"], "5");
    }
    let r = c.get(&url).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "error");
    assert_eq!(v["type"], "rate_limit_error");
    assert_eq!(v["retryable"], true);
    assert_eq!(v["backoff_ms"], retry * 1000);
    // the other domain has its own budget
    let r = c.get(&c.project_url("/entitlements")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["revenuecat-rate-limit-current-limit"], "60");
    // the log shows the 429 and the accepted count stays within the limit
    let log = c.fake.request_log();
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 1);
    assert_eq!(
        c.fake.max_accepted_in_window(
            RateLimitDomain::CustomerInformation,
            Duration::from_secs(60)
        ),
        5
    );
    let stats = c.fake.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.by_status[&200], 6);
    c.fake.stop().await;
}

#[tokio::test]
async fn rate_limit_window_recovers() {
    let mut cfg = config(3);
    cfg.customer_rate_limit_per_min = 2;
    cfg.rate_limit_window = Duration::from_millis(300);
    let c = Client::new(cfg);
    let url = c.project_url("/customers/user_000001/subscriptions");
    assert_eq!(c.get(&url).await.status(), 200);
    assert_eq!(c.get(&url).await.status(), 200);
    assert_eq!(c.get(&url).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(c.get(&url).await.status(), 200);
    c.fake.stop().await;
}

#[tokio::test]
async fn fail_next_injects_revenuecat_errors() {
    let c = Client::new(config(3));
    c.fake.fail_next(2, 500);
    let url = c.project_url("/customers/user_000001");
    for _ in 0..2 {
        let (s, v) = c.get_json(&url).await;
        assert_eq!(s, 500);
        assert_eq!(v["type"], "server_error");
        assert_eq!(v["retryable"], true);
        assert!(v["backoff_ms"].is_u64());
    }
    assert_eq!(c.get(&url).await.status(), 200);
    c.fake.fail_next_matching(1, 503, "/subscriptions");
    assert_eq!(c.get(&url).await.status(), 200);
    assert_eq!(c.get(&format!("{url}/subscriptions")).await.status(), 503);
    assert_eq!(c.get(&format!("{url}/subscriptions")).await.status(), 200);
    // latency
    c.fake.set_latency(Duration::from_millis(120));
    let t = std::time::Instant::now();
    assert_eq!(c.get(&url).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(120));
    c.fake.stop().await;
}

#[tokio::test]
async fn page_limit_is_validated() {
    let c = Client::new(config(3));
    let (s, v) = c.get_json(&c.project_url("/customers?limit=101")).await;
    assert_eq!(s, 400);
    assert_eq!(v["type"], "parameter_error");
    assert_eq!(v["param"], "limit");
    assert_eq!(
        c.get(&c.project_url("/customers?limit=100")).await.status(),
        200
    );
    assert_eq!(
        c.get(&c.project_url("/customers?limit=0")).await.status(),
        400
    );
    assert_eq!(
        c.get(&c.project_url("/customers?limit=x")).await.status(),
        400
    );
    let (s, _) = c
        .get_json(&c.project_url("/customers/user_000001/subscriptions?limit=500"))
        .await;
    assert_eq!(s, 400);
    c.fake.stop().await;
}

#[tokio::test]
async fn every_dataset_case_is_served_consistently() {
    let spec = DatasetSpec {
        customers: 60,
        subscriber_share: 0.5,
        seed: 3,
        anonymous_aliases: 3,
    };
    let c = Client::new(FakeConfig {
        dataset: Some(spec.clone()),
        now_ms: Some(NOW),
        ..Default::default()
    });
    let (ents, _) = c.collect(&c.project_url("/entitlements")).await;
    assert_eq!(ents.len(), 1);
    assert_eq!(ents[0]["lookup_key"], "premium");
    assert!(ents[0]["id"].as_str().unwrap().starts_with("entl"));
    let (products, _) = c.collect(&c.project_url("/products")).await;
    let store_ids: HashSet<&str> = products
        .iter()
        .map(|p| p["store_identifier"].as_str().unwrap())
        .collect();
    assert!(store_ids.contains("premium_monthly") && store_ids.contains("premium_lifetime"));

    let mut seen = HashSet::new();
    let mut multi_page = false;
    for (id, case) in dataset::expected_cases(&spec) {
        seen.insert(case);
        let (_, cust) = c
            .get_json(&c.project_url(&format!("/customers/{id}")))
            .await;
        let active = cust["active_entitlements"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["expires_at"].as_i64().is_none_or(|t| t > NOW));
        assert_eq!(active, case.has_access(), "{id} {case:?}");
        let (subs, pages) = c
            .collect(&c.project_url(&format!("/customers/{id}/subscriptions?limit=1")))
            .await;
        multi_page |= pages > 1;
        let (purchases, _) = c
            .collect(&c.project_url(&format!("/customers/{id}/purchases")))
            .await;
        let current = subs.last();
        match case {
            DatasetCase::NeverSubscribed | DatasetCase::Promotional => {
                assert!(subs.is_empty() && purchases.is_empty())
            }
            DatasetCase::Lifetime => {
                assert!(subs.is_empty());
                assert_eq!(purchases[0]["object"], "purchase");
                assert_eq!(purchases[0]["product_id"], dataset::PRODUCT_LIFETIME_ID);
                assert_eq!(purchases[0]["revenue_in_usd"]["currency"], "USD");
            }
            DatasetCase::Paused => {
                let s = current.unwrap();
                assert_eq!(s["status"], "paused");
                assert!(s["current_period_ends_at"].is_null() && s["ends_at"].is_null());
            }
            _ => {
                let s = current.unwrap();
                assert_eq!(s["object"], "subscription");
                assert_eq!(s["entitlements"]["items"][0]["lookup_key"], "premium");
                assert_eq!(s["total_revenue_in_usd"]["currency"], "USD");
                assert_eq!(s["environment"], "production");
            }
        }
    }
    assert_eq!(seen.len(), 11);
    assert!(
        multi_page,
        "some customer should have >1 subscription page at limit=1"
    );
    c.fake.stop().await;
}

#[actix_web::test]
async fn works_under_actix_runtime_and_admin_endpoints() {
    let c = Client::new(config(2));
    assert_eq!(
        c.get(&format!("{}/projects", c.fake.base_url()))
            .await
            .status(),
        200
    );
    let admin = |p: &str| format!("{}/_fake/{p}", c.fake.root_url());
    let r = c
        .http
        .post(admin("faults"))
        .json(&json!({"fail_next": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(&format!("{}/projects", c.fake.base_url()))
            .await
            .status(),
        500
    );
    let log: Value = c
        .http
        .get(admin("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[1]["status"], 500);
    let stats: Value = c
        .http
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 2);
    let r = c
        .http
        .post(admin("latency"))
        .json(&json!({"ms": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.fake.stop().await;
}

/// The knobs the binary's users reach over `/_fake`.
#[tokio::test]
async fn admin_endpoints_switch_the_knobs() {
    let c = Client::new(config(3));
    let admin = |p: &str| format!("{}/_fake/{p}", c.fake.root_url());
    let post = |p: &str, body: Value| c.http.post(admin(p)).json(&body).send();

    let r = post(
        "lists",
        json!({"page_cap": 1, "omit_next_page_on_last": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let knobs = c.fake.list_knobs();
    assert_eq!(knobs.page_cap, Some(1));
    assert!(knobs.omit_next_page_on_last);
    assert_eq!(
        knobs.max_page_limit, 100,
        "omitted knobs take their defaults"
    );
    let (_, page) = c.get_json(&c.project_url("/customers")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let r = post("lists", json!({"page_size": 1})).await.unwrap();
    assert_eq!(r.status(), 400, "unknown knobs are refused");

    let r = post("retry_after", json!({"format": "http_date", "secs": 3}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(
        "permissions",
        json!({"revoke": "customer_information:customers:read"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(&c.project_url("/customers")).await.status(),
        403,
        "permission revoked"
    );
    let config: Value = c
        .http
        .get(admin("config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["lists"]["page_cap"], 1);
    assert_eq!(config["retry_after"]["format"], "http_date");
    assert_eq!(
        config["permissions_revoked"]["all_keys"],
        json!(["customer_information:customers:read"])
    );
    let r = c.http.delete(admin("permissions")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(&c.project_url("/customers")).await.status(), 200);

    let prefix = format!("/v2/projects/{DEFAULT_PROJECT_ID}/products");
    let r = post("unreachable", json!({"path_prefix": prefix}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.fake.list_knobs().page_cap, Some(1));
    let state: Value = c
        .http
        .get(admin("unreachable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["path_prefixes"], json!([prefix]));
    let r = c.http.delete(admin("unreachable")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(&c.project_url("/products")).await.status(), 200);

    let (s, _) = c
        .post_json(
            &c.project_url("/integrations/webhooks"),
            &json!({"name": "n", "url": "https://e.com/h", "authorization_header": "Bearer x"}),
        )
        .await;
    assert_eq!(s, 201);
    let hooks: Value = c
        .http
        .get(admin("webhook_integrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hooks[0]["authorization_header"], "Bearer x");
    c.fake.stop().await;
}
