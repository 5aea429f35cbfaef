//! API v2 key permissions: which one each endpoint needs, and the ones a test took away.
//!
//! RevenueCat grants a V2 secret key, per resource, no access, `read` or `read_write`. So a key
//! without `X:read_write` can still read `X`, and a key without `X:read` has no access to `X`
//! at all. Every key of the fake holds every permission until a test revokes one.

use std::collections::{HashMap, HashSet};

use actix_web::http::Method;

/// Permissions taken away, from every key or from one.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    all_keys: HashSet<String>,
    per_key: HashMap<String, HashSet<String>>,
}

impl Revocations {
    pub(crate) fn revoke(&mut self, key: Option<&str>, permission: &str) {
        let set = match key {
            None => &mut self.all_keys,
            Some(k) => self.per_key.entry(k.to_string()).or_default(),
        };
        set.insert(permission.to_string());
    }

    pub(crate) fn clear(&mut self) {
        self.all_keys.clear();
        self.per_key.clear();
    }

    fn revoked(&self, key: &str, permission: &str) -> bool {
        self.all_keys.contains(permission)
            || self
                .per_key
                .get(key)
                .is_some_and(|set| set.contains(permission))
    }

    /// Whether `key` lacks `required` (`<resource>:read` or `<resource>:read_write`).
    pub(crate) fn lacks(&self, key: &str, required: &str) -> bool {
        let resource = required
            .strip_suffix(":read_write")
            .or_else(|| required.strip_suffix(":read"))
            .unwrap_or(required);
        self.revoked(key, required) || self.revoked(key, &format!("{resource}:read"))
    }

    pub(crate) fn summary(&self) -> serde_json::Value {
        let mut all: Vec<&String> = self.all_keys.iter().collect();
        all.sort();
        let per_key: HashMap<String, Vec<&String>> = self
            .per_key
            .iter()
            .map(|(k, set)| (k.chars().take(4).collect(), set.iter().collect()))
            .collect();
        serde_json::json!({"all_keys": all, "per_key_hint": per_key})
    }
}

/// The permission an endpoint needs (decoded segments after `v2`), as RevenueCat names them.
pub(crate) fn required(method: &Method, segs: &[&str]) -> Option<&'static str> {
    let read = method == Method::GET;
    Some(match segs {
        ["projects"] | ["projects", _] => "project_configuration:projects:read",
        ["projects", _, "customers", _, "subscriptions"] | ["projects", _, "subscriptions", ..] => {
            "customer_information:subscriptions:read"
        }
        ["projects", _, "customers", _, "purchases"] | ["projects", _, "purchases", ..] => {
            "customer_information:purchases:read"
        }
        ["projects", _, "customers", ..] => "customer_information:customers:read",
        ["projects", _, "entitlements", ..] => "project_configuration:entitlements:read",
        ["projects", _, "products", ..] => "project_configuration:products:read",
        ["projects", _, "integrations", ..] if read => "project_configuration:integrations:read",
        ["projects", _, "integrations", ..] => "project_configuration:integrations:read_write",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_implies_read_and_revoking_read_removes_both() {
        let mut r = Revocations::default();
        let rw = "project_configuration:integrations:read_write";
        let ro = "project_configuration:integrations:read";
        r.revoke(None, rw);
        assert!(r.lacks("k", rw));
        assert!(!r.lacks("k", ro));
        r.clear();
        r.revoke(Some("k"), ro);
        assert!(r.lacks("k", rw) && r.lacks("k", ro));
        assert!(!r.lacks("other", rw));
    }

    #[test]
    fn endpoints_map_to_their_permissions() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            required(&get, &["projects", "p", "customers", "c", "subscriptions"]),
            Some("customer_information:subscriptions:read")
        );
        assert_eq!(
            required(&get, &["projects", "p", "customers", "c"]),
            Some("customer_information:customers:read")
        );
        assert_eq!(
            required(&post, &["projects", "p", "integrations", "webhooks"]),
            Some("project_configuration:integrations:read_write")
        );
        assert_eq!(
            required(&get, &["projects", "p", "integrations", "webhooks"]),
            Some("project_configuration:integrations:read")
        );
    }
}
