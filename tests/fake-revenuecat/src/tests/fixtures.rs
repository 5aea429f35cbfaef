//! The repository's RevenueCat fixtures: shapes the fake must match, and well-formed files.

use std::collections::HashSet;

use serde_json::Value;

use super::*;

fn fixture(path: &str) -> Value {
    let p = format!("{}/../../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).expect(&p)).expect(&p)
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The fake's objects carry exactly the fields of the OpenAPI-derived samples.
#[tokio::test]
async fn objects_match_v2_fixture_shapes() {
    let c = Client::new(config(40));
    let (_, cust) = c.get_json(&c.project_url("/customers/user_000002")).await;
    assert_eq!(keys(&cust), keys(&fixture("v2/customer.json")));
    let (_, page) = c.get_json(&c.project_url("/customers?limit=1")).await;
    let want = fixture("v2/list_customers_page.json");
    assert_eq!(keys(&page), keys(&want));
    assert_eq!(keys(&page["items"][0]), keys(&want["items"][0]));
    let id = dataset::expected_cases(&c.fake.dataset().unwrap().0)
        .into_iter()
        .find(|(_, k)| *k == DatasetCase::Monthly)
        .unwrap()
        .0;
    let (_, subs) = c
        .get_json(&c.project_url(&format!("/customers/{id}/subscriptions")))
        .await;
    assert_eq!(
        keys(subs["items"].as_array().unwrap().last().unwrap()),
        keys(&fixture("v2/subscription.json"))
    );
    let id = dataset::expected_cases(&c.fake.dataset().unwrap().0)
        .into_iter()
        .find(|(_, k)| *k == DatasetCase::Lifetime)
        .unwrap()
        .0;
    let (_, p) = c
        .get_json(&c.project_url(&format!("/customers/{id}/purchases")))
        .await;
    assert_eq!(keys(&p["items"][0]), keys(&fixture("v2/purchase.json")));
    let (_, e) = c.get_json(&c.project_url("/entitlements")).await;
    assert_eq!(keys(&e["items"][0]), keys(&fixture("v2/entitlement.json")));
    let (_, p) = c.get_json(&c.project_url("/products?limit=1")).await;
    assert_eq!(keys(&p["items"][0]), keys(&fixture("v2/product.json")));
    let (_, p) = c.get_json(&format!("{}/projects", c.fake.base_url())).await;
    assert_eq!(keys(&p["items"][0]), keys(&fixture("v2/project.json")));
    let (_, e) = c.get_json(&c.project_url("/customers/nobody")).await;
    assert_eq!(keys(&e), keys(&fixture("v2/error_not_found.json")));
    c.fake.stop().await;
}

#[test]
fn webhook_fixtures_are_well_formed() {
    let dir = format!("{}/../../fixtures/webhooks", env!("CARGO_MANIFEST_DIR"));
    let mut ids = HashSet::new();
    let mut sandbox = 0;
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        n += 1;
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["api_version"], "1.0");
        let ev = &v["event"];
        assert!(
            ids.insert(ev["id"].as_str().unwrap().to_string()),
            "{path:?}"
        );
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let is_sandbox = stem.starts_with("sandbox_") || stem == "test";
        let stem = stem.strip_prefix("anonymous_").unwrap_or(stem);
        let stem = stem.strip_prefix("sandbox_").unwrap_or(stem);
        assert_eq!(
            ev["type"].as_str().unwrap().to_lowercase(),
            stem,
            "{path:?}"
        );
        let want = if is_sandbox { "SANDBOX" } else { "PRODUCTION" };
        assert_eq!(ev["environment"], want, "{path:?}");
        sandbox += is_sandbox as usize;
    }
    assert_eq!(n, 18);
    assert_eq!(sandbox, 3);
    let ts = |f: &str| {
        fixture(&format!("webhooks/{f}.json"))["event"]["event_timestamp_ms"]
            .as_i64()
            .unwrap()
    };
    let order = [
        "initial_purchase",
        "renewal",
        "product_change",
        "cancellation",
        "uncancellation",
        "billing_issue",
        "expiration",
    ];
    for w in order.windows(2) {
        assert!(ts(w[0]) < ts(w[1]), "{w:?}");
    }
    assert!(ts("sandbox_initial_purchase") < ts("sandbox_renewal"));
}

/// RevenueCat's published samples: one per event, kept as published (ids repeat, TRANSFER's
/// timestamp is the documented oddity).
#[test]
fn revenuecat_samples_are_the_published_payloads() {
    let dir = format!(
        "{}/../../fixtures/webhooks/revenuecat_samples",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut types = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["api_version"], "1.0", "{path:?}");
        let ev = &v["event"];
        for k in ["id", "type"] {
            assert!(ev[k].is_string(), "{path:?} {k}");
        }
        assert!(ev["event_timestamp_ms"].is_i64(), "{path:?}");
        types.push(ev["type"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(types.len(), 18);
    let distinct: HashSet<&String> = types.iter().collect();
    assert_eq!(distinct.len(), 15, "{types:?}");
    let transfer = fixture("webhooks/revenuecat_samples/transfer.json");
    assert_eq!(transfer["event"]["event_timestamp_ms"], 78789789798798i64);
    assert!(transfer["event"].get("app_user_id").is_none());
}
