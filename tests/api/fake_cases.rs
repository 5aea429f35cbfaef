//! rcsync against the fake's rarer shapes (issue 18, item 8): embedded lists that are only
//! first pages, a client that must list active entitlements itself, `next_page` absent instead
//! of null, a page maximum below rcsync's `limit`, the rare subscription and renewal statuses,
//! and a sandbox subscriber. Every case is synced over HTTP and checked against the mapping's
//! documented properties and the fake's request log.

use std::time::Duration;

use fake_revenuecat::dataset::{DAY_MS, PREMIUM_ENTITLEMENT_ID};
use fake_revenuecat::extra_cases::{extra_case_id, EXTRAS_ENTITLEMENT_ID};
use fake_revenuecat::{
    ActiveEntitlementRecord, DatasetExtras, ExtraCase, FakeConfig, FakeRevenueCat, RateLimitDomain,
    DEFAULT_PROJECT_ID,
};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_fake, TestApp};
use crate::resync::{add_users, customer_id, dataset, fast_app, trigger, wait_for_end};

/// The fake with one customer per [`ExtraCase`] (`extra_<case>`), no generated dataset.
fn extras() -> FakeConfig {
    FakeConfig {
        dataset_extras: DatasetExtras {
            extra_cases: true,
            ..Default::default()
        },
        ..FakeConfig::default()
    }
}

async fn extras_app() -> TestApp {
    let app = spawn_app_with_fake(extras(), |_| {}).await;
    app.connect_fake().await;
    app
}

/// `POST …/sync/:userId`, asserting a 200 that updated the user; its properties.
async fn synced(app: &TestApp, user: &str) -> Value {
    let (status, body) = app.sync_user(user).await;
    assert_eq!(status, 200, "{user}: {body}");
    assert_eq!(body["updated"], 1, "{user}: {body}");
    assert!(body.get("partial").is_none(), "{user}: {body}");
    let (status, stored) = app.get_user(user).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["properties"], body["properties"], "{user}: stored");
    body["properties"].clone()
}

/// Paths (as received, with query) of the Customer Information requests the fake answered
/// (catalog requests, which a sync may serve from its cache, left out); each answered 200.
fn paths(fake: &FakeRevenueCat) -> Vec<String> {
    fake.request_log()
        .into_iter()
        .filter(|r| r.domain == Some(RateLimitDomain::CustomerInformation))
        .map(|r| {
            assert_eq!(r.status, 200, "{} answered {}", r.path_and_query, r.status);
            r.path_and_query
        })
        .collect()
}

fn project_path(rest: &str) -> String {
    format!("/v2/projects/{DEFAULT_PROJECT_ID}{rest}")
}

/// A lifetime purchase granting `premium` and `extras` (in that order) of which only `extras`
/// is active: only the purchase's *complete* entitlement list says that the purchase explains
/// the active entitlement (lifetime access) rather than a promotional grant.
fn add_lifetime_of_two(fake: &FakeRevenueCat, id: &str) -> String {
    fake.add_extra_case_customer(id, ExtraCase::PaidLifetime);
    fake.state().with(|store| {
        let c = store.customer_mut(id).unwrap();
        c.purchases[0]
            .entitlement_ids
            .push(EXTRAS_ENTITLEMENT_ID.into());
        c.active_entitlements = vec![ActiveEntitlementRecord {
            entitlement_id: EXTRAS_ENTITLEMENT_ID.into(),
            expires_at: None,
        }];
        c.purchases[0].id.clone()
    })
}

