//! Integrations: the provider catalogue (seed 001's `configFields`), config validation and
//! the stored integration record.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::{digests_match, redact};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigField {
    pub key: &'static str,
    pub label: &'static str,
    pub required: bool,
    pub sensitive: bool,
    pub placeholder: &'static str,
    pub description: &'static str,
    /// The only values accepted, for a field that is a choice; `None` accepts any string.
    #[serde(skip)]
    pub allowed_values: Option<&'static [&'static str]>,
    /// The value an integration has while its config does not set the field.
    #[serde(skip)]
    pub default: Option<&'static str>,
    /// Checked locally, so a value the provider cannot accept is never sent to it.
    #[serde(skip)]
    pub shape: Option<TokenShape>,
    /// For a whole number: the smallest and largest accepted value.
    #[serde(skip)]
    pub whole_number: Option<(u32, u32)>,
}

/// The shape of a credential: a prefix, then letters, digits or underscores.
#[derive(Debug, Clone, Copy)]
pub struct TokenShape {
    pub prefix: &'static str,
    /// Longest accepted value, prefix included.
    pub max_len: usize,
}

impl TokenShape {
    fn accepts(&self, value: &str) -> bool {
        value.len() <= self.max_len
            && value.strip_prefix(self.prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    }
}

/// RevenueCat secret keys are `sk_` and a token of about 30 characters; four times that is
/// room for any future format while keeping kilobyte-long values out of RevenueCat's headers
/// (it answers 431 to those).
const REVENUECAT_SECRET_KEY: TokenShape = TokenShape {
    prefix: "sk_",
    max_len: 128,
};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderDefinition {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub config_fields: &'static [ConfigField],
    /// Providers that call us back get a generated webhook secret and a `webhook_setup`.
    #[serde(skip)]
    pub uses_webhooks: bool,
}

pub const REVENUECAT: &str = "revenuecat";

/// Config keys the server manages itself; a user-supplied value is dropped, never stored.
const INTERNAL_CONFIG_KEYS: [&str; 1] = ["webhook_secret"];

const REVENUECAT_API_KEY: ConfigField = ConfigField {
    key: "api_key",
    label: "Secret API Key",
    required: true,
    sensitive: true,
    placeholder: "sk_...",
    description: "RevenueCat V2 Secret API key with read access to customer information and project configuration; with read_write on project configuration integrations too, rcsync sets up the webhook in RevenueCat itself.",
    allowed_values: None,
    default: None,
    shape: Some(REVENUECAT_SECRET_KEY),
    whole_number: None,
};

/// Exact gross revenue costs one more RevenueCat call per synced user (`/purchases`), so a
/// project that does not use `rc_total_revenue_usd` can turn it off.
const REVENUECAT_TRACK_REVENUE: ConfigField = ConfigField {
    key: "track_revenue",
    label: "Track revenue",
    required: false,
    sensitive: false,
    placeholder: "true",
    description: "\"true\" (default) writes rc_total_revenue_usd, the exact gross of every subscription and one-time purchase, at one extra RevenueCat call per synced user. \"false\" never writes it and keeps syncs at the fewest calls.",
    allowed_values: Some(&["true", "false"]),
    default: Some("true"),
    shape: None,
    whole_number: None,
};

/// Webhooks can be lost on RevenueCat's side (it gives up after five retries) or arrive for a
/// project before its integration existed; a periodic full resync reconciles. Off unless set.
const REVENUECAT_RESYNC_INTERVAL_HOURS: ConfigField = ConfigField {
    key: "resync_interval_hours",
    label: "Scheduled resync (hours)",
    required: false,
    sensitive: false,
    placeholder: "24",
    description: "Run a full resync of every user this often (whole hours, 1 to 8760). Unset (default): no scheduled resync.",
    allowed_values: None,
    default: None,
    shape: None,
    whole_number: Some((1, 8760)),
};

pub static PROVIDERS: &[ProviderDefinition] = &[ProviderDefinition {
    id: REVENUECAT,
    name: "RevenueCat",
    description: "Subscription management — syncs subscriber status, revenue, and entitlements to user properties.",
    config_fields: &[
        REVENUECAT_API_KEY,
        REVENUECAT_TRACK_REVENUE,
        REVENUECAT_RESYNC_INTERVAL_HOURS,
    ],
    uses_webhooks: true,
}];

pub fn provider(id: &str) -> Option<&'static ProviderDefinition> {
    PROVIDERS.iter().find(|p| p.id == id)
}

/// A validated provider config: string values only. `Debug` redacts every value.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
pub struct IntegrationConfig(pub BTreeMap<String, String>);

impl fmt::Debug for IntegrationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, redact(v))))
            .finish()
    }
}

