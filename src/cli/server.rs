use crate::config::Settings;
use crate::startup::Application;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind;
    let app = Application::build(settings).await?;
    tracing::info!(%bind, "rcsync listening");
    app.run_until_stopped().await?;
    tracing::info!("rcsync stopped");
    Ok(())
}

pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    crate::startup::open_store(&settings).await?;
    anyhow::bail!("no jobs yet: `rcsync worker` arrives with the RevenueCat sync jobs; `rcsync serve` is all you need for now")
}
