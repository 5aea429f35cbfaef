//! Settings: every configuration value, its default and its validation, in one place.
//!
//! | variable                           | default                               |
//! |------------------------------------|---------------------------------------|
//! | `RCSYNC_DATABASE_URL`              | `sqlite://rcsync.db?mode=rwc`         |
//! | `RCSYNC_BIND`                      | `127.0.0.1:8080`                      |
//! | `RCSYNC_PUBLIC_URL`                | `http://` + bind                      |
//! | `RCSYNC_REVENUECAT_API_URL`        | `https://api.revenuecat.com/v2`       |
//! | `RCSYNC_MASTER_KEY`                | SQLite: `rcsync.key` beside the DB; Postgres: required |
//! | `RCSYNC_JWT_SECRET`                | unset (JWT auth off); at least 32 bytes when set |
//! | `RCSYNC_RC_RATE_LIMIT`             | `480` requests/min per API key        |
//! | `RCSYNC_RC_KEY_CHECK_RATE_LIMIT`   | `30` checks of new keys/min, all keys together |
//! | `RCSYNC_RC_DEADLINE_SECS`          | `30`: API requests waiting on RevenueCat then answer 504 |
//! | `RCSYNC_REQUEST_BODY_TIMEOUT_SECS` | `30`: slower request bodies answer 408 |
//! | `RCSYNC_MAX_RESYNC_RUNS`           | `2` full resyncs per process at once  |
//! | `RCSYNC_CORS_ORIGINS`              | unset (no CORS)                       |
//! | `RCSYNC_EVENT_RETENTION_DAYS`      | `30`: webhook events, finished resyncs, job runs and queue tasks older than this are pruned |
//! | `RCSYNC_LOG_FORMAT`                | `pretty`                              |
//!
//! Secrets (`RCSYNC_MASTER_KEY`, `RCSYNC_JWT_SECRET`, a database URL with a password) come
//! only from the environment or from the file named by the same variable with `_FILE`
//! appended, never from a flag: every local user can read a process's command line. Other
//! settings are flags too. [`Flags::into_raw`] gathers flags and environment into
//! [`RawSettings`]; [`RawSettings::resolve`] turns those into [`Settings`] or one
//! [`ConfigError`] naming the offending variable.
//!
//! Fixed HTTP timeouts (not configurable): [`CLIENT_REQUEST_TIMEOUT`],
//! [`CLIENT_DISCONNECT_TIMEOUT`], [`KEEP_ALIVE`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use url::Url;

