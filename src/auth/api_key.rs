//! API keys: `rcs_` + 40 base62 characters (≈238 bits), shown once, stored as SHA-256.

use rand::distributions::{Distribution, Uniform};
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::secret_digest;

pub const API_KEY_PREFIX: &str = "rcs_";
const RANDOM_LEN: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters kept for display (`rcs_AbCd`): enough to tell keys apart, useless to an attacker.
const DISPLAY_PREFIX_LEN: usize = 8;

pub struct GeneratedApiKey {
    pub key: SecretString,
    pub display_prefix: String,
    pub hash: String,
}

pub fn generate_api_key() -> GeneratedApiKey {
    let mut rng = rand::rngs::OsRng;
    let alphabet = Uniform::from(0..BASE62.len());
    let random: String = (0..RANDOM_LEN)
        .map(|_| BASE62[alphabet.sample(&mut rng)] as char)
        .collect();
    let key = format!("{API_KEY_PREFIX}{random}");
    GeneratedApiKey {
        display_prefix: key[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: secret_digest(&key),
        key: SecretString::from(key),
    }
}

/// Shape check before any database work, so garbage never costs a query.
pub fn looks_like_api_key(token: &str) -> bool {
    token.len() == API_KEY_PREFIX.len() + RANDOM_LEN
        && token.starts_with(API_KEY_PREFIX)
        && token[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

pub fn hash_presented_key(key: &SecretString) -> String {
    secret_digest(key.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let generated = generate_api_key();
        let key = generated.key.expose_secret();
        assert!(looks_like_api_key(key), "{key}");
        assert_eq!(generated.hash, secret_digest(key));
        assert_ne!(key, generate_api_key().key.expose_secret());
        assert!(!looks_like_api_key("rcs_short"));
    }
}
