//! What a full resync counts as it goes: the checkpointed state a resumed run continues from,
//! and the result it ends with.
//!
//! Decisions, documented once:
//! - `total` is the project's identified users when the run began, plus every customer it
//!   imports; `synced + not_found + errors = total` and `active + inactive = synced` hold at
//!   every checkpoint.
//! - `active`: the user has an active entitlement after the sync (`rc_entitlements` set);
//!   `inactive`: every other synced user.
//! - `partial`: synced with entitlements only (RevenueCat's `/subscriptions` kept failing);
//!   such a user is also queued for a follow-up resync, so the run is never silently partial.
//! - Drift: per `rc_*` property, the users whose value the run changed — what webhooks had
//!   left wrong or missing. Imported users are not drift (they were never synced before).
//! - Calls per user count the Customer Information requests the run sent (retries and list
//!   pages included) per user it processed; the floor is what the same users could not have
//!   cost less than (see `FetchPlan::floor_calls`; 1 for an unknown customer, plus the list
//!   pages when importing). Catalog requests (Project Configuration) are reported by endpoint
//!   but are not per user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::revenuecat::{CallCounts, RC_PROPERTY_KEYS};

/// Sample ids kept per drifted property and for errors.
const SAMPLES: usize = 20;

/// Endpoints of the Customer Information budget (what a user costs).
const PER_USER_ENDPOINTS: [&str; 7] = [
    "customer",
    "subscriptions",
    "purchases",
    "active_entitlements",
    "subscription_entitlements",
    "purchase_entitlements",
    "customers",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub changed: u64,
    pub sample_user_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserError {
    pub user_id: String,
    pub error: String,
}

/// The counters of a run, as checkpointed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounters {
    pub total: i64,
    pub synced: i64,
    pub active: i64,
    pub inactive: i64,
    pub not_found: i64,
    pub errors: i64,
    pub partial: i64,
    pub skipped_anonymous: i64,
    /// RevenueCat customers the project did not know, found by paging the customer list.
    pub missing_in_project: i64,
    pub imported: i64,
    pub floor_calls: u64,
    pub follow_ups_settled: u64,
    pub drift: BTreeMap<String, Drift>,
    pub error_samples: Vec<UserError>,
    /// Calls of earlier attempts (a resumed run adds its own).
    pub calls: CallCounts,
    /// The processes (instance ids, `<pid>-<ulid>`) that ran the run, in order: more than one
    /// after a takeover.
    pub instances: Vec<String>,
}

impl RunCounters {
    pub fn processed(&self) -> i64 {
        self.synced + self.not_found + self.errors
    }

    /// A synced user: `before` is `None` for a user the run created.
    pub fn count_synced(
        &mut self,
        user_id: &str,
        before: Option<&Map<String, Value>>,
        after: &Map<String, Value>,
        entitlements_only: bool,
        floor_calls: usize,
    ) {
        self.synced += 1;
        if after.contains_key("rc_entitlements") {
            self.active += 1;
        } else {
            self.inactive += 1;
        }
        if entitlements_only {
            self.partial += 1;
        }
        self.floor_calls += floor_calls as u64;
        if let Some(before) = before {
            self.count_drift(user_id, before, after);
        }
    }

    fn count_drift(
        &mut self,
        user_id: &str,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) {
        for key in RC_PROPERTY_KEYS {
            if before.get(key) == after.get(key) {
                continue;
            }
            let drift = self.drift.entry(key.to_owned()).or_default();
            drift.changed += 1;
            if drift.sample_user_ids.len() < SAMPLES {
                drift.sample_user_ids.push(user_id.to_owned());
            }
        }
    }

    pub fn count_not_found(&mut self) {
        self.not_found += 1;
        self.floor_calls += 1;
    }

    pub fn count_error(&mut self, user_id: &str, error: String) {
        self.errors += 1;
        if self.error_samples.len() < SAMPLES {
            self.error_samples.push(UserError {
                user_id: user_id.to_owned(),
                error,
            });
        }
    }

    /// The calls of this attempt added to those of earlier ones.
    pub fn with_calls(&self, this_attempt: &CallCounts) -> CallCounts {
        let mut calls = self.calls.clone();
        calls.calls += this_attempt.calls;
        calls.rate_limited += this_attempt.rate_limited;
        for (endpoint, n) in &this_attempt.by_endpoint {
            *calls.by_endpoint.entry(endpoint.clone()).or_default() += n;
        }
        calls
    }

    /// The `result` object of the job run.
    pub fn result(
        &self,
        calls: &CallCounts,
        strategy: &str,
        duration_ms: i64,
        backlog: i64,
    ) -> Value {
        let per_user_calls: u64 = calls
            .by_endpoint
            .iter()
            .filter(|(endpoint, _)| PER_USER_ENDPOINTS.contains(&endpoint.as_str()))
            .map(|(_, n)| n)
            .sum();
        let users = self.processed().max(1) as f64;
        let per_user = |calls: u64| (calls as f64 / users * 100.0).round() / 100.0;
        let mut result = json!({
            "total": self.total,
            "synced": self.synced,
            "active": self.active,
            "inactive": self.inactive,
            "not_found": self.not_found,
            "errors": self.errors,
            "partial": self.partial,
            "skipped_anonymous": self.skipped_anonymous,
            "api_calls": calls.calls,
            "rate_limited": calls.rate_limited,
            "api_calls_by_endpoint": calls.by_endpoint,
            "calls_per_user": per_user(per_user_calls),
            "floor_calls_per_user": per_user(self.floor_calls),
            "strategy": strategy,
            "duration_ms": duration_ms,
            "drift": self.drift,
            "errors_sample": self.error_samples,
            "follow_ups_settled": self.follow_ups_settled,
            "follow_up_backlog": backlog,
            "instances": self.instances,
        });
        if strategy == super::STRATEGY_WITH_IMPORT {
            result["missing_in_project"] = json!(self.missing_in_project);
            result["imported"] = json!(self.imported);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn counters_add_up_and_drift_names_changed_rc_properties_only() {
        let mut counters = RunCounters {
            total: 3,
            ..RunCounters::default()
        };
        let before = props(&[("rc_status", "active"), ("plan", "pro")]);
        let after = props(&[
            ("rc_status", "expired"),
            ("rc_entitlements", "premium"),
            ("plan", "team"),
        ]);
        counters.count_synced("u1", Some(&before), &after, false, 3);
        counters.count_synced("u2", None, &props(&[]), true, 2);
        counters.count_not_found();
        assert_eq!(counters.processed(), counters.total);
        assert_eq!(counters.active + counters.inactive, counters.synced);
        assert_eq!((counters.active, counters.partial), (1, 1));
        assert_eq!(
            counters.drift.keys().collect::<Vec<_>>(),
            ["rc_entitlements", "rc_status"]
        );
        assert_eq!(counters.drift["rc_status"].sample_user_ids, ["u1"]);
        assert_eq!(counters.floor_calls, 6);
        let result = counters.result(&CallCounts::default(), "lookup", 5, 0);
        assert_eq!(result["floor_calls_per_user"], 2.0);
        assert!(result.get("imported").is_none());
    }
}
