//! Prometheus metrics (`GET /metrics`): every metric rcsync exports, its name, labels and
//! buckets, in one place. One [`Metrics`] per application (tests run many in one process),
//! cheap to clone; the pieces that count (webhook receipt, the RevenueCat client, retention)
//! hold a handle to their part.
//!
//! Counters on hot paths use fixed, bounded label values (`&'static str`): a lookup, no
//! allocation. Gauges of database state (queue depth, jobs by status) are read when scraped.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Webhook receipt: deliveries by event type and outcome, time to commit, group-commit sizes.
#[derive(Clone)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
    latency: HistogramVec,
    batch_size: Histogram,
}

impl WebhookMetrics {
    /// One delivery handed to the writer (or refused before it): its type (a known RevenueCat
    /// type, `OTHER`, or `UNPARSED`), outcome and time from receipt to answer.
    pub fn delivered(&self, event_type: &'static str, outcome: &'static str, elapsed: Duration) {
        self.deliveries
            .with_label_values(&[event_type, outcome])
            .inc();
        self.latency
            .with_label_values(&[outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// One group commit of `events` deliveries.
    pub fn batch(&self, events: usize) {
        self.batch_size.observe(events as f64);
    }
}

/// RevenueCat calls by endpoint (`customer`, `subscriptions`, …) and rate-limit domain.
/// The default is registered nowhere (a client built outside an application).
#[derive(Clone, Debug)]
pub struct RevenueCatMetrics {
    calls: IntCounterVec,
    rate_limited: IntCounterVec,
    retries: IntCounterVec,
    in_flight: IntGaugeVec,
    budget: IntGaugeVec,
}

impl Default for RevenueCatMetrics {
    fn default() -> Self {
        Self::registered_in(&Registry::new())
    }
}

impl RevenueCatMetrics {
    fn registered_in(registry: &Registry) -> Self {
        RevenueCatMetrics {
            calls: counter(
                registry,
                "rcsync_revenuecat_calls_total",
                "Requests sent to RevenueCat (retries included) by endpoint and rate-limit domain",
                &["endpoint", "domain"],
            ),
            rate_limited: counter(
                registry,
                "rcsync_revenuecat_rate_limited_total",
                "429 answers from RevenueCat by endpoint and rate-limit domain",
                &["endpoint", "domain"],
            ),
            retries: counter(
                registry,
                "rcsync_revenuecat_retries_total",
                "RevenueCat requests repeated after a 429, 5xx or network error",
                &["endpoint", "domain"],
            ),
            in_flight: gauge(
                registry,
                "rcsync_revenuecat_requests_in_flight",
                "RevenueCat requests on the wire now (budget in use), by rate-limit domain",
                &["domain"],
            ),
            budget: gauge(
                registry,
                "rcsync_revenuecat_budget_per_minute",
                "Requests per minute one RevenueCat key may make, by rate-limit domain",
                &["domain"],
            ),
        }
    }

    pub fn call(&self, endpoint: &'static str, domain: &'static str) {
        self.calls.with_label_values(&[endpoint, domain]).inc();
    }

    pub fn rate_limited(&self, endpoint: &'static str, domain: &'static str) {
        self.rate_limited
            .with_label_values(&[endpoint, domain])
            .inc();
    }

    pub fn retry(&self, endpoint: &'static str, domain: &'static str) {
        self.retries.with_label_values(&[endpoint, domain]).inc();
    }

    /// A request of `domain` is on the wire until the guard drops.
    pub fn in_flight(&self, domain: &'static str) -> InFlight {
        let gauge = self.in_flight.with_label_values(&[domain]);
        gauge.inc();
        InFlight(gauge)
    }

    /// The budget one key has per minute in `domain` (what the pacer allows).
    pub fn set_budget(&self, domain: &'static str, per_minute: u32) {
        self.budget
            .with_label_values(&[domain])
            .set(i64::from(per_minute));
    }
}

/// Decrements the in-flight gauge when the request ends, however it ends.
pub struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Database state, read at scrape time.
#[derive(Clone)]
pub struct StateGauges {
    /// Job rows by type and status.
    pub jobs: IntGaugeVec,
    /// Work waiting: follow-up requests not yet promoted, pending resyncs, pending runs,
    /// events waiting for resolution.
    pub queue_depth: IntGaugeVec,
    /// Connections by pool and state (`idle`, `in_use`) and each pool's maximum.
    pub pool_connections: IntGaugeVec,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub webhooks: WebhookMetrics,
    pub revenuecat: RevenueCatMetrics,
    pub state: StateGauges,
    pruned: IntCounterVec,
}

/// Commit latency: milliseconds to the 30 s commit deadline.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Group-commit sizes: 1 to the writer's maximum of 512.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "rcsync_webhook_duration_seconds",
                "Time from receiving a webhook body to answering it (its batch committed), by outcome",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("metric registered once");
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "rcsync_webhook_batch_size",
                "Webhook deliveries committed together in one group commit",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(batch_size.clone()))
            .expect("metric registered once");
        let webhooks = WebhookMetrics {
            deliveries: counter(
                &registry,
                "rcsync_webhooks_total",
                "Webhook deliveries by event type and outcome (applied, superseded, ignored, \
                 pending_resolution, duplicate, invalid, busy, error)",
                &["type", "outcome"],
            ),
            latency,
            batch_size,
        };
        let revenuecat = RevenueCatMetrics::registered_in(&registry);
        let state = StateGauges {
            jobs: gauge(
                &registry,
                "rcsync_jobs",
                "Job rows by type (revenuecat_sync runs, revenuecat_user_resync rows) and status",
                &["type", "status"],
            ),
            queue_depth: gauge(
                &registry,
                "rcsync_queue_depth",
                "Work waiting: follow_up_backlog (requested on users, not yet queued), \
                 pending_resyncs, pending_runs, pending_resolutions",
                &["queue"],
            ),
            pool_connections: gauge(
                &registry,
                "rcsync_db_pool_connections",
                "Database connections by pool (main, writer) and state (in_use, idle, max)",
                &["pool", "state"],
            ),
        };
        let pruned = counter(
            &registry,
            "rcsync_retention_pruned_rows_total",
            "Rows deleted by retention, by table",
            &["table"],
        );
        Self {
            registry,
            webhooks,
            revenuecat,
            state,
            pruned,
        }
    }

    /// Rows retention deleted from `table`.
    pub fn pruned(&self, table: &'static str, rows: u64) {
        self.pruned.with_label_values(&[table]).inc_by(rows);
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding our own registry into memory cannot fail.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
