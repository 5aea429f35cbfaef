//! Who is calling: a bearer token resolved to an API key or a JWT identity, and what that
//! caller may touch.

use secrecy::SecretString;

use super::api_key::{hash_presented_key, looks_like_api_key};
use super::jwt::{JwtIdentity, JwtVerifier};
use super::AuthError;
use crate::crypto::digests_match;
use crate::domain::permission::Permission;
use crate::domain::tenancy::ApiKey;
use crate::store::Store;

/// Shared by every request: where keys are looked up and how JWTs are checked.
pub struct Authenticator {
    pub store: Store,
    pub jwt: Option<JwtVerifier>,
}

#[derive(Debug, Clone)]
pub enum Principal {
    ApiKey(ApiKey),
    Jwt(JwtIdentity),
}

impl Principal {
    /// 404 for a team the caller cannot see (indistinguishable from absence), 403 for a
    /// visible team where the caller lacks the permission or role.
    pub fn authorize_team(&self, team_id: &str, permission: Permission) -> Result<(), AuthError> {
        match self {
            Principal::ApiKey(key) => {
                if key.team_id != team_id {
                    return Err(AuthError::NotFound("Not found"));
                }
                if !key.permissions.contains(&permission) {
                    return Err(AuthError::Forbidden(format!(
                        "Missing permission: {permission}"
                    )));
                }
                Ok(())
            }
            Principal::Jwt(identity) => {
                let Some(role) = identity.team_roles.get(team_id) else {
                    return Err(AuthError::NotFound("Not found"));
                };
                if !role.allows(permission) {
                    return Err(AuthError::Forbidden(
                        "Admin role required for this action".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The token of an `Authorization` header value (`Bearer <token>`).
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Unauthenticated("Missing Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Unauthenticated(
            "Authorization header must be `Bearer <token>`",
        ))
}

impl Authenticator {
    /// Resolves a bearer token: `rcs_…` API keys by digest, anything else as a JWT.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if looks_like_api_key(token) {
            let hash = hash_presented_key(&SecretString::from(token.to_owned()));
            let key = self
                .store
                .find_api_key_by_hash(&hash)
                .await?
                .filter(|k| digests_match(&k.key_hash, &hash) && k.revoked_at.is_none())
                .ok_or(AuthError::Unauthenticated("Invalid or revoked API key"))?;
            if let Err(e) = self.store.touch_api_key(&key).await {
                // Bookkeeping only: a busy database must not fail an authenticated request.
                tracing::warn!(error = %e, key_id = %key.id, "could not record API key use");
            }
            return Ok(Principal::ApiKey(key));
        }
        let verifier = self
            .jwt
            .as_ref()
            .ok_or(AuthError::Unauthenticated("Invalid API key"))?;
        verifier
            .verify(token)
            .map(Principal::Jwt)
            .ok_or(AuthError::Unauthenticated("Invalid or expired token"))
    }
}
