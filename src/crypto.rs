//! Secrets at rest: provider credentials are sealed with XChaCha20-Poly1305 under the master
//! key; API keys and webhook secrets are kept only as SHA-256 digests.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const NONCE_LEN: usize = 24;
/// Version byte in front of every ciphertext so the format can evolve without guessing.
const FORMAT_V1: u8 = 1;

/// The 32-byte key protecting stored provider secrets. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(****)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("must be base64 of exactly 32 bytes")]
    InvalidKey,
    #[error("stored secret cannot be decrypted with this master key (wrong RCSYNC_MASTER_KEY?)")]
    Decrypt,
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| CryptoError::InvalidKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Seals `plaintext`, binding it to `context` (e.g. the owning row) so a ciphertext copied
    /// into another row fails to open.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT_V1 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Hex SHA-256 of a bearer secret, the only form in which API keys and webhook secrets are
/// stored. The secrets carry ≥160 bits of randomness, so an unsalted fast hash is sufficient.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `sk_a****`: the first four characters, then a fixed mask that hides the length.
pub fn redact(secret: &str) -> String {
    let visible: String = secret.chars().take(4).collect();
    format!("{visible}****")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_context() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"sk_secret", b"row-1");
        assert_eq!(key.open(&sealed, b"row-1").unwrap(), b"sk_secret");
        assert!(key.open(&sealed, b"row-2").is_err());
        assert!(MasterKey::generate().open(&sealed, b"row-1").is_err());
        assert!(!sealed.windows(9).any(|w| w == b"sk_secret"));
    }

    #[test]
    fn redaction_keeps_four_characters() {
        assert_eq!(redact("sk_your_key"), "sk_y****");
        assert_eq!(redact("ab"), "ab****");
    }

    #[test]
    fn master_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey(****)");
    }
}
