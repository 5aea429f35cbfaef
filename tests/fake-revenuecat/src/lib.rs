//! A stateful fake of RevenueCat REST API v2 for dev, tests, demo and benches.
//!
//! It serves, under `/v2`, the endpoints rcsync uses (projects, customers and their
//! subscriptions / purchases / active entitlements / aliases / attributes, subscription and
//! purchase entitlements, entitlements, products, webhook integrations) with RevenueCat's
//! object shapes, list envelopes and pagination, bearer-key authentication, key permissions,
//! per-key per-domain rate limits with RevenueCat's headers and 429 body, and RevenueCat error
//! objects. Its JSON is built from its own records (`model.rs`) following RevenueCat's
//! published OpenAPI document and seed `000` (webhook integrations), independently of
//! rcsync's client types, so the two check each other against the docs.
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
//! # Knobs
//!
//! Each is a [`FakeConfig`] field (its value at start) and/or a method of the running
//! [`FakeRevenueCat`]; the ones the `fake-revenuecat` binary's users need also have a `/_fake`
//! admin endpoint (see `admin.rs`) and a command-line flag.
//!
//! **Data.** [`FakeConfig::dataset`] generates numbered customers `user_000001`, … in
//! [`SUBSCRIBER_CASES`] round-robin ([`dataset`]; 100,000 are ready in under a second even in a
//! debug build, about 2 KB of memory each). [`FakeConfig::dataset_extras`] opts into more:
//! [`DatasetExtras::anonymous_customers`] (canonical `$RCAnonymousID:…` ids) and
//! [`DatasetExtras::extra_cases`] (one customer per [`ExtraCase`]: subscription `status`
//! `unknown` / `incomplete`, `auto_renewal_status` `will_change_product` /
//! `has_already_renewed`, subscription plus consumable, paid lifetime, no purchases, two
//! entitlements, a `sandbox` App Store subscriber). [`FakeRevenueCat::add_extra_case_customer`] adds one at any id;
//! [`dataset::spread_customer_ids`] picks the few ids a test knows in a huge project;
//! [`FakeRevenueCat::state`] reads and mutates everything while the fake serves.
//!
//! **Lists** ([`ListKnobs`], `/_fake/lists`):
//! - [`FakeConfig::max_page_limit`] / [`FakeRevenueCat::set_max_page_limit`]: a `limit` above
//!   it answers 400 `parameter_error` with `param: limit` (default 100);
//! - [`FakeConfig::page_cap`] / [`FakeRevenueCat::set_page_cap`]: silently serve at most N
//!   items per page and page on;
//! - [`FakeConfig::embedded_page_size`] / [`FakeRevenueCat::set_embedded_page_size`]: lists
//!   embedded in a customer (`active_entitlements`, `attributes`) or in a subscription or
//!   purchase (`entitlements`) are first pages of N items whose `next_page` the fake serves;
//! - [`FakeConfig::omit_next_page_on_last`] / [`FakeRevenueCat::set_omit_next_page_on_last`]:
//!   last pages leave `next_page` out instead of sending `null`;
//! - [`FakeConfig::list_customers_includes_entitlements`]: list-customers items carry
//!   `active_entitlements` (RevenueCat's reference says they do not);
//! - [`FakeConfig::customer_omits_active_entitlements`] /
//!   [`FakeRevenueCat::set_customer_omits_active_entitlements`]: "Get a customer" leaves
//!   `active_entitlements` out, so a client must list `/active_entitlements` itself.
//!
//! **Rate limits** (`/_fake/rate_limit`): budgets per key and domain
//! ([`FakeConfig::customer_rate_limit_per_min`], [`FakeConfig::config_rate_limit_per_min`],
//! [`FakeRevenueCat::set_rate_limit`]), the window ([`FakeRevenueCat::set_rate_limit_window`]),
//! [`FakeRevenueCat::reset_rate_limits`]; the 429's `Retry-After` in seconds or as an HTTP-date
//! ([`FakeRevenueCat::set_retry_after_format`]) and a fixed announced wait
//! ([`FakeRevenueCat::set_retry_after_secs`]). Each 429 in the request log records the wait it
//! announced ([`LoggedRequest::retry_after_secs`], [`LoggedRequest::retry_allowed_at`]).
//!
//! **Failures.** [`FakeRevenueCat::fail_next`] / [`FakeRevenueCat::fail_next_matching`]
//! (`/_fake/faults`): RevenueCat error answers, counted against the rate-limit window like any
//! answer (a full window answers 429 first). [`FakeRevenueCat::revoke_permission`] /
//! [`FakeRevenueCat::revoke_key_permission`] (`/_fake/permissions`): 403
//! `authorization_error` for a key lacking e.g. `project_configuration:integrations:read_write`.
//! [`FakeRevenueCat::set_unreachable`] (`/_fake/unreachable`): requests under a path prefix
//! are never answered, so clients time out. [`FakeRevenueCat::hold_matching`]: hold matching
//! requests in flight until released. [`FakeRevenueCat::set_latency`] (`/_fake/latency`).
//!
//! **Observing.** [`FakeRevenueCat::request_log`] (`/_fake/requests`),
//! [`FakeRevenueCat::stats`] (`/_fake/stats`), [`FakeRevenueCat::max_accepted_in_window`],
//! [`FakeRevenueCat::webhook_integrations`] and
//! [`FakeRevenueCat::webhook_authorization_header`] (`/_fake/webhook_integrations`, write-only
//! `authorization_header` included), [`FakeRevenueCat::unanswered_requests`].

