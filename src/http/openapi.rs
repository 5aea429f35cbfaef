//! `GET /openapi.json`: the API as an OpenAPI document, generated from the code. The event
//! log and metrics handlers carry their own annotations; the other routes are described here
//! beside the shapes of their bodies (the handlers build those with `serde_json`). Every route
//! [`super::routes`] mounts must appear here: `tests/api/openapi.rs` compares the document
//! with [`super::route_table`].
//!
//! Errors common to a kind of route (401 for authenticated ones, 400, 413 and 415 for those
//! with a body, 503 for contention) are added to every operation by [`CommonErrors`].

#![allow(dead_code)] // the schema types and path stubs exist to be read by the derive

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use super::events::{EventDetailView, EventPageView, EventStatusName, EventView, HistoryView};

/// `{"status": "ok"}`.
#[derive(ToSchema)]
struct Health {
    status: String,
}

/// Readiness: the database answers and this process's job workers (if it runs any) live.
#[derive(ToSchema)]
struct Readiness {
    /// `ready` or `unavailable`.
    status: String,
    /// `ok` or `unreachable`.
    database: String,
    /// `running`, `stopped` (stopped, or dying: three deaths within 30 s), or
    /// `not run by this process`.
    workers: String,
}

#[derive(ToSchema)]
struct Providers {
    /// Each provider with its config fields (`id`, `name`, `description`, `configFields`).
    providers: Vec<Object>,
}

/// Any JSON object.
#[derive(ToSchema)]
#[schema(value_type = Object)]
struct Object(Value);

/// An integration; `config` values that are secrets show 4 characters and `****`.
#[derive(ToSchema)]
struct Integration {
    id: String,
    project_id: String,
    provider: String,
    config: std::collections::BTreeMap<String, String>,
    enabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Only in the answer to a create: the one-time values for RevenueCat's webhook.
    #[schema(required = false)]
    webhook_setup: Option<WebhookSetup>,
}

/// Shown once: the secret is stored only as a digest.
#[derive(ToSchema)]
struct WebhookSetup {
    webhook_url: String,
    /// `Bearer whsec_…`.
    authorization_header: String,
    environment: String,
    events_filter: String,
    /// rcsync created the webhook in RevenueCat with these values.
    provisioned: bool,
    revenuecat_webhook_id: Option<String>,
    /// Why not provisioned, in RevenueCat's words.
    #[schema(required = false)]
    reason: Option<String>,
    #[schema(required = false)]
    revenuecat_status: Option<u16>,
}

#[derive(ToSchema)]
struct IntegrationList {
    integrations: Vec<Integration>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateIntegration {
    /// `revenuecat`.
    provider: String,
    /// `api_key` (required), `track_revenue`, `resync_interval_hours`: strings.
    config: std::collections::HashMap<String, String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateIntegration {
    /// Merged into the stored config.
    #[schema(required = false)]
    config: Option<std::collections::HashMap<String, String>>,
    #[schema(required = false)]
    enabled: Option<bool>,
}

#[derive(ToSchema)]
struct Deleted {
    deleted: bool,
    /// The webhook rcsync had provisioned in RevenueCat and whether it was removed.
    revenuecat_webhook: Option<Object>,
}

/// `{"syncing": true, "total": N, "job_run_id": …}`, or `{"synced": 0, "total": 0}` when the
/// project has no identified user.
#[derive(ToSchema)]
struct SyncTriggered {
    #[schema(required = false)]
    syncing: Option<bool>,
    #[schema(required = false)]
    synced: Option<i64>,
    total: i64,
    #[schema(required = false)]
    job_run_id: Option<String>,
}

#[derive(ToSchema)]
struct UserSynced {
    updated: i64,
    /// The `rc_*` properties written.
    properties: std::collections::BTreeMap<String, String>,
    /// Only status, product and revenue could not be refreshed.
    #[schema(required = false)]
    partial: Option<bool>,
}

#[derive(ToSchema)]
struct Progress {
    processed: i64,
    total: i64,
    message: Option<String>,
}

/// A background job run.
#[derive(ToSchema)]
struct JobRun {
    id: String,
    job_type: String,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    status: String,
    team_id: String,
    project_id: String,
    triggered_by: String,
    params: Object,
    progress: Progress,
    result: Option<Object>,
    error: Option<String>,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    completed_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    cancel_requested: bool,
}

#[derive(ToSchema)]
struct JobRunList {
    job_runs: Vec<JobRun>,
    cursor: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct UserInput {
    user_id: String,
    #[schema(required = false)]
    is_anonymous: Option<bool>,
    /// A string sets a property, `null` removes it.
    #[schema(required = false)]
    properties: Option<Object>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct UpsertUsers {
    /// 1 to 1000 users.
    users: Vec<UserInput>,
}

#[derive(ToSchema)]
struct Upserted {
    upserted: i64,
}

#[derive(ToSchema)]
struct AppUser {
    user_id: String,
    project_id: String,
    is_anonymous: bool,
    properties: Object,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
struct UserList {
    users: Vec<AppUser>,
    cursor: Option<String>,
    has_more: bool,
}

/// The RevenueCat webhook that points at rcsync, as RevenueCat reports it (never a secret).
#[derive(ToSchema)]
struct RevenueCatWebhook {
    id: String,
    name: String,
    url: String,
    environment: Option<String>,
    event_types: Option<Vec<String>>,
    app_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    provisioned: bool,
    url_matches: bool,
    /// `current`, `previous`, `revoked` or `unknown`.
    authorization_header_status: String,
    #[schema(format = DateTime, required = false)]
    previous_secret_valid_until: Option<String>,
    points_to_rcsync: bool,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateSecret {
    /// How long the replaced secret stays valid: 0 to 604800 (default 86400).
    #[schema(required = false, minimum = 0, maximum = 604800)]
    grace_period_seconds: Option<i64>,
}

#[derive(ToSchema)]
struct SecretRotated {
    webhook_setup: WebhookSetup,
    grace_period_seconds: i64,
    #[schema(format = DateTime)]
    previous_secret_valid_until: Option<String>,
}

/// What RevenueCat POSTs: `{"event": {"id", "type", …}, "api_version"}`.
#[derive(ToSchema)]
struct WebhookDelivery {
    event: Object,
    #[schema(required = false)]
    api_version: Option<String>,
}

#[derive(ToSchema)]
struct Received {
    received: bool,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness)))]
fn readyz() {}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object)))]
fn openapi() {}

