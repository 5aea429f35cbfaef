//! A stateful fake of RevenueCat REST API v2 for dev, tests, demo and benches.
//!
//! It serves, under `/v2`, the endpoints rcsync uses (projects, customers and their
//! subscriptions / purchases / active entitlements / aliases / attributes, entitlements,
//! products, webhook integrations) with RevenueCat's object shapes, list envelopes and
//! pagination, bearer-key authentication, per-key per-domain rate limits with RevenueCat's
//! headers and 429 body, and RevenueCat error objects. Its JSON is built from its own records
//! (`model.rs`) following RevenueCat's published OpenAPI document, independently of rcsync's
//! client types, so the two check each other against the docs.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fake_revenuecat::{FakeConfig, FakeRevenueCat, DatasetSpec};
//! let fake = FakeRevenueCat::start(FakeConfig {
//!     dataset: Some(DatasetSpec { customers: 50, ..Default::default() }),
//!     ..Default::default()
//! })?;
//! let url = format!("{}/projects/{}/customers", fake.base_url(), fake.project_id());
//! # let _ = url; fake.stop().await; Ok(()) }
//! ```
//!
//! Test-only knobs live outside `/v2` under `/_fake/...` (see `admin.rs`).

mod admin;
pub mod dataset;
pub mod errors;
pub mod faults;
pub mod log;
pub mod model;
mod query;
pub mod rate_limit;
pub mod render;
mod routes;
pub mod state;
mod webhooks;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use serde::Serialize;

pub use dataset::{DatasetCase, DatasetSpec, DatasetSummary};
pub use errors::RcError;
pub use faults::FaultRule;
pub use log::{max_in_any_window, LoggedRequest};
pub use model::*;
pub use rate_limit::RateLimitDomain;
pub use state::{StateHandle, Store};

use faults::Faults;
use rate_limit::RateLimiter;

/// How the fake behaves. `Default` gives RevenueCat's documented numbers.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Accepted secret keys (all for `project_id`). Default: `["sk_test_fake_key_0001"]`.
    pub api_keys: Vec<String>,
    pub project_id: String,
    /// Customer Information domain budget per key and window (RevenueCat: 480/min).
    pub customer_rate_limit_per_min: u32,
    /// Project Configuration domain budget per key and window (RevenueCat: 60/min).
    pub config_rate_limit_per_min: u32,
    /// Length of the rate-limit window (RevenueCat: one minute). Shorten it in tests that need
    /// a client to recover from a 429 quickly.
    pub rate_limit_window: Duration,
    /// A `limit` above this answers 400 `parameter_error` (RevenueCat documents no maximum;
    /// the fake enforces one so a client that asks for unlimited pages is caught).
    pub max_page_limit: u32,
    /// RevenueCat's OpenAPI document says list-customers items carry neither
    /// `active_entitlements` nor `attributes` (false, the default). Set true to serve them
    /// anyway, for a client that must cope with both behaviours.
    pub list_customers_includes_entitlements: bool,
    /// Generated customers (the catalog is always installed).
    pub dataset: Option<DatasetSpec>,
    /// Reference "now" for the dataset (ms since epoch); default: the current time.
    pub now_ms: Option<i64>,
    /// Delay added to every `/v2` request.
    pub latency: Duration,
    /// actix worker threads.
    pub workers: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            project_id: DEFAULT_PROJECT_ID.to_string(),
            customer_rate_limit_per_min: 480,
            config_rate_limit_per_min: 60,
            rate_limit_window: Duration::from_secs(60),
            max_page_limit: 100,
            list_customers_includes_entitlements: false,
            dataset: None,
            now_ms: None,
            latency: Duration::ZERO,
            workers: 2,
        }
    }
}

pub const DEFAULT_API_KEY: &str = "sk_test_fake_key_0001";
pub const DEFAULT_PROJECT_ID: &str = "proj1ab2c3d4";

