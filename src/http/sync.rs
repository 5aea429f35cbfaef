//! `POST /v1/projects/:projectId/integrations/revenuecat/sync/:userId` (seed 001).

use actix_web::{web, HttpResponse};

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
    Ok(HttpResponse::Ok().json(synced.answer()))
}
