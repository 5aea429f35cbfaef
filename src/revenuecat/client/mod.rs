//! The RevenueCat API v2 client: one instance per process, shared by every job and request.
//!
//! Every request goes through the shared [`RateLimiter`] and one retry policy:
//! - 429: wait `Retry-After` (seconds or an HTTP date) or the body's `backoff_ms`, whichever is
//!   larger, penalize the shared limiter so every caller of that key slows down, retry. 429s
//!   have their own, generous budget (`max_rate_limited_retries`, and at most
//!   `max_rate_limited_wait` of waiting per call) so a storm is ridden out instead of failing
//!   users, without one call waiting for ever.
//! - 5xx, 408, 423, timeouts, connection errors: exponential backoff with jitter, up to
//!   `max_retries`. Non-idempotent requests (creating a webhook) are only retried when they
//!   provably never reached RevenueCat (connect errors, 429).
//! - 401/403: [`RevenueCatError::Unauthorized`]; 404: [`RevenueCatError::NotFound`]; any other
//!   4xx: [`RevenueCatError::Api`] immediately, with RevenueCat's `message`.
//!
//! The API key is passed per call (projects have different keys), exposed only to build the
//! `Authorization` header, and never logged.

mod call_log;
mod endpoints;
mod fetch;
mod paths;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

use super::error::RevenueCatError;
use super::model::ApiErrorBody;
use super::rate_limiter::{DomainLimit, Priority, RateLimitDomain, RateLimiter, RateLimits};
use super::shared_budget::SharedBudget;
use crate::metrics::RevenueCatMetrics;

pub use call_log::{endpoint_label, CallCounts, CallLog};
pub use paths::encode_path_segment;

/// RevenueCat's production API base.
pub const DEFAULT_BASE_URL: &str = "https://api.revenuecat.com/v2";

/// Upper bound of a single 429 wait, whatever the server asks for.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(120);

/// Largest answer read into memory. A page of 100 customers is about 100 KiB; anything far
/// beyond is a misbehaving server or proxy, not data to buffer.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// E.g. `https://api.revenuecat.com/v2` (tests: `http://127.0.0.1:PORT/v2`).
    pub base_url: Url,
    /// Customer Information budget per key (RevenueCat: 480/min).
    pub customer_rate_limit_per_min: u32,
    /// Project Configuration budget per key (RevenueCat: 60/min).
    pub config_rate_limit_per_min: u32,
    /// Checks of keys not verified yet, all keys together (see [`RateLimits::key_checks`]).
    pub key_check_rate_limit_per_min: u32,
    /// Whole-request timeout (connect + answer + body).
    pub request_timeout: Duration,
    /// Retries of 5xx / timeouts / connection errors.
    pub max_retries: u32,
    /// Retries of 429s (separate so a burst of 429s does not fail users).
    pub max_rate_limited_retries: u32,
    /// Total `Retry-After` one call accepts to wait; a 429 asking for more fails the call.
    pub max_rate_limited_wait: Duration,
    /// First backoff delay; doubles per failure, jittered.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// `limit` query parameter of list requests.
    pub page_limit: u32,
    /// Where calls, 429s, retries and requests in flight are counted (the application's
    /// metrics; registered nowhere by default).
    pub metrics: RevenueCatMetrics,
}

