//! Use cases behind the HTTP handlers: validation, orchestration and store calls.

pub mod integrations;
pub mod revenuecat_sync;
pub mod ttl_cache;
pub mod webhooks;
