//! The webhook event log (DESIGN §2, seed 002's paging):
//! `GET /v1/projects/:projectId/integrations/revenuecat/events`, `GET …/events/:eventId`,
//! `POST …/events/:eventId/replay`.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR_B64;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::jobs::parse_time;
use crate::auth::{authorize_project, Principal};
use crate::domain::app_user::has_nul;
use crate::domain::permission::Permission;
use crate::services::event_log::{self, canonical_environment, canonical_event_type};
use crate::services::Services;
use crate::store::event_history::HistoryEntry;
use crate::store::event_log::{EventFilter, LogPosition, LoggedEvent, PageFrom};
use crate::store::webhook_events::{EventStatus, StoredWebhookEvent};
use crate::timestamp::serde_iso;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;

/// One webhook event as the log shows it.
#[derive(Serialize, ToSchema)]
pub struct EventView<'a> {
    /// RevenueCat's `event.id`.
    id: &'a str,
    /// RevenueCat's event type (`INITIAL_PURCHASE`, `RENEWAL`, …).
    #[serde(rename = "type")]
    event_type: &'a str,
    app_user_id: Option<&'a str>,
    /// The user the event applied to (`null` until an anonymous-only event is resolved, and
    /// for TRANSFER, ignored and skipped events).
    user_id: Option<&'a str>,
    /// `production` or `sandbox` (as RevenueCat sent it).
    environment: Option<&'a str>,
    /// RevenueCat's `event_timestamp_ms`.
    #[serde(with = "serde_iso")]
    #[schema(value_type = String, format = DateTime)]
    event_timestamp: i64,
    #[serde(with = "serde_iso")]
    #[schema(value_type = String, format = DateTime)]
    received_at: i64,
    #[schema(value_type = EventStatusName)]
    status: &'a str,
    status_detail: Option<&'a str>,
}

/// Where an event ended up.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the values of `status`
pub enum EventStatusName {
    Applied,
    Superseded,
    Ignored,
    PendingResolution,
    Skipped,
    Failed,
}

impl<'a> From<&'a LoggedEvent> for EventView<'a> {
    fn from(e: &'a LoggedEvent) -> Self {
        EventView {
            id: &e.event_id,
            event_type: &e.event_type,
            app_user_id: e.app_user_id.as_deref(),
            user_id: e.target_user_id.as_deref(),
            environment: e.environment.as_deref(),
            event_timestamp: e.event_timestamp_ms,
            received_at: e.received_at,
            status: &e.status,
            status_detail: e.status_detail.as_deref(),
        }
    }
}

impl<'a> From<&'a StoredWebhookEvent> for EventView<'a> {
    fn from(e: &'a StoredWebhookEvent) -> Self {
        EventView {
            id: &e.event_id,
            event_type: &e.event_type,
            app_user_id: e.app_user_id.as_deref(),
            user_id: e.target_user_id.as_deref(),
            environment: e.environment.as_deref(),
            event_timestamp: e.event_timestamp_ms,
            received_at: e.received_at,
            status: &e.status,
            status_detail: e.status_detail.as_deref(),
        }
    }
}

/// A page of the log, newest first. Cursors are opaque; pass the filters again with them.
#[derive(Serialize, ToSchema)]
pub struct EventPageView<'a> {
    items: Vec<EventView<'a>>,
    /// The first item's position: `before` it reads newer events.
    start_cursor: Option<String>,
    /// The last item's position: `after` it reads older events.
    end_cursor: Option<String>,
    /// Older events exist after `end_cursor`.
    has_next_page: bool,
    /// Newer events exist before `start_cursor`.
    has_previous_page: bool,
}

/// One step of an event's processing.
#[derive(Serialize, ToSchema)]
pub struct HistoryView<'a> {
    #[serde(with = "serde_iso")]
    #[schema(value_type = String, format = DateTime)]
    at: i64,
    /// `received` (the delivery), `resolution` (finding the user of an anonymous-only
    /// event), or `replay`.
    action: &'a str,
    /// The status it left the event in.
    #[schema(value_type = EventStatusName)]
    status: &'a str,
    status_detail: Option<&'a str>,
}

/// One event with its stored payload (as RevenueCat sent it, customer attributes included)
/// and its processing history, oldest first.
#[derive(Serialize, ToSchema)]
pub struct EventDetailView<'a> {
    #[serde(flatten)]
    event: EventView<'a>,
    /// The body RevenueCat delivered.
    #[schema(value_type = Object)]
    payload: Value,
    history: Vec<HistoryView<'a>>,
}

