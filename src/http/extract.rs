//! Extractor configuration so malformed requests get a JSON 4xx instead of actix's defaults.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures::StreamExt;
use serde::de::DeserializeOwned;

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

/// 405 with `Allow: <methods the resource supports>`.
pub fn method_not_allowed(req: HttpRequest, allow: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(serde_json::json!({
            "error": format!("Method {} not allowed on {}", req.method(), req.path())
        }))
}

/// A JSON object body that may be left out: an empty body is `T::default()`; anything else
/// must be JSON (415 otherwise) of at most `limit` bytes (413), an object that parses as `T`
/// (400). For routes whose body only carries options.
pub async fn optional_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(ApiError::from)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "Request body exceeds {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
    });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ));
    }
    let invalid = |e: serde_json::Error| ApiError::BadRequest(format!("Invalid request body: {e}"));
    match serde_json::from_slice(&body).map_err(invalid)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(invalid),
        _ => Err(ApiError::BadRequest(
            "Invalid request body: expected a JSON object".into(),
        )),
    }
}

/// A JSON body that must be an object (serde would also read a struct from an array), parsed
/// as `T`; the same 400/413/415 answers as `web::Json`.
pub struct JsonObject<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let invalid =
                |e: String| ApiError::BadRequest(format!("Invalid request body: {e}")).into();
            match body.await?.into_inner() {
                object @ serde_json::Value::Object(_) => serde_json::from_value(object)
                    .map(JsonObject)
                    .map_err(|e| invalid(e.to_string())),
                _ => Err(invalid("expected a JSON object".into())),
            }
        })
    }
}
