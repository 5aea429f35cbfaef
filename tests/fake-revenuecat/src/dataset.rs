//! Deterministic generated projects: a fixed catalog (products, the `premium` entitlement)
//! plus `customers` customers `user_000001`, `user_000002`, ... of which a share are
//! subscribers covering every subscription situation round-robin (see [`DatasetCase`]).
//!
//! Everything is derived from `seed` (each customer from its own `StdRng`), so the same spec
//! always yields the same data for the same `now_ms`, and [`expected_case`] tells, without
//! generating anything, which situation a customer is in.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::model::*;
use super::state::Store;

pub const DAY_MS: i64 = 86_400_000;

/// Catalog ids (opaque RevenueCat ids, like the real ones).
pub const PREMIUM_ENTITLEMENT_ID: &str = "entl3b9f0a1c27";
pub const PREMIUM_LOOKUP_KEY: &str = "premium";
pub const PRODUCT_MONTHLY_ID: &str = "prod8a1c3e5f70";
pub const PRODUCT_YEARLY_ID: &str = "prod2d4f6b8a91";
pub const PRODUCT_WEEKLY_ID: &str = "prod5c7e9a0b32";
pub const PRODUCT_LIFETIME_ID: &str = "prod9e1a2c4d53";
pub const STORE_ID_MONTHLY: &str = "premium_monthly";
pub const STORE_ID_YEARLY: &str = "premium_yearly";
pub const STORE_ID_WEEKLY: &str = "premium_weekly";
pub const STORE_ID_LIFETIME: &str = "premium_lifetime";
pub(crate) const CATALOG_CREATED_AT: i64 = 1_658_399_423_658;
/// Gross prices (USD) of the catalog's products.
pub const MONTHLY_PRICE_USD: f64 = 9.99;
pub const YEARLY_PRICE_USD: f64 = 59.99;
pub const LIFETIME_PRICE_USD: f64 = 99.99;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub customers: usize,
    /// Fraction (0..=1) of customers that are in one of the subscriber cases.
    pub subscriber_share: f64,
    pub seed: u64,
    /// How many `$RCAnonymousID:<hex>` ids to alias to (random) real customers.
    pub anonymous_aliases: usize,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            customers: 100,
            subscriber_share: 0.4,
            seed: 42,
            anonymous_aliases: 10,
        }
    }
}

/// The situation a generated customer is in, i.e. what a correct sync should conclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetCase {
    /// Active monthly subscription, will renew.
    Monthly,
    /// Active yearly subscription, will renew.
    Yearly,
    /// Free trial (`status: trialing`), will renew.
    Trial,
    /// Active but `auto_renewal_status: will_not_renew` (unsubscribed, access until period end).
    CancelledActive,
    /// `in_billing_retry`, `gives_access: false`, no active entitlement.
    BillingRetry,
    /// `in_grace_period`, `gives_access: true`, entitlement until the grace period ends.
    GracePeriod,
    /// `paused` (Play Store), period end and `ends_at` null, no access.
    Paused,
    /// One-time lifetime purchase: a purchase and a non-expiring entitlement, no subscription.
    Lifetime,
    /// Promotional grant: an active entitlement with no subscription and no purchase.
    Promotional,
    /// Subscription expired, no access.
    Expired,
    /// No subscriptions, purchases or entitlements.
    NeverSubscribed,
}

/// The subscriber cases, in round-robin order.
pub const SUBSCRIBER_CASES: [DatasetCase; 10] = [
    DatasetCase::Monthly,
    DatasetCase::Yearly,
    DatasetCase::Trial,
    DatasetCase::CancelledActive,
    DatasetCase::BillingRetry,
    DatasetCase::GracePeriod,
    DatasetCase::Paused,
    DatasetCase::Lifetime,
    DatasetCase::Promotional,
    DatasetCase::Expired,
];

impl DatasetCase {
    /// Whether the customer currently holds the `premium` entitlement.
    pub fn has_access(self) -> bool {
        matches!(
            self,
            DatasetCase::Monthly
                | DatasetCase::Yearly
                | DatasetCase::Trial
                | DatasetCase::CancelledActive
                | DatasetCase::GracePeriod
                | DatasetCase::Lifetime
                | DatasetCase::Promotional
        )
    }
}

