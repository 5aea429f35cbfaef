//! The webhook workload: a realistic mix of RevenueCat event types, with redeliveries and
//! events older than what was already applied, and the state rcsync must end in.
//!
//! Every user is served by one connection, so a user's deliveries arrive in the order they
//! were generated and the expected outcome of each is exact: a redelivery changes nothing, an
//! older event is `superseded`, every other one applies in turn.

use std::collections::{BTreeMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rcsync::domain::event_plan::EventPlan;
use rcsync::revenuecat::WebhookPayload;
use rcsync::services::webhooks::plan_event;
use serde_json::{json, Map, Value};

/// Event types and their share of the mix (RENEWAL dominates real traffic).
const MIX: &[(&str, u32)] = &[
    ("renewal", 55),
    ("initial_purchase", 10),
    ("cancellation", 8),
    ("expiration", 6),
    ("uncancellation", 4),
    ("billing_issue", 4),
    ("product_change", 4),
    ("non_renewing_purchase", 3),
    ("subscription_paused", 2),
    ("subscription_extended", 2),
    ("subscriber_alias", 2),
];
const REDELIVERED_SHARE: f64 = 0.05;
const OLDER_SHARE: f64 = 0.02;
const BASE_TIMESTAMP_MS: i64 = 1_760_000_000_000;

#[derive(Clone)]
pub struct Delivery {
    pub event_id: String,
    pub body: Vec<u8>,
}

/// What the mix must leave behind.
#[derive(Default)]
pub struct Expected {
    /// `rc_*` properties per user.
    pub properties: BTreeMap<String, Map<String, Value>>,
    /// Distinct events per final status.
    pub statuses: BTreeMap<String, i64>,
}

pub struct Workload {
    /// Deliveries per connection, each list in send order.
    pub per_connection: Vec<Vec<(usize, Delivery)>>,
    pub total: usize,
}

struct Templates(BTreeMap<&'static str, Value>);

impl Templates {
    fn load() -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/webhooks");
        Self(
            MIX.iter()
                .map(|(name, _)| {
                    let text = std::fs::read_to_string(format!("{dir}/{name}.json")).unwrap();
                    (*name, serde_json::from_str(&text).unwrap())
                })
                .collect(),
        )
    }

    /// A delivery body of about 1.6 KB (subscriber attributes included, as RevenueCat sends).
    fn body(&self, kind: &str, id: &str, user: &str, timestamp_ms: i64) -> Vec<u8> {
        let mut body = self.0[kind].clone();
        let event = body["event"].as_object_mut().unwrap();
        event.insert("id".into(), json!(id));
        event.insert("app_user_id".into(), json!(user));
        event.insert("original_app_user_id".into(), json!(user));
        event.insert("aliases".into(), json!([user]));
        event.insert("event_timestamp_ms".into(), json!(timestamp_ms));
        event.insert(
            "subscriber_attributes".into(),
            json!({
                "$email": {"value": format!("{user}@example.com"), "updated_at_ms": timestamp_ms},
                "$displayName": {"value": "Bench User", "updated_at_ms": timestamp_ms},
                "$attConsentStatus": {"value": "authorized", "updated_at_ms": timestamp_ms},
                "plan_source": {"value": "paywall_v3_variant_b", "updated_at_ms": timestamp_ms},
            }),
        );
        serde_json::to_vec(&body).unwrap()
    }
}

/// `events` deliveries over `users` users named `{tag}_user_…`, on `connections` connections.
pub fn build(tag: &str, events: usize, users: usize, connections: usize, seed: u64) -> Workload {
    let templates = Templates::load();
    let mut rng = StdRng::seed_from_u64(seed);
    let total_weight: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut per_connection: Vec<Vec<(usize, Delivery)>> = vec![Vec::new(); connections];
    // Per user: how many events so far, and the bodies sent (for redeliveries).
    let mut sequence: Vec<i64> = vec![0; users];
    let mut sent: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); users];
    for index in 0..events {
        let u = rng.gen_range(0..users);
        let user = format!("{tag}_user_{u:06}");
        let roll: f64 = rng.gen();
        let delivery = if roll < REDELIVERED_SHARE && !sent[u].is_empty() {
            let (id, body) = sent[u][rng.gen_range(0..sent[u].len())].clone();
            Delivery { event_id: id, body }
        } else {
            let kind = {
                let mut pick = rng.gen_range(0..total_weight);
                MIX.iter()
                    .find(|(_, w)| {
                        let hit = pick < *w;
                        pick = pick.saturating_sub(*w);
                        hit
                    })
                    .map(|(k, _)| *k)
                    .unwrap()
            };
            sequence[u] += 1;
            let older = roll < REDELIVERED_SHARE + OLDER_SHARE && sequence[u] > 1;
            // Older events carry a time before the user's latest one.
            let step = if older {
                sequence[u] - 2
            } else {
                sequence[u] * 2
            };
            let timestamp = BASE_TIMESTAMP_MS + step * 30_000 + if older { 1 } else { 0 };
            let id = format!("{tag}-{index:08}");
            let body = templates.body(kind, &id, &user, timestamp);
            sent[u].push((id.clone(), body.clone()));
            Delivery { event_id: id, body }
        };
        per_connection[u % connections].push((index, delivery));
    }
    Workload {
        per_connection,
        total: events,
    }
}

impl Workload {
    /// Adds what this workload must leave behind to `expected`.
    pub fn expect(&self, expected: &mut Expected) {
        // Per user: the ordering marker and properties, replayed in delivery order.
        let mut markers: BTreeMap<String, (i64, String)> = BTreeMap::new();
        let mut seen: HashSet<String> = HashSet::new();
        for list in &self.per_connection {
            for (_, delivery) in list {
                if !seen.insert(delivery.event_id.clone()) {
                    continue;
                }
                let event = serde_json::from_slice::<WebhookPayload>(&delivery.body)
                    .unwrap()
                    .event;
                let status = match plan_event(&event, None) {
                    EventPlan::Apply { user_id, patch } => {
                        let marker = (event.event_timestamp_ms, event.id.clone());
                        let newer = markers.get(&user_id).is_none_or(|m| marker > *m);
                        if newer {
                            markers.insert(user_id.clone(), marker);
                            let properties = expected.properties.entry(user_id).or_default();
                            for (key, value) in patch {
                                match value {
                                    Some(v) => properties.insert(key, Value::String(v)),
                                    None => properties.remove(&key),
                                };
                            }
                            "applied"
                        } else {
                            "superseded"
                        }
                    }
                    EventPlan::Ignore => "ignored",
                    other => panic!("the mix plans no {other:?}"),
                };
                *expected.statuses.entry(status.to_owned()).or_default() += 1;
            }
        }
    }
}
