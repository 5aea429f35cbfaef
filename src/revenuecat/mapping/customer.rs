//! Full resync: a customer's API v2 data becomes a complete `rc_*` patch.
//!
//! Decisions (documented because RevenueCat leaves them open):
//! - `rc_subscriber`: any active entitlement, or any subscription that `gives_access` (a
//!   product without an attached entitlement still makes a paying subscriber) — except a
//!   cancelled subscription (access until period end, no renewal), which is `false` exactly
//!   as a CANCELLATION webhook sets it; its `rc_entitlements` stay until expiry.
//! - The *primary* subscription is the access-giving one that runs longest (an indefinite
//!   pause counts as longest); without access, the one whose period started last.
//! - `rc_billing_period` of a subscription is the product's renewal period (catalog duration,
//!   else the current paid period's span), never a trial's span: a 7-day trial of a monthly
//!   plan is `monthly`. (The peer integration writes the trial's span.)
//! - `rc_will_renew` comes from `auto_renewal_status` only; an unknown or missing value
//!   removes the key rather than guessing "will renew" (the peer guesses true).
//! - Active entitlements that no access-giving subscription explains come from a one-time
//!   purchase or a grant. A purchase whose access never ends is lifetime access:
//!   `rc_period_type=lifetime` and `rc_billing_period=lifetime`, as a NON_RENEWING_PURCHASE
//!   webhook writes it; one whose access ends is `normal` with the period its span names. No
//!   purchase: a grant, `rc_period_type=promotional`. Promotional grants that API v2 reports
//!   as `store=promotional` subscriptions go through the subscription path and also get
//!   `promotional`.
//! - A customer RevenueCat knows who holds nothing (no subscription, no owned purchase, no
//!   entitlement) is `rc_subscriber=false`, `rc_status=expired`, `rc_will_renew=false` (so
//!   "known to RevenueCat, never paid" can be queried) with every plan key removed. A
//!   customer RevenueCat does not know (404) gets nothing; the caller writes no user.
//! - Entitlements-only fallback (`subscriptions: None`): only `rc_subscriber` and
//!   `rc_entitlements` are written. Status, renewal, product, period and revenue are left
//!   untouched rather than guessed or zeroed (what the peer got wrong: cancelled users shown as
//!   renewing, revenue zeroed).
//! - `rc_total_revenue_usd` is exact or absent. With revenue tracking on (the plan in
//!   [`CustomerData::plan`]) it is the gross of every subscription (`total_revenue_in_usd`) plus
//!   every non-refunded one-time purchase (`revenue_in_usd`), `0.00` for a customer who never
//!   paid; if `/purchases` could not be fetched it is left untouched rather than undercounted.
//!   With tracking off it is never written, and a value written earlier is left alone.
//!   (The peer also counts refunded one-time purchases.)
//! - `rc_last_purchase` needs a per-transaction price that API v2 does not expose: a resync
//!   leaves it untouched (webhooks maintain it), except that a customer known to hold no
//!   purchase at all loses it.

use std::collections::HashMap;

use super::{
    BillingPeriod, PropertyPatch, RcStatus, SubscriberState, Update, PERIOD_TYPE_LIFETIME,
};
use crate::revenuecat::catalog::Catalog;
use crate::revenuecat::customer_data::CustomerData;
use crate::revenuecat::model::{
    AutoRenewalStatus, Entitlement, Purchase, PurchaseStatus, Store, Subscription,
    SubscriptionStatus,
};

/// Maps everything known about a customer to a property patch. Pure: no clock, no I/O.
pub fn map_customer(data: &CustomerData, catalog: &Catalog) -> PropertyPatch {
    derive_state(data, catalog).into_patch()
}

