//! Builds the application from [`Settings`]: the same path for `main` and for tests.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::jwt::JwtVerifier;
use crate::auth::Authenticator;
use crate::clock::SharedClock;
use crate::config::{
    Settings, API_BODY_LIMIT, CLIENT_DISCONNECT_TIMEOUT, CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE,
    SHUTDOWN_GRACE,
};
use crate::http::{self, BodyTimeout};
use crate::jobs::JobRuntime;
use crate::metrics::Metrics;
use crate::queue::JobQueue;
use crate::revenuecat::{ClientConfig, RevenueCatClient};
use crate::services::health::{Readiness, WorkerHealth};
use crate::services::revenuecat_sync::RevenueCatSync;
use crate::services::shared_budget::StoreBudget;
use crate::services::webhook_provisioning::WebhookProvisioner;
use crate::services::webhooks::WebhookReceiver;
use crate::services::Services;
use crate::store::Store;

/// Opens the database on the wall clock and applies our migrations and apalis's.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    open_store_with_clock(settings, SharedClock::system()).await
}

/// [`open_store`] on a given clock (tests drive a manual one).
pub async fn open_store_with_clock(
    settings: &Settings,
    clock: SharedClock,
) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database, settings.master_key.clone(), clock).await?;
    store.migrate().await?;
    JobQueue::migrate(&store).await?;
    Ok(store)
}

/// The services every process shares, built from the settings; the store brings the clock.
fn build_services(settings: &Settings, store: Store) -> anyhow::Result<Services> {
    let metrics = Metrics::new();
    let mut client_config = ClientConfig::new(settings.revenuecat_api_url.clone());
    client_config.metrics = metrics.revenuecat.clone();
    client_config.customer_rate_limit_per_min = settings.rc_rate_limit;
    client_config.key_check_rate_limit_per_min = settings.rc_key_check_rate_limit;
    client_config.base_backoff = settings.jobs.rc_first_backoff;
    client_config.max_backoff = settings.jobs.rc_max_backoff;
    // Processes sharing a PostgreSQL database share each key's budget through it.
    let client = match StoreBudget::for_store(&store) {
        Some(budget) => RevenueCatClient::with_shared_budget(client_config, Arc::new(budget))?,
        None => RevenueCatClient::new(client_config)?,
    };
    let sync =
        RevenueCatSync::new(store.clone(), client).with_request_deadline(settings.rc_deadline);
    Ok(Services {
        queue: JobQueue::new(&store),
        provisioner: WebhookProvisioner::new(
            store.clone(),
            sync.clone(),
            settings.public_url.clone(),
            settings.rc_deadline,
        ),
        sync,
        webhooks: WebhookReceiver::start(
            store.clone(),
            settings.jobs.follow_up_debounce,
            metrics.webhooks.clone(),
        ),
        timings: settings.jobs.clone(),
        instance_id: format!("{}-{}", std::process::id(), ulid::Ulid::new()),
        resync_slots: Arc::new(tokio::sync::Semaphore::new(settings.max_resync_runs)),
        metrics,
        event_retention: settings.event_retention,
        store,
    })
}

/// The services without HTTP or workers, for CLI commands that act as the API would.
pub async fn open_services(settings: &Settings) -> anyhow::Result<Services> {
    let store = open_store(settings).await?;
    build_services(settings, store)
}

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP API and job workers (the embedded default).
    ApiAndWorkers,
    /// HTTP API only (scale-out with separate `rcsync worker` processes).
    ApiOnly,
}

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    jobs: Option<JobRuntime>,
}

impl Application {
    pub async fn build(settings: Settings, role: Role) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        Self::build_with(settings, store, listener, role).await
    }

    pub async fn build_with(
        settings: Settings,
        store: Store,
        listener: TcpListener,
        role: Role,
    ) -> anyhow::Result<Self> {
        let services = build_services(&settings, store)?;
        let jobs = match role {
            Role::ApiAndWorkers => Some(JobRuntime::start(Arc::new(services.clone())).await?),
            Role::ApiOnly => None,
        };
        let port = listener.local_addr()?.port();
        let server = http_server(
            &settings,
            &services,
            jobs.as_ref().map(JobRuntime::health),
            listener,
        )?;
        Ok(Self {
            port,
            server,
            services,
            jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until SIGINT/SIGTERM, then stops API and workers together: no new requests or
    /// tasks are taken, in-flight ones get [`SHUTDOWN_GRACE`] to finish, the pool closes last.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let result = tokio::select! {
            result = &mut server => result.unwrap_or(Ok(())),
            () = shutdown_signal() => {
                tracing::info!("shutdown signal received; draining requests and jobs");
                handle.stop(true).await;
                server.await.unwrap_or(Ok(()))
            }
        };
        if let Some(jobs) = self.jobs {
            jobs.shutdown().await;
        }
        self.services.store.close().await;
        result
    }
}

fn http_server(
    settings: &Settings,
    services: &Services,
    workers: Option<WorkerHealth>,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let authenticator = web::Data::new(Authenticator {
        store: services.store.clone(),
        jwt: settings.jwt_secret.as_ref().map(JwtVerifier::new),
    });
    let readiness = web::Data::new(Readiness {
        store: services.store.clone(),
        workers,
    });
    let store = web::Data::new(services.store.clone());
    let shared = web::Data::new(services.clone());
    let sync = web::Data::new(services.sync.clone());
    let webhooks = web::Data::new(services.webhooks.clone());
    let provisioner = web::Data::new(services.provisioner.clone());
    let body_timeout = BodyTimeout(settings.request_body_timeout);
    let cors_origins = settings.cors_origins.clone();
    let server = HttpServer::new(move || {
        App::new()
            // The last `wrap` runs first: CORS answers preflights and decorates every answer
            // (errors included), every request is logged, then its body guarded.
            .wrap(from_fn(http::guard_body))
            .wrap(TracingLogger::default())
            .wrap(Condition::new(
                !cors_origins.is_empty(),
                http::cors(&cors_origins),
            ))
            .app_data(body_timeout)
            .app_data(http::json_config(API_BODY_LIMIT))
            .app_data(http::path_config())
            .app_data(http::query_config())
            .app_data(authenticator.clone())
            .app_data(readiness.clone())
            .app_data(store.clone())
            .app_data(shared.clone())
            .app_data(sync.clone())
            .app_data(webhooks.clone())
            .app_data(provisioner.clone())
            .configure(http::routes)
            .default_service(web::to(http::not_found))
    })
    // Slow clients: the head within CLIENT_REQUEST_TIMEOUT, the body within the body timeout
    // (guard_body), idle keep-alive connections closed after KEEP_ALIVE.
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
    .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}

/// Job workers without the HTTP API (`rcsync worker`), until SIGINT/SIGTERM.
pub async fn run_workers_until_stopped(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let services = build_services(&settings, store)?;
    let jobs = JobRuntime::start(Arc::new(services.clone())).await?;
    shutdown_signal().await;
    tracing::info!("shutdown signal received; finishing running jobs");
    jobs.shutdown().await;
    services.store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
