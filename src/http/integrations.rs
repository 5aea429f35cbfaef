//! Seed 001's integrations endpoints.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::JsonObject;
use crate::auth::{authorize_project, Principal};
use crate::domain::integration::{provider, Integration, PROVIDERS};
use crate::domain::permission::Permission;
use crate::services::integrations as service;
use crate::services::revenuecat_sync::RevenueCatSync;
use crate::services::webhook_provisioning::{
    Provisioning, ProvisioningFailure, Removal, WebhookProvisioner,
};
use crate::services::webhooks::WebhookReceiver;
use crate::store::Store;
use crate::timestamp::serde_iso;

#[derive(Serialize)]
struct IntegrationResponse {
    id: String,
    project_id: String,
    provider: String,
    config: BTreeMap<String, String>,
    enabled: bool,
    #[serde(with = "serde_iso")]
    created_at: i64,
    #[serde(with = "serde_iso")]
    updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_setup: Option<WebhookSetup>,
}

/// The one-time values for the provider's side (seed 001), and whether rcsync already set
/// the provider up with them (`provisioned`) or why not.
#[derive(Serialize)]
pub(super) struct WebhookSetup {
    webhook_url: String,
    authorization_header: String,
    environment: &'static str,
    events_filter: &'static str,
    provisioned: bool,
    /// RevenueCat's id of the webhook that now sends `authorization_header`.
    revenuecat_webhook_id: Option<String>,
    #[serde(flatten)]
    failure: Option<FailureFields>,
}

impl WebhookSetup {
    pub(super) fn new(
        webhook_url: String,
        secret: &SecretString,
        provisioning: Option<&Provisioning>,
    ) -> Self {
        let (revenuecat_webhook_id, failure) = match provisioning {
            Some(Provisioning::Provisioned { webhook_id }) => (Some(webhook_id.clone()), None),
            Some(Provisioning::NotProvisioned(failure)) => (None, Some(failure.into())),
            None => (None, None),
        };
        WebhookSetup {
            webhook_url,
            authorization_header: format!("Bearer {}", secret.expose_secret()),
            environment: "Both Production and Sandbox",
            events_filter: "All apps, All events",
            provisioned: revenuecat_webhook_id.is_some(),
            revenuecat_webhook_id,
            failure,
        }
    }
}

/// Why RevenueCat did not do what was asked: `reason`, and its status when it answered.
#[derive(Serialize)]
pub(super) struct FailureFields {
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revenuecat_status: Option<u16>,
}

impl From<&ProvisioningFailure> for FailureFields {
    fn from(failure: &ProvisioningFailure) -> Self {
        FailureFields {
            reason: failure.reason.clone(),
            revenuecat_status: failure.revenuecat_status,
        }
    }
}

/// `revenuecat_webhook` of a DELETE's answer.
#[derive(Serialize)]
struct RemovalResponse {
    id: String,
    removed: bool,
    #[serde(flatten)]
    failure: Option<FailureFields>,
}

impl From<&Removal> for RemovalResponse {
    fn from(removal: &Removal) -> Self {
        RemovalResponse {
            id: removal.webhook_id.clone(),
            removed: removal.outcome.is_ok(),
            failure: removal.outcome.as_ref().err().map(FailureFields::from),
        }
    }
}

impl From<&Integration> for IntegrationResponse {
    fn from(integration: &Integration) -> Self {
        let config = match provider(&integration.provider) {
            Some(p) => integration.config.redacted(p),
            // A provider dropped from the catalogue: show nothing rather than guess.
            None => BTreeMap::new(),
        };
        IntegrationResponse {
            id: integration.id.clone(),
            project_id: integration.project_id.clone(),
            provider: integration.provider.clone(),
            config,
            enabled: integration.enabled,
            created_at: integration.created_at,
            updated_at: integration.updated_at,
            webhook_setup: None,
        }
    }
}

pub async fn list_providers(
    principal: Principal,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize_project(&principal, &store, &path, Permission::IntegrationsRead).await?;
    Ok(HttpResponse::Ok().json(json!({ "providers": PROVIDERS })))
}

pub async fn list_integrations(
    principal: Principal,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize_project(&principal, &store, &path, Permission::IntegrationsRead).await?;
    let integrations: Vec<IntegrationResponse> = store
        .list_active_integrations(&path)
        .await?
        .iter()
        .map(IntegrationResponse::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "integrations": integrations })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationRequest {
    provider: String,
    config: Map<String, Value>,
}

pub async fn create_integration(
    principal: Principal,
    store: web::Data<Store>,
    sync: web::Data<RevenueCatSync>,
    webhooks: web::Data<WebhookReceiver>,
    provisioner: web::Data<WebhookProvisioner>,
    path: web::Path<String>,
    body: JsonObject<CreateIntegrationRequest>,
) -> Result<HttpResponse, ApiError> {
    let project =
        authorize_project(&principal, &store, &path, Permission::IntegrationsWrite).await?;
    let created = service::create_integration(
        &store,
        &sync,
        &webhooks,
        &provisioner,
        &project.id,
        &body.0.provider,
        &body.0.config,
    )
    .await?;
    let mut response = IntegrationResponse::from(&created.integration);
    response.webhook_setup = created.webhook_secret.map(|secret| {
        WebhookSetup::new(
            provisioner.webhook_url(&project.id),
            &secret,
            created.provisioning.as_ref(),
        )
    });
    tracing::info!(integration_id = %created.integration.id, project_id = %project.id, "integration created");
    Ok(HttpResponse::Created().json(response))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationRequest {
    config: Option<Map<String, Value>>,
    enabled: Option<bool>,
}

pub async fn update_integration(
    principal: Principal,
    store: web::Data<Store>,
    sync: web::Data<RevenueCatSync>,
    webhooks: web::Data<WebhookReceiver>,
    path: web::Path<(String, String)>,
    body: JsonObject<UpdateIntegrationRequest>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, provider_id) = path.into_inner();
    authorize_project(
        &principal,
        &store,
        &project_id,
        Permission::IntegrationsWrite,
    )
    .await?;
    let patch = service::IntegrationPatch {
        config: body.0.config.as_ref(),
        enabled: body.0.enabled,
    };
    let updated =
        service::update_integration(&store, &sync, &webhooks, &project_id, &provider_id, patch)
            .await?;
    Ok(HttpResponse::Ok().json(IntegrationResponse::from(&updated)))
}

/// Seed 001's `{"deleted": true}`, plus `revenuecat_webhook`: the webhook rcsync had
/// provisioned and whether RevenueCat removed it (`null` when there was none).
pub async fn delete_integration(
    principal: Principal,
    store: web::Data<Store>,
    webhooks: web::Data<WebhookReceiver>,
    provisioner: web::Data<WebhookProvisioner>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, provider_id) = path.into_inner();
    authorize_project(
        &principal,
        &store,
        &project_id,
        Permission::IntegrationsWrite,
    )
    .await?;
    let deleted =
        service::delete_integration(&store, &webhooks, &provisioner, &project_id, &provider_id)
            .await?;
    tracing::info!(integration_id = %deleted.integration.id, project_id = %project_id, "integration deleted");
    let removal = deleted.webhook_removal.as_ref().map(RemovalResponse::from);
    Ok(HttpResponse::Ok().json(json!({ "deleted": true, "revenuecat_webhook": removal })))
}