mod admin;
pub mod dataset;
pub mod errors;
pub mod extra_cases;
pub mod faults;
pub mod knobs;
pub mod log;
pub mod model;
mod network;
mod permissions;
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use serde::Serialize;

pub use dataset::{DatasetCase, DatasetExtras, DatasetSpec, DatasetSummary, SUBSCRIBER_CASES};
pub use errors::RcError;
pub use extra_cases::{ExtraCase, EXTRA_CASES};
pub use faults::FaultRule;
pub use knobs::{ListKnobs, RetryAfterFormat, RetryAfterKnobs};
pub use log::{max_in_any_window, LoggedRequest};
pub use model::*;
pub use network::Hold;
pub use rate_limit::RateLimitDomain;
pub use state::{StateHandle, Store};

use faults::Faults;
use network::Network;
use permissions::Revocations;
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
    /// Serve at most this many items per list page whatever `limit` asked for (see
    /// [`ListKnobs::page_cap`]).
    pub page_cap: Option<usize>,
    /// Embedded lists are first pages of this size (see [`ListKnobs::embedded_page_size`]).
    pub embedded_page_size: Option<usize>,
    /// Last pages leave `next_page` out instead of sending `null`.
    pub omit_next_page_on_last: bool,
    /// RevenueCat's OpenAPI document says list-customers items carry neither
    /// `active_entitlements` nor `attributes` (false, the default). Set true to serve them
    /// anyway, for a client that must cope with both behaviours.
    pub list_customers_includes_entitlements: bool,
    /// "Get a customer" leaves `active_entitlements` out (see
    /// [`ListKnobs::customer_omits_active_entitlements`]).
    pub customer_omits_active_entitlements: bool,
    /// The form of a 429's `Retry-After` (RevenueCat: seconds).
    pub retry_after_format: RetryAfterFormat,
    /// Announce this wait (seconds) in every 429 instead of the time until the window frees.
    pub retry_after_secs: Option<u64>,
    /// Generated customers (the catalog is always installed).
    pub dataset: Option<DatasetSpec>,
    /// Opt-in additions: anonymous customers, [`ExtraCase`] customers.
    pub dataset_extras: DatasetExtras,
    /// Reference "now" for the dataset (ms since epoch); default: the current time.
    pub now_ms: Option<i64>,
    /// Delay added to every `/v2` request.
    pub latency: Duration,
    /// actix worker threads.
    pub workers: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        let lists = ListKnobs::default();
        FakeConfig {
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            project_id: DEFAULT_PROJECT_ID.to_string(),
            customer_rate_limit_per_min: 480,
            config_rate_limit_per_min: 60,
            rate_limit_window: Duration::from_secs(60),
            max_page_limit: lists.max_page_limit,
            page_cap: lists.page_cap,
            embedded_page_size: lists.embedded_page_size,
            omit_next_page_on_last: lists.omit_next_page_on_last,
            list_customers_includes_entitlements: lists.list_customers_includes_entitlements,
            customer_omits_active_entitlements: lists.customer_omits_active_entitlements,
            retry_after_format: RetryAfterFormat::default(),
            retry_after_secs: None,
            dataset: None,
            dataset_extras: DatasetExtras::default(),
            now_ms: None,
            latency: Duration::ZERO,
            workers: 2,
        }
    }
}