impl ClientConfig {
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            customer_rate_limit_per_min: RateLimits::REVENUECAT.customer_information.per_minute,
            config_rate_limit_per_min: RateLimits::REVENUECAT.project_configuration.per_minute,
            key_check_rate_limit_per_min: RateLimits::REVENUECAT.key_checks.per_minute,
            request_timeout: Duration::from_secs(10),
            max_retries: 5,
            max_rate_limited_retries: 20,
            // Below the 4-minute cut of a resync attempt, so the attempt ends with
            // RevenueCat's error instead of being cut mid-wait.
            max_rate_limited_wait: Duration::from_secs(180),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            page_limit: 100,
            metrics: RevenueCatMetrics::default(),
        }
    }

    fn rate_limits(&self) -> RateLimits {
        let defaults = RateLimits::REVENUECAT;
        RateLimits {
            customer_information: DomainLimit {
                per_minute: self.customer_rate_limit_per_min,
                ..defaults.customer_information
            },
            project_configuration: DomainLimit {
                per_minute: self.config_rate_limit_per_min,
                ..defaults.project_configuration
            },
            key_checks: DomainLimit {
                per_minute: self.key_check_rate_limit_per_min,
                ..defaults.key_checks
            },
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        // A constant that always parses; a failure here is a programming error.
        Self::new(Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL"))
    }
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientMetrics {
    /// HTTP requests sent.
    pub calls: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Requests repeated after a retryable failure or a 429.
    pub retries: u64,
    /// Calls that ended in an error (404s excluded: a normal answer for lookups).
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: RateLimiter,
    counters: Counters,
    /// The runtime every exchange runs on (see [`RevenueCatClient::send_once`]); `None` when
    /// the client was built outside one.
    home: Option<tokio::runtime::Handle>,
}

/// Why one exchange with RevenueCat produced no answer.
enum SendError {
    Http(reqwest::Error),
    /// The runtime that drives the client's connections has shut down: the process stops.
    Stopped,
}

/// Aborts the spawned exchange when the caller stops waiting (a deadline, a cancelled run),
/// as dropping the request itself would.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Cheap to clone (an `Arc` inside): build one per process and share it. A clone can be
/// told who is asking ([`Self::with_priority`]) and where to count its calls
/// ([`Self::recording_into`]); the pacers, retries and counters stay shared.
#[derive(Clone)]
pub struct RevenueCatClient {
    inner: Arc<Inner>,
    priority: Priority,
    call_log: Option<Arc<CallLog>>,
}

impl std::fmt::Debug for RevenueCatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevenueCatClient")
            .field("base_url", &self.inner.config.base_url.as_str())
            .field("metrics", &self.metrics())
            .finish()
    }
}

/// Whether a request may be repeated when we cannot tell if RevenueCat processed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotency {
    Idempotent,
    SendOnce,
}

/// One logical request (repeated as the retry policy decides).
struct Call<'a> {
    key: &'a SecretString,
    domain: RateLimitDomain,
    method: Method,
    url: Url,
    body: Option<serde_json::Value>,
    idempotency: Idempotency,
}

/// What came back from one HTTP attempt.
struct Answer {
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    /// `None` when the body exceeded [`MAX_ANSWER_BYTES`] (the rest was not read).
    body: Option<Vec<u8>>,
}

impl RevenueCatClient {
    pub fn new(config: ClientConfig) -> Result<Self, RevenueCatError> {
        Self::build(config, None)
    }

    /// A client whose requests also spend tokens of a budget shared with other processes
    /// (see [`SharedBudget`]).
    pub fn with_shared_budget(
        config: ClientConfig,
        budget: Arc<dyn SharedBudget>,
    ) -> Result<Self, RevenueCatError> {
        Self::build(config, Some(budget))
    }

