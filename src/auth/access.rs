use super::{AuthError, Principal};
use crate::domain::app_user::has_nul;
use crate::domain::permission::Permission;
use crate::domain::tenancy::Project;
use crate::store::Store;

/// Loads the project and checks the caller may use `permission` on it. A project of another
/// team answers the same 404 as a missing one.
pub async fn authorize_project(
    principal: &Principal,
    store: &Store,
    project_id: &str,
    permission: Permission,
) -> Result<Project, AuthError> {
    const NOT_FOUND: AuthError = AuthError::NotFound("Project not found");
    if has_nul(project_id) {
        return Err(NOT_FOUND);
    }
    let project = store.get_project(project_id).await?.ok_or(NOT_FOUND)?;
    principal
        .authorize_team(&project.team_id, permission)
        .map_err(|e| match e {
            AuthError::NotFound(_) => NOT_FOUND,
            other => other,
        })?;
    Ok(project)
}
