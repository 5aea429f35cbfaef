//! Big projects: generation, paging through everything, the few users a test knows.

use std::time::Instant;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_customers_page_to_the_end_following_next_page_verbatim() {
    let spec = DatasetSpec {
        customers: 100_000,
        subscriber_share: 0.4,
        seed: 5,
        anonymous_aliases: 100,
    };
    let started = Instant::now();
    let c = Client::new(FakeConfig {
        dataset: Some(spec),
        dataset_extras: DatasetExtras {
            anonymous_customers: 250,
            extra_cases: false,
        },
        customer_rate_limit_per_min: 1_000_000,
        now_ms: Some(NOW),
        ..Default::default()
    });
    let generated = started.elapsed();
    let started = Instant::now();
    let (items, pages) = c.collect(&c.project_url("/customers?limit=100")).await;
    println!(
        "100,250 customers: generated in {generated:?}, paged ({pages} pages) in {:?}",
        started.elapsed()
    );
    assert_eq!(items.len(), 100_250);
    assert_eq!(pages, 1003);
    let ids: HashSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 100_250, "no duplicates");
    let anonymous = &c.fake.dataset().unwrap().1.anonymous_customers;
    assert_eq!(anonymous.len(), 250);
    for (id, _) in anonymous {
        assert!(ids.contains(id.as_str()), "{id} listed");
    }
    // ids sort with `$RCAnonymousID:` first: the cursor after the last of them works verbatim
    assert!(items[0]["id"]
        .as_str()
        .unwrap()
        .starts_with("$RCAnonymousID:"));
    let (anon, case) = &anonymous[0];
    let (s, v) = c
        .get_json(&c.project_url(&format!("/customers/{}", render::encode_segment(anon))))
        .await;
    assert_eq!((s, v["id"].as_str()), (200, Some(anon.as_str())));
    let entitled = v["active_entitlements"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["expires_at"].as_i64().is_none_or(|t| t > NOW));
    assert_eq!(entitled, case.has_access());
    c.fake.stop().await;
}

#[tokio::test]
async fn a_test_can_know_ten_users_of_fifty_thousand() {
    let spec = DatasetSpec {
        customers: 50_000,
        subscriber_share: 1.0,
        seed: 9,
        anonymous_aliases: 0,
    };
    let known = dataset::spread_customer_ids(&spec, 10);
    assert_eq!(known.len(), 10);
    let cases: HashSet<DatasetCase> = known
        .iter()
        .map(|id| dataset::expected_case(&spec, id).unwrap())
        .collect();
    assert_eq!(cases.len(), 10, "every subscriber case once: {known:?}");
    let indexes: Vec<usize> = known
        .iter()
        .map(|id| dataset::customer_index(id).unwrap())
        .collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]));
    assert!(indexes[0] < 5_000 && indexes[9] >= 45_000, "{indexes:?}");
    let c = Client::new(FakeConfig {
        dataset: Some(spec),
        now_ms: Some(NOW),
        ..Default::default()
    });
    for id in &known {
        let (s, v) = c
            .get_json(&c.project_url(&format!("/customers/{id}")))
            .await;
        assert_eq!((s, v["id"].as_str()), (200, Some(id.as_str())));
    }
    assert_eq!(c.fake.state().customer_count(), 50_000);
    c.fake.stop().await;
}