    fn build(
        config: ClientConfig,
        budget: Option<Arc<dyn SharedBudget>>,
    ) -> Result<Self, RevenueCatError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("rcsync/", env!("CARGO_PKG_VERSION")))
            // Full resyncs keep many requests in flight to one host.
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|error| RevenueCatError::Transport(error.to_string()))?;
        let limits = config.rate_limits();
        for domain in [
            RateLimitDomain::CustomerInformation,
            RateLimitDomain::ProjectConfiguration,
        ] {
            config
                .metrics
                .set_budget(domain.label(), limits.for_domain(domain).per_minute);
        }
        let mut limiter = RateLimiter::new(limits);
        if let Some(budget) = budget {
            limiter = limiter.with_shared_budget(budget);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
                counters: Counters::default(),
                home: tokio::runtime::Handle::try_current().ok(),
            }),
            priority: Priority::default(),
            call_log: None,
        })
    }

    /// This client, asking with `priority` (see [`Priority`]).
    pub fn with_priority(&self, priority: Priority) -> Self {
        Self {
            priority,
            ..self.clone()
        }
    }

    /// This client, also counting its calls into `log`.
    pub fn recording_into(&self, log: Arc<CallLog>) -> Self {
        Self {
            call_log: Some(log),
            ..self.clone()
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The process-wide limiter (shared with anything else that talks to RevenueCat).
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub fn metrics(&self) -> ClientMetrics {
        let counters = &self.inner.counters;
        ClientMetrics {
            calls: counters.calls.load(Ordering::Relaxed),
            rate_limited: counters.rate_limited.load(Ordering::Relaxed),
            retries: counters.retries.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        domain: RateLimitDomain,
        url: Url,
    ) -> Result<T, RevenueCatError> {
        let call = Call {
            key,
            domain,
            method: Method::GET,
            url,
            body: None,
            idempotency: Idempotency::Idempotent,
        };
        decode(&self.execute(call).await?)
    }

    /// Runs a call under the retry policy; returns the body of the 2xx answer.
    #[tracing::instrument(
        name = "revenuecat_request",
        skip_all,
        fields(method = %call.method, path = %call.url.path(), domain = ?call.domain)
    )]
    async fn execute(&self, call: Call<'_>) -> Result<Vec<u8>, RevenueCatError> {
        let result = self.execute_with_retries(&call).await;
        if let Err(error) = &result {
            if !matches!(error, RevenueCatError::NotFound { .. }) {
                Counters::bump(&self.inner.counters.errors);
                tracing::warn!(error = %error, "RevenueCat request failed");
            }
        }
        result
    }

    async fn execute_with_retries(&self, call: &Call<'_>) -> Result<Vec<u8>, RevenueCatError> {
        let config = &self.inner.config;
        let counters = &self.inner.counters;
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        let mut rate_limited_wait = Duration::ZERO;
        let mut attempt = 0u32;
        let (endpoint, domain) = (endpoint_label(call.url.path()), call.domain.label());
        let metrics = &config.metrics;
        loop {
            attempt += 1;
            self.inner
                .limiter
                .acquire(call.key, call.domain, self.priority)
                .await;
            Counters::bump(&counters.calls);
            metrics.call(endpoint, domain);
            if let Some(log) = &self.call_log {
                log.record_call(endpoint);
            }
            let started = Instant::now();
            let outcome = {
                let _on_the_wire = metrics.in_flight(domain);
                self.send_once(call).await
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;

            let answer = match outcome {
                Ok(answer) => answer,
                Err(SendError::Stopped) => {
                    return Err(RevenueCatError::Transport("the process is stopping".into()))
                }
                Err(SendError::Http(error)) => {
                    let retryable = match call.idempotency {
                        Idempotency::Idempotent => !error.is_builder(),
                        Idempotency::SendOnce => error.is_connect(),
                    };
                    let message = transport_message(&error);
                    tracing::debug!(attempt, elapsed_ms, error = %message, "transport error");
                    if !retryable {
                        return Err(RevenueCatError::Transport(message));
                    }
                    failures += 1;
                    if failures > config.max_retries {
                        return Err(RevenueCatError::RetriesExhausted {
                            attempts: attempt,
                            last_status: None,
                            last_error: message,
                        });
                    }
                    Counters::bump(&counters.retries);
                    metrics.retry(endpoint, domain);
                    tokio::time::sleep(self.backoff(failures, None)).await;
                    continue;
                }
            };

            let status = answer.status.as_u16();
            tracing::debug!(attempt, elapsed_ms, status, "RevenueCat answered");
            let Some(body) = answer.body else {
                return Err(RevenueCatError::Decode(format!(
                    "answer ({status}) larger than {} MiB",
                    MAX_ANSWER_BYTES / (1024 * 1024)
                )));
            };
            if answer.status.is_success() {
                return Ok(body);
            }
            let error_body = ApiErrorBody::parse(&body);
            let message = error_body.message.clone().unwrap_or_else(|| {
                answer
                    .status
                    .canonical_reason()
                    .unwrap_or("unexpected status")
                    .to_owned()
            });

            match status {
                429 => {
                    Counters::bump(&counters.rate_limited);
                    metrics.rate_limited(endpoint, domain);
                    if let Some(log) = &self.call_log {
                        log.record_rate_limited();
                    }
                    rate_limited += 1;
                    let wait = rate_limit_wait(answer.retry_after, error_body.backoff_ms);
                    self.inner.limiter.penalize(call.key, call.domain, wait);
                    rate_limited_wait += wait;
                    tracing::info!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "rate limited by RevenueCat"
                    );
                    if rate_limited > config.max_rate_limited_retries
                        || rate_limited_wait > config.max_rate_limited_wait
                    {
                        return Err(RevenueCatError::RetriesExhausted {
                            attempts: attempt,
                            last_status: Some(status),
                            last_error: message,
                        });
                    }
                    // The limiter now holds every caller (this one included) past `wait`.
                    Counters::bump(&counters.retries);
                    metrics.retry(endpoint, domain);
                }
                401 | 403 => return Err(RevenueCatError::Unauthorized { status, message }),
                404 => return Err(RevenueCatError::NotFound { message }),
                408 | 423 | 500..=599 if call.idempotency == Idempotency::Idempotent => {
                    failures += 1;
                    if failures > config.max_retries {
                        return Err(RevenueCatError::RetriesExhausted {
                            attempts: attempt,
                            last_status: Some(status),
                            last_error: message,
                        });
                    }
                    Counters::bump(&counters.retries);
                    metrics.retry(endpoint, domain);
                    tokio::time::sleep(self.backoff(failures, error_body.backoff_ms)).await;
                }
                _ => {
                    return Err(RevenueCatError::Api {
                        status,
                        message,
                        error_type: error_body.error_type,
                        param: error_body.param,
                    })
                }
            }
        }
    }

    /// One exchange, run on the client's home runtime. A pooled connection belongs to the
    /// runtime that opened it: one opened from an HTTP worker thread's runtime dies when that
    /// worker stops at shutdown, under whichever job reuses it from the pool. Keeping every
    /// exchange on the runtime the client was built on (the process's main one) means
    /// connections live as long as the jobs that use them.
    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, SendError> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(call.key.expose_secret())
            .header(ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let exchange = async move {
            let response = request.send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            let body = read_bounded(response, MAX_ANSWER_BYTES).await?;
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        let Some(home) = &self.inner.home else {
            return exchange.await.map_err(SendError::Http);
        };
        let mut task = AbortOnDrop(home.spawn(exchange));
        match (&mut task.0).await {
            Ok(outcome) => outcome.map_err(SendError::Http),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(SendError::Stopped),
        }
    }

    /// Exponential backoff with jitter (50–100 % of the step), at least the server's hint.
    fn backoff(&self, failures: u32, server_hint_ms: Option<i64>) -> Duration {
        let config = &self.inner.config;
        let step = config
            .base_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(config.max_backoff);
        let jittered = step.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
        let hint = server_hint_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64).min(config.max_backoff))
            .unwrap_or_default();
        jittered.max(hint)
    }
}

/// The body, or `None` as soon as it proves longer than `limit` (declared or streamed).
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `Retry-After` in either of its forms (RFC 9110 §10.2.3): delay-seconds, or an HTTP date
/// (a date in the past means now). Capped at [`MAX_RATE_LIMIT_WAIT`].
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds.min(MAX_RATE_LIMIT_WAIT.as_secs_f64()))
        }
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_RATE_LIMIT_WAIT))
}

/// How long a 429 holds the key: the larger of `Retry-After` and `backoff_ms`, 1 s if neither.
fn rate_limit_wait(retry_after: Option<Duration>, backoff_ms: Option<i64>) -> Duration {
    let from_body = backoff_ms
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(ms as u64));
    match (retry_after, from_body) {
        (None, None) => Duration::from_secs(1),
        (header, body) => header.unwrap_or_default().max(body.unwrap_or_default()),
    }
    .min(MAX_RATE_LIMIT_WAIT)
}

fn transport_message(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "request timed out".to_owned()
    } else if error.is_connect() {
        format!("connection failed: {error}")
    } else {
        error.to_string()
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RevenueCatError> {
    serde_json::from_slice(body).map_err(|error| RevenueCatError::Decode(error.to_string()))
}
