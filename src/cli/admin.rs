//! Administrative commands. Each prints JSON on stdout and nothing else there.

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::auth::api_key::generate_api_key;
use crate::config::Settings;
use crate::domain::permission::{parse_permission_list, Permission};
use crate::startup::open_store;
use crate::store::tenancy::NewApiKey;
use crate::store::Store;

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    #[arg(long)]
    team_name: String,
    #[arg(long)]
    project_name: String,
    /// Reuse the host platform's team id [default: a new UUID].
    #[arg(long)]
    team_id: Option<String>,
    /// Reuse the host platform's project id [default: a new UUID].
    #[arg(long)]
    project_id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TeamsCommand {
    /// Create a team.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectsCommand {
    /// Create a project in a team.
    Create {
        #[arg(long)]
        team_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key; the key is printed once and never again.
    Create {
        #[arg(long)]
        team_id: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Comma-separated permissions [default: all].
        #[arg(long)]
        permissions: Option<String>,
    },
    /// List a team's API keys (never the keys themselves).
    List {
        #[arg(long)]
        team_id: String,
    },
    /// Revoke an API key by id.
    Revoke { id: String },
}

fn new_id(explicit: Option<String>) -> anyhow::Result<String> {
    match explicit {
        Some(id) if id.trim().is_empty() || id.len() > 128 => {
            anyhow::bail!("--id must be 1 to 128 characters")
        }
        Some(id) => Ok(id),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    open_store(settings).await?;
    eprintln!("migrations applied");
    Ok(())
}

async fn issue_key(
    store: &Store,
    team_id: &str,
    name: &str,
    permissions: &[Permission],
) -> anyhow::Result<(String, String)> {
    let generated = generate_api_key();
    let id = uuid::Uuid::new_v4().to_string();
    store
        .create_api_key(NewApiKey {
            id: &id,
            team_id,
            name,
            key_prefix: &generated.display_prefix,
            key_hash: &generated.hash,
            permissions,
        })
        .await?;
    Ok((id, generated.key.expose_secret().to_owned()))
}

pub async fn bootstrap(settings: &Settings, args: BootstrapArgs) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let team = store
        .create_team(&new_id(args.team_id)?, &args.team_name)
        .await?;
    let project = store
        .create_project(&new_id(args.project_id)?, &team.id, &args.project_name)
        .await?;
    let (_, api_key) = issue_key(&store, &team.id, "bootstrap admin", &Permission::ALL).await?;
    print_json(json!({"team_id": team.id, "project_id": project.id, "api_key": api_key}));
    Ok(())
}

pub async fn teams(settings: &Settings, cmd: TeamsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        TeamsCommand::Create { name, id } => {
            let team = store.create_team(&new_id(id)?, &name).await?;
            print_json(serde_json::to_value(team)?);
        }
    }
    Ok(())
}

pub async fn projects(settings: &Settings, cmd: ProjectsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        ProjectsCommand::Create { team_id, name, id } => {
            let project = store.create_project(&new_id(id)?, &team_id, &name).await?;
            print_json(serde_json::to_value(project)?);
        }
    }
    Ok(())
}

pub async fn keys(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        KeysCommand::Create {
            team_id,
            name,
            permissions,
        } => {
            let permissions = match permissions {
                Some(list) => parse_permission_list(&list)?,
                None => Permission::ALL.to_vec(),
            };
            if permissions.is_empty() {
                anyhow::bail!("--permissions must name at least one permission");
            }
            let (id, key) = issue_key(&store, &team_id, &name, &permissions).await?;
            print_json(
                json!({"id": id, "team_id": team_id, "api_key": key, "permissions": permissions}),
            );
        }
        KeysCommand::List { team_id } => {
            print_json(json!({ "api_keys": store.list_api_keys(&team_id).await? }));
        }
        KeysCommand::Revoke { id } => {
            if !store.revoke_api_key(&id).await? {
                anyhow::bail!("no active API key with id {id}");
            }
            print_json(json!({"id": id, "revoked": true}));
        }
    }
    Ok(())
}
