//! The one place RevenueCat state becomes `rc_*` user properties.
//!
//! Both a full resync ([`map_customer`]) and a webhook ([`map_webhook_event`]) produce a
//! [`PropertyPatch`] in the same vocabulary ([`RcStatus`], [`BillingPeriod`]), so a user looks
//! the same whichever path touched them last.

mod billing_period;
mod customer;
mod properties;
mod webhook;

pub use billing_period::BillingPeriod;
pub use customer::{derive_state, map_customer};
pub use properties::{
    keys, PropertyPatch, RcStatus, SubscriberState, Update, PERIOD_TYPE_LIFETIME, RC_PROPERTY_KEYS,
};
pub use webhook::{is_revenue_affecting, map_webhook_event};
