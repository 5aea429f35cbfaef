//! Customers in situations the round-robin [`crate::SUBSCRIBER_CASES`] do not cover: the rarer
//! subscription states and renewal statuses RevenueCat documents, and revenue mixes.
//!
//! They are opt-in ([`crate::DatasetExtras::extra_cases`], or one at a time with
//! [`crate::FakeRevenueCat::add_extra_case_customer`]) so the default dataset is unchanged.
//! Each is deterministic for a given id, seed and "now"; periods are whole so the revenue is
//! exact ([`ExtraCase::gross_revenue_usd`]). Catalog entries a case needs (the consumable, the
//! "plus" product and the `extras` entitlement) are installed with it.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::dataset::*;
use super::model::*;
use super::state::Store;

pub const PRODUCT_CONSUMABLE_ID: &str = "prod4f6a8c0e14";
pub const STORE_ID_CONSUMABLE: &str = "coins_100";
pub const CONSUMABLE_PRICE_USD: f64 = 2.50;
pub const PRODUCT_PLUS_MONTHLY_ID: &str = "prod7b9d1f3a25";
pub const STORE_ID_PLUS_MONTHLY: &str = "premium_plus_monthly";
pub const PLUS_MONTHLY_PRICE_USD: f64 = 14.99;
pub const EXTRAS_ENTITLEMENT_ID: &str = "entl6c8e0a2b49";
pub const EXTRAS_LOOKUP_KEY: &str = "extras";

/// A situation beyond [`crate::DatasetCase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraCase {
    /// Monthly subscription in status `unknown`, `gives_access: true`, entitled.
    UnknownStatus,
    /// Stripe subscription in status `incomplete` (billing details not accepted),
    /// `gives_access: false`, `pending_payment: true`, nothing charged, no entitlement.
    Incomplete,
    /// Active monthly, `auto_renewal_status: will_change_product`, `pending_changes.product`
    /// is the yearly product.
    WillChangeProduct,
    /// Active monthly, `auto_renewal_status: has_already_renewed`: the next period is already
    /// paid, so `ends_at` is one period after `current_period_ends_at`; revenue 2 periods.
    HasAlreadyRenewed,
    /// Active monthly (one period, 9.99) plus a one-time consumable purchase (2.50) that
    /// grants no entitlement.
    SubscriptionAndConsumable,
    /// A paid lifetime purchase (99.99) and a non-expiring entitlement, no subscription.
    PaidLifetime,
    /// A customer RevenueCat knows (seen in the app) with no purchase at all.
    NoPurchases,
    /// Active "plus" monthly subscription granting two entitlements, `premium` and `extras`.
    TwoEntitlements,
    /// A tester's active monthly App Store subscription in the `sandbox` environment (one
    /// period, 9.99 as the sandbox reports it), otherwise like a production monthly
    /// subscriber; plus a sandbox one-time consumable purchase (2.50).
    Sandbox,
}

/// Every extra case, in the order [`crate::DatasetExtras::extra_cases`] adds them.
pub const EXTRA_CASES: [ExtraCase; 9] = [
    ExtraCase::UnknownStatus,
    ExtraCase::Incomplete,
    ExtraCase::WillChangeProduct,
    ExtraCase::HasAlreadyRenewed,
    ExtraCase::SubscriptionAndConsumable,
    ExtraCase::PaidLifetime,
    ExtraCase::NoPurchases,
    ExtraCase::TwoEntitlements,
    ExtraCase::Sandbox,
];

impl ExtraCase {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtraCase::UnknownStatus => "unknown_status",
            ExtraCase::Incomplete => "incomplete",
            ExtraCase::WillChangeProduct => "will_change_product",
            ExtraCase::HasAlreadyRenewed => "has_already_renewed",
            ExtraCase::SubscriptionAndConsumable => "subscription_and_consumable",
            ExtraCase::PaidLifetime => "paid_lifetime",
            ExtraCase::NoPurchases => "no_purchases",
            ExtraCase::TwoEntitlements => "two_entitlements",
            ExtraCase::Sandbox => "sandbox",
        }
    }

    /// Whether the customer currently holds an entitlement.
    pub fn has_access(self) -> bool {
        !matches!(self, ExtraCase::Incomplete | ExtraCase::NoPurchases)
    }

    /// Gross revenue (USD) over the customer's subscriptions and purchases.
    pub fn gross_revenue_usd(self) -> f64 {
        match self {
            ExtraCase::UnknownStatus | ExtraCase::WillChangeProduct => MONTHLY_PRICE_USD,
            ExtraCase::Incomplete | ExtraCase::NoPurchases => 0.0,
            ExtraCase::HasAlreadyRenewed => 2.0 * MONTHLY_PRICE_USD,
            ExtraCase::SubscriptionAndConsumable | ExtraCase::Sandbox => {
                MONTHLY_PRICE_USD + CONSUMABLE_PRICE_USD
            }
            ExtraCase::PaidLifetime => LIFETIME_PRICE_USD,
            ExtraCase::TwoEntitlements => PLUS_MONTHLY_PRICE_USD,
        }
    }
}