/// The state behind [`map_customer`], exposed for callers that want the typed view.
pub fn derive_state(data: &CustomerData, catalog: &Catalog) -> SubscriberState {
    let names = EntitlementNames::new(data, catalog);
    let entitlement_keys: Vec<String> = data
        .active_entitlements
        .iter()
        .map(|entitlement| names.lookup_key(&entitlement.entitlement_id))
        .collect();
    let has_entitlement = !data.active_entitlements.is_empty();

    let Some(subscriptions) = data.subscriptions.as_deref() else {
        return SubscriberState {
            subscriber: Update::Set(has_entitlement),
            entitlements: Update::Set(entitlement_keys),
            ..Default::default()
        };
    };
    let purchases = data.purchases.as_deref();
    let owned_purchases: Vec<&Purchase> = purchases
        .unwrap_or_default()
        .iter()
        .filter(|purchase| purchase.status != PurchaseStatus::Refunded)
        .collect();

    let mut state = SubscriberState {
        subscriber: Update::Set(has_entitlement || subscriptions.iter().any(|s| s.gives_access)),
        entitlements: Update::Set(entitlement_keys),
        ..Default::default()
    };

    let revenue = tracked_revenue(data, subscriptions, &owned_purchases);
    if subscriptions.is_empty() && owned_purchases.is_empty() && !has_entitlement {
        return never_paid(revenue, purchases.is_some());
    }
    state.total_revenue_usd = revenue;

    if let Some(primary) = access_giving_subscription(subscriptions) {
        describe_subscription(&mut state, primary, catalog);
    } else if has_entitlement {
        describe_entitlement_without_subscription(&mut state, data, &owned_purchases, catalog);
    } else if let Some(latest) = most_recent_subscription(subscriptions) {
        describe_subscription(&mut state, latest, catalog);
    } else {
        describe_purchases_without_access(&mut state, &owned_purchases, catalog);
    }
    state
}

/// Only one-time purchases (consumables) and nothing active.
fn describe_purchases_without_access(
    state: &mut SubscriberState,
    owned_purchases: &[&Purchase],
    catalog: &Catalog,
) {
    state.status = Update::Set(RcStatus::Expired);
    state.will_renew = Update::Set(false);
    state.product = Update::set_or_clear(
        owned_purchases
            .iter()
            .max_by_key(|purchase| purchase.purchased_at)
            .and_then(|purchase| product_identifier(purchase.product_id.as_deref(), catalog)),
    );
    state.period_type = Update::Clear;
    state.billing_period = Update::Clear;
}

/// Exact or untouched: the gross of everything, when revenue is tracked and every purchase is
/// known (a failed `/purchases` must not write a partial sum as the total).
fn tracked_revenue(
    data: &CustomerData,
    subscriptions: &[Subscription],
    owned_purchases: &[&Purchase],
) -> Update<f64> {
    if data.plan.track_revenue && data.purchases.is_some() {
        Update::Set(total_revenue(subscriptions, owned_purchases))
    } else {
        Update::Keep
    }
}

/// A known customer without any subscription, owned purchase or entitlement.
fn never_paid(revenue: Update<f64>, purchases_known: bool) -> SubscriberState {
    SubscriberState {
        subscriber: Update::Set(false),
        status: Update::Set(RcStatus::Expired),
        will_renew: Update::Set(false),
        product: Update::Clear,
        entitlements: Update::Clear,
        period_type: Update::Clear,
        billing_period: Update::Clear,
        total_revenue_usd: revenue,
        last_purchase: if purchases_known {
            Update::Clear
        } else {
            Update::Keep
        },
    }
}

/// Entitlement lookup keys: the catalog first, then the entitlement objects embedded in
/// subscriptions/purchases, then the raw id (better than dropping an entitlement).
struct EntitlementNames<'a> {
    catalog: &'a Catalog,
    embedded: HashMap<&'a str, &'a str>,
}

impl<'a> EntitlementNames<'a> {
    fn new(data: &'a CustomerData, catalog: &'a Catalog) -> Self {
        let from_subscriptions = data
            .subscriptions
            .iter()
            .flatten()
            .filter_map(|subscription| subscription.entitlements.as_ref());
        let from_purchases = data
            .purchases
            .iter()
            .flatten()
            .filter_map(|purchase| purchase.entitlements.as_ref());
        let embedded = from_subscriptions
            .chain(from_purchases)
            .flat_map(|list| list.items.iter())
            .filter(|entitlement: &&Entitlement| !entitlement.lookup_key.is_empty())
            .map(|entitlement| (entitlement.id.as_str(), entitlement.lookup_key.as_str()))
            .collect();
        Self { catalog, embedded }
    }