/// Counters over the request log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FakeStats {
    pub total: usize,
    /// status code -> count.
    pub by_status: std::collections::BTreeMap<u16, usize>,
    /// domain -> count of requests that were not rate limited.
    pub accepted_by_domain: std::collections::BTreeMap<String, usize>,
    pub rate_limited: usize,
    /// domain -> the most non-429 requests seen in any rate-limit window.
    pub max_accepted_in_window_by_domain: std::collections::BTreeMap<String, usize>,
}

/// State shared by the server workers and the test-side handle.
pub(crate) struct Shared {
    pub project_id: String,
    /// key -> project id.
    pub keys: Mutex<HashMap<String, String>>,
    pub state: StateHandle,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<Faults>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub started: Instant,
    pub max_page_limit: AtomicU32,
    pub list_customers_includes_entitlements: AtomicBool,
    pub dataset: Option<(DatasetSpec, DatasetSummary)>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(config: &FakeConfig) -> Self {
        let now_ms = config
            .now_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        let mut store = Store::new(&config.project_id);
        dataset::install_catalog(&mut store);
        let dataset = config.dataset.as_ref().map(|spec| {
            let summary = dataset::populate(&mut store, spec, now_ms);
            (spec.clone(), summary)
        });
        let faults = Faults {
            latency: config.latency,
            ..Default::default()
        };
        Shared {
            project_id: config.project_id.clone(),
            keys: Mutex::new(
                config
                    .api_keys
                    .iter()
                    .map(|k| (k.clone(), config.project_id.clone()))
                    .collect(),
            ),
            state: StateHandle::new(store),
            limiter: Mutex::new(RateLimiter::new(
                config.customer_rate_limit_per_min,
                config.config_rate_limit_per_min,
                config.rate_limit_window,
            )),
            faults: Mutex::new(faults),
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
            max_page_limit: AtomicU32::new(config.max_page_limit),
            list_customers_includes_entitlements: AtomicBool::new(
                config.list_customers_includes_entitlements,
            ),
            dataset,
        }
    }

    pub(crate) fn stats(&self) -> FakeStats {
        let log = lock(&self.log);
        let window = lock(&self.limiter).window();
        let mut s = FakeStats {
            total: log.len(),
            ..Default::default()
        };
        for r in log.iter() {
            *s.by_status.entry(r.status).or_default() += 1;
            if r.status == 429 {
                s.rate_limited += 1;
            } else if let Some(d) = r.domain {
                *s.accepted_by_domain
                    .entry(d.as_str().to_string())
                    .or_default() += 1;
            }
        }
        for d in [
            RateLimitDomain::CustomerInformation,
            RateLimitDomain::ProjectConfiguration,
        ] {
            let n = max_in_any_window(&log, window, |r| r.domain == Some(d) && r.status != 429);
            s.max_accepted_in_window_by_domain
                .insert(d.as_str().to_string(), n);
        }
        s
    }
}

/// A running fake. Dropping it stops the server (without waiting); prefer [`Self::stop`].
pub struct FakeRevenueCat {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    join: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl FakeRevenueCat {
    /// Bind `127.0.0.1:0` and serve in the background on the current Tokio runtime (works
    /// under `#[tokio::test]`, multi-thread flavour included, and `#[actix_web::test]`).
    pub fn start(config: FakeConfig) -> std::io::Result<FakeRevenueCat> {
        Self::start_on("127.0.0.1:0", config)
    }

