//! Extra dataset cases as a client reads them over HTTP; the default dataset is unchanged.

use super::*;

#[tokio::test]
async fn extra_cases_are_served_with_the_documented_fields() {
    let mut cfg = config(4);
    cfg.dataset_extras.extra_cases = true;
    let c = Client::new(cfg);
    let subs_of = |case: ExtraCase| {
        c.project_url(&format!(
            "/customers/{}/subscriptions",
            extra_cases::extra_case_id(case)
        ))
    };
    let purchases_of = |case: ExtraCase| {
        c.project_url(&format!(
            "/customers/{}/purchases",
            extra_cases::extra_case_id(case)
        ))
    };
    for case in EXTRA_CASES {
        let id = extra_cases::extra_case_id(case);
        let (s, cust) = c
            .get_json(&c.project_url(&format!("/customers/{id}")))
            .await;
        assert_eq!(s, 200, "{id}: {cust}");
        let entitled = !cust["active_entitlements"]["items"]
            .as_array()
            .unwrap()
            .is_empty();
        assert_eq!(entitled, case.has_access(), "{case:?}");
        let (subs, _) = c.collect(&subs_of(case)).await;
        let (purchases, _) = c.collect(&purchases_of(case)).await;
        let gross: f64 = subs
            .iter()
            .map(|s| s["total_revenue_in_usd"]["gross"].as_f64().unwrap())
            .chain(
                purchases
                    .iter()
                    .map(|p| p["revenue_in_usd"]["gross"].as_f64().unwrap()),
            )
            .sum();
        assert!(
            (gross - case.gross_revenue_usd()).abs() < 1e-9,
            "{case:?}: {gross}"
        );
        let sub = subs.first();
        match case {
            ExtraCase::UnknownStatus => {
                assert_eq!(sub.unwrap()["status"], "unknown");
                assert_eq!(sub.unwrap()["gives_access"], true);
            }
            ExtraCase::Incomplete => {
                let s = sub.unwrap();
                assert_eq!(
                    (&s["status"], &s["gives_access"], &s["store"]),
                    (&json!("incomplete"), &json!(false), &json!("stripe"))
                );
            }
            ExtraCase::WillChangeProduct => {
                let s = sub.unwrap();
                assert_eq!(s["auto_renewal_status"], "will_change_product");
                assert_eq!(
                    s["pending_changes"]["product"]["store_identifier"],
                    dataset::STORE_ID_YEARLY
                );
            }
            ExtraCase::HasAlreadyRenewed => {
                let s = sub.unwrap();
                assert_eq!(s["auto_renewal_status"], "has_already_renewed");
                assert_ne!(s["ends_at"], s["current_period_ends_at"]);
            }
            ExtraCase::SubscriptionAndConsumable => {
                assert_eq!(subs.len(), 1);
                assert_eq!(purchases.len(), 1);
                let p = &purchases[0];
                assert_eq!(p["revenue_in_usd"]["gross"], 2.5);
                assert!(p["entitlements"]["items"].as_array().unwrap().is_empty());
            }
            ExtraCase::PaidLifetime => {
                assert!(subs.is_empty());
                assert_eq!(purchases[0]["product_id"], dataset::PRODUCT_LIFETIME_ID);
            }
            ExtraCase::NoPurchases => assert!(subs.is_empty() && purchases.is_empty()),
            ExtraCase::TwoEntitlements => {
                let items = sub.unwrap()["entitlements"]["items"].as_array().unwrap();
                assert_eq!(items.len(), 2);
            }
            ExtraCase::Sandbox => {
                let s = sub.unwrap();
                assert_eq!(
                    (&s["environment"], &s["store"], &s["status"]),
                    (&json!("sandbox"), &json!("app_store"), &json!("active"))
                );
                assert_eq!(purchases[0]["environment"], "sandbox");
            }
        }
    }
    // the catalog gained what the cases need
    let (products, _) = c.collect(&c.project_url("/products")).await;
    let consumable = products
        .iter()
        .find(|p| p["store_identifier"] == extra_cases::STORE_ID_CONSUMABLE)
        .expect("consumable product");
    assert_eq!(consumable["type"], "one_time");
    assert_eq!(consumable["one_time"]["is_consumable"], true);
    let (ents, _) = c.collect(&c.project_url("/entitlements")).await;
    assert_eq!(ents.len(), 2);
    c.fake.stop().await;
}

#[tokio::test]
async fn extras_are_opt_in_and_can_be_added_one_at_a_time() {
    let c = Client::new(config(20));
    let (items, _) = c.collect(&c.project_url("/customers?limit=100")).await;
    assert_eq!(items.len(), 20);
    assert!(items
        .iter()
        .all(|i| dataset::customer_index(i["id"].as_str().unwrap()).is_some()));
    let (products, _) = c.collect(&c.project_url("/products")).await;
    assert_eq!(products.len(), 4);

    let stored = c
        .fake
        .add_extra_case_customer("user_000005", ExtraCase::HasAlreadyRenewed);
    assert_eq!(stored.subscriptions.len(), 1);
    let (_, subs) = c
        .get_json(&c.project_url("/customers/user_000005/subscriptions"))
        .await;
    assert_eq!(
        subs["items"][0]["auto_renewal_status"],
        "has_already_renewed"
    );
    assert_eq!(c.fake.state().customer_count(), 20);
    c.fake.stop().await;
}
