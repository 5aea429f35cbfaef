//! String enums of API v2 (and of webhooks, which share stores and environments).

string_enum! {
    /// `Subscription.status`. RevenueCat warns more states may be added.
    pub enum SubscriptionStatus {
        Trialing => "trialing",
        Active => "active",
        Expired => "expired",
        InGracePeriod => "in_grace_period",
        InBillingRetry => "in_billing_retry",
        Paused => "paused",
        Unknown => "unknown",
        Incomplete => "incomplete",
    }
}

string_enum! {
    /// `Subscription.auto_renewal_status`.
    pub enum AutoRenewalStatus {
        WillRenew => "will_renew",
        WillNotRenew => "will_not_renew",
        WillChangeProduct => "will_change_product",
        WillPause => "will_pause",
        RequiresPriceIncreaseConsent => "requires_price_increase_consent",
        HasAlreadyRenewed => "has_already_renewed",
    }
}

impl AutoRenewalStatus {
    /// Whether the subscription is expected to keep billing after the current period.
    ///
    /// `requires_price_increase_consent` counts as renewing: nothing was cancelled yet, and
    /// flipping users to "not renewing" on every price change would be noise. Unknown values
    /// answer `None` so the caller can drop the property instead of guessing.
    pub fn will_renew(&self) -> Option<bool> {
        match self {
            Self::WillRenew
            | Self::WillChangeProduct
            | Self::RequiresPriceIncreaseConsent
            | Self::HasAlreadyRenewed => Some(true),
            Self::WillNotRenew | Self::WillPause => Some(false),
            Self::Other(_) => None,
        }
    }
}

string_enum! {
    /// The store a subscription or purchase belongs to (`APP_STORE` in webhooks).
    pub enum Store {
        Amazon => "amazon",
        AppStore => "app_store",
        MacAppStore => "mac_app_store",
        PlayStore => "play_store",
        Promotional => "promotional",
        Stripe => "stripe",
        RcBilling => "rc_billing",
        Roku => "roku",
        Paddle => "paddle",
        External => "external",
        TestStore => "test_store",
    }
}

string_enum! {
    /// Store environment (`PRODUCTION` / `SANDBOX` in webhooks).
    pub enum Environment {
        Production => "production",
        Sandbox => "sandbox",
    }
}

string_enum! {
    /// `Subscription.ownership` / `Purchase.ownership`.
    pub enum Ownership {
        Purchased => "purchased",
        FamilyShared => "family_shared",
    }
}

string_enum! {
    /// `Purchase.status` (one-time purchases).
    pub enum PurchaseStatus {
        Owned => "owned",
        Refunded => "refunded",
    }
}

string_enum! {
    /// `Product.type`.
    pub enum ProductType {
        Subscription => "subscription",
        OneTime => "one_time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept_not_rejected() {
        let status: SubscriptionStatus = serde_json::from_str("\"on_the_moon\"").unwrap();
        assert_eq!(status, SubscriptionStatus::Other("on_the_moon".into()));
        assert_eq!(status.as_str(), "on_the_moon");
        let null: SubscriptionStatus = serde_json::from_str("null").unwrap();
        assert_eq!(null, SubscriptionStatus::Other(String::new()));
    }

    #[test]
    fn matching_is_case_insensitive_and_serializes_canonically() {
        let store: Store = serde_json::from_str("\"APP_STORE\"").unwrap();
        assert_eq!(store, Store::AppStore);
        assert_eq!(serde_json::to_string(&store).unwrap(), "\"app_store\"");
    }

    #[test]
    fn auto_renewal_maps_to_will_renew() {
        use AutoRenewalStatus::*;
        for (status, expected) in [
            (WillRenew, Some(true)),
            (WillChangeProduct, Some(true)),
            (RequiresPriceIncreaseConsent, Some(true)),
            (HasAlreadyRenewed, Some(true)),
            (WillNotRenew, Some(false)),
            (WillPause, Some(false)),
            (Other("x".into()), None),
        ] {
            assert_eq!(status.will_renew(), expected, "{status}");
        }
    }
}
