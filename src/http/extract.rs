//! Extractor configuration so malformed requests get a JSON 4xx instead of actix's defaults.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest};

use crate::error::ApiError;

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