impl IntegrationConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn get_or_default(&self, field: &ConfigField) -> Option<&str> {
        self.get(field.key).or(field.default)
    }

    /// Whether RevenueCat syncs fetch every purchase and write `rc_total_revenue_usd`.
    pub fn track_revenue(&self) -> bool {
        self.get_or_default(&REVENUECAT_TRACK_REVENUE) == Some("true")
    }

    /// How often a full resync runs on its own, when the integration asks for one.
    pub fn resync_interval_hours(&self) -> Option<u32> {
        self.get(REVENUECAT_RESYNC_INTERVAL_HOURS.key)
            .and_then(|hours| hours.parse().ok())
    }

    /// The config as shown to API clients: sensitive values cut to 4 characters + `****`.
    pub fn redacted(&self, provider: &ProviderDefinition) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(key, value)| {
                let sensitive = provider
                    .config_fields
                    .iter()
                    .find(|f| f.key == key)
                    .is_none_or(|f| f.sensitive);
                let shown = if sensitive {
                    redact(value)
                } else {
                    value.clone()
                };
                (key.clone(), shown)
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Unsupported provider: {0}")]
    UnsupportedProvider(String),
    #[error("config must be a JSON object")]
    NotAnObject,
    #[error("Unknown config field: {0}")]
    UnknownField(String),
    #[error("Config field '{0}' must be a string")]
    NotAString(String),
    #[error("Config field '{0}' must be printable ASCII without spaces")]
    InvalidCharacters(String),
    #[error("Config field '{field}' must be one of: {allowed}")]
    NotAllowed { field: String, allowed: String },
    #[error(
        "Config field '{field}' must be `{prefix}` followed by letters, digits or underscores, \
         at most {max_len} characters in all"
    )]
    InvalidShape {
        field: String,
        prefix: &'static str,
        max_len: usize,
    },
    #[error("Config field '{field}' must be a whole number from {min} to {max}")]
    NotInRange { field: String, min: u32, max: u32 },
    #[error("Missing required config field: {0}")]
    MissingField(&'static str),
    #[error("Config field '{0}' must not be empty")]
    EmptyField(&'static str),
}

/// Turns user input into a config: strings only, no unknown keys, internal keys dropped.
/// Required fields are checked separately so PATCH can validate the merged result.
pub fn parse_config_input(
    provider: &ProviderDefinition,
    input: &Map<String, Value>,
) -> Result<IntegrationConfig, ConfigError> {
    // Which fields first, then their values: an unknown field is named whatever the order.
    let mut fields = Vec::new();
    for (key, value) in input {
        if INTERNAL_CONFIG_KEYS.contains(&key.as_str()) {
            continue;
        }
        match provider.config_fields.iter().find(|f| f.key == key) {
            Some(field) => fields.push((field, value)),
            None => return Err(ConfigError::UnknownField(key.clone())),
        }
    }
    let mut values = BTreeMap::new();
    for (field, value) in fields {
        let key = field.key;
        let Value::String(s) = value else {
            return Err(ConfigError::NotAString(key.into()));
        };
        // Credentials travel in HTTP headers: printable ASCII only, no spaces.
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::InvalidCharacters(key.into()));
        }
        if let Some(shape) = field.shape.filter(|shape| !shape.accepts(s)) {
            return Err(ConfigError::InvalidShape {
                field: key.into(),
                prefix: shape.prefix,
                max_len: shape.max_len,
            });
        }
        if let Some(allowed) = field.allowed_values {
            if !allowed.contains(&s.as_str()) {
                return Err(ConfigError::NotAllowed {
                    field: key.into(),
                    allowed: allowed
                        .iter()
                        .map(|value| format!("\"{value}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        if let Some((min, max)) = field.whole_number {
            let in_range = s.bytes().all(|b| b.is_ascii_digit())
                && s.parse::<u32>().is_ok_and(|n| (min..=max).contains(&n));
            if !in_range {
                return Err(ConfigError::NotInRange {
                    field: key.into(),
                    min,
                    max,
                });
            }
        }
        values.insert(key.to_owned(), s.clone());
    }
    Ok(IntegrationConfig(values))
}

pub fn validate_complete(
    provider: &ProviderDefinition,
    config: &IntegrationConfig,
) -> Result<(), ConfigError> {
    for field in provider.config_fields.iter().filter(|f| f.required) {
        match config.get(field.key) {
            None => return Err(ConfigError::MissingField(field.key)),
            Some(v) if v.trim().is_empty() => return Err(ConfigError::EmptyField(field.key)),
            Some(_) => {}
        }
    }
    Ok(())
}

/// An integration row with its config decrypted.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub project_id: String,
    pub provider: String,
    pub config: IntegrationConfig,
    pub webhook_secrets: WebhookSecrets,
    /// The provider's own project id (RevenueCat `proj…`), resolved from the API key.
    pub provider_project_id: Option<String>,
    /// The webhook rcsync created (or adopted) at the provider, if any.
    pub provisioned_webhook: Option<ProvisionedWebhook>,
    pub revision: i64,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl Integration {
    /// How the `Authorization` header rcsync last set on provider webhook `webhook_id` relates
    /// to the secrets accepted at `now_ms`. The provider never returns the header, so this is
    /// all anyone can know about it (a header changed by hand in the provider's dashboard
    /// goes unnoticed).
    pub fn webhook_header_status(&self, webhook_id: &str, now_ms: i64) -> WebhookHeaderStatus {
        let set_digest = self
            .provisioned_webhook
            .as_ref()
            .filter(|w| w.id == webhook_id)
            .and_then(|w| w.secret_digest.as_deref());
        let Some(set_digest) = set_digest else {
            return WebhookHeaderStatus::Unknown;
        };
        let secrets = &self.webhook_secrets;
        if secrets.current.as_deref() == Some(set_digest) {
            return WebhookHeaderStatus::Current;
        }
        match secrets.previous_at(now_ms) {
            Some(previous) if previous.digest == set_digest => WebhookHeaderStatus::Previous {
                expires_at_ms: previous.expires_at_ms,
            },
            _ => WebhookHeaderStatus::Revoked,
        }
    }
}

/// The SHA-256 digests a webhook delivery may present: the current secret's, and while a
/// rotation's grace period runs, the replaced one's. Never the secrets themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSecrets {
    /// `None` for providers that do not call us back.
    pub current: Option<String>,
    pub previous: Option<PreviousSecret>,
}

/// A replaced secret and the end of its grace period (ms since epoch, exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub digest: String,
    pub expires_at_ms: i64,
}

impl WebhookSecrets {
    /// The replaced secret, while its grace period runs at `now_ms`.
    pub fn previous_at(&self, now_ms: i64) -> Option<&PreviousSecret> {
        self.previous
            .as_ref()
            .filter(|previous| now_ms < previous.expires_at_ms)
    }

    /// Whether a delivery presenting a secret with digest `presented` is authentic at `now_ms`.
    /// Both comparisons run in constant time, and both always run, so the answer's timing
    /// says nothing about which secret (if any) matched.
    pub fn accepts(&self, presented: &str, now_ms: i64) -> bool {
        let current = self
            .current
            .as_deref()
            .is_some_and(|digest| digests_match(presented, digest));
        let previous = self
            .previous_at(now_ms)
            .is_some_and(|previous| digests_match(presented, &previous.digest));
        current | previous
    }
}

/// The provider webhook rcsync manages for an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedWebhook {
    /// The provider's id of the webhook (RevenueCat `wh…`).
    pub id: String,
    /// Digest of the secret whose header rcsync last set on it; `None` when rcsync adopted or
    /// kept the webhook without setting a header it knows to be current.
    pub secret_digest: Option<String>,
}

/// What [`Integration::webhook_header_status`] can tell about a provider webhook's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookHeaderStatus {
    /// The header carries the current secret.
    Current,
    /// The header carries the replaced secret, accepted until `expires_at_ms`.
    Previous { expires_at_ms: i64 },
    /// The header carries a secret rcsync no longer accepts: deliveries answer 401.
    Revoked,
    /// rcsync never set this webhook's header (configured by hand, or not ours).
    Unknown,
}