/// Id of the `index`-th (0-based) generated customer: `user_000001`, ...
pub fn customer_id(index: usize) -> String {
    format!("user_{:06}", index + 1)
}

/// Index of a generated customer id (inverse of [`customer_id`]).
pub fn customer_index(id: &str) -> Option<usize> {
    let n: usize = id.strip_prefix("user_")?.parse().ok()?;
    n.checked_sub(1)
}

fn subscribers_before(spec: &DatasetSpec, index: usize) -> usize {
    let share = spec.subscriber_share.clamp(0.0, 1.0);
    (index as f64 * share + 1e-9).floor() as usize
}

/// The case of the `index`-th customer (0-based). Subscribers are spread evenly over the
/// ids; their cases follow [`SUBSCRIBER_CASES`] round-robin.
pub fn case_of_index(spec: &DatasetSpec, index: usize) -> DatasetCase {
    let before = subscribers_before(spec, index);
    if subscribers_before(spec, index + 1) > before {
        SUBSCRIBER_CASES[before % SUBSCRIBER_CASES.len()]
    } else {
        DatasetCase::NeverSubscribed
    }
}

/// The case of the generated customer `customer_id` (a canonical `user_...` id).
pub fn expected_case(spec: &DatasetSpec, customer_id: &str) -> Option<DatasetCase> {
    let i = customer_index(customer_id)?;
    (i < spec.customers).then(|| case_of_index(spec, i))
}

/// Every generated customer id with its case, in id order.
pub fn expected_cases(spec: &DatasetSpec) -> Vec<(String, DatasetCase)> {
    (0..spec.customers)
        .map(|i| (customer_id(i), case_of_index(spec, i)))
        .collect()
}

/// Opt-in additions to a generated project, kept out of [`DatasetSpec`] so that the default
/// dataset (and every test that counts on it) stays exactly as it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetExtras {
    /// Customers whose canonical id is an `$RCAnonymousID:<32 hex>` (they never logged in),
    /// in [`SUBSCRIBER_CASES`] round-robin; listed in [`DatasetSummary::anonymous_customers`]
    /// when a dataset is configured (else generated with the default spec's seed).
    pub anonymous_customers: usize,
    /// One customer per [`crate::ExtraCase`], id [`crate::extra_cases::extra_case_id`].
    pub extra_cases: bool,
}

/// What [`populate`] produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatasetSummary {
    pub customers: usize,
    pub subscribers: usize,
    pub subscriptions: usize,
    pub purchases: usize,
    /// `(anonymous id, canonical customer id)`.
    pub aliases: Vec<(String, String)>,
    /// Largest number of subscriptions a single customer has.
    pub max_subscriptions_per_customer: usize,
    /// `(anonymous canonical id, case)` of the customers [`populate_anonymous`] added.
    pub anonymous_customers: Vec<(String, DatasetCase)>,
}

