//! `POST /v1/projects/:projectId/integrations/revenuecat/sync/:userId` (seed 001).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use crate::auth::{authorize_project, Principal};
use crate::domain::permission::Permission;
use crate::services::revenuecat_sync::RevenueCatSync;
use crate::store::Store;

pub async fn sync_user(
    principal: Principal,
    store: web::Data<Store>,
    sync: web::Data<RevenueCatSync>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, user_id) = path.into_inner();
    authorize_project(
        &principal,
        &store,
        &project_id,
        Permission::IntegrationsWrite,
    )
    .await?;
    let synced = sync
        .sync_user_within_deadline(&project_id, &user_id)
        .await?;
    let properties: BTreeMap<&str, &str> = synced
        .patch
        .iter()
        .filter_map(|(key, value)| value.as_deref().map(|v| (key.as_str(), v)))
        .collect();
    let mut body = json!({"updated": 1, "properties": properties});
    if synced.entitlements_only {
        // The seed's fallback, made visible: status, product and revenue were not refreshed.
        body["partial"] = json!(true);
    }
    Ok(HttpResponse::Ok().json(body))
}
