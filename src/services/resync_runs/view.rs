//! The job run object of DESIGN §2, shown by the jobs API and the CLI alike.

use serde::Serialize;
use serde_json::Value;

use crate::store::job_runs::{JobRun, JobStatus};
use crate::timestamp::serde_iso;

#[derive(Serialize)]
struct Progress<'a> {
    processed: i64,
    total: i64,
    message: Option<&'a str>,
}

/// DESIGN's job run object, as the jobs API and the CLI show it.
#[derive(Serialize)]
pub struct JobRunView<'a> {
    id: &'a str,
    job_type: &'a str,
    status: &'a str,
    team_id: &'a str,
    project_id: &'a str,
    triggered_by: &'a str,
    params: &'a Value,
    progress: Progress<'a>,
    result: Option<&'a Value>,
    error: Option<&'a str>,
    #[serde(with = "serde_iso::option")]
    started_at: Option<i64>,
    #[serde(with = "serde_iso::option")]
    completed_at: Option<i64>,
    #[serde(with = "serde_iso")]
    created_at: i64,
    /// A cancel was asked for and the run has not stopped yet.
    cancel_requested: bool,
}

impl<'a> From<&'a JobRun> for JobRunView<'a> {
    fn from(run: &'a JobRun) -> Self {
        JobRunView {
            id: &run.id,
            job_type: &run.job_type,
            status: &run.status,
            team_id: &run.team_id,
            project_id: &run.project_id,
            triggered_by: &run.triggered_by,
            params: &run.params.0,
            progress: Progress {
                processed: run.progress_processed,
                total: run.progress_total,
                message: run.progress_message.as_deref(),
            },
            result: run.result.as_ref().map(|r| &r.0),
            error: run.error.as_deref(),
            started_at: run.started_at,
            completed_at: run.completed_at,
            created_at: run.created_at,
            cancel_requested: run.cancel_requested && run.status == JobStatus::Running.as_str(),
        }
    }
}
