//! rcsync: RevenueCat webhook receiver and user-property sync service.

pub mod fake_revenuecat;
pub mod revenuecat;
