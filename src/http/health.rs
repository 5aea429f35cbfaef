use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::startup::Readiness;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database answers a query and, in a process that runs job
/// workers, they are alive (apalis can lose every worker while HTTP keeps serving).
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let database = match readiness.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error.cause_chain = ?e, "readiness probe: database unreachable");
            "unreachable"
        }
    };
    let workers =
        readiness
            .workers
            .as_ref()
            .map(|w| if w.is_running() { "running" } else { "stopped" });
    let ready = database == "ok" && workers != Some("stopped");
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "workers": workers.unwrap_or("not run by this process"),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
