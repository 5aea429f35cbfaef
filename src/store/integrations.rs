//! Integration rows. The provider config is stored sealed under the master key, bound to its
//! (project, provider) so ciphertexts cannot be swapped between rows.

use sqlx::FromRow;

use super::{with_pool, with_writer, Store, StoreError};
use crate::domain::integration::{
    Integration, IntegrationConfig, PreviousSecret, ProvisionedWebhook, WebhookSecrets,
};

const COLUMNS: &str = "id, project_id, provider, config_ciphertext, webhook_secret_hash, \
    webhook_secret_previous_hash, webhook_secret_previous_expires_at, provider_project_id, \
    provider_webhook_id, provider_webhook_secret_hash, revision, enabled, created_at, \
    updated_at, deleted_at";

#[derive(FromRow)]
struct IntegrationRow {
    id: String,
    project_id: String,
    provider: String,
    config_ciphertext: Vec<u8>,
    webhook_secret_hash: Option<String>,
    webhook_secret_previous_hash: Option<String>,
    webhook_secret_previous_expires_at: Option<i64>,
    provider_project_id: Option<String>,
    provider_webhook_id: Option<String>,
    provider_webhook_secret_hash: Option<String>,
    revision: i64,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

pub struct NewIntegration<'a> {
    pub project_id: &'a str,
    pub provider: &'a str,
    pub config: &'a IntegrationConfig,
    pub webhook_secret_hash: Option<&'a str>,
    pub provider_project_id: Option<&'a str>,
}

pub enum CreateIntegrationOutcome {
    /// Inserted, or a soft-deleted row restored in place (same id).
    Created(Box<Integration>),
    /// An active integration for (project, provider) already exists.
    AlreadyActive,
}

/// A new webhook secret replacing the current one, applied only if `expected_revision` still
/// holds. The replaced secret stays accepted until `previous_expires_at_ms` (`None`: at once).
pub struct SecretRotation<'a> {
    pub new_secret_hash: &'a str,
    pub previous_expires_at_ms: Option<i64>,
    pub expected_revision: i64,
}

/// A full replacement of the mutable fields, applied only if `expected_revision` still holds.
pub struct IntegrationUpdate<'a> {
    pub config: &'a IntegrationConfig,
    pub enabled: bool,
    pub provider_project_id: Option<&'a str>,
    pub expected_revision: i64,
}

fn seal_context(project_id: &str, provider: &str) -> Vec<u8> {
    format!("integration:{project_id}:{provider}").into_bytes()
}

impl Store {
    fn seal_config(
        &self,
        project_id: &str,
        provider: &str,
        config: &IntegrationConfig,
    ) -> Result<Vec<u8>, StoreError> {
        let plaintext = serde_json::to_vec(config)
            .map_err(|e| StoreError::Corrupt(format!("config not serializable: {e}")))?;
        Ok(self
            .master_key()
            .seal(&plaintext, &seal_context(project_id, provider)))
    }

