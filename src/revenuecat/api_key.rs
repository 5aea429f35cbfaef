//! Handling of RevenueCat secret API keys outside of the HTTP layer.
//!
//! The key is only ever exposed to build the `Authorization` header. Everything else (logs,
//! `Debug`, the rate-limiter registry) works with a redacted prefix or a SHA-256 fingerprint.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// First four characters followed by `****`, the redaction used across rcsync's API.
pub fn redact_api_key(key: &SecretString) -> String {
    let prefix: String = key.expose_secret().chars().take(4).collect();
    format!("{prefix}****")
}

/// A SHA-256 digest of the key: lets us key per-API-key state without holding the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint([u8; 32]);

impl KeyFingerprint {
    pub fn of(key: &SecretString) -> Self {
        Self(Sha256::digest(key.expose_secret().as_bytes()).into())
    }

    /// Lower-case hex of the whole digest: how processes sharing a database name a key's
    /// budget (see [`crate::revenuecat::SharedBudget`]).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // 8 hex chars of a hash: enough to tell keys apart in logs, useless to an attacker.
        write!(f, "KeyFingerprint(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_a_prefix() {
        let key = SecretString::from("sk_live_abcdef");
        assert_eq!(redact_api_key(&key), "sk_l****");
        let fingerprint = format!("{:?}", KeyFingerprint::of(&key));
        assert!(!fingerprint.contains("sk_live"));
        assert_ne!(
            KeyFingerprint::of(&key),
            KeyFingerprint::of(&"other".to_string().into())
        );
    }
}