use crate::crypto::MasterKey;
use crate::revenuecat::RateLimits;
pub use crate::store::DatabaseSettings;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://rcsync.db?mode=rwc";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_REVENUECAT_API_URL: &str = "https://api.revenuecat.com/v2";
/// RevenueCat's Customer Information budget; the Project Configuration budget (60/min) is
/// RevenueCat's fixed number and not configurable.
pub const DEFAULT_RC_RATE_LIMIT: u32 = RateLimits::REVENUECAT.customer_information.per_minute;
/// Checks of keys rcsync has not verified yet (integration create/PATCH), all keys together.
pub const DEFAULT_RC_KEY_CHECK_RATE_LIMIT: u32 = RateLimits::REVENUECAT.key_checks.per_minute;
/// How long an API request (single-user sync, key check on create/PATCH) waits for RevenueCat
/// — its pacer turn, 429 waits and retries included — before answering 504. Well inside the
/// timeouts of browsers and load balancers (60 s and more).
pub const DEFAULT_RC_DEADLINE: Duration = Duration::from_secs(30);
/// How long a client has to send a request body once its head has arrived (then 408 and the
/// connection closes). A 4 MiB upsert takes 4 s at 8 Mbit/s.
pub const DEFAULT_REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Full resyncs one process runs at once. Each holds one of a worker's 4 task slots for its
/// whole run; capping them at 2 keeps slots for webhook follow-ups, and spreads runs over the
/// worker processes of a scale-out deployment.
pub const DEFAULT_MAX_RESYNC_RUNS: u32 = 2;
/// How long webhook events (with their payloads, which carry customer attributes: personal
/// data), finished resync rows, finished job runs and finished queue tasks are kept.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 30;
/// The longest retention accepted (ten years): a typo must not keep personal data for ever.
pub const MAX_EVENT_RETENTION_DAYS: u32 = 3650;
/// How long a client has to send a request head (actix's client request timeout; 408 after).
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may linger after its response, e.g. while a refused body is still
/// arriving, before it is closed (actix's client disconnect timeout).
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open. Longer than the 60 s idle timeout of
/// common load balancers, so they close first and never reuse a connection we are closing.
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);
/// HS256 keys shorter than the hash (32 bytes) are brute-forceable offline from one token.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// How long in-flight requests and running tasks get to finish after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Largest accepted webhook body. RevenueCat events are a few KiB; 1 MiB leaves room for
/// large `subscriber_attributes` while bounding memory per request.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;
/// Largest accepted API body (a bulk upsert of 1000 users with properties).
pub const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// How background work is timed: the defaults, documented in one place. Not environment
/// settings (the defaults are what production wants); tests shorten them through [`Settings`].
///
/// Durations marked "(clock)" are measured on the injected clock ([`crate::clock`]), so tests
/// move time instead of sleeping; the others bound real work in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTimings {
    /// How often a worker process proves it is alive (clock).
    pub instance_heartbeat: Duration,
    /// A worker process silent this long is dead: its claims are taken over (clock).
    pub instance_timeout: Duration,
    /// A claim older than this is taken over whatever its process says; longer than any
    /// attempt (clock).
    pub claim_lease: Duration,
    /// How often the dispatcher looks for due work to push to the queue (real).
    pub dispatch_interval: Duration,
    /// A pushed task not started within this window is pushed again: its push or its task
    /// was lost (clock).
    pub redispatch_after: Duration,
    /// How often idle apalis workers poll for tasks (real).
    pub poll_interval: Duration,
    /// The longest one resync attempt may run, waits on RevenueCat included (real).
    pub attempt_time_limit: Duration,
    /// Attempts of a user resync before it ends `failed`.
    pub max_attempts: i64,
    /// First retry delay of a failed attempt; doubles per attempt, ±20 % jitter (clock).
    pub first_retry: Duration,
    /// Longest retry delay (clock).
    pub max_retry: Duration,
    /// How long an event with only anonymous ids is retried before it is given up (clock).
    pub resolution_window: Duration,
    /// Delay of the resync that follows a webhook event; later events of the same user join
    /// the pending one (clock).
    pub follow_up_debounce: Duration,
    /// How often integrations with `resync_interval_hours` are checked for a scheduled full
    /// resync that is due (real; whether one is due is decided on the clock).
    pub schedule_check: Duration,
    /// How often rows past `RCSYNC_EVENT_RETENTION_DAYS` are pruned (clock).
    pub retention_interval: Duration,
    /// How often the pruner looks whether a round is due (real; cheap when none is).
    pub retention_check: Duration,
    /// First wait of the RevenueCat client before repeating a failed request (5xx, timeout);
    /// doubles per failure, jittered (real).
    pub rc_first_backoff: Duration,
    /// Longest such wait, a server's `backoff_ms` hint included (real).
    pub rc_max_backoff: Duration,
}

impl Default for JobTimings {
    fn default() -> Self {
        Self {
            instance_heartbeat: Duration::from_secs(5),
            instance_timeout: Duration::from_secs(15),
            claim_lease: Duration::from_secs(5 * 60),
            dispatch_interval: Duration::from_millis(250),
            redispatch_after: Duration::from_secs(2 * 60),
            poll_interval: Duration::from_millis(500),
            attempt_time_limit: Duration::from_secs(4 * 60),
            max_attempts: 8,
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(10 * 60),
            resolution_window: Duration::from_secs(20 * 60),
            follow_up_debounce: Duration::from_secs(2),
            schedule_check: Duration::from_secs(60),
            retention_interval: Duration::from_secs(60 * 60),
            retention_check: Duration::from_secs(1),
            rc_first_backoff: Duration::from_millis(500),
            rc_max_backoff: Duration::from_secs(30),
        }
    }
}

/// A secret's variable, and the variable naming a file that holds it instead.
#[derive(Debug, Clone, Copy)]
struct SecretVar {
    name: &'static str,
    file: &'static str,
}

const DATABASE_URL: SecretVar = SecretVar {
    name: "RCSYNC_DATABASE_URL",
    file: "RCSYNC_DATABASE_URL_FILE",
};
const MASTER_KEY: SecretVar = SecretVar {
    name: "RCSYNC_MASTER_KEY",
    file: "RCSYNC_MASTER_KEY_FILE",
};
const JWT_SECRET: SecretVar = SecretVar {
    name: "RCSYNC_JWT_SECRET",
    file: "RCSYNC_JWT_SECRET_FILE",
};