/// Install the catalog: products monthly (P1M), yearly (P1Y), weekly (P1W), lifetime
/// (one-time), and the `premium` entitlement attached to all four.
pub fn install_catalog(store: &mut Store) {
    let app_id = store.app_id.clone();
    let sub = |id: &str, sid: &str, dur: &str, grace: &str, trial: Option<&str>, name: &str| {
        ProductRecord {
            id: id.into(),
            store_identifier: sid.into(),
            product_type: "subscription".into(),
            duration: Some(dur.into()),
            grace_period_duration: Some(grace.into()),
            trial_duration: trial.map(Into::into),
            is_consumable: None,
            created_at: CATALOG_CREATED_AT,
            app_id: app_id.clone(),
            display_name: Some(name.into()),
        }
    };
    store.upsert_product(sub(
        PRODUCT_MONTHLY_ID,
        STORE_ID_MONTHLY,
        "P1M",
        "P16D",
        Some("P1W"),
        "Premium Monthly",
    ));
    store.upsert_product(sub(
        PRODUCT_YEARLY_ID,
        STORE_ID_YEARLY,
        "P1Y",
        "P16D",
        None,
        "Premium Yearly",
    ));
    store.upsert_product(sub(
        PRODUCT_WEEKLY_ID,
        STORE_ID_WEEKLY,
        "P1W",
        "P6D",
        None,
        "Premium Weekly",
    ));
    store.upsert_product(ProductRecord {
        id: PRODUCT_LIFETIME_ID.into(),
        store_identifier: STORE_ID_LIFETIME.into(),
        product_type: "one_time".into(),
        duration: None,
        grace_period_duration: None,
        trial_duration: None,
        is_consumable: Some(false),
        created_at: CATALOG_CREATED_AT,
        app_id: app_id.clone(),
        display_name: Some("Premium Lifetime".into()),
    });
    store.upsert_entitlement(EntitlementRecord {
        id: PREMIUM_ENTITLEMENT_ID.into(),
        lookup_key: PREMIUM_LOOKUP_KEY.into(),
        display_name: "Premium".into(),
        created_at: CATALOG_CREATED_AT,
        product_ids: vec![
            PRODUCT_MONTHLY_ID.into(),
            PRODUCT_YEARLY_ID.into(),
            PRODUCT_WEEKLY_ID.into(),
            PRODUCT_LIFETIME_ID.into(),
        ],
    });
}

/// A fresh store for `project_id` holding the catalog and the generated customers.
pub fn generate(project_id: &str, spec: &DatasetSpec, now_ms: i64) -> (Store, DatasetSummary) {
    let mut store = Store::new(project_id);
    install_catalog(&mut store);
    let summary = populate(&mut store, spec, now_ms);
    (store, summary)
}

const COUNTRIES: [&str; 10] = ["US", "GB", "DE", "FR", "BR", "JP", "CA", "AU", "IN", "ES"];

/// Generates one customer's records from that customer's own random stream.
pub(crate) struct Gen<'a> {
    pub rng: StdRng,
    pub now: i64,
    pub customer_id: &'a str,
    pub country: Option<String>,
    pub store: &'static str,
    pub counter: &'a mut u64,
}

