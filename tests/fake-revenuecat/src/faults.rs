//! Injected failures and latency.

use std::time::Duration;

/// "Answer the next `remaining` matching requests with `status`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub remaining: u32,
    pub status: u16,
    /// Only requests whose path-and-query contains this string match (`None` = all).
    pub path_contains: Option<String>,
}

#[derive(Debug, Default)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    pub latency: Duration,
}

impl Faults {
    /// If a rule matches `path_and_query`, consume one use of it and return its status.
    pub fn take(&mut self, path_and_query: &str) -> Option<u16> {
        let idx = self.rules.iter().position(|r| {
            r.remaining > 0
                && r.path_contains
                    .as_deref()
                    .is_none_or(|p| path_and_query.contains(p))
        })?;
        let rule = &mut self.rules[idx];
        rule.remaining -= 1;
        let status = rule.status;
        if rule.remaining == 0 {
            self.rules.remove(idx);
        }
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order() {
        let mut f = Faults::default();
        f.rules.push(FaultRule {
            remaining: 1,
            status: 503,
            path_contains: Some("/subscriptions".into()),
        });
        f.rules.push(FaultRule {
            remaining: 2,
            status: 500,
            path_contains: None,
        });
        assert_eq!(
            f.take("/v2/projects/p/customers/a/subscriptions"),
            Some(503)
        );
        assert_eq!(
            f.take("/v2/projects/p/customers/a/subscriptions"),
            Some(500)
        );
        assert_eq!(f.take("/v2/projects"), Some(500));
        assert_eq!(f.take("/v2/projects"), None);
    }
}
