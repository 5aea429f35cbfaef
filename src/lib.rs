//! rcsync: RevenueCat webhook receiver and user-property sync service.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;

pub mod http;
pub mod jobs;
pub mod metrics;
pub mod queue;
pub mod revenuecat;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod timestamp;