#[utoipa::path(post, path = "/v1/webhooks/revenuecat/{project_id}", tag = "webhooks",
    params(("project_id" = String, Path)),
    request_body = WebhookDelivery,
    responses(
        (status = 200, description = "The event is committed (or was already)", body = Received),
        (status = 404, description = "No enabled RevenueCat integration", body = ErrorBody)),
    security(("webhook" = [])))]
fn receive_webhook() {}

#[utoipa::path(get, path = "/v1/projects/{project_id}/integrations/providers", tag = "integrations",
    params(("project_id" = String, Path)),
    responses((status = 200, description = "Supported providers and their config fields", body = Providers)),
    security(("bearer" = [])))]
fn list_providers() {}

#[utoipa::path(get, path = "/v1/projects/{project_id}/integrations", tag = "integrations",
    params(("project_id" = String, Path)),
    responses((status = 200, description = "The project's integrations", body = IntegrationList)),
    security(("bearer" = [])))]
fn list_integrations() {}

#[utoipa::path(post, path = "/v1/projects/{project_id}/integrations", tag = "integrations",
    params(("project_id" = String, Path)),
    request_body = CreateIntegration,
    responses(
        (status = 201, description = "Created (or restored), with the one-time webhook_setup", body = Integration),
        (status = 409, description = "Already exists", body = ErrorBody),
        (status = 502, description = "RevenueCat failed", body = ErrorBody),
        (status = 504, description = "RevenueCat did not answer in time", body = ErrorBody)),
    security(("bearer" = [])))]
fn create_integration() {}

#[utoipa::path(patch, path = "/v1/projects/{project_id}/integrations/{provider}", tag = "integrations",
    params(("project_id" = String, Path), ("provider" = String, Path)),
    request_body = UpdateIntegration,
    responses(
        (status = 200, description = "Updated", body = Integration),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        (status = 502, description = "RevenueCat failed", body = ErrorBody),
        (status = 504, description = "RevenueCat did not answer in time", body = ErrorBody)),
    security(("bearer" = [])))]
fn update_integration() {}

#[utoipa::path(delete, path = "/v1/projects/{project_id}/integrations/{provider}", tag = "integrations",
    params(("project_id" = String, Path), ("provider" = String, Path)),
    responses((status = 200, description = "Deleted (soft)", body = Deleted)),
    security(("bearer" = [])))]
fn delete_integration() {}

#[utoipa::path(post, path = "/v1/projects/{project_id}/integrations/revenuecat/sync", tag = "sync",
    params(("project_id" = String, Path), ("import_missing" = Option<bool>, Query)),
    responses(
        (status = 200, description = "A full resync started (or nothing to sync)", body = SyncTriggered),
        (status = 409, description = "A run is already pending or running (`existing_run_id`)", body = ErrorBody)),
    security(("bearer" = [])))]
fn trigger_sync() {}

#[utoipa::path(post, path = "/v1/projects/{project_id}/integrations/revenuecat/sync/{user_id}", tag = "sync",
    params(("project_id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 200, description = "The user's properties, fetched from RevenueCat", body = UserSynced),
        (status = 502, description = "RevenueCat failed", body = ErrorBody),
        (status = 504, description = "RevenueCat did not answer in time", body = ErrorBody)),
    security(("bearer" = [])))]
fn sync_user() {}