/// (1) A customer's embedded `active_entitlements` and the `entitlements` embedded in its
/// subscriptions and purchases are first pages: rcsync follows each `next_page` verbatim and
/// ends with exactly the properties the complete lists give.
#[tokio::test]
async fn embedded_first_pages_are_followed_verbatim_to_the_properties_of_complete_lists() {
    let app = extras_app().await;
    let two = extra_case_id(ExtraCase::TwoEntitlements);
    let lifetime = "lifetime_of_two";
    let purchase_id = add_lifetime_of_two(&app.fake, lifetime);
    let sub_id = app.fake.state().customer(&two).unwrap().subscriptions[0]
        .id
        .clone();

    // Complete lists (the fake's default).
    let complete_two = synced(&app, &two).await;
    let complete_lifetime = synced(&app, lifetime).await;
    assert_eq!(
        complete_two["rc_entitlements"], "extras,premium",
        "{complete_two}"
    );
    assert_eq!(
        complete_lifetime,
        json!({
            "rc_subscriber": "true",
            "rc_status": "active",
            "rc_will_renew": "false",
            "rc_product": "premium_lifetime",
            "rc_entitlements": "extras",
            "rc_period_type": "lifetime",
            "rc_billing_period": "lifetime",
            "rc_total_revenue_usd": "99.99",
        })
    );

    // Every embedded list now carries one item and a next_page.
    app.fake.set_embedded_page_size(Some(1));
    app.fake.clear_log();
    assert_eq!(synced(&app, &two).await, complete_two);
    let two_paths = paths(&app.fake);
    assert_eq!(synced(&app, lifetime).await, complete_lifetime);
    let all = paths(&app.fake);
    let lifetime_paths = &all[two_paths.len()..];

    // The continuations, exactly as the fake wrote them in `next_page`.
    let continuations = [
        (
            &two_paths[..],
            project_path(&format!(
                "/customers/{two}/active_entitlements?starting_after={PREMIUM_ENTITLEMENT_ID}&limit=1"
            )),
        ),
        (
            &two_paths[..],
            project_path(&format!(
                "/subscriptions/{sub_id}/entitlements?starting_after={PREMIUM_ENTITLEMENT_ID}&limit=1"
            )),
        ),
        (
            lifetime_paths,
            project_path(&format!(
                "/purchases/{purchase_id}/entitlements?starting_after={PREMIUM_ENTITLEMENT_ID}&limit=1"
            )),
        ),
    ];
    for (log, continuation) in continuations {
        let n = log.iter().filter(|p| **p == continuation).count();
        assert_eq!(n, 1, "{continuation} requested once: {log:#?}");
    }
    // Nothing else was added: customer, its continuation, subscriptions (+ one continuation),
    // purchases.
    assert_eq!(two_paths.len(), 5, "{two_paths:#?}");
    // customer, subscriptions, purchases (+ one continuation); the lifetime customer's single
    // active entitlement fits the first page.
    assert_eq!(lifetime_paths.len(), 4, "{lifetime_paths:#?}");
}

/// (1, fallback) "Get a customer" without `active_entitlements`: rcsync lists
/// `/customers/{id}/active_entitlements` itself (following its pages) and ends where the
/// inline list leads.
#[tokio::test]
async fn without_inline_active_entitlements_the_client_lists_them_and_gets_the_same_properties() {
    let app = extras_app().await;
    let two = extra_case_id(ExtraCase::TwoEntitlements);
    let inline = synced(&app, &two).await;
    assert_eq!(inline["rc_entitlements"], "extras,premium", "{inline}");

    app.fake.set_customer_omits_active_entitlements(true);
    app.fake.set_page_cap(Some(1));
    app.fake.clear_log();
    assert_eq!(synced(&app, &two).await, inline);
    let log = paths(&app.fake);
    let listed = project_path(&format!("/customers/{two}/active_entitlements"));
    let requests: Vec<&String> = log.iter().filter(|p| p.starts_with(&listed)).collect();
    assert_eq!(
        requests,
        [
            &format!("{listed}?limit=100"),
            &format!("{listed}?starting_after={PREMIUM_ENTITLEMENT_ID}&limit=100"),
        ],
        "{log:#?}"
    );
    // The customer was asked for first, the list right after it.
    assert_eq!(
        log[0],
        project_path(&format!("/customers/{two}")),
        "{log:#?}"
    );
}

/// (2) Last pages without a `next_page` key at all (not null): every list rcsync reads ends
/// there, the full resync with `import_missing` included.
#[tokio::test]
async fn an_absent_next_page_ends_every_list() {
    let mut fake = dataset(9, 1.0);
    fake.omit_next_page_on_last = true;
    fake.page_cap = Some(2);
    let app = fast_app(fake).await;

    // A customer whose subscriptions span pages: complete, then with next_page absent at the end.
    let user = customer_id(0);
    app.fake.set_omit_next_page_on_last(false);
    let with_null = synced(&app, &user).await;
    app.fake.set_omit_next_page_on_last(true);
    app.fake.clear_log();
    assert_eq!(synced(&app, &user).await, with_null);

    let (status, body) = trigger(&app, "?import_missing=true").await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["imported"], 8, "{result}");
    assert_eq!(result["synced"], 9, "{result}");
    // 9 customers at 2 per page: 5 pages, the last one without next_page, and no sixth.
    assert_eq!(result["api_calls_by_endpoint"]["customers"], 5, "{result}");
    let list = project_path("/customers");
    let pages = paths(&app.fake)
        .into_iter()
        .filter(|p| p.starts_with(&format!("{list}?")))
        .count();
    assert_eq!(pages, 5);
    for i in 0..9 {
        let (status, user) = app.get_user(&customer_id(i)).await;
        assert_eq!(status, 200, "{}", customer_id(i));
        assert!(user["properties"]["rc_status"].is_string(), "{user}");
    }
}