/// What `rcsync --help` says about secrets, below the flags.
pub const SECRETS_HELP: &str = "\
Secrets are read from the environment, or from the file named by the same variable with _FILE
appended; never from a flag, whose value every local user can read in the process list:
  RCSYNC_MASTER_KEY    (or RCSYNC_MASTER_KEY_FILE)    base64 of 32 bytes encrypting stored
                       provider secrets [SQLite default: generated into rcsync.key beside the
                       database; PostgreSQL: required]
  RCSYNC_JWT_SECRET    (or RCSYNC_JWT_SECRET_FILE)    HS256 secret of at least 32 bytes for
                       UI-issued JWTs [default: unset, JWT auth off]
  RCSYNC_DATABASE_URL  (or RCSYNC_DATABASE_URL_FILE)  the database URL; --database-url refuses
                       a URL that carries a password [default: sqlite://rcsync.db?mode=rwc]";

/// The flags of every command, each also an environment variable. Secrets are not among them.
#[derive(Args, Clone)]
pub struct Flags {
    /// Database URL without a password; the scheme picks the backend (`sqlite:` or `postgres:`). [env: RCSYNC_DATABASE_URL or RCSYNC_DATABASE_URL_FILE, which may carry a password] [default: sqlite://rcsync.db?mode=rwc]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Listen address of the HTTP API.
    #[arg(long, env = "RCSYNC_BIND", global = true, default_value = DEFAULT_BIND)]
    pub bind: String,
    /// Public base URL used in `webhook_setup.webhook_url` [default: http://<bind>].
    #[arg(long, env = "RCSYNC_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// RevenueCat REST API v2 base URL.
    #[arg(long, env = "RCSYNC_REVENUECAT_API_URL", global = true, default_value = DEFAULT_REVENUECAT_API_URL)]
    pub revenuecat_api_url: String,
    /// RevenueCat requests per minute per API key (Customer Information domain).
    #[arg(long, env = "RCSYNC_RC_RATE_LIMIT", global = true, default_value_t = DEFAULT_RC_RATE_LIMIT)]
    pub rc_rate_limit: u32,
    /// Checks of new RevenueCat keys (integration create/PATCH) per minute, all keys together.
    #[arg(long, env = "RCSYNC_RC_KEY_CHECK_RATE_LIMIT", global = true, default_value_t = DEFAULT_RC_KEY_CHECK_RATE_LIMIT)]
    pub rc_key_check_rate_limit: u32,
    /// Seconds an API request waits for RevenueCat (single-user sync, key checks) before answering 504.
    #[arg(long, env = "RCSYNC_RC_DEADLINE_SECS", global = true, default_value_t = DEFAULT_RC_DEADLINE.as_secs())]
    pub rc_deadline_secs: u64,
    /// Seconds a client has to send a request body; slower ones get 408 and are disconnected.
    #[arg(long, env = "RCSYNC_REQUEST_BODY_TIMEOUT_SECS", global = true, default_value_t = DEFAULT_REQUEST_BODY_TIMEOUT.as_secs())]
    pub request_body_timeout_secs: u64,
    /// Full resyncs one process runs at once; more wait for a free process (job slots stay free for webhook follow-ups).
    #[arg(long, env = "RCSYNC_MAX_RESYNC_RUNS", global = true, default_value_t = DEFAULT_MAX_RESYNC_RUNS)]
    pub max_resync_runs: u32,
    /// Days webhook events (their payloads hold customer attributes), finished resyncs, job runs and queue tasks are kept, 1-3650.
    #[arg(long, env = "RCSYNC_EVENT_RETENTION_DAYS", global = true, default_value_t = DEFAULT_EVENT_RETENTION_DAYS)]
    pub event_retention_days: u32,
    /// Origins a browser UI may call the API from, comma-separated (e.g. https://app.example.com) [default: none, no CORS].
    #[arg(
        long,
        env = "RCSYNC_CORS_ORIGINS",
        global = true,
        value_name = "ORIGINS"
    )]
    pub cors_origins: Option<String>,
    /// Log format: `pretty` or `json` (level via RUST_LOG).
    #[arg(
        long,
        env = "RCSYNC_LOG_FORMAT",
        global = true,
        default_value = "pretty"
    )]
    pub log_format: String,
    /// Refused with a pointer to RCSYNC_MASTER_KEY(_FILE): secrets are not flags.
    #[arg(long, global = true, hide = true, value_name = "REFUSED")]
    master_key: Option<String>,
    /// Refused with a pointer to RCSYNC_JWT_SECRET(_FILE): secrets are not flags.
    #[arg(long, global = true, hide = true, value_name = "REFUSED")]
    jwt_secret: Option<String>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "****");
        f.debug_struct("Flags")
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::crypto::redact),
            )
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("revenuecat_api_url", &self.revenuecat_api_url)
            .field("rc_rate_limit", &self.rc_rate_limit)
            .field("rc_key_check_rate_limit", &self.rc_key_check_rate_limit)
            .field("rc_deadline_secs", &self.rc_deadline_secs)
            .field("request_body_timeout_secs", &self.request_body_timeout_secs)
            .field("cors_origins", &self.cors_origins)
            .field("max_resync_runs", &self.max_resync_runs)
            .field("event_retention_days", &self.event_retention_days)
            .field("log_format", &self.log_format)
            .field("master_key", &hidden(&self.master_key))
            .field("jwt_secret", &hidden(&self.jwt_secret))
            .finish()
    }
}