impl Gen<'_> {
    pub fn next_id(&mut self, prefix: &str) -> String {
        *self.counter += 1;
        let salt: u16 = self.rng.gen();
        format!("{prefix}{:08x}{salt:04x}", *self.counter)
    }

    pub fn store_identifier(&mut self) -> String {
        if self.store == "play_store" {
            format!(
                "GPA.{:04}-{:04}-{:04}-{:05}",
                self.rng.gen_range(1000..10000),
                self.rng.gen_range(1000..10000),
                self.rng.gen_range(1000..10000),
                self.rng.gen_range(10000..100000)
            )
        } else {
            format!("2000000{:09}", self.rng.gen_range(0..1_000_000_000u64))
        }
    }

    fn management_url(&self) -> Option<String> {
        Some(match self.store {
            "play_store" => "https://play.google.com/store/account/subscriptions".into(),
            _ => "https://apps.apple.com/account/subscriptions".into(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sub(
        &mut self,
        product_id: &str,
        status: &str,
        auto_renewal: &str,
        gives_access: bool,
        pending_payment: bool,
        starts_at: i64,
        cps: i64,
        cpe: Option<i64>,
        revenue: f64,
    ) -> SubscriptionRecord {
        SubscriptionRecord {
            id: self.next_id("sub"),
            customer_id: self.customer_id.to_string(),
            original_customer_id: self.customer_id.to_string(),
            product_id: Some(product_id.to_string()),
            starts_at,
            current_period_starts_at: cps,
            current_period_ends_at: cpe,
            ends_at: cpe,
            gives_access,
            pending_payment,
            auto_renewal_status: auto_renewal.into(),
            status: status.into(),
            total_revenue_in_usd: Money::usd(revenue),
            presented_offering_id: self
                .rng
                .gen_bool(0.5)
                .then(|| "ofrnge1a2b3c4d5".to_string()),
            entitlement_ids: vec![PREMIUM_ENTITLEMENT_ID.into()],
            environment: "production".into(),
            store: self.store.into(),
            store_subscription_identifier: self.store_identifier(),
            ownership: "purchased".into(),
            pending_change_product_id: None,
            country: self.country.clone(),
            management_url: self.management_url(),
        }
    }

    /// 0..=3 older, expired subscriptions ending before `before`, oldest first.
    fn history(&mut self, before: i64) -> Vec<SubscriptionRecord> {
        if !self.rng.gen_bool(0.3) {
            return Vec::new();
        }
        let n = self.rng.gen_range(1..=3);
        let mut end = before - self.rng.gen_range(5..60) * DAY_MS;
        let mut out = Vec::new();
        for _ in 0..n {
            let weekly = self.rng.gen_bool(0.5);
            let (pid, len, price) = if weekly {
                (PRODUCT_WEEKLY_ID, 7 * DAY_MS, 2.99)
            } else {
                (PRODUCT_MONTHLY_ID, 30 * DAY_MS, 9.99)
            };
            let periods = self.rng.gen_range(1..6);
            let cps = end - len;
            let starts = end - periods * len;
            out.push(self.sub(
                pid,
                sub_status::EXPIRED,
                auto_renewal::WILL_NOT_RENEW,
                false,
                false,
                starts,
                cps,
                Some(end),
                price * periods as f64,
            ));
            end = starts - self.rng.gen_range(5..60) * DAY_MS;
        }
        out.reverse();
        out
    }
}

/// Add the generated customers and aliases to `store` (whose catalog should be installed).
pub fn populate(store: &mut Store, spec: &DatasetSpec, now_ms: i64) -> DatasetSummary {
    let mut summary = DatasetSummary {
        customers: spec.customers,
        ..Default::default()
    };
    let mut counter = store.id_counter;
    for i in 0..spec.customers {
        let case = case_of_index(spec, i);
        let id = customer_id(i);
        let c = generate_customer(spec, i, &id, case, now_ms, &mut counter);
        if case != DatasetCase::NeverSubscribed {
            summary.subscribers += 1;
        }
        summary.subscriptions += c.subscriptions.len();
        summary.purchases += c.purchases.len();
        summary.max_subscriptions_per_customer = summary
            .max_subscriptions_per_customer
            .max(c.subscriptions.len());
        store.customers.insert(id, c);
    }
    store.id_counter = counter;

    if spec.customers > 0 {
        let mut rng = StdRng::seed_from_u64(spec.seed ^ 0xA11A_5A11_A5A1_1A5A);
        for _ in 0..spec.anonymous_aliases {
            let owner = customer_id(rng.gen_range(0..spec.customers));
            let anon = format!("$RCAnonymousID:{:032x}", rng.gen::<u128>());
            let created = store
                .customers
                .get(&owner)
                .map(|c| c.first_seen_at + rng.gen_range(1..3_600_000))
                .unwrap_or(now_ms);
            if store.add_alias(&owner, &anon, created) {
                summary.aliases.push((anon, owner));
            }
        }
    }
    summary
}

/// Add `n` customers known only by `$RCAnonymousID:<32 hex>` ids, in [`SUBSCRIBER_CASES`]
/// round-robin; returns `(id, case)` in creation order.
pub fn populate_anonymous(
    store: &mut Store,
    spec: &DatasetSpec,
    n: usize,
    now_ms: i64,
) -> Vec<(String, DatasetCase)> {
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x0A0A_0A0A_5EED_0A0A);
    let mut counter = store.id_counter;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("$RCAnonymousID:{:032x}", rng.gen::<u128>());
        let case = SUBSCRIBER_CASES[i % SUBSCRIBER_CASES.len()];
        // Their own random streams, far from those of the numbered customers.
        let index = ANONYMOUS_STREAM_OFFSET + i;
        let c = generate_customer(spec, index, &id, case, now_ms, &mut counter);
        store.upsert_customer(c);
        out.push((id, case));
    }
    store.id_counter = counter;
    out
}

const ANONYMOUS_STREAM_OFFSET: usize = 1 << 40;

/// `n` generated customer ids spread over the whole id range (first, middle, last, …) and
/// cycling through the cases, e.g. the few users a test's app knows in a huge project.
pub fn spread_customer_ids(spec: &DatasetSpec, n: usize) -> Vec<String> {
    let total = spec.customers;
    let n = n.min(total);
    if n == 0 {
        return Vec::new();
    }
    let step = total / n;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let start = k * step;
        let wanted = if spec.subscriber_share > 0.0 {
            SUBSCRIBER_CASES[k % SUBSCRIBER_CASES.len()]
        } else {
            DatasetCase::NeverSubscribed
        };
        let index = (start..(start + step).min(total))
            .find(|&i| case_of_index(spec, i) == wanted)
            .unwrap_or(start);
        out.push(customer_id(index));
    }
    out
}