/// One customer with 12 subscriptions (one active, 11 expired) and 7 consumable purchases.
fn add_many_items(fake: &FakeRevenueCat, id: &str) {
    fake.add_extra_case_customer(id, ExtraCase::SubscriptionAndConsumable);
    fake.state().with(|store| {
        let c = store.customer_mut(id).unwrap();
        let active = c.subscriptions[0].clone();
        for n in 1..=11 {
            let mut old = active.clone();
            old.id = format!("sub_old_{n:02}");
            old.status = "expired".into();
            old.gives_access = false;
            old.auto_renewal_status = "will_not_renew".into();
            let start = active.starts_at - (n + 1) * 40 * DAY_MS;
            old.starts_at = start;
            old.current_period_starts_at = start;
            old.current_period_ends_at = Some(start + 30 * DAY_MS);
            old.ends_at = old.current_period_ends_at;
            c.subscriptions.push(old);
        }
        let consumable = c.purchases[0].clone();
        for n in 1..=6 {
            let mut p = consumable.clone();
            p.id = format!("purch_more_{n:02}");
            p.purchased_at -= n * DAY_MS;
            c.purchases.push(p);
        }
    });
}

/// (3) RevenueCat pages at 5 whatever `limit` rcsync asks for (a silent cap), or refuses
/// rcsync's `limit` with a 400 (a smaller declared maximum): either way every item is read.
#[tokio::test]
async fn a_page_maximum_below_rcsyncs_limit_still_yields_every_item() {
    let app = extras_app().await;
    let user = "many_items";
    add_many_items(&app.fake, user);
    // 12 × 9.99 + 7 × 2.50
    let expected = json!({
        "rc_subscriber": "true",
        "rc_status": "active",
        "rc_will_renew": "true",
        "rc_product": "premium_monthly",
        "rc_entitlements": "premium",
        "rc_period_type": "normal",
        "rc_billing_period": "monthly",
        "rc_total_revenue_usd": "137.38",
    });
    assert_eq!(synced(&app, user).await, expected);

    // Silent cap: 12 subscriptions in 3 pages, 7 purchases in 2.
    app.fake.set_page_cap(Some(5));
    app.fake.clear_log();
    assert_eq!(synced(&app, user).await, expected);
    let log = paths(&app.fake);
    let count = |sub: &str| {
        let base = project_path(&format!("/customers/{user}/{sub}?"));
        log.iter().filter(|p| p.starts_with(&base)).count()
    };
    assert_eq!(
        (count("subscriptions"), count("purchases")),
        (3, 2),
        "{log:#?}"
    );

    // A declared maximum of 10: rcsync's limit=100 is refused (400 parameter_error), it asks
    // again without a limit (RevenueCat's default page, here at most 10) and pages on.
    app.fake.set_page_cap(None);
    app.fake.set_max_page_limit(10);
    app.fake.clear_log();
    let (status, body) = app.sync_user(user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["properties"], expected);
    let log = app.fake.request_log();
    let subs: Vec<(u16, &str)> = log
        .iter()
        .filter(|r| {
            r.path_and_query
                .contains(&format!("/customers/{user}/subscriptions"))
        })
        .map(|r| (r.status, r.path_and_query.as_str()))
        .collect();
    let base = project_path(&format!("/customers/{user}/subscriptions"));
    assert_eq!(subs.len(), 3, "{subs:#?}");
    assert_eq!(subs[0], (400, format!("{base}?limit=100").as_str()));
    assert_eq!(subs[1], (200, base.as_str()));
    assert_eq!(subs[2].0, 200);
    assert!(subs[2].1.contains("starting_after="), "{subs:#?}");
}

/// (3) The full resync's customer list under a silent cap of 5: every customer imported.
#[tokio::test]
async fn a_full_resync_imports_every_customer_through_a_page_cap_of_five() {
    let mut fake = dataset(23, 0.7);
    fake.page_cap = Some(5);
    let app = fast_app(fake).await;
    add_users(&app, &[customer_id(0), customer_id(1)]).await;
    let (status, body) = trigger(&app, "?import_missing=true").await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["missing_in_project"], 21, "{result}");
    assert_eq!(result["imported"], 21, "{result}");
    assert_eq!(result["synced"], 23, "{result}");
    assert_eq!(result["api_calls_by_endpoint"]["customers"], 5, "{result}");
    for i in 0..23 {
        assert_eq!(app.get_user(&customer_id(i)).await.0, 200, "{i}");
    }
}