impl Flags {
    /// The settings from these flags and the environment (`env` looks a variable up).
    pub fn into_raw(
        self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<RawSettings, ConfigError> {
        if self.master_key.is_some() {
            return Err(secret_flag_refused("--master-key", MASTER_KEY));
        }
        if self.jwt_secret.is_some() {
            return Err(secret_flag_refused("--jwt-secret", JWT_SECRET));
        }
        let database_url = match self.database_url {
            Some(url) if url_has_password(&url) => {
                return Err(ConfigError::new(
                    "--database-url",
                    format!(
                        "the URL carries a password, which every local user can read in the \
                         process list; set {} or {} instead",
                        DATABASE_URL.name, DATABASE_URL.file
                    ),
                ))
            }
            Some(url) => url,
            None => read_secret(&env, DATABASE_URL)?.unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
        };
        Ok(RawSettings {
            database_url,
            bind: self.bind,
            public_url: self.public_url,
            revenuecat_api_url: self.revenuecat_api_url,
            master_key: read_secret(&env, MASTER_KEY)?,
            jwt_secret: read_secret(&env, JWT_SECRET)?,
            rc_rate_limit: self.rc_rate_limit,
            rc_key_check_rate_limit: self.rc_key_check_rate_limit,
            rc_deadline_secs: self.rc_deadline_secs,
            request_body_timeout_secs: self.request_body_timeout_secs,
            cors_origins: self.cors_origins,
            max_resync_runs: self.max_resync_runs,
            event_retention_days: self.event_retention_days,
            log_format: self.log_format,
        })
    }
}

fn secret_flag_refused(flag: &'static str, var: SecretVar) -> ConfigError {
    ConfigError::new(
        flag,
        format!(
            "secrets are not accepted as flags (every local user can read the process list); \
             set {} or {} instead",
            var.name, var.file
        ),
    )
}

/// A password in the userinfo or in a `password` query parameter (libpq and sqlx read both).
fn url_has_password(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|url| {
        url.password().is_some() || url.query_pairs().any(|(key, _)| key == "password")
    })
}

