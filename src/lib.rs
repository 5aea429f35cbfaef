//! rcsync: RevenueCat webhook receiver and user-property sync service.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod fake_revenuecat;
pub mod http;
pub mod jobs;
pub mod revenuecat;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod timestamp;
