//! List knobs: embedded first pages, absent `next_page`, refused and silently capped limits.

use serde_json::Value;

use super::*;

fn with_extras(customers: usize) -> FakeConfig {
    let mut cfg = config(customers);
    cfg.dataset_extras.extra_cases = true;
    cfg
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn embedded_lists_can_be_first_pages_the_client_must_follow() {
    let c = Client::new(with_extras(3));
    let id = extra_cases::extra_case_id(ExtraCase::TwoEntitlements);
    let both = vec![
        dataset::PREMIUM_ENTITLEMENT_ID.to_string(),
        extra_cases::EXTRAS_ENTITLEMENT_ID.to_string(),
    ];
    // complete by default
    let (_, cust) = c
        .get_json(&c.project_url(&format!("/customers/{id}")))
        .await;
    assert_eq!(ids(&cust["active_entitlements"], "entitlement_id"), both);
    assert!(cust["active_entitlements"]["next_page"].is_null());

    c.fake.set_embedded_page_size(Some(1));
    let (_, cust) = c
        .get_json(&c.project_url(&format!("/customers/{id}")))
        .await;
    let embedded = &cust["active_entitlements"];
    assert_eq!(ids(embedded, "entitlement_id"), both[..1]);
    let next = embedded["next_page"].as_str().expect("a next page");
    let (rest, pages) = c.collect(next).await;
    assert_eq!(pages, 1);
    assert_eq!(rest[0]["entitlement_id"], both[1].as_str());
    assert_eq!(rest[0]["object"], "customer.active_entitlement");

    // a subscription's embedded entitlements continue at .../subscriptions/{id}/entitlements
    let (_, subs) = c
        .get_json(&c.project_url(&format!("/customers/{id}/subscriptions")))
        .await;
    let sub = &subs["items"][0];
    let ents = &sub["entitlements"];
    assert_eq!(ids(ents, "id"), both[..1]);
    let next = ents["next_page"].as_str().unwrap();
    let sub_id = sub["id"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "/v2/projects/{DEFAULT_PROJECT_ID}/subscriptions/{sub_id}/entitlements?"
        )),
        "{next}"
    );
    let (rest, _) = c.collect(next).await;
    assert_eq!(rest[0]["lookup_key"], extra_cases::EXTRAS_LOOKUP_KEY);
    assert_eq!(rest[0]["object"], "entitlement");
    // ... and the subscription itself is served by id, a Customer Information request
    let (s, got) = c
        .get_json(&c.project_url(&format!("/subscriptions/{sub_id}")))
        .await;
    assert_eq!((s, got["id"].as_str()), (200, Some(sub_id)));
    let last = c.fake.request_log().pop().unwrap();
    assert_eq!(last.domain, Some(RateLimitDomain::CustomerInformation));

    // a purchase's entitlements are served the same way
    let lifetime = extra_cases::extra_case_id(ExtraCase::PaidLifetime);
    let (_, purchases) = c
        .get_json(&c.project_url(&format!("/customers/{lifetime}/purchases")))
        .await;
    let p = &purchases["items"][0];
    let url = p["entitlements"]["url"].as_str().unwrap();
    let (items, _) = c.collect(url).await;
    assert_eq!(items[0]["id"], dataset::PREMIUM_ENTITLEMENT_ID);
    let (s, _) = c
        .get_json(&c.project_url("/subscriptions/sub_unknown/entitlements"))
        .await;
    assert_eq!(s, 404);
    c.fake.stop().await;
}

#[tokio::test]
async fn get_a_customer_can_leave_active_entitlements_out() {
    let c = Client::new(with_extras(3));
    let id = extra_cases::extra_case_id(ExtraCase::TwoEntitlements);
    let url = c.project_url(&format!("/customers/{id}"));
    let (_, cust) = c.get_json(&url).await;
    assert_eq!(
        cust["active_entitlements"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    c.fake.set_customer_omits_active_entitlements(true);
    let (s, cust) = c.get_json(&url).await;
    assert_eq!(s, 200);
    assert!(cust.get("active_entitlements").is_none(), "{cust}");
    assert_eq!(cust["id"], id.as_str());
    // the sub-resource still lists them
    let (items, _) = c
        .collect(&c.project_url(&format!("/customers/{id}/active_entitlements")))
        .await;
    assert_eq!(items.len(), 2);
    c.fake.stop().await;
}

#[tokio::test]
async fn last_pages_can_omit_next_page_entirely() {
    let mut cfg = with_extras(5);
    cfg.omit_next_page_on_last = true;
    let c = Client::new(cfg);
    let (_, first) = c.get_json(&c.project_url("/customers?limit=10")).await;
    assert!(first["next_page"].is_string());
    let (_, last) = c.get_json(first["next_page"].as_str().unwrap()).await;
    assert!(last.get("next_page").is_none(), "{last}");
    let (_, cust) = c.get_json(&c.project_url("/customers/user_000001")).await;
    assert!(cust["active_entitlements"].get("next_page").is_none());
    let (_, subs) = c
        .get_json(&c.project_url("/customers/user_000001/subscriptions"))
        .await;
    assert!(subs.get("next_page").is_none());
    for s in subs["items"].as_array().unwrap() {
        assert!(s["entitlements"].get("next_page").is_none(), "{s}");
    }
    c.fake.set_omit_next_page_on_last(false);
    let (_, last) = c.get_json(first["next_page"].as_str().unwrap()).await;
    assert!(last["next_page"].is_null() && last.get("next_page").is_some());
    c.fake.stop().await;
}

#[tokio::test]
async fn a_smaller_page_maximum_refuses_rcsyncs_limit_with_a_parameter_error() {
    let mut cfg = config(3);
    cfg.max_page_limit = 50;
    let c = Client::new(cfg);
    for path in [
        "/customers?limit=100",
        "/customers/user_000001/subscriptions?limit=100",
        "/entitlements?limit=100",
        "/integrations/webhooks?limit=100",
    ] {
        let (s, v) = c.get_json(&c.project_url(path)).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["type"], "parameter_error");
        assert_eq!(v["param"], "limit");
        assert_eq!(v["message"], "limit must be less than or equal to 50");
    }
    assert_eq!(
        c.get(&c.project_url("/customers?limit=50")).await.status(),
        200
    );
    c.fake.stop().await;
}

#[tokio::test]
async fn a_silent_page_cap_serves_fewer_items_and_pages_on() {
    let c = Client::new(config(53));
    c.fake.set_page_cap(Some(7));
    let (_, first) = c.get_json(&c.project_url("/customers?limit=100")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 7);
    let next = first["next_page"].as_str().unwrap();
    assert!(
        next.ends_with("&limit=100"),
        "the client's own limit: {next}"
    );
    let (items, pages) = c.collect(&c.project_url("/customers?limit=100")).await;
    assert_eq!((items.len(), pages), (53, 8));
    let unique: HashSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 53);
    // a limit below the cap is served as asked
    let (_, small) = c.get_json(&c.project_url("/customers?limit=3")).await;
    assert_eq!(small["items"].as_array().unwrap().len(), 3);
    c.fake.set_page_cap(None);
    let (_, all) = c.get_json(&c.project_url("/customers?limit=100")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 53);
    c.fake.stop().await;
}