/// A secret from its variable, or from the file its `_FILE` variable names (one trailing
/// newline dropped, as `echo` writes it). Both set is a mistake, not a precedence rule.
fn read_secret(
    env: &impl Fn(&str) -> Option<OsString>,
    var: SecretVar,
) -> Result<Option<String>, ConfigError> {
    match (env(var.name), env(var.file)) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            var.file,
            format!("set either {} or {}, not both", var.name, var.file),
        )),
        (Some(value), None) => value
            .into_string()
            .map(Some)
            .map_err(|_| ConfigError::new(var.name, "is not valid UTF-8")),
        (None, Some(path)) if path.is_empty() => {
            Err(ConfigError::new(var.file, "must name a file"))
        }
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let contents = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(var.file, format!("cannot read {}: {e}", path.display()))
            })?;
            let value = contents.strip_suffix('\n').unwrap_or(&contents);
            Ok(Some(value.strip_suffix('\r').unwrap_or(value).to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// Configuration as gathered from flags and environment, before validation. `Debug` hides
/// the secrets.
#[derive(Clone)]
pub struct RawSettings {
    pub database_url: String,
    pub bind: String,
    pub public_url: Option<String>,
    pub revenuecat_api_url: String,
    pub master_key: Option<String>,
    pub jwt_secret: Option<String>,
    pub rc_rate_limit: u32,
    pub rc_key_check_rate_limit: u32,
    pub rc_deadline_secs: u64,
    pub request_body_timeout_secs: u64,
    pub cors_origins: Option<String>,
    pub max_resync_runs: u32,
    pub event_retention_days: u32,
    pub log_format: String,
}

impl std::fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "****");
        f.debug_struct("RawSettings")
            // A PostgreSQL URL may carry a password.
            .field("database_url", &crate::crypto::redact(&self.database_url))
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("revenuecat_api_url", &self.revenuecat_api_url)
            .field("master_key", &hidden(&self.master_key))
            .field("jwt_secret", &hidden(&self.jwt_secret))
            .field("rc_rate_limit", &self.rc_rate_limit)
            .field("rc_key_check_rate_limit", &self.rc_key_check_rate_limit)
            .field("rc_deadline_secs", &self.rc_deadline_secs)
            .field("request_body_timeout_secs", &self.request_body_timeout_secs)
            .field("cors_origins", &self.cors_origins)
            .field("max_resync_runs", &self.max_resync_runs)
            .field("event_retention_days", &self.event_retention_days)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub revenuecat_api_url: Url,
    pub master_key: MasterKey,
    pub jwt_secret: Option<SecretString>,
    pub rc_rate_limit: u32,
    pub rc_key_check_rate_limit: u32,
    pub rc_deadline: Duration,
    pub request_body_timeout: Duration,
    /// Origins (`scheme://host[:port]`) a browser UI may call the API from; empty: no CORS.
    pub cors_origins: Vec<String>,
    /// Full resyncs one process runs at once.
    pub max_resync_runs: usize,
    /// Webhook events and finished job rows older than this are pruned.
    pub event_retention: Duration,
    pub log_format: LogFormat,
    pub jobs: JobTimings,
}