    fn lookup_key(&self, entitlement_id: &str) -> String {
        self.catalog
            .entitlement_lookup_key(entitlement_id)
            .or_else(|| self.embedded.get(entitlement_id).copied())
            .unwrap_or(entitlement_id)
            .to_owned()
    }
}

fn total_revenue(subscriptions: &[Subscription], purchases: &[&Purchase]) -> f64 {
    let from_subscriptions: f64 = subscriptions
        .iter()
        .filter_map(|subscription| subscription.total_revenue_in_usd.as_ref())
        .map(|amount| amount.gross)
        .sum();
    let from_purchases: f64 = purchases
        .iter()
        .filter_map(|purchase| purchase.revenue_in_usd.as_ref())
        .map(|amount| amount.gross)
        .sum();
    from_subscriptions + from_purchases
}

fn access_giving_subscription(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions
        .iter()
        .filter(|subscription| subscription.gives_access)
        .max_by_key(|subscription| {
            // No end = paused indefinitely or similar: it outlasts any dated period.
            subscription.current_period_ends_at.unwrap_or(i64::MAX)
        })
}

fn most_recent_subscription(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions.iter().max_by_key(|subscription| {
        subscription
            .current_period_starts_at
            .max(subscription.starts_at)
            .unwrap_or(i64::MIN)
    })
}

fn product_identifier(product_id: Option<&str>, catalog: &Catalog) -> Option<String> {
    let product_id = product_id.filter(|id| !id.is_empty())?;
    Some(
        catalog
            .product(product_id)
            .map(|product| product.store_identifier.as_str())
            .filter(|identifier| !identifier.is_empty())
            .unwrap_or(product_id)
            .to_owned(),
    )
}

/// rcsync's status for one subscription.
fn subscription_status(subscription: &Subscription) -> RcStatus {
    let not_renewing = subscription.auto_renewal_status == AutoRenewalStatus::WillNotRenew;
    match &subscription.status {
        SubscriptionStatus::Paused => RcStatus::Paused,
        SubscriptionStatus::InBillingRetry | SubscriptionStatus::InGracePeriod => {
            RcStatus::BillingIssue
        }
        SubscriptionStatus::Expired => RcStatus::Expired,
        _ if !subscription.gives_access => RcStatus::Expired,
        // A promotional grant never renews by nature; it is not a cancellation.
        _ if subscription.store == Store::Promotional => RcStatus::Active,
        _ if not_renewing => RcStatus::Cancelled,
        SubscriptionStatus::Trialing => RcStatus::Trialing,
        // active, unknown, incomplete and future values that still give access.
        _ => RcStatus::Active,
    }
}

fn describe_subscription(
    state: &mut SubscriberState,
    subscription: &Subscription,
    catalog: &Catalog,
) {
    let status = subscription_status(subscription);
    state.status = Update::Set(status);
    if status == RcStatus::Cancelled {
        // One meaning on both paths: CANCELLATION webhooks set `rc_subscriber=false` while
        // access lasts, so a resync of a cancelled-but-entitled user says the same.
        state.subscriber = Update::Set(false);
    }
    state.will_renew = if status == RcStatus::Expired {
        Update::Set(false)
    } else {
        Update::set_or_clear(subscription.auto_renewal_status.will_renew())
    };
    state.product = Update::set_or_clear(product_identifier(
        subscription.product_id.as_deref(),
        catalog,
    ));
    let period_type = if subscription.store == Store::Promotional {
        "promotional"
    } else if subscription.status == SubscriptionStatus::Trialing {
        "trial"
    } else {
        "normal"
    };
    state.period_type = Update::Set(period_type.to_owned());
    state.billing_period = Update::set_or_clear(subscription_billing_period(subscription, catalog));
}

