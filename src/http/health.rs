use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::services::health::Readiness;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database answers a query and, in a process that runs job
/// workers, they are alive (apalis can lose every worker while HTTP keeps serving).
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.check().await;
    let workers = match report.workers_running {
        Some(true) => "running",
        Some(false) => "stopped",
        None => "not run by this process",
    };
    let ready = report.is_ready();
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if report.database_reachable { "ok" } else { "unreachable" },
        "workers": workers,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
