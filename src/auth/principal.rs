//! The `Principal` extractor: resolves `Authorization: Bearer …` to an API key or a JWT.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use secrecy::SecretString;

use super::api_key::{hash_presented_key, looks_like_api_key};
use super::jwt::{JwtIdentity, JwtVerifier};
use crate::domain::permission::Permission;
use crate::domain::tenancy::ApiKey;
use crate::error::ApiError;
use crate::store::crypto::digests_match;
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
    pub fn authorize_team(&self, team_id: &str, permission: Permission) -> Result<(), ApiError> {
        match self {
            Principal::ApiKey(key) => {
                if key.team_id != team_id {
                    return Err(ApiError::NotFound("Not found".into()));
                }
                if !key.permissions.contains(&permission) {
                    return Err(ApiError::Forbidden(format!(
                        "Missing permission: {permission}"
                    )));
                }
                Ok(())
            }
            Principal::Jwt(identity) => {
                let Some(role) = identity.team_roles.get(team_id) else {
                    return Err(ApiError::NotFound("Not found".into()));
                };
                if !role.allows(permission) {
                    return Err(ApiError::Forbidden(
                        "Admin role required for this action".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(message.into())
}

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("Missing Authorization header"))?;
    let value = header
        .to_str()
        .map_err(|_| unauthorized("Invalid Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Authorization header must be `Bearer <token>`"))?;
    Ok(token.to_owned())
}

async fn authenticate(auth: &Authenticator, token: String) -> Result<Principal, ApiError> {
    if looks_like_api_key(&token) {
        let hash = hash_presented_key(&SecretString::from(token));
        let key = auth
            .store
            .find_api_key_by_hash(&hash)
            .await?
            .filter(|k| digests_match(&k.key_hash, &hash) && k.revoked_at.is_none())
            .ok_or_else(|| unauthorized("Invalid or revoked API key"))?;
        if let Err(e) = auth.store.touch_api_key(&key).await {
            // Bookkeeping only: a busy database must not fail an authenticated request.
            tracing::warn!(error = %e, key_id = %key.id, "could not record API key use");
        }
        return Ok(Principal::ApiKey(key));
    }
    let verifier = auth
        .jwt
        .as_ref()
        .ok_or_else(|| unauthorized("Invalid API key"))?;
    verifier
        .verify(&token)
        .map(Principal::Jwt)
        .ok_or_else(|| unauthorized("Invalid or expired token"))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Authenticator>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let auth =
                auth.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no Authenticator")))?;
            authenticate(&auth, token?).await
        })
    }
}