/// The scheme of `RCSYNC_DATABASE_URL` picks the backend.
fn parse_database_url(raw: &str) -> Result<DatabaseSettings, ConfigError> {
    if raw.starts_with("sqlite:") {
        Ok(DatabaseSettings::Sqlite {
            url: raw.to_owned(),
            path: sqlite_file_path(raw),
        })
    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        Ok(DatabaseSettings::Postgres {
            url: SecretString::from(raw.to_owned()),
        })
    } else {
        Err(ConfigError::new(
            "RCSYNC_DATABASE_URL",
            "must start with sqlite: or postgres://",
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One invalid setting; `Display` is the single line printed at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

impl RawSettings {
    /// Settings with every default, as `rcsync serve` would see them with an empty environment.
    pub fn defaults() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            bind: DEFAULT_BIND.into(),
            public_url: None,
            revenuecat_api_url: DEFAULT_REVENUECAT_API_URL.into(),
            master_key: None,
            jwt_secret: None,
            rc_rate_limit: DEFAULT_RC_RATE_LIMIT,
            rc_key_check_rate_limit: DEFAULT_RC_KEY_CHECK_RATE_LIMIT,
            rc_deadline_secs: DEFAULT_RC_DEADLINE.as_secs(),
            request_body_timeout_secs: DEFAULT_REQUEST_BODY_TIMEOUT.as_secs(),
            cors_origins: None,
            max_resync_runs: DEFAULT_MAX_RESYNC_RUNS,
            event_retention_days: DEFAULT_EVENT_RETENTION_DAYS,
            log_format: "pretty".into(),
        }
    }

    pub fn resolve(self) -> Result<Settings, ConfigError> {
        let log_format = match self.log_format.as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "RCSYNC_LOG_FORMAT",
                    format!("must be `pretty` or `json`, got `{other}`"),
                ))
            }
        };
        let database = parse_database_url(&self.database_url)?;
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            ConfigError::new(
                "RCSYNC_BIND",
                format!(
                    "`{}` is not a socket address like 127.0.0.1:8080",
                    self.bind
                ),
            )
        })?;
        let public_url = match &self.public_url {
            Some(raw) => parse_http_url("RCSYNC_PUBLIC_URL", raw)?,
            None => parse_http_url("RCSYNC_BIND", &format!("http://{bind}"))?,
        };
        let revenuecat_api_url =
            parse_http_url("RCSYNC_REVENUECAT_API_URL", &self.revenuecat_api_url)?;
        if self.rc_rate_limit == 0 {
            return Err(ConfigError::new(
                "RCSYNC_RC_RATE_LIMIT",
                "must be a positive number of requests per minute",
            ));
        }
        if self.rc_key_check_rate_limit == 0 {
            return Err(ConfigError::new(
                "RCSYNC_RC_KEY_CHECK_RATE_LIMIT",
                "must be a positive number of key checks per minute",
            ));
        }
        let rc_deadline = positive_seconds("RCSYNC_RC_DEADLINE_SECS", self.rc_deadline_secs)?;
        let request_body_timeout = positive_seconds(
            "RCSYNC_REQUEST_BODY_TIMEOUT_SECS",
            self.request_body_timeout_secs,
        )?;
        let jwt_secret = match self.jwt_secret {
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError::new(
                    JWT_SECRET.name,
                    format!(
                        "must be at least {MIN_JWT_SECRET_BYTES} bytes (got {}); generate one \
                         with `openssl rand -base64 48`",
                        s.len()
                    ),
                ))
            }
            other => other.map(SecretString::from),
        };
        let cors_origins = parse_origins(self.cors_origins.as_deref().unwrap_or_default())?;
        if self.max_resync_runs == 0 {
            return Err(ConfigError::new(
                "RCSYNC_MAX_RESYNC_RUNS",
                "must be at least 1 (full resyncs one process runs at once)",
            ));
        }
        if !(1..=MAX_EVENT_RETENTION_DAYS).contains(&self.event_retention_days) {
            return Err(ConfigError::new(
                "RCSYNC_EVENT_RETENTION_DAYS",
                format!("must be a whole number of days from 1 to {MAX_EVENT_RETENTION_DAYS}"),
            ));
        }
        let master_key = resolve_master_key(self.master_key, &database)?;
        Ok(Settings {
            database,
            bind,
            public_url,
            revenuecat_api_url,
            master_key,
            jwt_secret,
            rc_rate_limit: self.rc_rate_limit,
            rc_key_check_rate_limit: self.rc_key_check_rate_limit,
            rc_deadline,
            request_body_timeout,
            cors_origins,
            max_resync_runs: self.max_resync_runs as usize,
            event_retention: Duration::from_secs(
                u64::from(self.event_retention_days) * 24 * 60 * 60,
            ),
            log_format,
            jobs: JobTimings::default(),
        })
    }
}