/// (4) Subscription statuses `unknown` and `incomplete`, renewal statuses
/// `will_change_product` and `has_already_renewed`, mapped as `mapping/customer.rs` documents:
/// `unknown` still giving access is active; `incomplete` without access is expired (it never
/// started); both renewal statuses renew (`AutoRenewalStatus::will_renew`); the product is the
/// current one (not the pending change) and the billing period is the product's, never read
/// from `ends_at`.
#[tokio::test]
async fn rare_subscription_and_renewal_statuses_map_as_documented() {
    let app = extras_app().await;
    let active_monthly = |revenue: &str| {
        json!({
            "rc_subscriber": "true",
            "rc_status": "active",
            "rc_will_renew": "true",
            "rc_product": "premium_monthly",
            "rc_entitlements": "premium",
            "rc_period_type": "normal",
            "rc_billing_period": "monthly",
            "rc_total_revenue_usd": revenue,
        })
    };
    let cases = [
        (ExtraCase::UnknownStatus, active_monthly("9.99")),
        (
            ExtraCase::Incomplete,
            json!({
                "rc_subscriber": "false",
                "rc_status": "expired",
                "rc_will_renew": "false",
                "rc_product": "premium_monthly",
                "rc_period_type": "normal",
                "rc_billing_period": "monthly",
                "rc_total_revenue_usd": "0.00",
            }),
        ),
        (ExtraCase::WillChangeProduct, active_monthly("9.99")),
        (ExtraCase::HasAlreadyRenewed, active_monthly("19.98")),
    ];
    for (case, expected) in cases {
        let user = extra_case_id(case);
        assert_eq!(synced(&app, &user).await, expected, "{case:?}");
    }
}

/// (5) A tester's sandbox App Store subscription (and a sandbox consumable) is applied like a
/// production one, as webhooks apply sandbox events: the same properties as its production
/// twin, the sandbox revenue included.
#[tokio::test]
async fn a_sandbox_subscriber_is_synced_like_a_production_one() {
    let app = extras_app().await;
    let sandbox = extra_case_id(ExtraCase::Sandbox);
    let customer = app.fake.state().customer(&sandbox).unwrap();
    assert_eq!(customer.subscriptions[0].environment, "sandbox");
    assert_eq!(customer.purchases[0].environment, "sandbox");
    let production = extra_case_id(ExtraCase::SubscriptionAndConsumable);
    let expected = json!({
        "rc_subscriber": "true",
        "rc_status": "active",
        "rc_will_renew": "true",
        "rc_product": "premium_monthly",
        "rc_entitlements": "premium",
        "rc_period_type": "normal",
        "rc_billing_period": "monthly",
        "rc_total_revenue_usd": "12.49",
    });
    assert_eq!(synced(&app, &sandbox).await, expected);
    assert_eq!(synced(&app, &production).await, expected);
}

/// (3) A declared page maximum below the full resync's `limit`: the customer list's first
/// request is refused (400 `parameter_error`, `param: limit`), the resync asks again without a
/// limit and pages on verbatim, importing every customer.
#[tokio::test]
async fn a_full_resync_survives_a_refused_customer_list_limit() {
    let mut fake = dataset(12, 0.7);
    fake.max_page_limit = 5;
    let app = fast_app(fake).await;
    let (status, body) = trigger(&app, "?import_missing=true").await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["imported"], 12, "{result}");
    assert_eq!(result["synced"], 12, "{result}");
    let list = project_path("/customers");
    let pages: Vec<(u16, String)> = app
        .fake
        .request_log()
        .into_iter()
        .filter(|r| r.path_and_query == list || r.path_and_query.starts_with(&format!("{list}?")))
        .map(|r| (r.status, r.path_and_query))
        .collect();
    // refused, then RevenueCat's default page (at most 5 here) three times: 5 + 5 + 2.
    assert_eq!(pages.len(), 4, "{pages:#?}");
    assert_eq!(pages[0].0, 400, "{pages:#?}");
    assert_eq!(pages[1], (200, list.clone()), "{pages:#?}");
    assert!(pages[2..]
        .iter()
        .all(|(s, p)| *s == 200 && p.contains("starting_after=")));
}
