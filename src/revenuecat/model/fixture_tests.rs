//! Every RevenueCat sample under `fixtures/` parses with rcsync's own types, down to the
//! nested values: the API v2 objects (`fixtures/v2`) with the model, and every webhook body
//! (ours and RevenueCat's published samples) with [`WebhookPayload`].

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;
use crate::revenuecat::{EventType, PeriodType, WebhookPayload};

fn fixture_dir(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir)
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn parse<T: DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap()
}

const CUSTOMER_ID: &str = "19b8de26-77c1-49f1-aa18-019a391603e2";
const ENTITLEMENT_ID: &str = "entla1b2c3d4e5";
const AT: i64 = 1_658_399_423_658;

fn assert_usd(amount: &MonetaryAmount) {
    assert_eq!(amount.currency.as_deref(), Some("USD"));
    assert_eq!(
        (amount.gross, amount.commission, amount.tax, amount.proceeds),
        (9.99, 2.99, 0.75, 6.25)
    );
}

fn assert_premium(list: &Option<ListPage<Entitlement>>, url: &str) {
    let list = list.as_ref().expect("embedded entitlements");
    assert_eq!(list.items.len(), 1);
    let entitlement = &list.items[0];
    assert_eq!(entitlement.id, ENTITLEMENT_ID);
    assert_eq!(entitlement.lookup_key, "premium");
    assert_eq!(entitlement.display_name, "Premium");
    assert_eq!(entitlement.project_id.as_deref(), Some("proj1ab2c3d4"));
    assert_eq!(entitlement.created_at, Some(AT));
    assert_eq!(list.next_page(), None);
    assert_eq!(list.url.as_deref(), Some(url));
}

fn check_customer(customer: Customer) {
    assert_eq!(customer.id, CUSTOMER_ID);
    assert_eq!(customer.project_id.as_deref(), Some("proj1ab2c3d4"));
    assert_eq!(
        (customer.first_seen_at, customer.last_seen_at),
        (Some(AT), Some(AT))
    );
    let active = customer.active_entitlements.expect("active_entitlements");
    assert_eq!(
        active.items,
        [CustomerEntitlement {
            entitlement_id: ENTITLEMENT_ID.into(),
            expires_at: Some(AT),
        }]
    );
    assert_eq!(active.next_page(), None);
    assert_eq!(
        active.url.as_deref(),
        Some(
            format!("/v2/projects/proj1ab2c3d4/customers/{CUSTOMER_ID}/active_entitlements")
                .as_str()
        )
    );
}

fn check_customer_page(page: ListPage<Customer>) {
    assert_eq!(page.items.len(), 1);
    let customer = &page.items[0];
    assert_eq!(customer.id, CUSTOMER_ID);
    assert_eq!(customer.active_entitlements, None, "list items carry none");
    assert_eq!(
        page.next_page(),
        Some(format!("/v2/projects/proj1ab2c3d4/customers?starting_after={CUSTOMER_ID}").as_str())
    );
    assert_eq!(
        page.url.as_deref(),
        Some("/v2/projects/proj1ab2c3d4/customers")
    );
}

fn check_subscription(s: Subscription) {
    assert_eq!(s.id, "sub1ab2c3d4e5");
    assert_eq!(s.customer_id.as_deref(), Some(CUSTOMER_ID));
    assert_eq!(s.original_customer_id.as_deref(), Some(CUSTOMER_ID));
    assert_eq!(s.product_id.as_deref(), Some("prod1a2b3c4d5e"));
    assert_eq!(
        (
            s.starts_at,
            s.current_period_starts_at,
            s.current_period_ends_at,
            s.ends_at
        ),
        (Some(AT), Some(AT), Some(AT), Some(AT))
    );
    assert!(s.gives_access && s.pending_payment);
    assert_eq!(s.auto_renewal_status, AutoRenewalStatus::WillRenew);
    assert_eq!(s.status, SubscriptionStatus::Trialing);
    assert_usd(s.total_revenue_in_usd.as_ref().expect("revenue"));
    assert_eq!(s.presented_offering_id.as_deref(), Some("ofrnge1a2b3c4d5"));
    assert_premium(
        &s.entitlements,
        "/v2/projects/proj1ab2c3d4/subscriptions/sub1a2b3c4d5e/entitlements",
    );
    assert_eq!(s.entitlement_ids().collect::<Vec<_>>(), [ENTITLEMENT_ID]);
    assert_eq!(s.environment, Environment::Production);
    assert_eq!(s.store, Store::AppStore);
    assert_eq!(s.store_subscription_identifier.as_deref(), Some("12345678"));
    assert_eq!(s.ownership, Ownership::Purchased);
    assert_eq!(s.pending_changes, None);
    assert_eq!(s.country.as_deref(), Some("US"));
    assert_eq!(
        s.management_url.as_deref(),
        Some("https://apps.apple.com/account/subscriptions")
    );
}