fn generate_customer(
    spec: &DatasetSpec,
    index: usize,
    id: &str,
    case: DatasetCase,
    now: i64,
    counter: &mut u64,
) -> CustomerRecord {
    let mut rng = StdRng::seed_from_u64(
        spec.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64),
    );
    let first_seen = now - rng.gen_range(30..730) * DAY_MS - rng.gen_range(0..DAY_MS);
    let android = case == DatasetCase::Paused || rng.gen_bool(0.35);
    let country = COUNTRIES[rng.gen_range(0..COUNTRIES.len())].to_string();
    let mut c = CustomerRecord::new(id, first_seen);
    if rng.gen_bool(0.95) {
        c.last_seen_at = Some((now - rng.gen_range(0..30) * DAY_MS).max(first_seen));
        c.last_seen_app_version =
            Some(format!("2.{}.{}", rng.gen_range(0..9), rng.gen_range(0..5)));
        c.last_seen_country = Some(country.clone());
        if android {
            c.last_seen_platform = Some("android".into());
            c.last_seen_platform_version = Some(["33", "34", "35"][rng.gen_range(0..3)].into());
        } else {
            c.last_seen_platform = Some("iOS".into());
            c.last_seen_platform_version =
                Some(["17.5", "18.2", "18.4"][rng.gen_range(0..3)].into());
        }
    } else {
        c.last_seen_at = None;
    }
    if rng.gen_bool(0.5) {
        c.attributes.push(AttributeRecord {
            name: "$email".into(),
            value: Some(format!("{id}@example.com")),
            updated_at: first_seen + DAY_MS,
        });
    }
    if rng.gen_bool(0.2) {
        c.attributes.push(AttributeRecord {
            name: "$displayName".into(),
            value: Some(format!("User {}", index + 1)),
            updated_at: first_seen + DAY_MS,
        });
    }

    let mut g = Gen {
        rng,
        now,
        customer_id: id,
        country: Some(country),
        store: if android { "play_store" } else { "app_store" },
        counter,
    };
    let now = g.now;
    let month = 30 * DAY_MS;
    let year = 365 * DAY_MS;
    let entitled = |expires_at| ActiveEntitlementRecord {
        entitlement_id: PREMIUM_ENTITLEMENT_ID.into(),
        expires_at,
    };

    match case {
        DatasetCase::NeverSubscribed => {}
        DatasetCase::Monthly | DatasetCase::Yearly | DatasetCase::CancelledActive => {
            let yearly = match case {
                DatasetCase::Yearly => true,
                DatasetCase::Monthly => false,
                _ => g.rng.gen_bool(0.3),
            };
            let (pid, len, price, max_k) = if yearly {
                (PRODUCT_YEARLY_ID, year, 59.99, 3)
            } else {
                (PRODUCT_MONTHLY_ID, month, 9.99, 24)
            };
            let k = g.rng.gen_range(1..=max_k);
            let cps = now - g.rng.gen_range(1..(len / DAY_MS - 1)) * DAY_MS;
            let cpe = cps + len;
            let starts = cps - (k - 1) * len;
            let auto = if case == DatasetCase::CancelledActive {
                auto_renewal::WILL_NOT_RENEW
            } else {
                auto_renewal::WILL_RENEW
            };
            let mut subs = g.history(starts);
            subs.push(g.sub(
                pid,
                sub_status::ACTIVE,
                auto,
                true,
                false,
                starts,
                cps,
                Some(cpe),
                price * k as f64,
            ));
            c.subscriptions = subs;
            c.active_entitlements.push(entitled(Some(cpe)));
        }
        DatasetCase::Trial => {
            let cps = now - g.rng.gen_range(0..6) * DAY_MS - g.rng.gen_range(0..DAY_MS);
            let cpe = cps + 7 * DAY_MS;
            c.subscriptions.push(g.sub(
                PRODUCT_MONTHLY_ID,
                sub_status::TRIALING,
                auto_renewal::WILL_RENEW,
                true,
                false,
                cps,
                cps,
                Some(cpe),
                0.0,
            ));
            c.active_entitlements.push(entitled(Some(cpe)));
        }
        DatasetCase::BillingRetry | DatasetCase::GracePeriod => {
            let grace = case == DatasetCase::GracePeriod;
            let cpe = if grace {
                now - g.rng.gen_range(1..10) * DAY_MS
            } else {
                now - g.rng.gen_range(17..40) * DAY_MS
            };
            let cps = cpe - month;
            let k = g.rng.gen_range(1..12);
            let starts = cps - (k - 1) * month;
            let status = if grace {
                sub_status::IN_GRACE_PERIOD
            } else {
                sub_status::IN_BILLING_RETRY
            };
            let mut subs = g.history(starts);
            subs.push(g.sub(
                PRODUCT_MONTHLY_ID,
                status,
                auto_renewal::WILL_RENEW,
                grace,
                true,
                starts,
                cps,
                Some(cpe),
                9.99 * k as f64,
            ));
            c.subscriptions = subs;
            if grace {
                c.active_entitlements
                    .push(entitled(Some(cpe + 16 * DAY_MS)));
            }
        }
        DatasetCase::Paused => {
            let pause_start = now - g.rng.gen_range(1..60) * DAY_MS;
            let k = g.rng.gen_range(1..12);
            let starts = pause_start - k * month;
            let mut subs = g.history(starts);
            let mut s = g.sub(
                PRODUCT_MONTHLY_ID,
                sub_status::PAUSED,
                auto_renewal::WILL_RENEW,
                false,
                false,
                starts,
                pause_start,
                None,
                9.99 * k as f64,
            );
            s.ends_at = None;
            subs.push(s);
            c.subscriptions = subs;
        }
        DatasetCase::Lifetime => {
            let at = now - g.rng.gen_range(1..600) * DAY_MS;
            let p = PurchaseRecord {
                id: g.next_id("purch"),
                customer_id: id.to_string(),
                original_customer_id: id.to_string(),
                product_id: PRODUCT_LIFETIME_ID.into(),
                purchased_at: at,
                revenue_in_usd: Money::usd(99.99),
                quantity: 1,
                status: "owned".into(),
                presented_offering_id: None,
                entitlement_ids: vec![PREMIUM_ENTITLEMENT_ID.into()],
                environment: "production".into(),
                store: g.store.into(),
                store_purchase_identifier: g.store_identifier(),
                ownership: "purchased".into(),
                country: g.country.clone(),
            };
            c.purchases.push(p);
            c.active_entitlements.push(entitled(None));
        }
        DatasetCase::Promotional => {
            let expires = if g.rng.gen_bool(0.2) {
                None
            } else {
                Some(now + g.rng.gen_range(1..90) * DAY_MS)
            };
            c.active_entitlements.push(entitled(expires));
        }
        DatasetCase::Expired => {
            let yearly = g.rng.gen_bool(0.3);
            let (pid, len, price) = if yearly {
                (PRODUCT_YEARLY_ID, year, 59.99)
            } else {
                (PRODUCT_MONTHLY_ID, month, 9.99)
            };
            let cpe = now - g.rng.gen_range(10..400) * DAY_MS;
            let cps = cpe - len;
            let k = g.rng.gen_range(1..6);
            let starts = cps - (k - 1) * len;
            let mut subs = g.history(starts);
            subs.push(g.sub(
                pid,
                sub_status::EXPIRED,
                auto_renewal::WILL_NOT_RENEW,
                false,
                false,
                starts,
                cps,
                Some(cpe),
                price * k as f64,
            ));
            c.subscriptions = subs;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const NOW: i64 = 1_750_000_000_000;

    #[test]
    fn covers_every_case_and_is_deterministic() {
        let spec = DatasetSpec {
            customers: 200,
            subscriber_share: 0.5,
            seed: 7,
            anonymous_aliases: 5,
        };
        let (a, sa) = generate("proj1", &spec, NOW);
        let (b, _) = generate("proj1", &spec, NOW);
        assert_eq!(a.customers, b.customers);
        assert_eq!(sa.subscribers, 100);
        assert_eq!(sa.aliases.len(), 5);
        let cases: HashSet<_> = expected_cases(&spec).into_iter().map(|(_, c)| c).collect();
        assert_eq!(cases.len(), 11, "{cases:?}");
        for (id, case) in expected_cases(&spec) {
            let c = &a.customers[&id];
            let active = c
                .active_entitlements
                .iter()
                .any(|e| e.expires_at.is_none_or(|t| t > NOW));
            assert_eq!(active, case.has_access(), "{id} {case:?}");
            let current = c.subscriptions.last();
            match case {
                DatasetCase::NeverSubscribed => {
                    assert!(c.subscriptions.is_empty() && c.purchases.is_empty());
                    assert!(c.active_entitlements.is_empty());
                }
                DatasetCase::Lifetime => {
                    assert!(c.subscriptions.is_empty());
                    assert_eq!(c.purchases.len(), 1);
                    assert_eq!(c.active_entitlements[0].expires_at, None);
                }
                DatasetCase::Promotional => {
                    assert!(c.subscriptions.is_empty() && c.purchases.is_empty());
                }
                DatasetCase::Paused => {
                    let s = current.unwrap();
                    assert_eq!(s.status, "paused");
                    assert_eq!(s.current_period_ends_at, None);
                    assert_eq!(s.ends_at, None);
                    assert!(!s.gives_access);
                }
                DatasetCase::BillingRetry => {
                    let s = current.unwrap();
                    assert_eq!(s.status, "in_billing_retry");
                    assert!(!s.gives_access);
                }
                DatasetCase::GracePeriod => {
                    let s = current.unwrap();
                    assert_eq!(s.status, "in_grace_period");
                    assert!(s.gives_access);
                }
                DatasetCase::CancelledActive => {
                    let s = current.unwrap();
                    assert_eq!(s.status, "active");
                    assert_eq!(s.auto_renewal_status, "will_not_renew");
                }
                DatasetCase::Trial => assert_eq!(current.unwrap().status, "trialing"),
                DatasetCase::Expired => assert_eq!(current.unwrap().status, "expired"),
                DatasetCase::Monthly | DatasetCase::Yearly => {
                    let s = current.unwrap();
                    assert_eq!(s.status, "active");
                    assert_eq!(s.auto_renewal_status, "will_renew");
                    let want = if case == DatasetCase::Monthly {
                        PRODUCT_MONTHLY_ID
                    } else {
                        PRODUCT_YEARLY_ID
                    };
                    assert_eq!(s.product_id.as_deref(), Some(want));
                }
            }
        }
        assert!(sa.max_subscriptions_per_customer > 1);
        for (anon, owner) in &sa.aliases {
            assert!(anon.starts_with("$RCAnonymousID:"));
            assert_eq!(a.resolve(anon), Some(owner.as_str()));
        }
    }

    #[test]
    fn large_dataset_is_fast() {
        let spec = DatasetSpec {
            customers: 100_000,
            subscriber_share: 0.4,
            seed: 1,
            anonymous_aliases: 1000,
        };
        let t = std::time::Instant::now();
        let (store, s) = generate("proj1", &spec, NOW);
        assert_eq!(store.customers.len(), 100_000);
        assert_eq!(s.subscribers, 40_000);
        // generous: debug builds of the crate are unoptimised
        assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
    }
}
