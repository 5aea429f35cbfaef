//! The `rcsync` command line: one function per command.

use clap::{Parser, Subcommand};

use crate::config::{Flags, SECRETS_HELP};
use crate::startup::Role;

mod admin;
mod jobs;
mod server;

#[derive(Parser, Debug)]
#[command(
    name = "rcsync",
    version,
    about = "RevenueCat webhook receiver and user-property sync service",
    long_about = "RevenueCat webhook receiver and user-property sync service.\n\n\
        Every setting is a flag and an environment variable (RCSYNC_*), except secrets (below). \
        With no command, `serve` runs.",
    after_help = SECRETS_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Flags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API and run the job workers [default].
    Serve {
        /// Serve the API only; run jobs in separate `rcsync worker` processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run job workers only (scale-out next to `serve --no-workers`).
    Worker,
    /// Apply database migrations (idempotent) and exit.
    Migrate,
    /// Create a team, a project and an admin API key; print them as one JSON object.
    Bootstrap(admin::BootstrapArgs),
    /// Manage teams.
    #[command(subcommand)]
    Teams(admin::TeamsCommand),
    /// Manage projects.
    #[command(subcommand)]
    Projects(admin::ProjectsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Resync a project's users from RevenueCat (a `revenuecat_sync` job), or one user now.
    Sync(jobs::SyncArgs),
    /// Show and list job runs.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
}

/// Runs the parsed command; errors are printed by `main` as one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli
        .settings
        .into_raw(|name| std::env::var_os(name))?
        .resolve()?;
    crate::telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve { no_workers: false }) {
        Command::Serve { no_workers: false } => server::serve(settings, Role::ApiAndWorkers).await,
        Command::Serve { no_workers: true } => server::serve(settings, Role::ApiOnly).await,
        Command::Worker => server::worker(settings).await,
        Command::Migrate => admin::migrate(&settings).await,
        Command::Bootstrap(args) => admin::bootstrap(&settings, args).await,
        Command::Teams(cmd) => admin::teams(&settings, cmd).await,
        Command::Projects(cmd) => admin::projects(&settings, cmd).await,
        Command::Keys(cmd) => admin::keys(&settings, cmd).await,
        Command::Sync(args) => jobs::sync(&settings, args).await,
        Command::Jobs(cmd) => jobs::jobs(&settings, cmd).await,
    }
}