    fn open_row(&self, row: IntegrationRow) -> Result<Integration, StoreError> {
        let plaintext = self.master_key().open(
            &row.config_ciphertext,
            &seal_context(&row.project_id, &row.provider),
        )?;
        let config: IntegrationConfig = serde_json::from_slice(&plaintext)
            .map_err(|e| StoreError::Corrupt(format!("integration {} config: {e}", row.id)))?;
        Ok(Integration {
            id: row.id,
            project_id: row.project_id,
            provider: row.provider,
            config,
            webhook_secrets: secrets_of(
                row.webhook_secret_hash,
                row.webhook_secret_previous_hash,
                row.webhook_secret_previous_expires_at,
            ),
            provider_project_id: row.provider_project_id,
            provisioned_webhook: row.provider_webhook_id.map(|id| ProvisionedWebhook {
                id,
                secret_digest: row.provider_webhook_secret_hash,
            }),
            revision: row.revision,
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }

    /// Insert-or-restore in one statement: the UNIQUE (project, provider) constraint decides
    /// races, and the `WHERE deleted_at IS NOT NULL` guard refuses to overwrite a live row.
    /// A restore starts without a grace period and forgets which header the provider webhook
    /// carried (an old secret), but keeps the webhook's id so provisioning reuses it.
    pub async fn create_integration(
        &self,
        new: NewIntegration<'_>,
    ) -> Result<CreateIntegrationOutcome, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.now_ms();
        let sealed = self.seal_config(new.project_id, new.provider, new.config)?;
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO integrations (id, project_id, provider, config_ciphertext, webhook_secret_hash, \
                 provider_project_id, revision, enabled, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8, NULL) \
             ON CONFLICT (project_id, provider) DO UPDATE SET \
                 config_ciphertext = excluded.config_ciphertext, \
                 webhook_secret_hash = excluded.webhook_secret_hash, \
                 webhook_secret_previous_hash = NULL, \
                 webhook_secret_previous_expires_at = NULL, \
                 provider_webhook_secret_hash = NULL, \
                 provider_project_id = excluded.provider_project_id, \
                 revision = integrations.revision + 1, \
                 enabled = excluded.enabled, \
                 updated_at = excluded.updated_at, \
                 deleted_at = NULL \
             WHERE integrations.deleted_at IS NOT NULL \
             RETURNING {COLUMNS}"
        ));
        let row: Option<IntegrationRow> = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(&id)
                .bind(new.project_id)
                .bind(new.provider)
                .bind(&sealed)
                .bind(new.webhook_secret_hash)
                .bind(new.provider_project_id)
                .bind(true)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    if StoreError::is_foreign_key_violation(&e) {
                        StoreError::MissingReference("project")
                    } else {
                        e.into()
                    }
                })?
        });
        match row {
            Some(row) => Ok(CreateIntegrationOutcome::Created(Box::new(
                self.open_row(row)?,
            ))),
            None => Ok(CreateIntegrationOutcome::AlreadyActive),
        }
    }

    /// The active (not soft-deleted) integration, enabled or not.
    pub async fn get_active_integration(
        &self,
        project_id: &str,
        provider: &str,
    ) -> Result<Option<Integration>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM integrations \
             WHERE project_id = $1 AND provider = $2 AND deleted_at IS NULL"
        ));
        let row: Option<IntegrationRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(provider).fetch_optional(pool).await?
        });
        row.map(|r| self.open_row(r)).transpose()
    }

    /// What the webhook receiver needs — the secrets' digests, if the active integration is
    /// enabled — without decrypting the provider config on every delivery.
    pub async fn webhook_secrets(
        &self,
        project_id: &str,
        provider: &str,
    ) -> Result<Option<WebhookSecrets>, StoreError> {
        type Row = (Option<String>, Option<String>, Option<i64>);
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT webhook_secret_hash, webhook_secret_previous_hash, \
                     webhook_secret_previous_expires_at FROM integrations \
                 WHERE project_id = $1 AND provider = $2 AND deleted_at IS NULL AND enabled = $3",
            )
            .bind(project_id)
            .bind(provider)
            .bind(true)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(current, previous, expires)| secrets_of(current, previous, expires)))
    }

    pub async fn list_active_integrations(
        &self,
        project_id: &str,
    ) -> Result<Vec<Integration>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM integrations \
             WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        ));
        let rows: Vec<IntegrationRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).fetch_all(pool).await?
        });
        rows.into_iter().map(|r| self.open_row(r)).collect()
    }

    /// Optimistic update: `None` when the row changed (or was deleted) since it was read.
    pub async fn update_integration(
        &self,
        current: &Integration,
        update: IntegrationUpdate<'_>,
    ) -> Result<Option<Integration>, StoreError> {
        let sealed = self.seal_config(&current.project_id, &current.provider, update.config)?;
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE integrations SET config_ciphertext = $1, enabled = $2, provider_project_id = $3, \
                 revision = revision + 1, updated_at = $4 \
             WHERE id = $5 AND revision = $6 AND deleted_at IS NULL \
             RETURNING {COLUMNS}"
        ));
        let row: Option<IntegrationRow> = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(&sealed)
                .bind(update.enabled)
                .bind(update.provider_project_id)
                .bind(self.now_ms())
                .bind(&current.id)
                .bind(update.expected_revision)
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| self.open_row(r)).transpose()
    }

    /// Soft delete; the row as deleted, `None` when there was no active integration.
    pub async fn soft_delete_integration(
        &self,
        project_id: &str,
        provider: &str,
    ) -> Result<Option<Integration>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE integrations SET deleted_at = $1, updated_at = $1, revision = revision + 1 \
             WHERE project_id = $2 AND provider = $3 AND deleted_at IS NULL \
             RETURNING {COLUMNS}"
        ));
        let row: Option<IntegrationRow> = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(self.now_ms())
                .bind(project_id)
                .bind(provider)
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| self.open_row(r)).transpose()
    }

    /// Replaces the webhook secret (optimistic, like [`Self::update_integration`]): `None`
    /// when the row changed or was deleted since it was read. The current secret becomes the
    /// previous one for its grace period; a previous one still in its grace is dropped.
    pub async fn rotate_webhook_secret(
        &self,
        current: &Integration,
        rotation: SecretRotation<'_>,
    ) -> Result<Option<Integration>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE integrations SET \
                 webhook_secret_previous_hash = CASE WHEN $1 IS NULL THEN NULL \
                     ELSE webhook_secret_hash END, \
                 webhook_secret_previous_expires_at = $1, \
                 webhook_secret_hash = $2, \
                 revision = revision + 1, updated_at = $3 \
             WHERE id = $4 AND revision = $5 AND deleted_at IS NULL \
             RETURNING {COLUMNS}"
        ));
        let row: Option<IntegrationRow> = with_writer!(self, pool => {
            sqlx::query_as(sql)
                .bind(rotation.previous_expires_at_ms)
                .bind(rotation.new_secret_hash)
                .bind(self.now_ms())
                .bind(&current.id)
                .bind(rotation.expected_revision)
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| self.open_row(r)).transpose()
    }

    /// The provider webhook rcsync manages for integration `id`, deleted or not.
    pub async fn provisioned_webhook(
        &self,
        id: &str,
    ) -> Result<Option<ProvisionedWebhook>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT provider_webhook_id, provider_webhook_secret_hash FROM integrations \
                 WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row
            .and_then(|(id, secret_digest)| id.map(|id| ProvisionedWebhook { id, secret_digest })))
    }

    /// Records the provider webhook rcsync manages for integration `id` (`None`: none any
    /// more), deleted or not. A fact about the provider, not a change of the integration: the
    /// revision stays, so concurrent PATCHes and cached catalogs are not disturbed.
    pub async fn record_provisioned_webhook(
        &self,
        id: &str,
        webhook: Option<&ProvisionedWebhook>,
    ) -> Result<(), StoreError> {
        with_writer!(self, pool => {
            sqlx::query(
                "UPDATE integrations SET provider_webhook_id = $1, \
                     provider_webhook_secret_hash = $2 \
                 WHERE id = $3",
            )
            .bind(webhook.map(|w| w.id.as_str()))
            .bind(webhook.and_then(|w| w.secret_digest.as_deref()))
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

fn secrets_of(
    current: Option<String>,
    previous: Option<String>,
    previous_expires_at_ms: Option<i64>,
) -> WebhookSecrets {
    WebhookSecrets {
        current,
        previous: previous
            .zip(previous_expires_at_ms)
            .map(|(digest, expires_at_ms)| PreviousSecret {
                digest,
                expires_at_ms,
            }),
    }
}

impl Store {
    /// Enabled integrations of `provider` whose config asks for scheduled resyncs. The config
    /// is sealed, so the filter runs after decryption; a row that cannot be opened is skipped
    /// (and logged) rather than stopping every other project's schedule.
    pub async fn scheduled_resync_integrations(
        &self,
        provider: &str,
    ) -> Result<Vec<Integration>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM integrations \
             WHERE provider = $1 AND deleted_at IS NULL AND enabled = $2 ORDER BY id"
        ));
        let rows: Vec<IntegrationRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(provider).bind(true).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|row| match self.open_row(row) {
                Ok(integration) => Some(integration),
                Err(e) => {
                    tracing::warn!(error = %e, "integration config cannot be read; no scheduled resync for it");
                    None
                }
            })
            .filter(|integration| integration.config.resync_interval_hours().is_some())
            .collect())
    }
}
