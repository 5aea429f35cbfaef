-- (PostgreSQL) Webhook provisioning and secret rotation. Every secret column holds a SHA-256
-- digest, never a secret.
--
-- webhook_secret_previous_*: the secret a rotation replaced, accepted until its grace period
--   ends (NULL: no grace running).
-- provider_webhook_id: the RevenueCat webhook integration rcsync created or adopted for this
--   integration (kept across a soft delete whose removal at RevenueCat failed, so a restore
--   reuses it instead of creating a second one).
-- provider_webhook_secret_hash: the digest of the secret whose header rcsync last set on that
--   webhook. RevenueCat never returns the header, so this is how rcsync tells whether the
--   webhook still carries a secret it accepts.

ALTER TABLE integrations
    ADD COLUMN webhook_secret_previous_hash TEXT,
    ADD COLUMN webhook_secret_previous_expires_at BIGINT,
    ADD COLUMN provider_webhook_id TEXT,
    ADD COLUMN provider_webhook_secret_hash TEXT;