    /// Like [`Self::start`] on a given address (e.g. `127.0.0.1:8090`).
    pub fn start_on(bind: &str, config: FakeConfig) -> std::io::Result<FakeRevenueCat> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&config));
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(routes::dispatch))
        })
        .workers(config.workers.max(1))
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let join = tokio::spawn(server);
        tracing::debug!(%addr, "fake RevenueCat listening");
        Ok(FakeRevenueCat {
            shared,
            addr,
            handle,
            join: Some(join),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (admin endpoints live under `/_fake`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v2`, the equivalent of `https://api.revenuecat.com/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The first configured key.
    pub fn api_key(&self) -> String {
        let keys = lock(&self.shared.keys);
        let mut own: Vec<&String> = keys
            .iter()
            .filter(|(_, p)| **p == self.shared.project_id)
            .map(|(k, _)| k)
            .collect();
        own.sort();
        own.first().map(|k| k.to_string()).unwrap_or_default()
    }

    /// Accept another key for this project.
    pub fn add_api_key(&self, key: &str) {
        self.add_api_key_for_project(key, &self.shared.project_id.clone());
    }

    /// Accept a key that belongs to another project: using it on this project answers 403
    /// `authorization_error`, like RevenueCat.
    pub fn add_api_key_for_project(&self, key: &str, project_id: &str) {
        lock(&self.shared.keys).insert(key.to_string(), project_id.to_string());
    }

    pub fn remove_api_key(&self, key: &str) {
        lock(&self.shared.keys).remove(key);
    }

    pub fn project_id(&self) -> String {
        self.shared.project_id.clone()
    }

    /// The data the fake serves; mutate it freely while it runs.
    pub fn state(&self) -> StateHandle {
        self.shared.state.clone()
    }

    /// The generated dataset's spec and summary, if one was configured.
    pub fn dataset(&self) -> Option<&(DatasetSpec, DatasetSummary)> {
        self.shared.dataset.as_ref()
    }

    /// The next `n` `/v2` requests (after authentication) answer `status` with the matching
    /// RevenueCat error body (500 → `server_error`, retryable, `backoff_ms`).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.add_fault(FaultRule {
            remaining: n,
            status,
            path_contains: None,
        });
    }

    /// Like [`Self::fail_next`] but only for requests whose path-and-query contains
    /// `path_contains` (e.g. `"/subscriptions"`).
    pub fn fail_next_matching(&self, n: u32, status: u16, path_contains: &str) {
        self.add_fault(FaultRule {
            remaining: n,
            status,
            path_contains: Some(path_contains.to_string()),
        });
    }

    pub fn add_fault(&self, rule: FaultRule) {
        if rule.remaining > 0 {
            lock(&self.shared.faults).rules.push(rule);
        }
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).rules.clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.faults).latency = latency;
    }

    /// Change a domain's budget (requests per key per window).
    pub fn set_rate_limit(&self, domain: RateLimitDomain, per_minute: u32) {
        lock(&self.shared.limiter).set_limit(domain, per_minute);
    }

    pub fn set_rate_limit_window(&self, window: Duration) {
        lock(&self.shared.limiter).set_window(window);
    }

    /// Forget the requests counted so far (every budget is full again).
    pub fn reset_rate_limits(&self) {
        lock(&self.shared.limiter).reset();
    }

    pub fn set_max_page_limit(&self, max: u32) {
        self.shared.max_page_limit.store(max, Ordering::Relaxed);
    }

    pub fn set_list_customers_includes_entitlements(&self, on: bool) {
        self.shared
            .list_customers_includes_entitlements
            .store(on, Ordering::Relaxed);
    }

    /// Every `/v2` request answered so far, in arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// The most requests of `domain` the fake accepted (status other than 429) within any
    /// `window`; compare with the configured limit to check a client's own limiter.
    pub fn max_accepted_in_window(&self, domain: RateLimitDomain, window: Duration) -> usize {
        let log = lock(&self.shared.log);
        max_in_any_window(&log, window, |r| {
            r.domain == Some(domain) && r.status != 429
        })
    }

    pub fn stats(&self) -> FakeStats {
        self.shared.stats()
    }

    /// Stop serving and wait for the server to finish.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(j) = self.join.take() {
            let _ = j.await;
        }
    }

    /// Wait until the server stops (e.g. after a stop request); for the binary.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.join.take() {
            Some(j) => j.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// A handle that can stop the server from elsewhere.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }
}

impl Drop for FakeRevenueCat {
    fn drop(&mut self) {
        if self.join.is_some() {
            // The stop command is sent eagerly; the returned future only awaits completion.
            drop(self.handle.stop(false));
        }
    }
}
