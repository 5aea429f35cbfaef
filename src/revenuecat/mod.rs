//! RevenueCat REST API v2 client, models and mapping.
//!
//! - [`model`]: serde types of API v2 objects; [`webhook_event`]: the webhook payload.
//! - [`mapping`]: the one place RevenueCat state becomes `rc_*` user properties.
//! - [`RevenueCatClient`]: the process-wide HTTP client (rate limited, retrying).

#[macro_use]
mod string_enum;

mod api_key;
mod catalog;
pub mod client;
mod customer_data;
pub mod error;
mod lenient;
mod limits;
pub mod mapping;
pub mod model;
pub mod rate_limiter;
pub mod shared_budget;
pub mod webhook_event;

pub use api_key::{redact_api_key, KeyFingerprint};
pub use catalog::{Catalog, CatalogProduct};
pub use client::{
    CallCounts, CallLog, ClientConfig, ClientMetrics, RevenueCatClient, DEFAULT_BASE_URL,
};
pub use customer_data::{CustomerData, FetchPlan};
pub use error::RevenueCatError;
pub use mapping::{
    is_revenue_affecting, map_customer, map_webhook_event, BillingPeriod, PropertyPatch, RcStatus,
    SubscriberState, Update, RC_PROPERTY_KEYS,
};
pub use rate_limiter::{DomainLimit, Priority, RateLimitDomain, RateLimiter, RateLimits};
pub use shared_budget::{Lease, SharedBudget};
pub use webhook_event::{EventType, PeriodType, WebhookEvent, WebhookPayload};
