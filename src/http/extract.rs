//! Extractor configuration so malformed requests get a JSON 4xx instead of actix's defaults.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use crate::auth::{bearer_token, AuthError, Authenticator, Principal};

/// `Principal` as a handler argument: resolves `Authorization: Bearer …` (401 otherwise).
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Authenticator>>().cloned();
        let token = match req.headers().get(AUTHORIZATION).map(|h| h.to_str()) {
            Some(Err(_)) => Err(AuthError::Unauthenticated("Invalid Authorization header")),
            header => bearer_token(header.map(|h| h.unwrap_or_default())).map(str::to_owned),
        };
        Box::pin(async move {
            let auth =
                auth.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no Authenticator")))?;
            Ok(auth.authenticate(&token?).await?)
        })
    }
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("Request body exceeds {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("Content-Type must be application/json".into())
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("Invalid request body: {e}"))
        }
        JsonPayloadError::Payload(e) => e.into(),
        other => ApiError::BadRequest(format!("Invalid request body: {other}")),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::BadRequest(format!("Invalid path: {err}")).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::BadRequest(format!("Invalid query string: {err}")).into()
    })
}

pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "No route for {} {}",
        req.method(),
        req.path()
    )))
}

pub async fn method_not_allowed(req: HttpRequest) -> actix_web::HttpResponse {
    actix_web::HttpResponse::MethodNotAllowed().json(serde_json::json!({
        "error": format!("Method {} not allowed on {}", req.method(), req.path())
    }))
}