/// The id [`crate::DatasetExtras::extra_cases`] gives the customer in `case`.
pub fn extra_case_id(case: ExtraCase) -> String {
    format!("extra_{}", case.as_str())
}

/// Install `case` as customer `id` (replacing any customer of that id), with the catalog
/// entries it needs; returns what was stored.
pub fn install_extra_case(
    store: &mut Store,
    id: &str,
    case: ExtraCase,
    seed: u64,
    now: i64,
) -> CustomerRecord {
    install_catalog_for(store, case);
    let mut counter = store.id_counter;
    let c = extra_customer(id, case, seed, now, &mut counter);
    store.id_counter = counter;
    store.upsert_customer(c.clone());
    c
}

fn install_catalog_for(store: &mut Store, case: ExtraCase) {
    let app_id = store.app_id.clone();
    let product = |id: &str, sid: &str, name: &str| ProductRecord {
        id: id.into(),
        store_identifier: sid.into(),
        product_type: "subscription".into(),
        duration: Some("P1M".into()),
        grace_period_duration: Some("P16D".into()),
        trial_duration: None,
        is_consumable: None,
        created_at: CATALOG_CREATED_AT,
        app_id: app_id.clone(),
        display_name: Some(name.into()),
    };
    match case {
        ExtraCase::SubscriptionAndConsumable | ExtraCase::Sandbox
            if store.product(PRODUCT_CONSUMABLE_ID).is_none() =>
        {
            store.upsert_product(ProductRecord {
                product_type: "one_time".into(),
                duration: None,
                grace_period_duration: None,
                is_consumable: Some(true),
                ..product(PRODUCT_CONSUMABLE_ID, STORE_ID_CONSUMABLE, "100 Coins")
            });
        }
        ExtraCase::TwoEntitlements if store.entitlement(EXTRAS_ENTITLEMENT_ID).is_none() => {
            store.upsert_product(product(
                PRODUCT_PLUS_MONTHLY_ID,
                STORE_ID_PLUS_MONTHLY,
                "Premium Plus Monthly",
            ));
            store.upsert_entitlement(EntitlementRecord {
                id: EXTRAS_ENTITLEMENT_ID.into(),
                lookup_key: EXTRAS_LOOKUP_KEY.into(),
                display_name: "Extras".into(),
                created_at: CATALOG_CREATED_AT,
                product_ids: vec![PRODUCT_PLUS_MONTHLY_ID.into()],
            });
            if let Some(premium) = store.entitlement(PREMIUM_ENTITLEMENT_ID).cloned() {
                let mut premium = premium;
                premium.product_ids.push(PRODUCT_PLUS_MONTHLY_ID.into());
                store.upsert_entitlement(premium);
            }
        }
        _ => {}
    }
}