impl WebhookHeaderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous { .. } => "previous",
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
        }
    }

    /// Whether deliveries carrying this header are accepted now.
    pub fn is_accepted(self) -> bool {
        matches!(self, Self::Current | Self::Previous { .. })
    }
}

/// The URL the provider calls: `{public_url}/v1/webhooks/{provider}/{project_id}`.
pub fn webhook_url(public_url: &url::Url, provider: &str, project_id: &str) -> String {
    format!(
        "{}/v1/webhooks/{provider}/{project_id}",
        public_url.as_str().trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc() -> &'static ProviderDefinition {
        provider(REVENUECAT).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn config_rules() {
        let ok = parse_config_input(
            rc(),
            &obj(json!({"api_key": "sk_1", "webhook_secret": "x"})),
        )
        .unwrap();
        assert_eq!(ok.0.len(), 1, "webhook_secret is dropped");
        assert_eq!(
            parse_config_input(rc(), &obj(json!({"nope": "x"}))),
            Err(ConfigError::UnknownField("nope".into()))
        );
        assert_eq!(
            parse_config_input(rc(), &obj(json!({"api_key": 5}))),
            Err(ConfigError::NotAString("api_key".into()))
        );
        assert_eq!(
            validate_complete(rc(), &IntegrationConfig::default()),
            Err(ConfigError::MissingField("api_key"))
        );
    }

    #[test]
    fn track_revenue_is_a_true_or_false_choice_defaulting_to_true() {
        let parse = |value: &str| {
            parse_config_input(
                rc(),
                &obj(json!({"api_key": "sk_1", "track_revenue": value})),
            )
        };
        assert!(parse("false").is_ok_and(|config| !config.track_revenue()));
        assert!(parse("true").is_ok_and(|config| config.track_revenue()));
        for refused in ["", "yes", "TRUE", "0"] {
            assert_eq!(
                parse(refused),
                Err(ConfigError::NotAllowed {
                    field: "track_revenue".into(),
                    allowed: "\"true\", \"false\"".into()
                }),
                "{refused:?}"
            );
        }
        assert!(IntegrationConfig::default().track_revenue());
        let config = parse("false").unwrap();
        assert_eq!(
            config.redacted(rc())["track_revenue"],
            "false",
            "not sensitive"
        );
    }

    #[test]
    fn api_keys_must_look_like_revenuecat_secret_keys() {
        let longest = format!("sk_{}", "a".repeat(125));
        for good in ["sk_1", "sk_live_AbC123", longest.as_str()] {
            assert!(
                parse_config_input(rc(), &obj(json!({ "api_key": good }))).is_ok(),
                "{good}"
            );
        }
        let too_long = format!("sk_{}", "a".repeat(126));
        for bad in [
            "sk_",
            "pk_abc",
            "rk_abc",
            "sk_a-b",
            "sk_a.b",
            "SK_abc",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    parse_config_input(rc(), &obj(json!({ "api_key": bad }))),
                    Err(ConfigError::InvalidShape { .. })
                ),
                "{bad}"
            );
        }
    }

    fn secrets(previous_until: Option<i64>) -> WebhookSecrets {
        WebhookSecrets {
            current: Some("new".into()),
            previous: previous_until.map(|expires_at_ms| PreviousSecret {
                digest: "old".into(),
                expires_at_ms,
            }),
        }
    }

    #[test]
    fn a_replaced_secret_is_accepted_until_its_grace_ends() {
        let during = secrets(Some(1_000));
        assert!(during.accepts("new", 999) && during.accepts("old", 999));
        assert!(during.accepts("new", 1_000) && !during.accepts("old", 1_000));
        assert!(!during.accepts("other", 0));
        let revoked = secrets(None);
        assert!(revoked.accepts("new", 0) && !revoked.accepts("old", 0));
        assert!(!WebhookSecrets::default().accepts("", 0));
    }

    #[test]
    fn header_status_follows_the_digest_set_at_the_provider() {
        let mut integration = Integration {
            id: "i".into(),
            project_id: "p".into(),
            provider: REVENUECAT.into(),
            config: IntegrationConfig::default(),
            webhook_secrets: secrets(Some(1_000)),
            provider_project_id: None,
            provisioned_webhook: None,
            revision: 0,
            enabled: true,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        };
        let status = |i: &Integration, id: &str, now: i64| i.webhook_header_status(id, now);
        assert_eq!(status(&integration, "wh1", 0), WebhookHeaderStatus::Unknown);
        let set = |digest: Option<&str>| ProvisionedWebhook {
            id: "wh1".into(),
            secret_digest: digest.map(str::to_owned),
        };
        integration.provisioned_webhook = Some(set(Some("new")));
        assert_eq!(status(&integration, "wh1", 0), WebhookHeaderStatus::Current);
        assert_eq!(status(&integration, "wh2", 0), WebhookHeaderStatus::Unknown);
        integration.provisioned_webhook = Some(set(Some("old")));
        let previous = status(&integration, "wh1", 999);
        assert_eq!(
            previous,
            WebhookHeaderStatus::Previous {
                expires_at_ms: 1_000
            }
        );
        assert!(previous.is_accepted());
        assert_eq!(
            status(&integration, "wh1", 1_000),
            WebhookHeaderStatus::Revoked
        );
        integration.provisioned_webhook = Some(set(None));
        assert_eq!(status(&integration, "wh1", 0), WebhookHeaderStatus::Unknown);
    }

    #[test]
    fn redaction_applies_to_sensitive_fields_and_debug() {
        let config = IntegrationConfig(BTreeMap::from([("api_key".into(), "sk_abcdef".into())]));
        assert_eq!(config.redacted(rc())["api_key"], "sk_a****");
        assert!(!format!("{config:?}").contains("sk_abcdef"));
    }
}
