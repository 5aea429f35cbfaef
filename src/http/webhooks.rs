//! `POST /v1/webhooks/revenuecat/:projectId`: called by RevenueCat, not by API clients.
//! A 200 means the event is committed; anything else makes RevenueCat retry.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::json;

use super::error::ApiError;
use crate::config::WEBHOOK_BODY_LIMIT;
use crate::services::webhooks::WebhookReceiver;

pub async fn receive_revenuecat(
    req: HttpRequest,
    mut payload: web::Payload,
    webhooks: web::Data<WebhookReceiver>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project_id = path.into_inner();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    webhooks.authenticate(&project_id, authorization).await?;
    let body = read_body(&req, &mut payload).await?;
    webhooks.receive(&project_id, &body).await?;
    Ok(HttpResponse::Ok().json(json!({"received": true})))
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("Webhook body exceeds {WEBHOOK_BODY_LIMIT} bytes"))
}

/// Reads the body up to the limit; a declared or actual larger body is refused with 413.
async fn read_body(req: &HttpRequest, payload: &mut web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > WEBHOOK_BODY_LIMIT) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(WEBHOOK_BODY_LIMIT));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(ApiError::from)?;
        if body.len() + chunk.len() > WEBHOOK_BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
