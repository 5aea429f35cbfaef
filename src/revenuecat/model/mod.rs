//! Serde types for the RevenueCat REST API v2 objects rcsync reads or writes.
//!
//! Conventions (all deliberate, because RevenueCat adds fields and enum values over time):
//! unknown fields are ignored, every field we do not strictly need is `#[serde(default)]`,
//! enums keep unknown values as `Other(String)`, timestamps are ms since epoch (`i64`).

mod customer;
mod enums;
mod error_body;
mod list;
mod project_config;
mod purchase;
mod subscription;
mod webhook_integration;

#[cfg(test)]
mod fixture_tests;

pub use customer::{Customer, CustomerEntitlement};
pub use enums::{
    AutoRenewalStatus, Environment, Ownership, ProductType, PurchaseStatus, Store,
    SubscriptionStatus,
};
pub use error_body::ApiErrorBody;
pub use list::ListPage;
pub use project_config::{Entitlement, OneTimeProduct, Product, Project, SubscriptionProduct};
pub use purchase::Purchase;
pub use subscription::{MonetaryAmount, PendingChanges, Subscription};
pub use webhook_integration::{
    DeletedObject, NewWebhookIntegration, WebhookIntegration, WebhookIntegrationUpdate,
};