fn check_purchase(p: Purchase) {
    assert_eq!(p.id, "purch1a2b3c4d5e");
    assert_eq!(p.customer_id.as_deref(), Some(CUSTOMER_ID));
    assert_eq!(p.product_id.as_deref(), Some("prod1a2b3c4d5e"));
    assert_eq!(p.purchased_at, Some(AT));
    assert_usd(p.revenue_in_usd.as_ref().expect("revenue"));
    assert_eq!(p.quantity, Some(1));
    assert_eq!(p.status, PurchaseStatus::Owned);
    assert_premium(
        &p.entitlements,
        "/v2/projects/proj1ab2c3d4/purchases/purch1a2b3c4d5e/entitlements",
    );
    assert_eq!(p.entitlement_ids().collect::<Vec<_>>(), [ENTITLEMENT_ID]);
    assert_eq!(
        (p.environment, p.store),
        (Environment::Production, Store::AppStore)
    );
    assert_eq!(p.store_purchase_identifier.as_deref(), Some("12345678"));
    assert_eq!(p.ownership, Ownership::Purchased);
    assert_eq!(p.country.as_deref(), Some("US"));
}

fn check_entitlement(e: Entitlement) {
    assert_eq!(
        e,
        Entitlement {
            id: ENTITLEMENT_ID.into(),
            lookup_key: "premium".into(),
            display_name: "Premium".into(),
            project_id: Some("proj1ab2c3d4".into()),
            created_at: Some(AT),
        }
    );
}

fn check_product(p: Product) {
    assert_eq!(p.id, "prod1a2b3c4d5e");
    assert_eq!(p.store_identifier, "rc_1w_199");
    assert_eq!(p.product_type, ProductType::Subscription);
    let sub = p.subscription.expect("subscription details");
    assert_eq!(sub.duration.as_deref(), Some("P1M"));
    assert_eq!(sub.grace_period_duration.as_deref(), Some("P3D"));
    assert_eq!(sub.trial_duration.as_deref(), Some("P1W"));
    assert_eq!(p.one_time, None);
    assert_eq!(p.app_id.as_deref(), Some("app1a2b3c4"));
    assert_eq!(p.display_name.as_deref(), Some("Premium Monthly 2023"));
    assert_eq!(p.created_at, Some(AT));
}

fn check_project(p: Project) {
    assert_eq!(
        (p.id.as_str(), p.name.as_str(), p.created_at),
        ("proj1ab2c3d4", "MagicWeather", Some(AT))
    );
}

fn check_webhook_integration(w: WebhookIntegration) {
    assert_eq!(w.id, "wh_1234567890abcdef");
    assert_eq!(w.project_id.as_deref(), Some("proj1ab2c3d4"));
    assert_eq!(w.name, "Customer updates webhook");
    assert_eq!(w.url, "https://hooks.example.com/revenuecat");
    assert_eq!(w.environment, Some(Environment::Production));
    assert_eq!(
        w.event_types,
        Some(vec!["initial_purchase".to_string(), "renewal".to_string()])
    );
    assert_eq!(w.app_id, None);
    assert_eq!(w.created_at, Some(AT));
}

fn check_error(name: &str, e: ApiErrorBody) {
    let (kind, message, param, retryable, backoff) = match name {
        "error_not_found" => ("resource_missing", "Resource not found", None, false, None),
        "error_parameter" => (
            "parameter_error",
            "id is too long",
            Some("customer_id"),
            false,
            None,
        ),
        _ => (
            "rate_limit_error",
            "Rate limit exceeded",
            None,
            true,
            Some(1000),
        ),
    };
    assert_eq!(e.error_type.as_deref(), Some(kind), "{name}");
    assert_eq!(e.message.as_deref(), Some(message), "{name}");
    assert_eq!(e.param.as_deref(), param, "{name}");
    assert_eq!(e.retryable, Some(retryable), "{name}");
    assert_eq!(e.backoff_ms, backoff, "{name}");
    let doc = format!("https://errors.rev.cat/{}", kind.replace('_', "-"));
    assert_eq!(e.doc_url.as_deref(), Some(doc.as_str()), "{name}");
}