/// The history as shown: the delivery, then every later step. Nothing is written on receipt,
/// so the status the event was received with is the one the first later step started from.
fn history_of<'a>(
    event: &'a StoredWebhookEvent,
    later: &'a [HistoryEntry],
) -> Vec<HistoryView<'a>> {
    let (status, detail) = match later.first() {
        Some(first) => (
            first.previous_status.as_str(),
            first.previous_detail.as_deref(),
        ),
        None => (event.status.as_str(), event.status_detail.as_deref()),
    };
    let received = HistoryView {
        at: event.received_at,
        action: "received",
        status,
        status_detail: detail,
    };
    std::iter::once(received)
        .chain(later.iter().map(|entry| HistoryView {
            at: entry.at,
            action: &entry.action,
            status: &entry.status,
            status_detail: entry.status_detail.as_deref(),
        }))
        .collect()
}

fn encode_cursor(at: LogPosition) -> String {
    CURSOR_B64.encode(format!("{}:{}", at.received_at, at.seq))
}

fn decode_cursor(cursor: &str) -> Result<LogPosition, ApiError> {
    CURSOR_B64
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (at, seq) = text.split_once(':')?;
            Some(LogPosition {
                received_at: at.parse().ok()?,
                seq: seq.parse().ok()?,
            })
        })
        .ok_or_else(|| ApiError::BadRequest("Invalid cursor".into()))
}

/// The list query, parsed: filters (owned), where the page starts, its size.
struct ListQuery {
    event_type: Option<String>,
    status: Option<EventStatus>,
    user_id: Option<String>,
    environment: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    from: PageFrom,
    limit: u32,
}

fn parse_list_query(query_string: &str) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        event_type: None,
        status: None,
        user_id: None,
        environment: None,
        from_ms: None,
        to_ms: None,
        from: PageFrom::Newest,
        limit: DEFAULT_PAGE_SIZE,
    };
    let mut after = None;
    let mut before = None;
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        if has_nul(&value) {
            return Err(ApiError::BadRequest(format!("{key} contains NUL")));
        }
        match key.as_ref() {
            "type" | "topic" => {
                let canonical = canonical_event_type(&value);
                if query.event_type.as_ref().is_some_and(|t| *t != canonical) {
                    return Err(ApiError::BadRequest(
                        "type and topic name the same filter; give one value".into(),
                    ));
                }
                query.event_type = Some(canonical);
            }
            "status" => {
                query.status = Some(EventStatus::parse(&value).ok_or_else(|| {
                    ApiError::BadRequest(
                        "status must be applied, superseded, ignored, pending_resolution, \
                         skipped or failed"
                            .into(),
                    )
                })?)
            }
            "user_id" => query.user_id = Some(value.into_owned()),
            "environment" => query.environment = Some(canonical_environment(&value)),
            "from_date" => query.from_ms = Some(parse_time("from_date", &value)?),
            "to_date" => query.to_ms = Some(parse_time("to_date", &value)?),
            "after" if value.is_empty() => {}
            "after" => after = Some(decode_cursor(&value)?),
            "before" if value.is_empty() => {}
            "before" => before = Some(decode_cursor(&value)?),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE_SIZE).contains(l))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit must be an integer between 1 and {MAX_PAGE_SIZE}"
                        ))
                    })?
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "Unknown query parameter: {other} (expected limit, after, before, type, \
                     topic, status, user_id, environment, from_date or to_date)"
                )))
            }
        }
    }
    query.from = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Give either after or before, not both".into(),
            ))
        }
        (Some(at), None) => PageFrom::OlderThan(at),
        (None, Some(at)) => PageFrom::NewerThan(at),
        (None, None) => PageFrom::Newest,
    };
    Ok(query)
}

