//! Creating, updating and deleting integrations with seed 001's rules.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::revenuecat_sync::{RevenueCatSync, SyncError};
use super::webhook_provisioning::{Provisioning, Removal, WebhookProvisioner};
use super::webhook_secrets::generate_webhook_secret;
use super::webhooks::WebhookReceiver;
use crate::crypto::secret_digest;
use crate::domain::integration::{
    parse_config_input, provider, validate_complete, ConfigError, Integration, IntegrationConfig,
    ProviderDefinition, REVENUECAT,
};
use crate::store::integrations::{CreateIntegrationOutcome, IntegrationUpdate, NewIntegration};
use crate::store::{Store, StoreError};

/// How many times a PATCH re-reads and re-applies itself when a concurrent write wins.
const UPDATE_ATTEMPTS: usize = 5;

/// A freshly created integration and, for webhook providers, its one-time secret and whether
/// the provider was set up to send it.
pub struct CreatedIntegration {
    pub integration: Integration,
    pub webhook_secret: Option<SecretString>,
    pub provisioning: Option<Provisioning>,
}

/// A deleted integration and what became of the webhook rcsync had provisioned for it.
pub struct DeletedIntegration {
    pub integration: Integration,
    /// `None`: rcsync managed no webhook at the provider.
    pub webhook_removal: Option<Removal>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// Unknown provider, unknown or malformed config field.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("Integration not found")]
    NotFound,
    #[error("Integration for provider '{0}' already exists for this project")]
    AlreadyExists(&'static str),
    #[error("Integration is being modified concurrently; retry the request")]
    ConcurrentUpdate,
    /// The provider refused the credentials (RevenueCat answered 401/403).
    #[error("RevenueCat rejected the API key: {0}")]
    CredentialsRejected(String),
    /// The provider could not be asked (down, rate limited beyond retries…).
    #[error(transparent)]
    Provider(SyncError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn supported_provider(id: &str) -> Result<&'static ProviderDefinition, IntegrationError> {
    provider(id).ok_or_else(|| ConfigError::UnsupportedProvider(id.to_owned()).into())
}

/// Checks the credentials with the provider before anything is stored, and returns the
/// provider's own project id (RevenueCat secret keys belong to exactly one project).
async fn verify_credentials(
    sync: &RevenueCatSync,
    provider: &ProviderDefinition,
    config: &IntegrationConfig,
) -> Result<Option<String>, IntegrationError> {
    if provider.id != REVENUECAT {
        return Ok(None);
    }
    let key = SecretString::from(config.get("api_key").unwrap_or_default().to_owned());
    match sync.verify_key(&key).await {
        Ok(project) => Ok(Some(project)),
        Err(SyncError::KeyRejected { message, .. }) => {
            Err(IntegrationError::CredentialsRejected(message))
        }
        Err(SyncError::Store(e)) => Err(e.into()),
        Err(other) => Err(IntegrationError::Provider(other)),
    }
}

/// Verifies the credentials, stores (or restores) the integration, then has the provider send
/// its webhooks here (see [`super::webhook_provisioning`]); the provider refusing that does not
/// fail the create. The provider's work shares one deadline, counted from the start.
pub async fn create_integration(
    store: &Store,
    sync: &RevenueCatSync,
    webhooks: &WebhookReceiver,
    provisioner: &WebhookProvisioner,
    project_id: &str,
    provider_id: &str,
    config_input: &Map<String, Value>,
) -> Result<CreatedIntegration, IntegrationError> {
    let started = Instant::now();
    let provider = supported_provider(provider_id)?;
    let config = parse_config_input(provider, config_input)?;
    validate_complete(provider, &config)?;
    let provider_project_id = verify_credentials(sync, provider, &config).await?;
    let webhook_secret = provider.uses_webhooks.then(generate_webhook_secret);
    let secret_hash = webhook_secret
        .as_ref()
        .map(|s| secret_digest(s.expose_secret()));
    let outcome = store
        .create_integration(NewIntegration {
            project_id,
            provider: provider.id,
            config: &config,
            webhook_secret_hash: secret_hash.as_deref(),
            provider_project_id: provider_project_id.as_deref(),
        })
        .await?;
    webhooks.invalidate(project_id);
    match outcome {
        CreateIntegrationOutcome::Created(integration) => {
            let provisioning = match (&webhook_secret, provider.id) {
                (Some(secret), REVENUECAT) => {
                    Some(provisioner.provision(project_id, secret, started).await)
                }
                _ => None,
            };
            Ok(CreatedIntegration {
                integration: *integration,
                webhook_secret,
                provisioning,
            })
        }
        CreateIntegrationOutcome::AlreadyActive => {
            Err(IntegrationError::AlreadyExists(provider.id))
        }
    }
}

/// What a PATCH asks to change; absent fields are kept.
pub struct IntegrationPatch<'a> {
    pub config: Option<&'a Map<String, Value>>,
    pub enabled: Option<bool>,
}

pub async fn update_integration(
    store: &Store,
    sync: &RevenueCatSync,
    webhooks: &WebhookReceiver,
    project_id: &str,
    provider_id: &str,
    patch: IntegrationPatch<'_>,
) -> Result<Integration, IntegrationError> {
    let provider = supported_provider(provider_id)?;
    let changes = match patch.config {
        Some(input) => parse_config_input(provider, input)?,
        None => IntegrationConfig::default(),
    };
    // Verified once, outside the retry loop: the new credentials do not depend on the row.
    let mut verified: Option<(IntegrationConfig, Option<String>)> = None;
    for _ in 0..UPDATE_ATTEMPTS {
        let current = store
            .get_active_integration(project_id, provider.id)
            .await?
            .ok_or(IntegrationError::NotFound)?;
        let mut merged = current.config.clone();
        merged.0.extend(changes.0.clone());
        validate_complete(provider, &merged)?;
        let mut provider_project_id = current.provider_project_id.clone();
        if merged != current.config {
            provider_project_id = match &verified {
                Some((config, project)) if *config == merged => project.clone(),
                _ => {
                    let project = verify_credentials(sync, provider, &merged).await?;
                    verified = Some((merged.clone(), project.clone()));
                    project
                }
            };
        }
        let update = IntegrationUpdate {
            config: &merged,
            enabled: patch.enabled.unwrap_or(current.enabled),
            provider_project_id: provider_project_id.as_deref(),
            expected_revision: current.revision,
        };
        if let Some(updated) = store.update_integration(&current, update).await? {
            webhooks.invalidate(project_id);
            return Ok(updated);
        }
    }
    Err(IntegrationError::ConcurrentUpdate)
}

/// Soft-deletes the integration first (deliveries stop being accepted at once), then removes
/// the webhook rcsync provisioned at the provider; a failure there is reported, not raised.
pub async fn delete_integration(
    store: &Store,
    webhooks: &WebhookReceiver,
    provisioner: &WebhookProvisioner,
    project_id: &str,
    provider_id: &str,
) -> Result<DeletedIntegration, IntegrationError> {
    let provider = supported_provider(provider_id)?;
    let integration = store
        .soft_delete_integration(project_id, provider.id)
        .await?
        .ok_or(IntegrationError::NotFound)?;
    webhooks.invalidate(project_id);
    let webhook_removal = provisioner.remove(&integration).await;
    Ok(DeletedIntegration {
        integration,
        webhook_removal,
    })
}
