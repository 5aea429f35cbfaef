//! `GET /metrics`: Prometheus text format, without authentication (scrapers do not carry API
//! keys). Keep it on a private interface: see the README's operations section.

use actix_web::{web, HttpResponse};

use crate::metrics::CONTENT_TYPE;
use crate::services::{metrics_state, Services};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Every metric in the Prometheus text format", content_type = "text/plain", body = String)),
)]
pub async fn metrics(services: web::Data<Services>) -> HttpResponse {
    let body = match metrics_state::render(&services).await {
        Ok(body) => body,
        Err(e) => {
            // The process's own counters are still worth scraping without the database's.
            tracing::warn!(error.cause_chain = ?e, "metrics: database state unavailable");
            services.metrics.render()
        }
    };
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(body)
}