fn seed_of(id: &str, seed: u64) -> u64 {
    id.bytes().fold(seed ^ 0xE17A_CA5E_0000_0001, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

fn extra_customer(
    id: &str,
    case: ExtraCase,
    seed: u64,
    now: i64,
    counter: &mut u64,
) -> CustomerRecord {
    let month = 30 * DAY_MS;
    let mut c = CustomerRecord::new(id, now - 90 * DAY_MS);
    c.last_seen_at = Some(now - DAY_MS);
    c.last_seen_app_version = Some("2.4.1".into());
    c.last_seen_country = Some("US".into());
    c.last_seen_platform = Some("iOS".into());
    c.last_seen_platform_version = Some("18.2".into());
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed_of(id, seed)),
        now,
        customer_id: id,
        country: Some("US".into()),
        store: if case == ExtraCase::Incomplete {
            "stripe"
        } else {
            "app_store"
        },
        counter,
    };
    let cps = now - 5 * DAY_MS;
    let cpe = cps + month;
    let entitled = |entitlement_id: &str, expires_at| ActiveEntitlementRecord {
        entitlement_id: entitlement_id.into(),
        expires_at,
    };
    let active = |g: &mut Gen, auto: &str, revenue: f64| {
        g.sub(
            PRODUCT_MONTHLY_ID,
            sub_status::ACTIVE,
            auto,
            true,
            false,
            cps,
            cps,
            Some(cpe),
            revenue,
        )
    };
    match case {
        ExtraCase::UnknownStatus => {
            let mut s = active(&mut g, auto_renewal::WILL_RENEW, MONTHLY_PRICE_USD);
            s.status = sub_status::UNKNOWN.into();
            c.subscriptions.push(s);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)));
        }
        ExtraCase::Incomplete => {
            let mut s = active(&mut g, auto_renewal::WILL_RENEW, 0.0);
            s.status = sub_status::INCOMPLETE.into();
            s.gives_access = false;
            s.pending_payment = true;
            s.management_url = None;
            c.subscriptions.push(s);
        }
        ExtraCase::WillChangeProduct => {
            let mut s = active(&mut g, auto_renewal::WILL_CHANGE_PRODUCT, MONTHLY_PRICE_USD);
            s.pending_change_product_id = Some(PRODUCT_YEARLY_ID.into());
            c.subscriptions.push(s);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)));
        }
        ExtraCase::HasAlreadyRenewed => {
            let mut s = active(
                &mut g,
                auto_renewal::HAS_ALREADY_RENEWED,
                2.0 * MONTHLY_PRICE_USD,
            );
            s.ends_at = Some(cpe + month);
            c.subscriptions.push(s);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)));
        }
        ExtraCase::SubscriptionAndConsumable => {
            let s = active(&mut g, auto_renewal::WILL_RENEW, MONTHLY_PRICE_USD);
            c.subscriptions.push(s);
            let p = purchase(
                &mut g,
                PRODUCT_CONSUMABLE_ID,
                CONSUMABLE_PRICE_USD,
                vec![],
                now - 2 * DAY_MS,
            );
            c.purchases.push(p);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)));
        }
        ExtraCase::PaidLifetime => {
            let p = purchase(
                &mut g,
                PRODUCT_LIFETIME_ID,
                LIFETIME_PRICE_USD,
                vec![PREMIUM_ENTITLEMENT_ID.into()],
                now - 40 * DAY_MS,
            );
            c.purchases.push(p);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, None));
        }
        ExtraCase::NoPurchases => {}
        ExtraCase::TwoEntitlements => {
            let mut s = active(&mut g, auto_renewal::WILL_RENEW, PLUS_MONTHLY_PRICE_USD);
            s.product_id = Some(PRODUCT_PLUS_MONTHLY_ID.into());
            s.entitlement_ids = vec![PREMIUM_ENTITLEMENT_ID.into(), EXTRAS_ENTITLEMENT_ID.into()];
            c.subscriptions.push(s);
            c.active_entitlements.extend([
                entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)),
                entitled(EXTRAS_ENTITLEMENT_ID, Some(cpe)),
            ]);
        }
        ExtraCase::Sandbox => {
            let mut s = active(&mut g, auto_renewal::WILL_RENEW, MONTHLY_PRICE_USD);
            s.environment = "sandbox".into();
            c.subscriptions.push(s);
            let mut p = purchase(
                &mut g,
                PRODUCT_CONSUMABLE_ID,
                CONSUMABLE_PRICE_USD,
                vec![],
                now - 2 * DAY_MS,
            );
            p.environment = "sandbox".into();
            c.purchases.push(p);
            c.active_entitlements
                .push(entitled(PREMIUM_ENTITLEMENT_ID, Some(cpe)));
        }
    }
    c
}

