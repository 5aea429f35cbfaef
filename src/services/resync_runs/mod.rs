//! Full-project resyncs: `revenuecat_sync` job runs (seed 001's bulk sync, DESIGN §2 "Jobs").
//!
//! A run is a `job_runs` row (the source of truth the jobs API shows) and an apalis task that
//! only names it. Triggering creates the row — at most one pending or running per project, a
//! rule the database enforces — and the dispatcher pushes its task; [`run`] does the work,
//! checkpointing after every batch so a run taken over after a crash resumes where it stopped.
//!
//! Plan: every identified user is looked up by id (`strategy: "lookup"`): RevenueCat's
//! customer list carries no entitlements, so listing never replaces the per-user calls, and a
//! project's users are found without paging a list that may hold millions of customers the
//! project does not care about. Only `import_missing` pages the list, after the lookups, to
//! find customers the project does not know (`"lookup_then_list"`).

mod report;
mod run;
mod view;

use serde_json::{json, Value};

pub use report::{Drift, RunCounters, UserError};
pub use run::run;
pub use view::JobRunView;

use super::Services;
use crate::domain::integration::REVENUECAT;
use crate::store::job_runs::{
    CancelOutcome, CreateJobRun, JobRun, JobRunQuery, JobStatus, NewJobRun, REVENUECAT_SYNC,
};
use crate::store::StoreError;

pub const STRATEGY_LOOKUP: &str = "lookup";
pub const STRATEGY_WITH_IMPORT: &str = "lookup_then_list";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("RevenueCat integration is not configured or is disabled for this project")]
    NotConfigured,
    #[error("A RevenueCat sync is already pending or running for this project")]
    AlreadyActive { existing_run_id: String },
    #[error("Job run not found")]
    NotFound,
    #[error("Only a pending or running job can be cancelled (this one is {0})")]
    NotCancellable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a trigger asks for.
#[derive(Debug, Clone)]
pub struct TriggerRequest<'a> {
    pub team_id: &'a str,
    pub project_id: &'a str,
    /// Who asked: `api_key:<id>`, `user:<jwt sub>`, `cli`, `schedule`.
    pub triggered_by: &'a str,
    /// Also page RevenueCat's customer list and import customers the project does not know.
    pub import_missing: bool,
}

#[derive(Debug)]
pub enum Triggered {
    Started(Box<JobRun>),
    /// No identified user and nothing to import: seed 001's `{"synced": 0, "total": 0}`.
    NothingToSync,
}

/// The run's parameters as stored in `params`.
fn params(import_missing: bool) -> Value {
    json!({ "import_missing": import_missing })
}

fn import_missing(run: &JobRun) -> bool {
    run.params.0["import_missing"].as_bool() == Some(true)
}

/// Creates a run for the project unless one is pending or running (409 with its id).
pub async fn trigger(
    services: &Services,
    request: TriggerRequest<'_>,
) -> Result<Triggered, RunError> {
    let store = &services.store;
    store
        .get_active_integration(request.project_id, REVENUECAT)
        .await?
        .filter(|integration| integration.enabled)
        .ok_or(RunError::NotConfigured)?;
    let total = store.count_identified_users(request.project_id).await?;
    if total == 0 && !request.import_missing {
        return Ok(Triggered::NothingToSync);
    }
    let params = params(request.import_missing);
    let created = store
        .create_job_run(NewJobRun {
            job_type: REVENUECAT_SYNC,
            team_id: request.team_id,
            project_id: request.project_id,
            triggered_by: request.triggered_by,
            params: &params,
            total,
        })
        .await?;
    match created {
        CreateJobRun::Created(run) => {
            tracing::info!(run_id = %run.id, project_id = %run.project_id, total, "full resync requested");
            Ok(Triggered::Started(run))
        }
        CreateJobRun::AlreadyActive { existing_run_id } => {
            Err(RunError::AlreadyActive { existing_run_id })
        }
    }
}

/// A run of `team_id` (another team's run is not found, exactly like a missing one).
pub async fn get(services: &Services, team_id: &str, run_id: &str) -> Result<JobRun, RunError> {
    services
        .store
        .get_job_run(run_id)
        .await?
        .filter(|run| run.team_id == team_id)
        .ok_or(RunError::NotFound)
}

/// A page of a team's runs, newest first; one more than `limit` is read to tell whether
/// another page follows.
pub async fn list(services: &Services, query: JobRunQuery<'_>) -> Result<Vec<JobRun>, RunError> {
    Ok(services.store.list_job_runs(query).await?)
}

/// Cancels a pending run at once; a running one stops at its next check (within about a
/// second) with its partial result.
pub async fn cancel(services: &Services, team_id: &str, run_id: &str) -> Result<JobRun, RunError> {
    get(services, team_id, run_id).await?;
    match services.store.cancel_job_run(run_id).await? {
        CancelOutcome::Cancelled(run) | CancelOutcome::Requested(run) => Ok(run),
        CancelOutcome::NotActive(run) => Err(RunError::NotCancellable(run.status)),
        CancelOutcome::NotFound => Err(RunError::NotFound),
    }
}

/// Starts the scheduled runs that are due: integrations with `resync_interval_hours` whose
/// last run began at least that long ago (or never ran). The same one-active-run rule
/// applies, so a schedule never stacks runs. Returns how many it started.
pub async fn start_scheduled(services: &Services) -> Result<usize, StoreError> {
    let store = &services.store;
    let now = store.now_ms();
    let mut started = 0;
    for integration in store.scheduled_resync_integrations(REVENUECAT).await? {
        let Some(hours) = integration.config.resync_interval_hours() else {
            continue;
        };
        let interval_ms = i64::from(hours) * 3_600_000;
        let last = store
            .latest_job_run(&integration.project_id, REVENUECAT_SYNC)
            .await?;
        let due = match &last {
            Some(run) if JobStatus::parse(&run.status).is_some_and(JobStatus::is_active) => false,
            Some(run) => run.created_at + interval_ms <= now,
            // Never ran: the first one runs an interval after the integration was created.
            None => integration.created_at + interval_ms <= now,
        };
        if !due {
            continue;
        }
        let Some(project) = store.get_project(&integration.project_id).await? else {
            continue;
        };
        let request = TriggerRequest {
            team_id: &project.team_id,
            project_id: &project.id,
            triggered_by: "schedule",
            import_missing: false,
        };
        match trigger(services, request).await {
            Ok(Triggered::Started(_)) => started += 1,
            Ok(Triggered::NothingToSync) | Err(RunError::AlreadyActive { .. }) => {}
            Err(RunError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(project_id = %project.id, error = %e, "scheduled resync not started")
            }
        }
    }
    Ok(started)
}
