//! HTTP handlers, one file per resource, and the route table. The only layer that knows
//! status codes: services answer with their own errors, mapped in [`error`].

use actix_web::web;

mod body_guard;
mod cors;
mod cursor;
pub mod error;
mod extract;
mod health;
mod integrations;
mod jobs;
mod revenuecat_webhook;
mod sync;
mod users;
mod webhooks;

pub use body_guard::{guard_body, BodyTimeout};
pub use cors::cors;
pub use error::ApiError;
pub use extract::{json_config, not_found, path_config, query_config};

/// Every route of the API. `startup` mounts this for `main` and tests alike.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .service(
            web::resource("/v1/webhooks/revenuecat/{project_id}")
                .post(webhooks::receive_revenuecat)
                .default_service(web::to(extract::method_not_allowed)),
        )
        .service(
            web::scope("/v1/projects/{project_id}")
                .service(
                    web::resource("/integrations/providers")
                        .get(integrations::list_providers)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations")
                        .get(integrations::list_integrations)
                        .post(integrations::create_integration)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations/revenuecat/sync")
                        .post(jobs::trigger_sync)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations/revenuecat/webhook")
                        .get(revenuecat_webhook::show)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations/revenuecat/webhook-secret/rotate")
                        .post(revenuecat_webhook::rotate_secret)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations/revenuecat/sync/{user_id}")
                        .post(sync::sync_user)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/integrations/{provider}")
                        .route(web::patch().to(integrations::update_integration))
                        .route(web::delete().to(integrations::delete_integration))
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/users")
                        .get(users::list_users)
                        .post(users::upsert_users)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/users/{user_id}")
                        .get(users::get_user)
                        .default_service(web::to(extract::method_not_allowed)),
                ),
        )
        .service(
            web::scope("/v1/teams/{team_id}/jobs")
                .service(
                    web::resource("")
                        .get(jobs::list_jobs)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/{job_run_id}")
                        .get(jobs::get_job)
                        .default_service(web::to(extract::method_not_allowed)),
                )
                .service(
                    web::resource("/{job_run_id}/cancel")
                        .post(jobs::cancel_job)
                        .default_service(web::to(extract::method_not_allowed)),
                ),
        );
}