#[utoipa::path(get, path = "/v1/projects/{project_id}/integrations/revenuecat/webhook", tag = "integrations",
    params(("project_id" = String, Path)),
    responses(
        (status = 200, description = "The RevenueCat webhook pointing at rcsync", body = RevenueCatWebhook),
        (status = 502, description = "RevenueCat failed", body = ErrorBody),
        (status = 504, description = "RevenueCat did not answer in time", body = ErrorBody)),
    security(("bearer" = [])))]
fn show_webhook() {}

#[utoipa::path(post, path = "/v1/projects/{project_id}/integrations/revenuecat/webhook-secret/rotate", tag = "integrations",
    params(("project_id" = String, Path)),
    request_body(content = Option<RotateSecret>, description = "Optional"),
    responses(
        (status = 200, description = "A new secret (shown once); the old one stays valid for the grace period", body = SecretRotated),
        (status = 409, description = "Changed concurrently", body = ErrorBody)),
    security(("bearer" = [])))]
fn rotate_secret() {}

#[utoipa::path(get, path = "/v1/projects/{project_id}/users", tag = "users",
    params(("project_id" = String, Path),
        ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, description = "Users by id; `property.<key>=<value>` filters", body = UserList)),
    security(("bearer" = [])))]
fn list_users() {}

#[utoipa::path(post, path = "/v1/projects/{project_id}/users", tag = "users",
    params(("project_id" = String, Path)),
    request_body = UpsertUsers,
    responses((status = 200, description = "Created or merged", body = Upserted)),
    security(("bearer" = [])))]
fn upsert_users() {}

#[utoipa::path(get, path = "/v1/projects/{project_id}/users/{user_id}", tag = "users",
    params(("project_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "The user", body = AppUser)),
    security(("bearer" = [])))]
fn get_user() {}

#[utoipa::path(get, path = "/v1/teams/{team_id}/jobs", tag = "jobs",
    params(("team_id" = String, Path),
        ("job_type" = Option<String>, Query), ("status" = Option<String>, Query),
        ("project_id" = Option<String>, Query),
        ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime),
        ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, description = "The team's job runs, newest first", body = JobRunList)),
    security(("bearer" = [])))]
fn list_jobs() {}

#[utoipa::path(get, path = "/v1/teams/{team_id}/jobs/{job_run_id}", tag = "jobs",
    params(("team_id" = String, Path), ("job_run_id" = String, Path)),
    responses((status = 200, description = "The job run", body = JobRun)),
    security(("bearer" = [])))]
fn get_job() {}

#[utoipa::path(post, path = "/v1/teams/{team_id}/jobs/{job_run_id}/cancel", tag = "jobs",
    params(("team_id" = String, Path), ("job_run_id" = String, Path)),
    responses((status = 200, description = "Cancelled, or asked to stop", body = JobRun)),
    security(("bearer" = [])))]
fn cancel_job() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rcsync",
        description = "RevenueCat webhook receiver and user-property sync service"
    ),
    paths(
        healthz, readyz, super::metrics::metrics, openapi,
        receive_webhook,
        list_providers, list_integrations, create_integration, update_integration,
        delete_integration, show_webhook, rotate_secret,
        trigger_sync, sync_user,
        super::events::list_events, super::events::get_event, super::events::replay_event,
        list_users, upsert_users, get_user,
        list_jobs, get_job, cancel_job,
    ),
    components(schemas(ErrorBody, EventView, EventPageView, EventDetailView, HistoryView, EventStatusName)),
    modifiers(&SecuritySchemes, &CommonErrors)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`rcs_…`, created with `rcsync keys create`) or an HS256 JWT \
                         signed with RCSYNC_JWT_SECRET",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "webhook",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The integration's webhook secret (`whsec_…`), as RevenueCat sends it",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the errors every operation of a kind can answer, unless it documents them itself.
struct CommonErrors;

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            let has_body = |op: &Operation| op.request_body.is_some();
            for operation in operations.into_iter().flatten() {
                let authenticated = operation.security.is_some();
                let mut errors: Vec<(&str, &str)> = Vec::new();
                if authenticated {
                    errors.extend([
                        ("400", "Invalid request (path, query or body)"),
                        ("401", "Missing or invalid credentials"),
                        ("404", "Not found (or another team's)"),
                        (
                            "503",
                            "Database busy (Retry-After) or a stored secret cannot be decrypted",
                        ),
                    ]);
                    if operation
                        .tags
                        .as_ref()
                        .is_none_or(|t| !t.iter().any(|t| t == "webhooks"))
                    {
                        errors.push(("403", "Missing permission or role"));
                    }
                }
                if has_body(operation)
                    || operation
                        .tags
                        .as_ref()
                        .is_some_and(|t| t.iter().any(|t| t == "webhooks"))
                {
                    errors.extend([
                        ("408", "The body did not arrive in time"),
                        ("413", "Body too large"),
                        ("415", "Not JSON, or a Content-Encoding"),
                    ]);
                }
                for (status, description) in errors {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
    })
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
