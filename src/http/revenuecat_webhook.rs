//! The RevenueCat webhook that points at rcsync:
//! `GET /v1/projects/:projectId/integrations/revenuecat/webhook` shows it as RevenueCat reports
//! it; `POST …/revenuecat/webhook-secret/rotate` replaces its secret without downtime.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::optional_json;
use super::integrations::WebhookSetup;
use crate::auth::{authorize_project, Principal};
use crate::domain::integration::WebhookHeaderStatus;
use crate::domain::permission::Permission;
use crate::services::webhook_provisioning::{WebhookProvisioner, WebhookView};
use crate::services::webhook_secrets::rotate_webhook_secret;
use crate::services::webhooks::WebhookReceiver;
use crate::store::Store;
use crate::timestamp::serde_iso;

/// A rotation's body holds one optional number: a few bytes.
const ROTATE_BODY_LIMIT: usize = 4 * 1024;

/// The webhook as RevenueCat reports it (never a secret: RevenueCat never returns the header),
/// and what rcsync knows about it.
#[derive(Serialize)]
struct WebhookResponse<'a> {
    id: &'a str,
    name: &'a str,
    url: &'a str,
    /// `null`: production and sandbox.
    environment: Option<&'a str>,
    /// `null`: every event type.
    event_types: Option<&'a [String]>,
    /// `null`: every app of the project.
    app_id: Option<&'a str>,
    #[serde(with = "serde_iso::option")]
    created_at: Option<i64>,
    /// rcsync created (or adopted) it for this integration.
    provisioned: bool,
    /// It calls this integration's webhook URL.
    url_matches: bool,
    /// `current`, `previous` (the replaced secret, until `previous_secret_valid_until`),
    /// `revoked` (deliveries answer 401) or `unknown` (rcsync never set its header).
    authorization_header_status: &'static str,
    #[serde(with = "serde_iso::option", skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<i64>,
    /// It calls this integration with a header rcsync accepts.
    points_to_rcsync: bool,
}

impl<'a> From<&'a WebhookView> for WebhookResponse<'a> {
    fn from(view: &'a WebhookView) -> Self {
        let webhook = &view.webhook;
        WebhookResponse {
            id: &webhook.id,
            name: &webhook.name,
            url: &webhook.url,
            // RevenueCat's enum also lists an empty value; like null, it means both.
            environment: webhook
                .environment
                .as_ref()
                .map(|e| e.as_str())
                .filter(|e| !e.is_empty()),
            event_types: webhook.event_types.as_deref(),
            app_id: webhook.app_id.as_deref(),
            created_at: webhook.created_at,
            provisioned: view.managed,
            url_matches: view.url_matches,
            authorization_header_status: view.header.as_str(),
            previous_secret_valid_until: match view.header {
                WebhookHeaderStatus::Previous { expires_at_ms } => Some(expires_at_ms),
                _ => None,
            },
            points_to_rcsync: view.points_to_rcsync(),
        }
    }
}

pub async fn show(
    principal: Principal,
    store: web::Data<Store>,
    provisioner: web::Data<WebhookProvisioner>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project =
        authorize_project(&principal, &store, &path, Permission::IntegrationsRead).await?;
    let view = provisioner.describe(&project.id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&view)))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// How long the replaced secret stays valid (default 86400, 0 to 604800).
    grace_period_seconds: Option<i64>,
}

/// 200 with a fresh `webhook_setup` (the new secret, shown once), the grace period and when
/// the replaced secret stops working.
pub async fn rotate_secret(
    req: HttpRequest,
    mut payload: web::Payload,
    principal: Principal,
    store: web::Data<Store>,
    webhooks: web::Data<WebhookReceiver>,
    provisioner: web::Data<WebhookProvisioner>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project =
        authorize_project(&principal, &store, &path, Permission::IntegrationsWrite).await?;
    let request: RotateRequest = optional_json(&req, &mut payload, ROTATE_BODY_LIMIT).await?;
    let rotated = rotate_webhook_secret(
        &store,
        &webhooks,
        &provisioner,
        &project.id,
        request.grace_period_seconds,
    )
    .await?;
    let setup = WebhookSetup::new(
        provisioner.webhook_url(&project.id),
        &rotated.secret,
        Some(&rotated.provisioning),
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "webhook_setup": setup,
        "grace_period_seconds": rotated.grace_period.as_secs(),
        "previous_secret_valid_until": rotated.previous_valid_until_ms.map(crate::timestamp::iso_ms),
    })))
}