/// `RCSYNC_CORS_ORIGINS`: comma-separated origins, each `http(s)://host[:port]` with nothing
/// after it (a browser sends exactly that in `Origin`). `*` is refused: the API takes bearer
/// credentials, and which UIs may use them is a decision to write down.
fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "RCSYNC_CORS_ORIGINS";
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let url = parse_http_url(VAR, item)?;
            let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
            if !bare || item.ends_with('/') || url.host().is_none() {
                return Err(ConfigError::new(
                    VAR,
                    format!("`{item}` is not an origin like https://app.example.com"),
                ));
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

fn positive_seconds(variable: &'static str, seconds: u64) -> Result<Duration, ConfigError> {
    if seconds == 0 {
        return Err(ConfigError::new(variable, "must be at least 1 (seconds)"));
    }
    Ok(Duration::from_secs(seconds))
}

fn parse_http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(variable, format!("`{raw}` is not a valid URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::new(
            variable,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(url)
}

/// The file behind a SQLite URL, or `None` for an in-memory database.
fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

fn resolve_master_key(
    raw: Option<String>,
    database: &DatabaseSettings,
) -> Result<MasterKey, ConfigError> {
    if let Some(raw) = raw {
        return MasterKey::from_base64(raw.trim())
            .map_err(|e| ConfigError::new(MASTER_KEY.name, e.to_string()));
    }
    match database {
        DatabaseSettings::Postgres { .. } => Err(ConfigError::new(
            MASTER_KEY.name,
            "is required with a PostgreSQL database (base64 of 32 bytes, e.g. `openssl rand -base64 32`, \
             in RCSYNC_MASTER_KEY or in the file named by RCSYNC_MASTER_KEY_FILE)",
        )),
        DatabaseSettings::Sqlite { path: None, .. } => Ok(MasterKey::generate()),
        DatabaseSettings::Sqlite {
            path: Some(db_path),
            ..
        } => load_or_create_key_file(&key_file_beside(db_path)),
    }
}

fn key_file_beside(db_path: &Path) -> PathBuf {
    db_path.with_file_name("rcsync.key")
}

/// The embedded default keeps its key next to the database so `cargo run` needs no setup;
/// created with mode 0600 because it decrypts every stored provider secret.
fn load_or_create_key_file(path: &Path) -> Result<MasterKey, ConfigError> {
    let variable = MASTER_KEY.name;
    match std::fs::read_to_string(path) {
        Ok(contents) => MasterKey::from_base64(contents.trim()).map_err(|e| {
            ConfigError::new(
                variable,
                format!("key file {} is invalid: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private_file(path, &key.to_base64()).map_err(|e| {
                ConfigError::new(
                    variable,
                    format!("cannot create key file {}: {e}", path.display()),
                )
            })?;
            Ok(key)
        }
        Err(e) => Err(ConfigError::new(
            variable,
            format!("cannot read key file {}: {e}", path.display()),
        )),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            database_url: "sqlite::memory:".into(),
            ..RawSettings::defaults()
        }
    }

    #[test]
    fn defaults_resolve() {
        let s = raw().resolve().unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.rc_rate_limit, 480);
        assert_eq!(s.event_retention, Duration::from_secs(30 * 24 * 60 * 60));
    }

    #[test]
    fn cors_origins_are_origins_only() {
        let origins = |value: &str| {
            RawSettings {
                cors_origins: Some(value.into()),
                ..raw()
            }
            .resolve()
            .map(|s| s.cors_origins)
        };
        assert_eq!(
            origins(" https://ui.example.com , http://localhost:5173").unwrap(),
            ["https://ui.example.com", "http://localhost:5173"]
        );
        assert_eq!(origins("").unwrap(), Vec::<String>::new());
        for bad in [
            "*",
            "ui.example.com",
            "https://ui.example.com/app",
            "https://ui.example.com/",
            "ftp://x",
        ] {
            let err = origins(bad).unwrap_err();
            assert_eq!(err.variable, "RCSYNC_CORS_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: Vec<(RawSettings, &str)> = vec![
            (
                RawSettings {
                    database_url: "mysql://x".into(),
                    ..raw()
                },
                "RCSYNC_DATABASE_URL",
            ),
            (
                RawSettings {
                    bind: "nope".into(),
                    ..raw()
                },
                "RCSYNC_BIND",
            ),
            (
                RawSettings {
                    rc_rate_limit: 0,
                    ..raw()
                },
                "RCSYNC_RC_RATE_LIMIT",
            ),
            (
                RawSettings {
                    log_format: "xml".into(),
                    ..raw()
                },
                "RCSYNC_LOG_FORMAT",
            ),
            (
                RawSettings {
                    master_key: Some("c2hvcnQ=".into()),
                    ..raw()
                },
                "RCSYNC_MASTER_KEY",
            ),
            (
                RawSettings {
                    database_url: "postgres://localhost/x".into(),
                    ..raw()
                },
                "RCSYNC_MASTER_KEY",
            ),
            (
                RawSettings {
                    public_url: Some("ftp://x".into()),
                    ..raw()
                },
                "RCSYNC_PUBLIC_URL",
            ),
        ];
        for (settings, variable) in cases {
            let err = settings.resolve().unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let settings = RawSettings {
            database_url: "postgres://rcsync:hunter2@db/rcsync".into(),
            master_key: Some("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".into()),
            jwt_secret: Some("jwt-secret-value-of-at-least-32-bytes".into()),
            ..RawSettings::defaults()
        };
        let shown = format!("{settings:?}");
        for secret in [
            "hunter2",
            "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
            "jwt-secret-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let resolved = format!("{:?}", settings.resolve().unwrap());
        for secret in [
            "hunter2",
            "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
            "jwt-secret-value",
        ] {
            assert!(!resolved.contains(secret), "{resolved}");
        }
    }

    #[test]
    fn short_jwt_secrets_and_zero_durations_are_refused() {
        let short = RawSettings {
            jwt_secret: Some("x".repeat(MIN_JWT_SECRET_BYTES - 1)),
            ..raw()
        };
        let err = short.resolve().unwrap_err();
        assert_eq!(err.variable, "RCSYNC_JWT_SECRET", "{err}");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let long_enough = RawSettings {
            jwt_secret: Some("x".repeat(MIN_JWT_SECRET_BYTES)),
            ..raw()
        };
        assert!(long_enough.resolve().is_ok());
        for (settings, variable) in [
            (
                RawSettings {
                    rc_deadline_secs: 0,
                    ..raw()
                },
                "RCSYNC_RC_DEADLINE_SECS",
            ),
            (
                RawSettings {
                    request_body_timeout_secs: 0,
                    ..raw()
                },
                "RCSYNC_REQUEST_BODY_TIMEOUT_SECS",
            ),
            (
                RawSettings {
                    rc_key_check_rate_limit: 0,
                    ..raw()
                },
                "RCSYNC_RC_KEY_CHECK_RATE_LIMIT",
            ),
            (
                RawSettings {
                    event_retention_days: 0,
                    ..raw()
                },
                "RCSYNC_EVENT_RETENTION_DAYS",
            ),
            (
                RawSettings {
                    event_retention_days: MAX_EVENT_RETENTION_DAYS + 1,
                    ..raw()
                },
                "RCSYNC_EVENT_RETENTION_DAYS",
            ),
        ] {
            assert_eq!(settings.resolve().unwrap_err().variable, variable);
        }
    }

    fn flags(args: &[&str]) -> Flags {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            flags: Flags,
        }
        let args = std::iter::once("rcsync").chain(args.iter().copied());
        Cli::try_parse_from(args).expect("flags parse").flags
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn secrets_come_from_the_environment_or_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let jwt_file = dir.path().join("jwt");
        std::fs::write(&jwt_file, "jwt-secret-from-a-file-of-32-bytes\n").unwrap();
        let raw = flags(&[])
            .into_raw(env_of(&[
                (
                    "RCSYNC_MASTER_KEY",
                    "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
                ),
                ("RCSYNC_JWT_SECRET_FILE", jwt_file.to_str().unwrap()),
            ]))
            .unwrap();
        assert_eq!(
            raw.master_key.as_deref(),
            Some("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=")
        );
        assert_eq!(
            raw.jwt_secret.as_deref(),
            Some("jwt-secret-from-a-file-of-32-bytes"),
            "the trailing newline is dropped"
        );
        assert_eq!(raw.database_url, DEFAULT_DATABASE_URL);

        let both = flags(&[]).into_raw(env_of(&[
            ("RCSYNC_JWT_SECRET", "a"),
            ("RCSYNC_JWT_SECRET_FILE", "/b"),
        ]));
        assert_eq!(both.unwrap_err().variable, "RCSYNC_JWT_SECRET_FILE");
        let missing = flags(&[])
            .into_raw(env_of(&[("RCSYNC_MASTER_KEY_FILE", "/nonexistent/key")]))
            .unwrap_err();
        assert_eq!(missing.variable, "RCSYNC_MASTER_KEY_FILE");
        assert!(
            missing.to_string().contains("/nonexistent/key"),
            "{missing}"
        );
    }

    #[test]
    fn secret_flags_are_refused() {
        for (args, variable) in [
            (&["--master-key", "k"][..], "--master-key"),
            (&["--jwt-secret", "s"], "--jwt-secret"),
            (
                &["--database-url", "postgres://rcsync:hunter2@db/rcsync"],
                "--database-url",
            ),
            (
                &[
                    "--database-url",
                    "postgres://db/rcsync?user=u&password=hunter2",
                ],
                "--database-url",
            ),
        ] {
            let err = flags(args).into_raw(env_of(&[])).unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let plain = flags(&["--database-url", "postgres://db/rcsync"])
            .into_raw(env_of(&[(
                "RCSYNC_DATABASE_URL",
                "postgres://rcsync:hunter2@other/rcsync",
            )]))
            .unwrap();
        assert_eq!(plain.database_url, "postgres://db/rcsync", "the flag wins");
        let from_env = flags(&[])
            .into_raw(env_of(&[(
                "RCSYNC_DATABASE_URL",
                "postgres://rcsync:hunter2@db/rcsync",
            )]))
            .unwrap();
        assert_eq!(from_env.database_url, "postgres://rcsync:hunter2@db/rcsync");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file_path("sqlite://rcsync.db?mode=rwc"),
            Some(PathBuf::from("rcsync.db"))
        );
        assert_eq!(
            sqlite_file_path("sqlite:///tmp/a.db"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
    }
}
