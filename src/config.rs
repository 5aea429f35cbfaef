//! Settings: every configuration value, its default and its validation, in one place.
//!
//! | variable                    | default                               |
//! |-----------------------------|---------------------------------------|
//! | `RCSYNC_DATABASE_URL`       | `sqlite://rcsync.db?mode=rwc`         |
//! | `RCSYNC_BIND`               | `127.0.0.1:8080`                      |
//! | `RCSYNC_PUBLIC_URL`         | `http://` + bind                      |
//! | `RCSYNC_REVENUECAT_API_URL` | `https://api.revenuecat.com/v2`       |
//! | `RCSYNC_MASTER_KEY`         | SQLite: `rcsync.key` beside the DB; Postgres: required |
//! | `RCSYNC_JWT_SECRET`         | unset (JWT auth off)                  |
//! | `RCSYNC_RC_RATE_LIMIT`      | `480` requests/min per API key        |
//! | `RCSYNC_LOG_FORMAT`         | `pretty`                              |
//!
//! Raw values arrive through clap (flag or environment); [`RawSettings::resolve`] turns them
//! into [`Settings`] or one [`ConfigError`] naming the offending variable.

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
        }
    }
}

/// Configuration as typed by the operator, before validation. `Debug` hides the secrets.
#[derive(Args, Clone, Default)]
pub struct RawSettings {
    /// Database URL; the scheme picks the backend (`sqlite:` or `postgres:`).
    #[arg(long, env = "RCSYNC_DATABASE_URL", global = true, default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Listen address of the HTTP API.
    #[arg(long, env = "RCSYNC_BIND", global = true, default_value = DEFAULT_BIND)]
    pub bind: String,
    /// Public base URL used in `webhook_setup.webhook_url` [default: http://<bind>].
    #[arg(long, env = "RCSYNC_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// RevenueCat REST API v2 base URL.
    #[arg(long, env = "RCSYNC_REVENUECAT_API_URL", global = true, default_value = DEFAULT_REVENUECAT_API_URL)]
    pub revenuecat_api_url: String,
    /// Base64 of 32 bytes encrypting stored provider secrets [SQLite default: generated into rcsync.key beside the database; PostgreSQL: required].
    #[arg(long, env = "RCSYNC_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,
    /// HS256 secret for UI-issued JWTs [default: unset, JWT auth off].
    #[arg(long, env = "RCSYNC_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RevenueCat requests per minute per API key (Customer Information domain).
    #[arg(long, env = "RCSYNC_RC_RATE_LIMIT", global = true, default_value_t = DEFAULT_RC_RATE_LIMIT)]
    pub rc_rate_limit: u32,
    /// Log format: `pretty` or `json` (level via RUST_LOG).
    #[arg(
        long,
        env = "RCSYNC_LOG_FORMAT",
        global = true,
        default_value = "pretty"
    )]
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
        let jwt_secret = match self.jwt_secret {
            Some(s) if s.is_empty() => {
                return Err(ConfigError::new("RCSYNC_JWT_SECRET", "must not be empty"))
            }
            other => other.map(SecretString::from),
        };
        let master_key = resolve_master_key(self.master_key, &database)?;
        Ok(Settings {
            database,
            bind,
            public_url,
            revenuecat_api_url,
            master_key,
            jwt_secret,
            rc_rate_limit: self.rc_rate_limit,
            log_format,
            jobs: JobTimings::default(),
        })
    }
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
            .map_err(|e| ConfigError::new("RCSYNC_MASTER_KEY", e.to_string()));
    }
    match database {
        DatabaseSettings::Postgres { .. } => Err(ConfigError::new(
            "RCSYNC_MASTER_KEY",
            "is required with a PostgreSQL database (base64 of 32 bytes; e.g. `openssl rand -base64 32`)",
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
    let variable = "RCSYNC_MASTER_KEY";
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
            jwt_secret: Some("jwt-secret-value".into()),
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
