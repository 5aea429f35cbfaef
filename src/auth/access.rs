use super::Principal;
use crate::domain::permission::Permission;
use crate::domain::tenancy::Project;
use crate::error::ApiError;
use crate::store::Store;

/// Loads the project and checks the caller may use `permission` on it. A project of another
/// team answers the same 404 as a missing one.
pub async fn authorize_project(
    principal: &Principal,
    store: &Store,
    project_id: &str,
    permission: Permission,
) -> Result<Project, ApiError> {
    if crate::domain::app_user::has_nul(project_id) {
        return Err(ApiError::NotFound("Project not found".into()));
    }
    let project = store
        .get_project(project_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Project not found".into()))?;
    principal
        .authorize_team(&project.team_id, permission)
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("Project not found".into()),
            other => other,
        })?;
    Ok(project)
}