impl FakeConfig {
    fn list_knobs(&self) -> ListKnobs {
        ListKnobs {
            max_page_limit: self.max_page_limit,
            page_cap: self.page_cap,
            embedded_page_size: self.embedded_page_size,
            omit_next_page_on_last: self.omit_next_page_on_last,
            list_customers_includes_entitlements: self.list_customers_includes_entitlements,
            customer_omits_active_entitlements: self.customer_omits_active_entitlements,
        }
    }
}

pub const DEFAULT_API_KEY: &str = "sk_test_fake_key_0001";
pub const DEFAULT_PROJECT_ID: &str = "proj1ab2c3d4";
/// The seed of [`ExtraCase`] customers when no dataset is configured.
const DEFAULT_SEED: u64 = 42;

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
    pub lists: Mutex<ListKnobs>,
    pub retry_after: Mutex<RetryAfterKnobs>,
    pub permissions: Mutex<Revocations>,
    pub network: Arc<Network>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub started: Instant,
    pub now_ms: i64,
    pub seed: u64,
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
        let seed = config.dataset.as_ref().map_or(DEFAULT_SEED, |d| d.seed);
        let mut store = Store::new(&config.project_id);
        dataset::install_catalog(&mut store);
        let mut dataset = config.dataset.as_ref().map(|spec| {
            let summary = dataset::populate(&mut store, spec, now_ms);
            (spec.clone(), summary)
        });
        let extras = &config.dataset_extras;
        if extras.anonymous_customers > 0 {
            let spec = config.dataset.clone().unwrap_or_default();
            let anonymous =
                dataset::populate_anonymous(&mut store, &spec, extras.anonymous_customers, now_ms);
            if let Some((_, summary)) = dataset.as_mut() {
                summary.anonymous_customers = anonymous;
            }
        }
        if extras.extra_cases {
            for case in EXTRA_CASES {
                let id = extra_cases::extra_case_id(case);
                extra_cases::install_extra_case(&mut store, &id, case, seed, now_ms);
            }
        }
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
            lists: Mutex::new(config.list_knobs()),
            retry_after: Mutex::new(RetryAfterKnobs {
                format: config.retry_after_format,
                secs: config.retry_after_secs,
            }),
            permissions: Mutex::new(Revocations::default()),
            network: Arc::new(Network::new()),
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
            now_ms,
            seed,
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

    /// The list knobs in force.
    pub fn list_knobs(&self) -> ListKnobs {
        lock(&self.shared.lists).clone()
    }

    pub fn set_list_knobs(&self, knobs: ListKnobs) {
        *lock(&self.shared.lists) = knobs;
    }

    /// A `limit` above `max` answers 400 `parameter_error` (`param: limit`).
    pub fn set_max_page_limit(&self, max: u32) {
        lock(&self.shared.lists).max_page_limit = max;
    }

    /// Serve at most `cap` items per list page whatever `limit` asked for (`None`: as asked).
    pub fn set_page_cap(&self, cap: Option<usize>) {
        lock(&self.shared.lists).page_cap = cap;
    }

    /// Embed lists as first pages of `size` items with a `next_page` (`None`: complete).
    pub fn set_embedded_page_size(&self, size: Option<usize>) {
        lock(&self.shared.lists).embedded_page_size = size;
    }

    /// Leave `next_page` out of last pages (`true`) or send `null` (`false`, the default).
    pub fn set_omit_next_page_on_last(&self, omit: bool) {
        lock(&self.shared.lists).omit_next_page_on_last = omit;
    }

    pub fn set_list_customers_includes_entitlements(&self, on: bool) {
        lock(&self.shared.lists).list_customers_includes_entitlements = on;
    }

    /// "Get a customer" leaves `active_entitlements` out (`true`) or embeds them (`false`, the
    /// default, as RevenueCat does).
    pub fn set_customer_omits_active_entitlements(&self, omit: bool) {
        lock(&self.shared.lists).customer_omits_active_entitlements = omit;
    }

    /// Send a 429's `Retry-After` in seconds (default) or as an HTTP-date.
    pub fn set_retry_after_format(&self, format: RetryAfterFormat) {
        lock(&self.shared.retry_after).format = format;
    }

    /// Announce `secs` in every 429 (`None`: the time until the window frees a slot).
    pub fn set_retry_after_secs(&self, secs: Option<u64>) {
        lock(&self.shared.retry_after).secs = secs;
    }

    /// Take `permission` (e.g. `project_configuration:integrations:read_write`) from every
    /// key: requests needing it answer 403 `authorization_error`. Revoking `X:read` takes
    /// `X:read_write` too; revoking `X:read_write` leaves reading `X` allowed.
    pub fn revoke_permission(&self, permission: &str) {
        lock(&self.shared.permissions).revoke(None, permission);
    }

    /// Like [`Self::revoke_permission`] for one key only.
    pub fn revoke_key_permission(&self, key: &str, permission: &str) {
        lock(&self.shared.permissions).revoke(Some(key), permission);
    }

    /// Every key holds every permission again.
    pub fn restore_permissions(&self) {
        lock(&self.shared.permissions).clear();
    }

    /// Hold the answers to requests whose path-and-query contains `path_contains` until the
    /// returned [`Hold`] is released or dropped. A released request is processed and answered
    /// as usual, even if its client is gone by then (RevenueCat received it).
    pub fn hold_matching(&self, path_contains: &str) -> Hold {
        self.shared.network.hold(path_contains)
    }

    /// Never answer requests whose path (as received, percent-encoded) starts with `prefix`,
    /// e.g. `/v2/projects/proj1ab2c3d4/integrations`: the client sees its request time out,
    /// and the request has no effect, ever. (When the prefix is cleared, a client still
    /// waiting gets a bare 503 with `Connection: close`; the fake never processes it.)
    pub fn set_unreachable(&self, prefix: &str) {
        self.shared.network.add_unreachable(prefix);
    }

    /// Answer everything again.
    pub fn clear_unreachable(&self) {
        self.shared.network.clear_unreachable();
    }

    /// Path-and-query of every request that arrived while unreachable, in arrival order.
    pub fn unanswered_requests(&self) -> Vec<String> {
        self.shared.network.unanswered()
    }

    /// The webhook integrations the fake stores, write-only `authorization_header` included.
    pub fn webhook_integrations(&self) -> Vec<WebhookIntegrationRecord> {
        self.shared.state.webhook_integrations()
    }

    /// The `authorization_header` last set on webhook integration `id` (RevenueCat would
    /// send it with every delivery); `None` if unknown or unset.
    pub fn webhook_authorization_header(&self, id: &str) -> Option<String> {
        self.shared
            .state
            .webhook_integration(id)
            .and_then(|w| w.authorization_header)
    }

    /// Store customer `id` in `case` (deterministic, with the catalog entries it needs).
    pub fn add_extra_case_customer(&self, id: &str, case: ExtraCase) -> CustomerRecord {
        let (seed, now) = (self.shared.seed, self.shared.now_ms);
        self.shared
            .state
            .with(|store| extra_cases::install_extra_case(store, id, case, seed, now))
    }

    /// The fake's reference "now" (ms since epoch) that its generated data is relative to.
    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms
    }

    /// Every `/v2` request answered so far, in the order the fake took them up.
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
