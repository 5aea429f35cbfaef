//! The `rc_*` property vocabulary and the patch type both mappings produce.

use super::BillingPeriod;

pub use crate::domain::app_user::PropertyPatch;

/// Property names.
pub mod keys {
    /// `"true"` / `"false"`: has an active entitlement (or an access-giving subscription).
    pub const RC_SUBSCRIBER: &str = "rc_subscriber";
    /// One of [`super::RcStatus`].
    pub const RC_STATUS: &str = "rc_status";
    /// `"true"` / `"false"`.
    pub const RC_WILL_RENEW: &str = "rc_will_renew";
    /// Store product identifier (`premium_monthly`), never RevenueCat's `prod...` id.
    pub const RC_PRODUCT: &str = "rc_product";
    /// Entitlement lookup keys, sorted, comma-separated.
    pub const RC_ENTITLEMENTS: &str = "rc_entitlements";
    /// `normal` | `trial` | `intro` | `promotional` | `prepaid` | `lifetime`.
    pub const RC_PERIOD_TYPE: &str = "rc_period_type";
    /// One of [`super::BillingPeriod`].
    pub const RC_BILLING_PERIOD: &str = "rc_billing_period";
    /// Lifetime gross revenue in USD, two decimals. Only a resync with revenue tracking on
    /// sets it.
    pub const RC_TOTAL_REVENUE_USD: &str = "rc_total_revenue_usd";
    /// `"<price_in_purchased_currency> <currency>"` of the latest transaction (webhooks only).
    pub const RC_LAST_PURCHASE: &str = "rc_last_purchase";
}

/// `rc_period_type` of access that never ends (a non-renewing purchase without expiration).
pub const PERIOD_TYPE_LIFETIME: &str = "lifetime";

/// Every property rcsync owns.
pub const RC_PROPERTY_KEYS: [&str; 9] = [
    keys::RC_SUBSCRIBER,
    keys::RC_STATUS,
    keys::RC_WILL_RENEW,
    keys::RC_PRODUCT,
    keys::RC_ENTITLEMENTS,
    keys::RC_PERIOD_TYPE,
    keys::RC_BILLING_PERIOD,
    keys::RC_TOTAL_REVENUE_USD,
    keys::RC_LAST_PURCHASE,
];

/// rcsync's one subscription-status vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RcStatus {
    Active,
    Trialing,
    /// Still has access but will not renew.
    Cancelled,
    /// In grace period (access) or billing retry (no access).
    BillingIssue,
    Paused,
    Expired,
}

impl RcStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::Cancelled => "cancelled",
            Self::BillingIssue => "billing_issue",
            Self::Paused => "paused",
            Self::Expired => "expired",
        }
    }
}

impl std::fmt::Display for RcStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a mapping decided about one property.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Update<T> {
    Set(T),
    /// The property does not apply any more: remove it (never leave it stale).
    Clear,
    /// We do not know (data not fetched / not in this event): leave it untouched.
    #[default]
    Keep,
}

impl<T> Update<T> {
    pub fn set_or_clear(value: Option<T>) -> Self {
        value.map_or(Self::Clear, Self::Set)
    }

    pub fn set_or_keep(value: Option<T>) -> Self {
        value.map_or(Self::Keep, Self::Set)
    }
}

/// The subscriber state a mapping derived, one field per `rc_*` property.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriberState {
    pub subscriber: Update<bool>,
    pub status: Update<RcStatus>,
    pub will_renew: Update<bool>,
    pub product: Update<String>,
    /// Lookup keys; sorted and de-duplicated when rendered.
    pub entitlements: Update<Vec<String>>,
    pub period_type: Update<String>,
    pub billing_period: Update<BillingPeriod>,
    pub total_revenue_usd: Update<f64>,
    pub last_purchase: Update<String>,
}

fn bool_str(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}

fn render<T>(
    patch: &mut PropertyPatch,
    key: &str,
    update: Update<T>,
    to_string: impl Fn(T) -> String,
) {
    match update {
        Update::Set(value) => {
            patch.insert(key.to_owned(), Some(to_string(value)));
        }
        Update::Clear => {
            patch.insert(key.to_owned(), None);
        }
        Update::Keep => {}
    }
}

/// Renders sorted, de-duplicated lookup keys; an empty list removes the property.
fn render_entitlements(keys: Vec<String>) -> Update<String> {
    let mut keys: Vec<String> = keys
        .into_iter()
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty())
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        Update::Clear
    } else {
        Update::Set(keys.join(","))
    }
}

/// Two decimals; an empty float sum is `-0.0`, which must not render as `"-0.00"`.
fn format_usd(usd: f64) -> String {
    let usd = if usd.abs() < 0.005 || !usd.is_finite() {
        0.0
    } else {
        usd
    };
    format!("{usd:.2}")
}

impl SubscriberState {
    pub fn into_patch(self) -> PropertyPatch {
        let mut patch = PropertyPatch::new();
        render(&mut patch, keys::RC_SUBSCRIBER, self.subscriber, bool_str);
        render(&mut patch, keys::RC_STATUS, self.status, |s| {
            s.as_str().to_owned()
        });
        render(&mut patch, keys::RC_WILL_RENEW, self.will_renew, bool_str);
        render(&mut patch, keys::RC_PRODUCT, self.product, |p| p);
        let entitlements = match self.entitlements {
            Update::Set(list) => render_entitlements(list),
            Update::Clear => Update::Clear,
            Update::Keep => Update::Keep,
        };
        render(&mut patch, keys::RC_ENTITLEMENTS, entitlements, |e| e);
        render(&mut patch, keys::RC_PERIOD_TYPE, self.period_type, |p| p);
        render(
            &mut patch,
            keys::RC_BILLING_PERIOD,
            self.billing_period,
            |b| b.as_str().to_owned(),
        );
        render(
            &mut patch,
            keys::RC_TOTAL_REVENUE_USD,
            self.total_revenue_usd,
            format_usd,
        );
        render(
            &mut patch,
            keys::RC_LAST_PURCHASE,
            self.last_purchase,
            |p| p,
        );
        patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_set_clear_and_keep() {
        let state = SubscriberState {
            subscriber: Update::Set(true),
            status: Update::Clear,
            entitlements: Update::Set(vec!["pro".into(), "".into(), "basic".into(), "pro".into()]),
            total_revenue_usd: Update::Set(12.0),
            ..Default::default()
        };
        let patch = state.into_patch();
        assert_eq!(patch.len(), 4);
        assert_eq!(patch["rc_subscriber"].as_deref(), Some("true"));
        assert_eq!(patch["rc_status"], None);
        assert_eq!(patch["rc_entitlements"].as_deref(), Some("basic,pro"));
        assert_eq!(patch["rc_total_revenue_usd"].as_deref(), Some("12.00"));
        assert!(!patch.contains_key("rc_product"));
        assert_eq!(format_usd(-0.0), "0.00");
        assert_eq!(format_usd([].iter().sum::<f64>()), "0.00");
        assert_eq!(format_usd(69.976), "69.98");
    }
}
