//! Jobs (DESIGN §2): `GET /v1/teams/:teamId/jobs/:jobRunId` (seed 001's polling path),
//! `GET /v1/teams/:teamId/jobs`, `POST /v1/teams/:teamId/jobs/:jobRunId/cancel`, and the bulk
//! sync trigger `POST /v1/projects/:projectId/integrations/revenuecat/sync` (seed 001).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::cursor;
use super::error::ApiError;
use crate::auth::{authorize_project, Principal};
use crate::domain::app_user::has_nul;
use crate::domain::permission::Permission;
use crate::services::resync_runs::{self, JobRunView, TriggerRequest, Triggered};
use crate::services::Services;
use crate::store::job_runs::{JobRun, JobRunQuery, JobStatus, REVENUECAT_SYNC};

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;

/// Who triggered a run, as stored in `triggered_by`.
fn triggered_by(principal: &Principal) -> String {
    match principal {
        Principal::ApiKey(key) => format!("api_key:{}", key.id),
        Principal::Jwt(identity) => match &identity.subject {
            Some(subject) => format!("user:{subject}"),
            None => "user".to_owned(),
        },
    }
}

/// `?import_missing=true|false`, nothing else.
fn parse_trigger_query(query_string: &str) -> Result<bool, ApiError> {
    let mut import_missing = false;
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("import_missing", "true") => import_missing = true,
            ("import_missing", "false") => import_missing = false,
            ("import_missing", _) => {
                return Err(ApiError::BadRequest(
                    "import_missing must be true or false".into(),
                ))
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "Unknown query parameter: {other} (expected import_missing)"
                )))
            }
        }
    }
    Ok(import_missing)
}

pub async fn trigger_sync(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let project = authorize_project(
        &principal,
        &services.store,
        &path,
        Permission::IntegrationsWrite,
    )
    .await?;
    let import_missing = parse_trigger_query(req.query_string())?;
    let by = triggered_by(&principal);
    let triggered = resync_runs::trigger(
        &services,
        TriggerRequest {
            team_id: &project.team_id,
            project_id: &project.id,
            triggered_by: &by,
            import_missing,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(match triggered {
        Triggered::Started(run) => {
            json!({"syncing": true, "total": run.progress_total, "job_run_id": run.id})
        }
        Triggered::NothingToSync => json!({"synced": 0, "total": 0}),
    }))
}

fn checked_id(id: &str) -> Result<&str, ApiError> {
    if has_nul(id) {
        Err(ApiError::NotFound("Job run not found".into()))
    } else {
        Ok(id)
    }
}

pub async fn get_job(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team_id, run_id) = path.into_inner();
    principal.authorize_team(checked_id(&team_id)?, Permission::JobsRead)?;
    let run = resync_runs::get(&services, &team_id, checked_id(&run_id)?).await?;
    Ok(HttpResponse::Ok().json(JobRunView::from(&run)))
}

pub async fn cancel_job(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (team_id, run_id) = path.into_inner();
    principal.authorize_team(checked_id(&team_id)?, Permission::JobsWrite)?;
    let run = resync_runs::cancel(&services, &team_id, checked_id(&run_id)?).await?;
    Ok(HttpResponse::Ok().json(JobRunView::from(&run)))
}

/// The list query (DESIGN §2): every filter optional.
#[derive(Default)]
struct ListQuery {
    job_type: Option<String>,
    status: Option<JobStatus>,
    project_id: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    before: Option<(i64, String)>,
    limit: Option<u32>,
}

/// An ISO 8601 query value in ms since the epoch (400 naming `name` otherwise).
pub(super) fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be an ISO 8601 time like 2024-01-15T10:30:00.000Z"
            ))
        })
}

fn parse_list_query(query_string: &str) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery::default();
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        if has_nul(&value) {
            return Err(ApiError::BadRequest(format!("{key} contains NUL")));
        }
        match key.as_ref() {
            "job_type" if value == REVENUECAT_SYNC => query.job_type = Some(value.into_owned()),
            "job_type" => {
                return Err(ApiError::BadRequest(format!(
                    "job_type must be {REVENUECAT_SYNC}"
                )))
            }
            "status" => {
                query.status = Some(JobStatus::parse(&value).ok_or_else(|| {
                    ApiError::BadRequest(
                        "status must be pending, running, completed, failed or cancelled".into(),
                    )
                })?)
            }
            "project_id" => query.project_id = Some(value.into_owned()),
            "since" => query.since_ms = Some(parse_time("since", &value)?),
            "until" => query.until_ms = Some(parse_time("until", &value)?),
            "cursor" if value.is_empty() => {}
            "cursor" => query.before = Some(decode_cursor(&value)?),
            "limit" => {
                query.limit = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE_SIZE).contains(l))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "limit must be an integer between 1 and {MAX_PAGE_SIZE}"
                            ))
                        })?,
                )
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "Unknown query parameter: {other} (expected job_type, status, project_id, \
                     since, until, cursor or limit)"
                )))
            }
        }
    }
    Ok(query)
}

/// A cursor names the last run of a page (`created_at` and id), so runs that share a
/// timestamp are neither repeated nor skipped.
fn encode_cursor(run: &JobRun) -> String {
    cursor::encode(&format!("{}:{}", run.created_at, run.id))
}

fn decode_cursor(text: &str) -> Result<(i64, String), ApiError> {
    let text = cursor::decode(text)?;
    let (at, id) = text.split_once(':').ok_or_else(cursor::invalid)?;
    Ok((at.parse().map_err(|_| cursor::invalid())?, id.to_owned()))
}

pub async fn list_jobs(
    principal: Principal,
    services: web::Data<Services>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let team_id = path.into_inner();
    principal.authorize_team(checked_id(&team_id)?, Permission::JobsRead)?;
    let query = parse_list_query(req.query_string())?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    let mut runs = resync_runs::list(
        &services,
        JobRunQuery {
            team_id: &team_id,
            job_type: query.job_type.as_deref(),
            status: query.status,
            project_id: query.project_id.as_deref(),
            since_ms: query.since_ms,
            until_ms: query.until_ms,
            before: query.before.as_ref().map(|(at, id)| (*at, id.as_str())),
            limit: limit + 1,
        },
    )
    .await?;
    let has_more = runs.len() > limit as usize;
    runs.truncate(limit as usize);
    let cursor = has_more.then(|| runs.last().map(encode_cursor)).flatten();
    let job_runs: Vec<JobRunView<'_>> = runs.iter().map(JobRunView::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "job_runs": job_runs,
        "cursor": cursor,
        "has_more": has_more,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_400() {
        let (at, id) = decode_cursor(&cursor::encode("1700000000000:abc:def")).unwrap();
        assert_eq!((at, id.as_str()), (1_700_000_000_000, "abc:def"));
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor(&cursor::encode("nope")).is_err());
    }
}
