//! Seed 001's integrations endpoints.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use super::error::ApiError;
use crate::auth::{authorize_project, Principal};
use crate::domain::integration::{provider, Integration, PROVIDERS};
use crate::domain::permission::Permission;
use crate::services::integrations as service;
use crate::services::revenuecat_sync::RevenueCatSync;
use crate::services::webhooks::WebhookReceiver;
use crate::store::Store;
use crate::timestamp::serde_iso;

/// Base URL handed out in `webhook_setup.webhook_url` (`RCSYNC_PUBLIC_URL`).
pub struct PublicUrl(pub Url);

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

#[derive(Serialize)]
struct WebhookSetup {
    webhook_url: String,
    authorization_header: String,
    environment: &'static str,
    events_filter: &'static str,
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

pub fn webhook_url(public_url: &Url, provider: &str, project_id: &str) -> String {
    format!(
        "{}/v1/webhooks/{provider}/{project_id}",
        public_url.as_str().trim_end_matches('/')
    )
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
    public_url: web::Data<PublicUrl>,
    path: web::Path<String>,
    body: web::Json<CreateIntegrationRequest>,
) -> Result<HttpResponse, ApiError> {
    let project =
        authorize_project(&principal, &store, &path, Permission::IntegrationsWrite).await?;
    let created = service::create_integration(
        &store,
        &sync,
        &webhooks,
        &project.id,
        &body.provider,
        &body.config,
    )
    .await?;
    let mut response = IntegrationResponse::from(&created.integration);
    response.webhook_setup = created.webhook_secret.map(|secret| WebhookSetup {
        webhook_url: webhook_url(&public_url.0, &created.integration.provider, &project.id),
        authorization_header: format!("Bearer {}", secret.expose_secret()),
        environment: "Both Production and Sandbox",
        events_filter: "All apps, All events",
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
    body: web::Json<UpdateIntegrationRequest>,
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
        config: body.config.as_ref(),
        enabled: body.enabled,
    };
    let updated =
        service::update_integration(&store, &sync, &webhooks, &project_id, &provider_id, patch)
            .await?;
    Ok(HttpResponse::Ok().json(IntegrationResponse::from(&updated)))
}

pub async fn delete_integration(
    principal: Principal,
    store: web::Data<Store>,
    webhooks: web::Data<WebhookReceiver>,
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
    service::delete_integration(&store, &webhooks, &project_id, &provider_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": true })))
}