fn subscription_billing_period(
    subscription: &Subscription,
    catalog: &Catalog,
) -> Option<BillingPeriod> {
    let from_product = subscription
        .product_id
        .as_deref()
        .and_then(|id| catalog.product(id))
        .and_then(|product| product.duration.as_deref())
        .and_then(BillingPeriod::from_iso8601);
    // A trial period's length is the trial's, not the plan's: only trust it for paid periods.
    let from_period = match (
        subscription.status == SubscriptionStatus::Trialing,
        subscription.current_period_starts_at,
        subscription.current_period_ends_at,
    ) {
        (false, Some(start), Some(end)) => BillingPeriod::from_span_ms(start, end),
        _ => None,
    };
    let promotional_forever = (subscription.store == Store::Promotional
        && subscription.current_period_ends_at.is_none())
    .then_some(BillingPeriod::Lifetime);
    from_product.or(from_period).or(promotional_forever)
}

fn describe_entitlement_without_subscription(
    state: &mut SubscriberState,
    data: &CustomerData,
    owned_purchases: &[&Purchase],
    catalog: &Catalog,
) {
    state.status = Update::Set(RcStatus::Active);
    state.will_renew = Update::Set(false);
    if data.purchases.is_none() {
        // Purchases unknown: we cannot tell a lifetime purchase from a grant.
        state.product = Update::Keep;
        state.period_type = Update::Keep;
        state.billing_period = Update::Keep;
        return;
    }
    let unexplained = data.unexplained_entitlements();
    let explaining_purchase = owned_purchases
        .iter()
        .filter(|purchase| {
            purchase.entitlements.is_none()
                || purchase
                    .entitlement_ids()
                    .any(|id| unexplained.contains(&id))
        })
        .max_by_key(|purchase| purchase.purchased_at);
    // No access-giving subscription here, so every active entitlement needs explaining.
    let access_never_ends = data
        .active_entitlements
        .iter()
        .any(|entitlement| entitlement.expires_at.is_none());
    let Some(purchase) = explaining_purchase else {
        state.product = Update::Clear;
        state.period_type = Update::Set("promotional".to_owned());
        state.billing_period = if access_never_ends {
            Update::Set(BillingPeriod::Lifetime)
        } else {
            Update::Clear
        };
        return;
    };
    state.product =
        Update::set_or_clear(product_identifier(purchase.product_id.as_deref(), catalog));
    if access_never_ends {
        state.period_type = Update::Set(PERIOD_TYPE_LIFETIME.to_owned());
        state.billing_period = Update::Set(BillingPeriod::Lifetime);
    } else {
        state.period_type = Update::Set("normal".to_owned());
        let access_ends = data
            .active_entitlements
            .iter()
            .filter_map(|entitlement| entitlement.expires_at)
            .max();
        state.billing_period = Update::set_or_clear(
            purchase
                .purchased_at
                .zip(access_ends)
                .and_then(|(start, end)| BillingPeriod::from_span_ms(start, end)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revenuecat::customer_data::FetchPlan;
    use crate::revenuecat::model::{
        CustomerEntitlement, ListPage, MonetaryAmount, Product, ProductType, SubscriptionProduct,
    };

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_700_000_000_000;

    fn catalog() -> Catalog {
        let entitlement = |id: &str, key: &str| Entitlement {
            id: id.into(),
            lookup_key: key.into(),
            ..Default::default()
        };
        let product = |id: &str, store_id: &str, duration: Option<&str>| Product {
            id: id.into(),
            store_identifier: store_id.into(),
            product_type: if duration.is_some() {
                ProductType::Subscription
            } else {
                ProductType::OneTime
            },
            subscription: duration.map(|d| SubscriptionProduct {
                duration: Some(d.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        Catalog::new(
            &[
                entitlement("entl_pro", "pro"),
                entitlement("entl_extra", "extra"),
            ],
            &[
                product("prod_m", "premium_monthly", Some("P1M")),
                product("prod_y", "premium_yearly", Some("P1Y")),
                product("prod_life", "premium_lifetime", None),
            ],
        )
    }

    fn entitlements(ids: &[&str]) -> ListPage<Entitlement> {
        ListPage {
            items: ids
                .iter()
                .map(|id| Entitlement {
                    id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn subscription(
        product: &str,
        status: &str,
        renewal: &str,
        gives_access: bool,
    ) -> Subscription {
        Subscription {
            id: format!("sub_{product}_{status}"),
            product_id: Some(product.into()),
            starts_at: Some(T0),
            current_period_starts_at: Some(T0),
            current_period_ends_at: Some(T0 + 30 * DAY),
            ends_at: Some(T0 + 30 * DAY),
            gives_access,
            auto_renewal_status: AutoRenewalStatus::parse(renewal),
            status: SubscriptionStatus::parse(status),
            total_revenue_in_usd: Some(MonetaryAmount {
                gross: 9.99,
                ..Default::default()
            }),
            entitlements: Some(entitlements(&["entl_pro"])),
            store: Store::AppStore,
            ..Default::default()
        }
    }

    fn active(ids: &[&str]) -> Vec<CustomerEntitlement> {
        ids.iter()
            .map(|id| CustomerEntitlement {
                entitlement_id: (*id).into(),
                expires_at: Some(T0 + 30 * DAY),
            })
            .collect()
    }

    /// A customer fetched under the default plan (revenue tracked), with no purchases.
    fn data(active_ids: &[&str], subscriptions: Vec<Subscription>) -> CustomerData {
        CustomerData {
            customer_id: "user-1".into(),
            active_entitlements: active(active_ids),
            subscriptions: Some(subscriptions),
            purchases: Some(vec![]),
            plan: FetchPlan::default(),
        }
    }

    /// Expected patch: `Some(v)` set, `None` removed; keys not listed must be absent.
    fn expect(pairs: &[(&str, Option<&str>)]) -> PropertyPatch {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.map(str::to_owned)))
            .collect()
    }

    #[allow(clippy::too_many_arguments)] // one column per property of the table
    fn full(
        subscriber: &str,
        status: &str,
        will_renew: &str,
        product: Option<&str>,
        entitlements: Option<&str>,
        period_type: &str,
        billing_period: Option<&str>,
        revenue: &str,
    ) -> PropertyPatch {
        expect(&[
            ("rc_subscriber", Some(subscriber)),
            ("rc_status", Some(status)),
            ("rc_will_renew", Some(will_renew)),
            ("rc_product", product),
            ("rc_entitlements", entitlements),
            ("rc_period_type", Some(period_type)),
            ("rc_billing_period", billing_period),
            ("rc_total_revenue_usd", Some(revenue)),
        ])
    }

    #[test]
    fn resync_table() {
        let yearly = {
            let mut s = subscription("prod_y", "active", "will_renew", true);
            s.current_period_ends_at = Some(T0 + 365 * DAY);
            s.total_revenue_in_usd = Some(MonetaryAmount {
                gross: 59.99,
                ..Default::default()
            });
            s
        };
        let paused_indefinitely = {
            let mut s = subscription("prod_m", "paused", "will_renew", false);
            s.current_period_ends_at = None;
            s.ends_at = None;
            s
        };
        let unknown_catalog_product = {
            let mut s = subscription("prod_unknown", "active", "will_renew", true);
            s.current_period_ends_at = Some(T0 + 7 * DAY);
            s
        };
        let old_expired = {
            let mut s = subscription("prod_y", "expired", "will_not_renew", false);
            s.current_period_starts_at = Some(T0 - 400 * DAY);
            s.starts_at = Some(T0 - 400 * DAY);
            s
        };

        let cases: Vec<(&str, CustomerData, PropertyPatch)> = vec![
            (
                "monthly active",
                data(
                    &["entl_pro"],
                    vec![subscription("prod_m", "active", "will_renew", true)],
                ),
                full(
                    "true",
                    "active",
                    "true",
                    Some("premium_monthly"),
                    Some("pro"),
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "yearly active",
                data(&["entl_pro"], vec![yearly.clone()]),
                full(
                    "true",
                    "active",
                    "true",
                    Some("premium_yearly"),
                    Some("pro"),
                    "normal",
                    Some("yearly"),
                    "59.99",
                ),
            ),
            (
                "trial",
                data(
                    &["entl_pro"],
                    vec![subscription("prod_m", "trialing", "will_renew", true)],
                ),
                full(
                    "true",
                    "trialing",
                    "true",
                    Some("premium_monthly"),
                    Some("pro"),
                    "trial",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "cancelled trial",
                data(
                    &["entl_pro"],
                    vec![subscription("prod_m", "trialing", "will_not_renew", true)],
                ),
                full(
                    "false",
                    "cancelled",
                    "false",
                    Some("premium_monthly"),
                    Some("pro"),
                    "trial",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "cancelled but still active",
                data(
                    &["entl_pro"],
                    vec![subscription("prod_m", "active", "will_not_renew", true)],
                ),
                full(
                    "false",
                    "cancelled",
                    "false",
                    Some("premium_monthly"),
                    Some("pro"),
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "billing retry (no access)",
                data(
                    &[],
                    vec![subscription(
                        "prod_m",
                        "in_billing_retry",
                        "will_renew",
                        false,
                    )],
                ),
                full(
                    "false",
                    "billing_issue",
                    "true",
                    Some("premium_monthly"),
                    None,
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "grace period (access)",
                data(
                    &["entl_pro"],
                    vec![subscription(
                        "prod_m",
                        "in_grace_period",
                        "will_renew",
                        true,
                    )],
                ),
                full(
                    "true",
                    "billing_issue",
                    "true",
                    Some("premium_monthly"),
                    Some("pro"),
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "paused with null ends_at",
                data(&[], vec![paused_indefinitely]),
                full(
                    "false",
                    "paused",
                    "true",
                    Some("premium_monthly"),
                    None,
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "will pause at period end",
                data(
                    &["entl_pro"],
                    vec![subscription("prod_m", "active", "will_pause", true)],
                ),
                full(
                    "true",
                    "active",
                    "false",
                    Some("premium_monthly"),
                    Some("pro"),
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "expired",
                data(
                    &[],
                    vec![subscription("prod_m", "expired", "will_not_renew", false)],
                ),
                full(
                    "false",
                    "expired",
                    "false",
                    Some("premium_monthly"),
                    None,
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "expired but says will_renew",
                data(
                    &[],
                    vec![subscription("prod_m", "active", "will_renew", false)],
                ),
                full(
                    "false",
                    "expired",
                    "false",
                    Some("premium_monthly"),
                    None,
                    "normal",
                    Some("monthly"),
                    "9.99",
                ),
            ),
            (
                "unknown status value with access",
                data(
                    &["entl_pro"],
                    vec![subscription(
                        "prod_m",
                        "on_the_moon",
                        "brand_new_renewal",
                        true,
                    )],
                ),
                full(
                    "true",
                    "active",
                    "x",
                    Some("premium_monthly"),
                    Some("pro"),
                    "normal",
                    Some("monthly"),
                    "9.99",
                )
                .into_iter()
                .map(|(k, v)| {
                    if k == "rc_will_renew" {
                        (k, None)
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            ),
            (
                "product missing from catalog: raw id, period from dates",
                data(&["entl_pro"], vec![unknown_catalog_product]),
                full(
                    "true",
                    "active",
                    "true",
                    Some("prod_unknown"),
                    Some("pro"),
                    "normal",
                    Some("weekly"),
                    "9.99",
                ),
            ),
            (
                "access-giving subscription beats a newer expired one; revenue sums both",
                data(&["entl_pro"], vec![old_expired, yearly]),
                full(
                    "true",
                    "active",
                    "true",
                    Some("premium_yearly"),
                    Some("pro"),
                    "normal",
                    Some("yearly"),
                    "69.98",
                ),
            ),
        ];
        for (name, data, expected) in cases {
            assert_eq!(map_customer(&data, &catalog()), expected, "case: {name}");
        }
    }

    fn lifetime_purchase(status: PurchaseStatus) -> Purchase {
        Purchase {
            id: "purch_1".into(),
            product_id: Some("prod_life".into()),
            purchased_at: Some(T0),
            revenue_in_usd: Some(MonetaryAmount {
                gross: 99.0,
                ..Default::default()
            }),
            status,
            entitlements: Some(entitlements(&["entl_pro"])),
            ..Default::default()
        }
    }

    #[test]
    fn lifetime_purchase_is_active_lifetime() {
        let mut customer = data(&["entl_pro"], vec![]);
        customer.active_entitlements[0].expires_at = None;
        customer.purchases = Some(vec![lifetime_purchase(PurchaseStatus::Owned)]);
        assert_eq!(
            map_customer(&customer, &catalog()),
            full(
                "true",
                "active",
                "false",
                Some("premium_lifetime"),
                Some("pro"),
                "lifetime",
                Some("lifetime"),
                "99.00"
            )
        );
    }

    #[test]
    fn lifetime_purchase_alongside_an_expired_subscription() {
        let mut customer = data(
            &["entl_pro"],
            vec![subscription("prod_m", "expired", "will_not_renew", false)],
        );
        customer.active_entitlements[0].expires_at = None;
        customer.purchases = Some(vec![lifetime_purchase(PurchaseStatus::Owned)]);
        let patch = map_customer(&customer, &catalog());
        assert_eq!(patch["rc_period_type"].as_deref(), Some("lifetime"));
        assert_eq!(patch["rc_billing_period"].as_deref(), Some("lifetime"));
        assert_eq!(patch["rc_total_revenue_usd"].as_deref(), Some("108.99"));
    }

    #[test]
    fn a_non_renewing_purchase_whose_access_ends_is_not_lifetime() {
        // `data` gives the entitlement 30 days from the purchase: a one-month pass.
        let mut customer = data(&["entl_pro"], vec![]);
        customer.purchases = Some(vec![lifetime_purchase(PurchaseStatus::Owned)]);
        let patch = map_customer(&customer, &catalog());
        assert_eq!(patch["rc_period_type"].as_deref(), Some("normal"));
        assert_eq!(patch["rc_billing_period"].as_deref(), Some("monthly"));
        assert_eq!(patch["rc_subscriber"].as_deref(), Some("true"));
        assert_eq!(patch["rc_will_renew"].as_deref(), Some("false"));
    }

    #[test]
    fn revenue_counts_every_owned_purchase_beside_a_subscription() {
        let mut customer = data(
            &["entl_pro"],
            vec![subscription("prod_m", "active", "will_renew", true)],
        );
        let mut consumable = lifetime_purchase(PurchaseStatus::Owned);
        consumable.product_id = Some("prod_coins".into());
        consumable.entitlements = Some(entitlements(&[]));
        consumable.revenue_in_usd = Some(MonetaryAmount {
            gross: 2.5,
            ..Default::default()
        });
        customer.purchases = Some(vec![
            consumable,
            lifetime_purchase(PurchaseStatus::Refunded),
        ]);
        let patch = map_customer(&customer, &catalog());
        assert_eq!(patch["rc_total_revenue_usd"].as_deref(), Some("12.49"));
        assert_eq!(patch["rc_product"].as_deref(), Some("premium_monthly"));
        assert_eq!(patch["rc_period_type"].as_deref(), Some("normal"));
    }

    #[test]
    fn revenue_is_never_written_without_tracking_or_without_purchases() {
        let subscribed = data(
            &["entl_pro"],
            vec![subscription("prod_m", "active", "will_renew", true)],
        );
        let untracked = CustomerData {
            plan: FetchPlan::new(false),
            ..subscribed.clone()
        };
        let purchases_failed = CustomerData {
            purchases: None,
            ..subscribed
        };
        for customer in [&untracked, &purchases_failed] {
            let patch = map_customer(customer, &catalog());
            assert!(!patch.contains_key("rc_total_revenue_usd"), "{patch:?}");
            assert_eq!(patch["rc_status"].as_deref(), Some("active"));
        }
    }

    #[test]
    fn promotional_grant() {
        let mut customer = data(&["entl_pro"], vec![]);
        customer.purchases = Some(vec![]);
        assert_eq!(
            map_customer(&customer, &catalog()),
            full(
                "true",
                "active",
                "false",
                None,
                Some("pro"),
                "promotional",
                None,
                "0.00"
            )
        );
    }

    #[test]
    fn promotional_subscription_from_api_v2() {
        let mut grant = subscription("prod_m", "active", "will_not_renew", true);
        grant.store = Store::Promotional;
        grant.product_id = None;
        grant.current_period_ends_at = None;
        grant.total_revenue_in_usd = None;
        let customer = data(&["entl_pro"], vec![grant]);
        assert_eq!(
            map_customer(&customer, &catalog()),
            full(
                "true",
                "active",
                "false",
                None,
                Some("pro"),
                "promotional",
                Some("lifetime"),
                "0.00"
            )
        );
    }

    #[test]
    fn entitlement_unexplained_and_purchases_unknown_keeps_plan_keys() {
        let mut customer = data(&["entl_pro"], vec![]);
        customer.purchases = None;
        assert_eq!(
            map_customer(&customer, &catalog()),
            expect(&[
                ("rc_subscriber", Some("true")),
                ("rc_status", Some("active")),
                ("rc_will_renew", Some("false")),
                ("rc_entitlements", Some("pro")),
            ])
        );
    }

    #[test]
    fn a_known_customer_who_never_paid_is_expired_with_zero_revenue() {
        let mut expected: PropertyPatch = RC_PROPERTY_KEYS
            .iter()
            .map(|k| (k.to_string(), None))
            .collect();
        for (key, value) in [
            ("rc_subscriber", "false"),
            ("rc_status", "expired"),
            ("rc_will_renew", "false"),
            ("rc_total_revenue_usd", "0.00"),
        ] {
            expected.insert(key.into(), Some(value.into()));
        }
        let never_paid = data(&[], vec![]);
        assert_eq!(map_customer(&never_paid, &catalog()), expected);
        let only_refunds = CustomerData {
            purchases: Some(vec![lifetime_purchase(PurchaseStatus::Refunded)]),
            ..never_paid.clone()
        };
        assert_eq!(map_customer(&only_refunds, &catalog()), expected);

        // Tracking off: `/purchases` was not fetched, so revenue and the last purchase are
        // not known and stay as they are.
        let untracked = CustomerData {
            purchases: None,
            plan: FetchPlan::new(false),
            ..never_paid
        };
        expected.remove("rc_total_revenue_usd");
        expected.remove("rc_last_purchase");
        assert_eq!(map_customer(&untracked, &catalog()), expected);
    }

    use super::super::RC_PROPERTY_KEYS;

    #[test]
    fn entitlements_only_fallback_touches_only_known_keys() {
        let customer = CustomerData {
            customer_id: "user-1".into(),
            active_entitlements: active(&["entl_pro", "entl_extra", "entl_unknown"]),
            subscriptions: None,
            purchases: None,
            plan: FetchPlan::default(),
        };
        assert!(customer.is_entitlements_only());
        assert_eq!(
            map_customer(&customer, &catalog()),
            expect(&[
                ("rc_subscriber", Some("true")),
                ("rc_entitlements", Some("entl_unknown,extra,pro")),
            ])
        );
        let none = CustomerData {
            active_entitlements: vec![],
            ..customer
        };
        assert_eq!(
            map_customer(&none, &catalog()),
            expect(&[("rc_subscriber", Some("false")), ("rc_entitlements", None)])
        );
    }

    #[test]
    fn only_refunded_or_consumable_purchases_is_expired() {
        let mut customer = data(&[], vec![]);
        let mut consumable = lifetime_purchase(PurchaseStatus::Owned);
        consumable.entitlements = Some(entitlements(&[]));
        customer.purchases = Some(vec![
            consumable,
            lifetime_purchase(PurchaseStatus::Refunded),
        ]);
        let patch = map_customer(&customer, &catalog());
        assert_eq!(patch["rc_subscriber"].as_deref(), Some("false"));
        assert_eq!(patch["rc_status"].as_deref(), Some("expired"));
        assert_eq!(patch["rc_total_revenue_usd"].as_deref(), Some("99.00"));
    }

    #[test]
    fn embedded_lookup_keys_are_used_when_the_catalog_lacks_them() {
        let mut sub = subscription("prod_m", "active", "will_renew", true);
        sub.entitlements = Some(ListPage {
            items: vec![Entitlement {
                id: "entl_new".into(),
                lookup_key: "gold".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let patch = map_customer(&data(&["entl_new"], vec![sub]), &Catalog::default());
        assert_eq!(patch["rc_entitlements"].as_deref(), Some("gold"));
        assert_eq!(patch["rc_product"].as_deref(), Some("prod_m"));
    }
}
