//! `rcsync sync` and `rcsync jobs`: trigger resyncs and follow job runs from the command line,
//! against the database directly (the runs themselves execute in `serve`/`worker` processes).
//! JSON goes to stdout; the progress bar and hints go to stderr.

use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::config::Settings;
use crate::services::resync_runs::{self, JobRunView, TriggerRequest, Triggered};
use crate::services::Services;
use crate::startup::open_services;
use crate::store::job_runs::{JobRun, JobRunQuery, JobStatus};

/// How often `--wait` reads the run.
const POLL: Duration = Duration::from_millis(500);
/// After this long in `pending`, `--wait` says that no worker seems to be running.
const NO_WORKER_HINT_AFTER: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The project to resync.
    #[arg(long)]
    project: String,
    /// Sync this one user now (as `POST …/revenuecat/sync/:userId` does) instead of every user.
    #[arg(long)]
    user: Option<String>,
    /// Also import RevenueCat customers the project does not know (pages the customer list).
    #[arg(long, conflicts_with = "user")]
    import_missing: bool,
    /// Show progress until the run ends; exit non-zero unless it completed.
    #[arg(long, conflicts_with = "user")]
    wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Show one job run (any team's: the CLI holds the database).
    Show {
        id: String,
        /// Show progress until the run ends; exit non-zero unless it completed.
        #[arg(long)]
        wait: bool,
    },
    /// List a team's job runs, newest first.
    List {
        #[arg(long)]
        team: String,
        /// Only runs with this status (pending, running, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1–200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn print_run(run: &JobRun) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(&JobRunView::from(run))?);
    Ok(())
}

pub async fn sync(settings: &Settings, args: SyncArgs) -> anyhow::Result<()> {
    let services = open_services(settings).await?;
    if let Some(user_id) = &args.user {
        let synced = services
            .sync
            .sync_user_within_deadline(&args.project, user_id)
            .await?;
        println!("{}", synced.answer());
        return Ok(());
    }
    let project = services
        .store
        .get_project(&args.project)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no project with id {}", args.project))?;
    let triggered = resync_runs::trigger(
        &services,
        TriggerRequest {
            team_id: &project.team_id,
            project_id: &project.id,
            triggered_by: "cli",
            import_missing: args.import_missing,
        },
    )
    .await?;
    let run = match triggered {
        Triggered::NothingToSync => {
            println!("{}", json!({"synced": 0, "total": 0}));
            return Ok(());
        }
        Triggered::Started(run) => run,
    };
    if !args.wait {
        println!(
            "{}",
            json!({"syncing": true, "total": run.progress_total, "job_run_id": run.id})
        );
        return Ok(());
    }
    follow(&services, &run.id).await
}

pub async fn jobs(settings: &Settings, cmd: JobsCommand) -> anyhow::Result<()> {
    let services = open_services(settings).await?;
    match cmd {
        JobsCommand::Show { id, wait: false } => {
            let run = find(&services, &id).await?;
            print_run(&run)
        }
        JobsCommand::Show { id, wait: true } => follow(&services, &id).await,
        JobsCommand::List {
            team,
            status,
            limit,
        } => {
            if !(1..=200).contains(&limit) {
                anyhow::bail!("--limit must be between 1 and 200");
            }
            let status = match status {
                Some(s) => Some(JobStatus::parse(&s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--status must be pending, running, completed, failed or cancelled"
                    )
                })?),
                None => None,
            };
            let runs = resync_runs::list(
                &services,
                JobRunQuery {
                    team_id: &team,
                    job_type: None,
                    status,
                    project_id: None,
                    since_ms: None,
                    until_ms: None,
                    before: None,
                    limit,
                },
            )
            .await?;
            let views: Vec<JobRunView<'_>> = runs.iter().map(JobRunView::from).collect();
            println!("{}", json!({ "job_runs": views }));
            Ok(())
        }
    }
}

async fn find(services: &Services, id: &str) -> anyhow::Result<JobRun> {
    services
        .store
        .get_job_run(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no job run with id {id}"))
}

/// Draws the run's progress until it ends, prints it, and fails unless it completed.
async fn follow(services: &Services, id: &str) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} users ({per_sec}, ETA {eta}) {msg}",
        )?
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let mut hinted = false;
    let run = loop {
        let run = find(services, id).await?;
        bar.set_length(run.progress_total.max(0) as u64);
        bar.set_position(run.progress_processed.max(0) as u64);
        if let Some(message) = &run.progress_message {
            bar.set_message(message.clone());
        }
        let status = run.status().unwrap_or(JobStatus::Failed);
        if !status.is_active() {
            break run;
        }
        if status == JobStatus::Pending && !hinted && started.elapsed() > NO_WORKER_HINT_AFTER {
            bar.println(
                "still pending: is an `rcsync serve` or `rcsync worker` process running on this database?",
            );
            hinted = true;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    print_run(&run)?;
    match run.status() {
        Some(JobStatus::Completed) => Ok(()),
        _ => anyhow::bail!(
            "job run {} ended {}{}",
            run.id,
            run.status,
            run.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
    }
}
