//! Webhook secrets: generating one, and rotating it without downtime.
//!
//! A rotation puts a new secret in force at once and keeps the replaced one accepted for a
//! grace period ([`DEFAULT_GRACE_PERIOD`] unless the call asks otherwise; 0 revokes it at once),
//! so deliveries RevenueCat already queued with the old header — it retries a failed delivery
//! for about 2.5 hours — are not rejected. At most two secrets are ever accepted: rotating
//! during a grace period ends that grace. The grace runs on the store's clock. Both secrets
//! are kept only as SHA-256 digests.
//!
//! Then the RevenueCat webhook gets the new header (see [`super::webhook_provisioning`]). If
//! RevenueCat cannot be told, the new secret is in force anyway and the answer says why, so the
//! admin can set it by hand while the old one still holds.

use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::webhook_provisioning::{Provisioning, WebhookProvisioner};
use super::webhooks::WebhookReceiver;
use crate::clock::ms;
use crate::crypto::secret_digest;
use crate::domain::integration::{Integration, REVENUECAT};
use crate::store::integrations::SecretRotation;
use crate::store::{Store, StoreError};

/// How long a replaced secret stays valid when the rotation does not say.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest grace period a rotation may ask for: a leaked secret should not outlive its
/// replacement by more than a week.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many times a rotation re-reads the integration when a concurrent write wins.
const ROTATE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("RevenueCat integration is not configured for this project")]
    NotFound,
    #[error(
        "grace_period_seconds must be a whole number of seconds from 0 to {} (7 days)",
        MAX_GRACE_PERIOD.as_secs()
    )]
    InvalidGracePeriod,
    #[error("Integration is being modified concurrently; retry the request")]
    ConcurrentUpdate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `whsec_` + 48 hex characters (192 bits).
pub fn generate_webhook_secret() -> SecretString {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(format!("whsec_{}", hex::encode(bytes)))
}

/// A rotation's result: the new secret (to show once) and what RevenueCat was told.
pub struct RotatedSecret {
    pub integration: Integration,
    pub secret: SecretString,
    pub grace_period: Duration,
    /// When the replaced secret stops being accepted (`None`: it already has).
    pub previous_valid_until_ms: Option<i64>,
    pub provisioning: Provisioning,
}

/// The grace period a rotation asked for, in seconds (`None`: the default).
pub fn grace_period(seconds: Option<i64>) -> Result<Duration, RotationError> {
    match seconds {
        None => Ok(DEFAULT_GRACE_PERIOD),
        Some(s) if (0..=MAX_GRACE_PERIOD.as_secs() as i64).contains(&s) => {
            Ok(Duration::from_secs(s as u64))
        }
        Some(_) => Err(RotationError::InvalidGracePeriod),
    }
}

/// Rotates the webhook secret of the project's RevenueCat integration (enabled or not).
pub async fn rotate_webhook_secret(
    store: &Store,
    webhooks: &WebhookReceiver,
    provisioner: &WebhookProvisioner,
    project_id: &str,
    grace_period_seconds: Option<i64>,
) -> Result<RotatedSecret, RotationError> {
    let started = Instant::now();
    let grace_period = grace_period(grace_period_seconds)?;
    let secret = generate_webhook_secret();
    let new_secret_hash = secret_digest(secret.expose_secret());
    for _ in 0..ROTATE_ATTEMPTS {
        let current = store
            .get_active_integration(project_id, REVENUECAT)
            .await?
            .ok_or(RotationError::NotFound)?;
        let previous_valid_until_ms =
            (!grace_period.is_zero()).then(|| store.now_ms().saturating_add(ms(grace_period)));
        let rotation = SecretRotation {
            new_secret_hash: &new_secret_hash,
            previous_expires_at_ms: previous_valid_until_ms,
            expected_revision: current.revision,
        };
        let Some(rotated) = store.rotate_webhook_secret(&current, rotation).await? else {
            continue;
        };
        webhooks.invalidate(project_id);
        tracing::info!(
            integration_id = %rotated.id,
            grace_period_secs = grace_period.as_secs(),
            "webhook secret rotated"
        );
        let provisioning = provisioner.provision(project_id, &secret, started).await;
        return Ok(RotatedSecret {
            integration: rotated,
            secret,
            grace_period,
            previous_valid_until_ms,
            provisioning,
        });
    }
    Err(RotationError::ConcurrentUpdate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_default_to_a_day_and_stay_within_a_week() {
        assert_eq!(grace_period(None).unwrap(), DEFAULT_GRACE_PERIOD);
        assert_eq!(grace_period(Some(0)).unwrap(), Duration::ZERO);
        assert_eq!(grace_period(Some(604_800)).unwrap(), MAX_GRACE_PERIOD);
        for bad in [-1, 604_801, i64::MAX, i64::MIN] {
            assert!(grace_period(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_whsec_and_48_hex_characters() {
        let secret = generate_webhook_secret();
        let hex = secret.expose_secret().strip_prefix("whsec_").unwrap();
        assert_eq!(hex.len(), 48);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            secret.expose_secret(),
            generate_webhook_secret().expose_secret()
        );
    }
}
