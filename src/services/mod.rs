//! Use cases behind the HTTP handlers and the job handlers: validation, orchestration and
//! store calls. Each service has its own error type; only `http/` turns them into statuses.

pub mod event_resolution;
pub mod health;
pub mod integrations;
pub mod revenuecat_sync;
pub mod sweeper;
pub mod ttl_cache;
pub mod user_resyncs;
pub mod webhooks;

use crate::queue::JobQueue;
use crate::store::Store;
use revenuecat_sync::RevenueCatSync;

/// The long-lived pieces shared by HTTP handlers and job handlers. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub queue: JobQueue,
    pub sync: RevenueCatSync,
}
