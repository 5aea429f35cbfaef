//! Use cases behind the HTTP handlers and the job handlers: validation, orchestration and
//! store calls. Each service has its own error type; only `http/` turns them into statuses.

pub mod dispatcher;
pub mod event_log;
pub mod event_resolution;
pub mod health;
pub mod integrations;
pub mod metrics_state;
pub mod resync_runs;
pub mod retention;
pub mod revenuecat_sync;
pub mod shared_budget;
pub mod ttl_cache;
pub mod user_resyncs;
pub mod users;
pub mod webhook_provisioning;
pub mod webhook_secrets;
pub mod webhooks;

use crate::config::JobTimings;
use crate::metrics::Metrics;
use crate::queue::JobQueue;
use crate::store::Store;
use revenuecat_sync::RevenueCatSync;
use webhook_provisioning::WebhookProvisioner;
use webhooks::WebhookReceiver;

/// The long-lived pieces shared by HTTP handlers and job handlers. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub queue: JobQueue,
    pub sync: RevenueCatSync,
    pub webhooks: WebhookReceiver,
    /// The RevenueCat webhook that points at rcsync.
    pub provisioner: WebhookProvisioner,
    pub timings: JobTimings,
    /// This process, as it stamps the claims it holds (see `store::instances`).
    pub instance_id: String,
    /// Full resyncs this process may run at once (`RCSYNC_MAX_RESYNC_RUNS`).
    pub resync_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// What `/metrics` exports.
    pub metrics: Metrics,
    /// Webhook events and finished job rows older than this are pruned.
    pub event_retention: std::time::Duration,
}

/// An error and its causes, `outer: inner: …`, for what a row records about a failed attempt
/// (`last_error`): thiserror's `{:#}` shows only the outer message ("database error"), which
/// tells an operator nothing.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers that print their source themselves (`#[error(transparent)]`, "…: {0}").
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("database error")]
        Database(#[source] std::io::Error),
        #[error("wrapped: {0}")]
        Wrapped(#[source] std::io::Error),
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let cause = || std::io::Error::other("disk full");
        assert_eq!(
            error_chain(&Outer::Database(cause())),
            "database error: disk full"
        );
        assert_eq!(error_chain(&Outer::Wrapped(cause())), "wrapped: disk full");
    }
}