fn purchase(
    g: &mut Gen,
    product_id: &str,
    price: f64,
    entitlement_ids: Vec<String>,
    at: i64,
) -> PurchaseRecord {
    PurchaseRecord {
        id: g.next_id("purch"),
        customer_id: g.customer_id.to_string(),
        original_customer_id: g.customer_id.to_string(),
        product_id: product_id.into(),
        purchased_at: at,
        revenue_in_usd: Money::usd(price),
        quantity: 1,
        status: "owned".into(),
        presented_offering_id: None,
        entitlement_ids,
        environment: "production".into(),
        store: g.store.into(),
        store_purchase_identifier: g.store_identifier(),
        ownership: "purchased".into(),
        country: g.country.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000_000;

    fn installed(case: ExtraCase) -> (Store, CustomerRecord) {
        let mut store = Store::new("proj1");
        install_catalog(&mut store);
        let c = install_extra_case(&mut store, &extra_case_id(case), case, 42, NOW);
        (store, c)
    }

    fn gross(c: &CustomerRecord) -> f64 {
        let subs: f64 = c
            .subscriptions
            .iter()
            .map(|s| s.total_revenue_in_usd.gross)
            .sum();
        let once: f64 = c.purchases.iter().map(|p| p.revenue_in_usd.gross).sum();
        ((subs + once) * 100.0).round() / 100.0
    }

    #[test]
    fn every_extra_case_has_its_documented_shape() {
        for case in EXTRA_CASES {
            let (store, c) = installed(case);
            let ctx = format!("{case:?}");
            assert_eq!(gross(&c), case.gross_revenue_usd(), "{ctx}");
            let entitled = c
                .active_entitlements
                .iter()
                .any(|e| e.expires_at.is_none_or(|t| t > NOW));
            assert_eq!(entitled, case.has_access(), "{ctx}");
            let s = c.subscriptions.first();
            match case {
                ExtraCase::UnknownStatus => {
                    let s = s.unwrap();
                    assert_eq!((s.status.as_str(), s.gives_access), ("unknown", true));
                }
                ExtraCase::Incomplete => {
                    let s = s.unwrap();
                    assert_eq!((s.status.as_str(), s.gives_access), ("incomplete", false));
                    assert!(s.pending_payment);
                    assert_eq!(s.store, "stripe");
                }
                ExtraCase::WillChangeProduct => {
                    let s = s.unwrap();
                    assert_eq!(s.auto_renewal_status, "will_change_product");
                    assert_eq!(
                        s.pending_change_product_id.as_deref(),
                        Some(PRODUCT_YEARLY_ID)
                    );
                }
                ExtraCase::HasAlreadyRenewed => {
                    let s = s.unwrap();
                    assert_eq!(s.auto_renewal_status, "has_already_renewed");
                    let (cpe, ends) = (s.current_period_ends_at.unwrap(), s.ends_at.unwrap());
                    assert_eq!(ends - cpe, 30 * DAY_MS);
                }
                ExtraCase::SubscriptionAndConsumable => {
                    let p = &c.purchases[0];
                    assert_eq!(p.revenue_in_usd.gross, CONSUMABLE_PRICE_USD);
                    assert!(p.entitlement_ids.is_empty());
                    let product = store.product(&p.product_id).unwrap();
                    assert_eq!(product.is_consumable, Some(true));
                    assert_eq!(s.unwrap().status, "active");
                }
                ExtraCase::PaidLifetime => {
                    assert!(c.subscriptions.is_empty());
                    assert_eq!(c.purchases[0].product_id, PRODUCT_LIFETIME_ID);
                }
                ExtraCase::NoPurchases => {
                    assert!(c.subscriptions.is_empty() && c.purchases.is_empty());
                    assert!(c.last_seen_at.is_some());
                }
                ExtraCase::Sandbox => {
                    let s = s.unwrap();
                    assert_eq!(
                        (s.status.as_str(), s.store.as_str()),
                        ("active", "app_store")
                    );
                    assert_eq!(s.environment, "sandbox");
                    assert_eq!(c.purchases[0].environment, "sandbox");
                }
                ExtraCase::TwoEntitlements => {
                    assert_eq!(c.active_entitlements.len(), 2);
                    assert_eq!(s.unwrap().entitlement_ids.len(), 2);
                    assert!(store.entitlement(EXTRAS_ENTITLEMENT_ID).is_some());
                    let premium = store.entitlement(PREMIUM_ENTITLEMENT_ID).unwrap();
                    assert!(premium
                        .product_ids
                        .iter()
                        .any(|p| p == PRODUCT_PLUS_MONTHLY_ID));
                }
            }
        }
    }

    #[test]
    fn installing_twice_is_deterministic_and_does_not_duplicate_the_catalog() {
        let (mut store, first) = installed(ExtraCase::TwoEntitlements);
        let ents = store.entitlements.len();
        let again = install_extra_case(&mut store, "other", ExtraCase::TwoEntitlements, 42, NOW);
        assert_eq!(store.entitlements.len(), ents);
        assert_eq!(again.subscriptions[0].status, first.subscriptions[0].status);
        let (_, same) = installed(ExtraCase::TwoEntitlements);
        assert_eq!(same, first);
    }
}