/// The list's query parameters (parsed by hand, so unknown ones answer 400).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query string
pub struct EventListParams {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `end_cursor` of a page: the next page (older events).
    after: Option<String>,
    /// `start_cursor` of a page: the page before it (newer events).
    before: Option<String>,
    /// Event type, e.g. `RENEWAL` (any case).
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Alias of `type`.
    topic: Option<String>,
    #[param(inline, value_type = Option<EventStatusName>)]
    status: Option<String>,
    /// The user the event applied to.
    user_id: Option<String>,
    /// `production` or `sandbox`.
    environment: Option<String>,
    /// Received at or after this time (ISO 8601).
    #[param(value_type = Option<String>, format = DateTime)]
    from_date: Option<String>,
    /// Received before this time (ISO 8601).
    #[param(value_type = Option<String>, format = DateTime)]
    to_date: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/integrations/revenuecat/events",
    tag = "events",
    params(("project_id" = String, Path), EventListParams),
    responses(
        (status = 200, description = "A page of the event log, newest first", body = EventPageView),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Missing permission: integrations:read", body = ErrorBody),
        (status = 404, description = "No such project (or another team's)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let project = authorize_project(
        &principal,
        &services.store,
        &path,
        Permission::IntegrationsRead,
    )
    .await?;
    let query = parse_list_query(req.query_string())?;
    let filter = EventFilter {
        event_type: query.event_type.as_deref(),
        status: query.status,
        user_id: query.user_id.as_deref(),
        environment: query.environment.as_deref(),
        from_ms: query.from_ms,
        to_ms: query.to_ms,
    };
    let page = event_log::list(&services, &project.id, &filter, query.from, query.limit).await?;
    Ok(HttpResponse::Ok().json(EventPageView {
        start_cursor: page.events.first().map(|e| encode_cursor(e.position())),
        end_cursor: page.events.last().map(|e| encode_cursor(e.position())),
        has_next_page: page.has_older,
        has_previous_page: page.has_newer,
        items: page.events.iter().map(EventView::from).collect(),
    }))
}

fn checked_event_id(id: &str) -> Result<&str, ApiError> {
    if has_nul(id) {
        Err(ApiError::NotFound("Event not found".into()))
    } else {
        Ok(id)
    }
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project_id}/integrations/revenuecat/events/{event_id}",
    tag = "events",
    params(("project_id" = String, Path), ("event_id" = String, Path, description = "RevenueCat's event.id")),
    responses(
        (status = 200, description = "The event, its payload and history", body = EventDetailView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Missing permission: integrations:read", body = ErrorBody),
        (status = 404, description = "No such event or project", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_event(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, event_id) = path.into_inner();
    let project = authorize_project(
        &principal,
        &services.store,
        &project_id,
        Permission::IntegrationsRead,
    )
    .await?;
    let detail = event_log::get(&services, &project.id, checked_event_id(&event_id)?).await?;
    let event = &detail.event;
    // Stored bodies were JSON when received; show one that somehow is not as a string.
    let payload = serde_json::from_str(&event.payload)
        .unwrap_or_else(|_| Value::String(event.payload.clone()));
    Ok(HttpResponse::Ok().json(EventDetailView {
        event: EventView::from(event),
        payload,
        history: history_of(event, &detail.history),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project_id}/integrations/revenuecat/events/{event_id}/replay",
    tag = "events",
    params(("project_id" = String, Path), ("event_id" = String, Path, description = "RevenueCat's event.id")),
    responses(
        (status = 200, description = "Replayed: the event with its new status", body = EventView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Missing permission: integrations:write (admin role)", body = ErrorBody),
        (status = 404, description = "No such event or project, or no enabled RevenueCat integration", body = ErrorBody),
        (status = 409, description = "The stored payload cannot be replayed", body = ErrorBody),
        (status = 503, description = "Database busy; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn replay_event(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, event_id) = path.into_inner();
    let project = authorize_project(
        &principal,
        &services.store,
        &project_id,
        Permission::IntegrationsWrite,
    )
    .await?;
    let event = event_log::replay(&services, &project.id, checked_event_id(&event_id)?).await?;
    Ok(HttpResponse::Ok().json(EventView::from(&event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_400() {
        let at = LogPosition {
            received_at: 1_700_000_000_000,
            seq: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(at)).unwrap(), at);
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor(&CURSOR_B64.encode("1:x")).is_err());
    }

    #[test]
    fn after_and_before_together_are_refused() {
        let cursor = encode_cursor(LogPosition {
            received_at: 1,
            seq: 1,
        });
        assert!(parse_list_query(&format!("after={cursor}&before={cursor}")).is_err());
        assert!(parse_list_query("type=RENEWAL&topic=EXPIRATION").is_err());
        assert!(parse_list_query("type=renewal&topic=RENEWAL").is_ok());
        assert!(parse_list_query("limit=0").is_err());
        assert!(parse_list_query("nope=1").is_err());
    }
}