#[test]
fn every_v2_sample_parses_into_its_model() {
    let files = json_files(&fixture_dir("v2"));
    for path in &files {
        match stem(path) {
            "customer" => check_customer(parse(path)),
            "list_customers_page" => check_customer_page(parse(path)),
            "subscription" => check_subscription(parse(path)),
            "purchase" => check_purchase(parse(path)),
            "entitlement" => check_entitlement(parse(path)),
            "product" => check_product(parse(path)),
            "project" => check_project(parse(path)),
            "webhook_integration" => check_webhook_integration(parse(path)),
            name @ ("error_not_found" | "error_parameter" | "error_rate_limit") => {
                check_error(name, parse(path))
            }
            other => panic!("fixtures/v2/{other}.json has no model check here: add one"),
        }
    }
    assert_eq!(files.len(), 11);
}

/// The fields both sides read the same way, checked against the raw JSON of each fixture.
fn check_against_raw(path: &Path, payload: &WebhookPayload) {
    let raw: Value = parse(path);
    let ctx = path.display().to_string();
    let event = &payload.event;
    let raw_event = &raw["event"];
    assert_eq!(payload.api_version.as_deref(), Some("1.0"), "{ctx}");
    assert_eq!(raw_event["id"].as_str(), Some(event.id.as_str()), "{ctx}");
    assert_eq!(
        raw_event["type"].as_str(),
        Some(event.event_type.as_str()),
        "{ctx}"
    );
    assert!(
        !matches!(event.event_type, EventType::Other(_)),
        "{ctx}: unknown type"
    );
    assert_eq!(
        raw_event["event_timestamp_ms"].as_i64(),
        Some(event.event_timestamp_ms),
        "{ctx}"
    );
    assert_eq!(
        raw_event["app_user_id"].as_str(),
        event.app_user_id.as_deref(),
        "{ctx}"
    );
    assert_eq!(
        raw_event["product_id"].as_str(),
        event.product_id.as_deref(),
        "{ctx}"
    );
    assert_eq!(
        raw_event["expiration_at_ms"].as_i64(),
        event.expiration_at_ms,
        "{ctx}"
    );
    assert_eq!(raw_event["price"].as_f64(), event.price, "{ctx}");
    let aliases: Vec<&str> = raw_event["aliases"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(event.aliases, aliases, "{ctx}");
    let environment = raw_event["environment"]
        .as_str()
        .map(|e| e.to_ascii_lowercase());
    assert_eq!(
        event.environment.as_ref().map(|e| e.as_str()),
        environment.as_deref(),
        "{ctx}"
    );
    let store = raw_event["store"].as_str().map(|s| s.to_ascii_lowercase());
    assert_eq!(
        event.store.as_ref().map(|s| s.as_str()),
        store.as_deref(),
        "{ctx}"
    );
    assert!(
        !matches!(event.store, Some(Store::Other(_))),
        "{ctx}: unknown store"
    );
}

#[test]
fn every_webhook_fixture_parses_as_a_payload() {
    let ours = json_files(&fixture_dir("webhooks"));
    let published = json_files(&fixture_dir("webhooks/revenuecat_samples"));
    assert_eq!((ours.len(), published.len()), (18, 18));
    for path in ours.iter().chain(&published) {
        let payload: WebhookPayload = parse(path);
        check_against_raw(path, &payload);
    }
}

fn sample(name: &str) -> WebhookPayload {
    parse(&fixture_dir("webhooks/revenuecat_samples").join(format!("{name}.json")))
}

fn ours(name: &str) -> WebhookPayload {
    parse(&fixture_dir("webhooks").join(format!("{name}.json")))
}

#[test]
fn published_samples_keep_their_details() {
    let transfer = sample("transfer").event;
    assert_eq!(transfer.event_type, EventType::Transfer);
    assert_eq!(transfer.event_timestamp_ms, 78_789_789_798_798);
    assert_eq!(
        (transfer.app_user_id.as_deref(), transfer.target_user_id()),
        (None, None)
    );
    assert_eq!(
        transfer.transferred_from,
        ["00005A1C-6091-4F81-BE77-F0A83A271AB6"]
    );
    assert_eq!(
        transfer.transferred_to,
        ["4BEDB450-8EF2-11E9-B475-0800200C9A66"]
    );
    assert_eq!(transfer.app_id.as_deref(), Some("1234567890"));

    let refund = sample("refund").event;
    assert!(refund.is_refund());
    assert_eq!(refund.price, Some(-9.99));
    assert_eq!(refund.identified_user_id(), Some("user_1234"));
    assert_eq!(refund.entitlement_keys(), Some(vec!["pro".to_string()]));

    let cancellation = sample("cancellation").event;
    assert_eq!(cancellation.cancel_reason.as_deref(), Some("UNSUBSCRIBE"));
    assert!(!cancellation.is_refund());
    assert_eq!(cancellation.offer_code.as_deref(), Some("free_month"));

    let initial = sample("initial_purchase").event;
    assert_eq!(initial.period_type, Some(PeriodType::Normal));
    assert_eq!(initial.purchased_at_ms, Some(1_658_726_374_000));
    assert_eq!(
        (initial.takehome_percentage, initial.commission_percentage),
        (Some(0.7), Some(0.3))
    );
    assert_eq!(
        initial.original_app_user_id.as_deref(),
        Some("$RCAnonymousID:87c6049c58069238dce29853916d624c")
    );
    let email = &initial.subscriber_attributes.as_ref().unwrap()["$email"];
    assert_eq!(email["value"], "firstlast@gmail.com");

    let renewal = sample("renewal").event;
    assert_eq!(
        (
            renewal.currency.as_deref(),
            renewal.price,
            renewal.price_in_purchased_currency
        ),
        (Some("EUR"), Some(8.14), Some(7.99))
    );
    assert_eq!(renewal.is_trial_conversion, Some(false));

    let lifetime = sample("non_renewing_purchase").event;
    assert_eq!(lifetime.expiration_at_ms, None);
    assert_eq!(lifetime.price, Some(25.487));
    assert_eq!(lifetime.presented_offering_id.as_deref(), Some("coins"));

    let paused = sample("subscription_paused").event;
    assert_eq!(paused.auto_resume_at_ms, Some(1_657_951_448_845));
    assert_eq!(paused.store, Some(Store::PlayStore));
    assert_eq!(paused.entitlement_id.as_deref(), Some("Premium1"));

    let change = sample("product_change").event;
    assert_eq!(
        change.new_product_id.as_deref(),
        Some("com.revenuecat.myapp.yearly")
    );
    assert_eq!(
        change.transaction_id.as_deref(),
        Some("GPA.1234-1234-1234-12345")
    );

    let expiration = sample("expiration").event;
    assert_eq!(expiration.expiration_reason.as_deref(), Some("UNSUBSCRIBE"));
    assert_eq!(expiration.tax_percentage, Some(0.012));

    assert_eq!(
        sample("trial_started").event.period_type,
        Some(PeriodType::Trial)
    );
    assert_eq!(
        sample("trial_cancelled").event.entitlement_keys(),
        Some(vec!["Premium".to_string()])
    );
    assert_eq!(sample("refund_reversed").event.renewal_number, Some(3));

    let invoice = sample("invoice_issuance").event;
    assert_eq!(invoice.store, Some(Store::RcBilling));
    assert_eq!((invoice.period_type.clone(), invoice.price), (None, None));
    assert_eq!(invoice.entitlement_keys(), None);
    assert_eq!(invoice.price_in_purchased_currency, Some(9.0));

    let enrollment = sample("experiment_enrollment").event;
    assert_eq!(enrollment.event_type, EventType::ExperimentEnrollment);
    assert_eq!(enrollment.identified_user_id(), None, "only anonymous ids");

    let coins = sample("virtual_currency_transaction").event;
    assert_eq!(coins.event_type, EventType::VirtualCurrencyTransaction);
    assert_eq!(
        coins.environment, None,
        "it says purchase_environment instead"
    );
    assert_eq!(coins.product_id.as_deref(), Some("1M_100credits"));
}

#[test]
fn our_fixtures_keep_their_details() {
    for name in ["sandbox_initial_purchase", "sandbox_renewal", "test"] {
        assert_eq!(
            ours(name).event.environment,
            Some(Environment::Sandbox),
            "{name}"
        );
    }
    let sandbox = ours("sandbox_renewal").event;
    assert_eq!(sandbox.identified_user_id(), Some("demo_tester_1"));
    assert_eq!(sandbox.renewal_number, Some(2));
    let anonymous = ours("anonymous_initial_purchase").event;
    assert_eq!(anonymous.period_type, Some(PeriodType::Trial));
    assert_eq!(anonymous.identified_user_id(), Some("demo_user_2"));
    let billing = ours("billing_issue").event;
    assert!(billing.grace_period_expiration_at_ms.is_some());
    let transfer = ours("transfer").event;
    assert_eq!(transfer.target_user_id(), None);
    assert!(!transfer.transferred_to.is_empty());
    let alias = ours("subscriber_alias").event;
    assert_eq!(alias.event_type, EventType::SubscriberAlias);
}
