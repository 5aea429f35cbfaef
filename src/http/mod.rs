//! HTTP handlers, one file per resource, and the route table. The only layer that knows
//! status codes: services answer with their own errors, mapped in [`error`].

use actix_web::http::Method;
use actix_web::{web, Route};

mod body_guard;
mod cors;
mod cursor;
pub mod error;
mod events;
mod extract;
mod health;
mod integrations;
mod jobs;
mod metrics;
mod openapi;
mod revenuecat_webhook;
mod sync;
mod users;
mod webhooks;

pub use body_guard::{guard_body, BodyTimeout};
pub use cors::cors;
pub use error::ApiError;
pub use extract::{json_config, not_found, path_config, query_config};
pub use openapi::document as openapi_document;

/// One route: its method and path (as actix matches it, `{name}` for a segment) and handler.
struct Endpoint {
    method: Method,
    path: &'static str,
    route: Route,
}

fn endpoint(method: Method, path: &'static str, route: Route) -> Endpoint {
    Endpoint {
        method,
        path,
        route,
    }
}

/// Every route of the API, in matching order (a literal segment before a `{name}` that would
/// also match it). The one list: [`routes`] mounts it and [`route_table`] reports it, so the
/// OpenAPI document is checked against what is really served.
fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        endpoint(M::GET, "/healthz", web::get().to(health::healthz)),
        endpoint(M::GET, "/readyz", web::get().to(health::readyz)),
        endpoint(M::GET, "/metrics", web::get().to(metrics::metrics)),
        endpoint(
            M::GET,
            "/openapi.json",
            web::get().to(openapi::openapi_json),
        ),
        endpoint(
            M::POST,
            "/v1/webhooks/revenuecat/{project_id}",
            web::post().to(webhooks::receive_revenuecat),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/integrations/providers",
            web::get().to(integrations::list_providers),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/integrations",
            web::get().to(integrations::list_integrations),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/integrations",
            web::post().to(integrations::create_integration),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/integrations/revenuecat/sync",
            web::post().to(jobs::trigger_sync),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/integrations/revenuecat/webhook",
            web::get().to(revenuecat_webhook::show),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/integrations/revenuecat/webhook-secret/rotate",
            web::post().to(revenuecat_webhook::rotate_secret),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/integrations/revenuecat/events",
            web::get().to(events::list_events),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/integrations/revenuecat/events/{event_id}",
            web::get().to(events::get_event),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/integrations/revenuecat/events/{event_id}/replay",
            web::post().to(events::replay_event),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/integrations/revenuecat/sync/{user_id}",
            web::post().to(sync::sync_user),
        ),
        endpoint(
            M::PATCH,
            "/v1/projects/{project_id}/integrations/{provider}",
            web::patch().to(integrations::update_integration),
        ),
        endpoint(
            M::DELETE,
            "/v1/projects/{project_id}/integrations/{provider}",
            web::delete().to(integrations::delete_integration),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/users",
            web::get().to(users::list_users),
        ),
        endpoint(
            M::POST,
            "/v1/projects/{project_id}/users",
            web::post().to(users::upsert_users),
        ),
        endpoint(
            M::GET,
            "/v1/projects/{project_id}/users/{user_id}",
            web::get().to(users::get_user),
        ),
        endpoint(
            M::GET,
            "/v1/teams/{team_id}/jobs",
            web::get().to(jobs::list_jobs),
        ),
        endpoint(
            M::GET,
            "/v1/teams/{team_id}/jobs/{job_run_id}",
            web::get().to(jobs::get_job),
        ),
        endpoint(
            M::POST,
            "/v1/teams/{team_id}/jobs/{job_run_id}/cancel",
            web::post().to(jobs::cancel_job),
        ),
    ]
}

/// Every route of the API. `startup` mounts this for `main` and tests alike. Routes of one
/// path share a resource; another method on it answers 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for endpoint in endpoints() {
        match by_path.iter_mut().find(|(path, _)| *path == endpoint.path) {
            Some((_, routes)) => routes.push(endpoint.route),
            None => by_path.push((endpoint.path, vec![endpoint.route])),
        }
    }
    let table = route_table();
    for (path, routes) in by_path {
        // RFC 9110: a 405 lists the methods the resource supports.
        let allow: Vec<&str> = table
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(method, _)| method.as_str())
            .collect();
        let allow = allow.join(", ");
        let resource = routes
            .into_iter()
            .fold(web::resource(path), |resource, route| resource.route(route));
        cfg.service(
            resource.default_service(web::to(move |req: actix_web::HttpRequest| {
                let allow = allow.clone();
                async move { extract::method_not_allowed(req, &allow) }
            })),
        );
    }
}

/// `(method, path)` of every route [`routes`] mounts, in its order.
pub fn route_table() -> Vec<(Method, &'static str)> {
    endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path))
        .collect()
}
