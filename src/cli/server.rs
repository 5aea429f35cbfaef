use crate::config::Settings;
use crate::startup::{run_workers_until_stopped, Application, Role};

pub async fn serve(settings: Settings, role: Role) -> anyhow::Result<()> {
    let bind = settings.bind;
    let app = Application::build(settings, role).await?;
    tracing::info!(%bind, ?role, "rcsync listening");
    app.run_until_stopped().await?;
    tracing::info!("rcsync stopped");
    Ok(())
}

pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    tracing::info!("rcsync worker started");
    run_workers_until_stopped(settings).await?;
    tracing::info!("rcsync worker stopped");
    Ok(())
}
