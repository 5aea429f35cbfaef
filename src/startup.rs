//! Builds the application from [`Settings`]: the same path for `main` and for tests.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;
use url::Url;

use crate::auth::jwt::JwtVerifier;
use crate::auth::Authenticator;
use crate::config::{Settings, API_BODY_LIMIT};
use crate::http;
use crate::store::Store;

/// Base URL handed out in `webhook_setup.webhook_url`.
pub struct PublicUrl(pub Url);

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE_SECS: u64 = 30;

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
}

/// Opens the database and applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database, settings.master_key.clone()).await?;
    store.migrate().await?;
    Ok(store)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        Self::build_with(settings, store, listener)
    }

    pub fn build_with(
        settings: Settings,
        store: Store,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let authenticator = web::Data::new(Authenticator {
            store: store.clone(),
            jwt: settings.jwt_secret.as_ref().map(JwtVerifier::new),
        });
        let store_data = web::Data::new(store.clone());
        let public_url = web::Data::new(PublicUrl(settings.public_url.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(http::json_config(API_BODY_LIMIT))
                .app_data(http::path_config())
                .app_data(http::query_config())
                .app_data(authenticator.clone())
                .app_data(store_data.clone())
                .app_data(public_url.clone())
                .configure(http::routes)
                .default_service(web::to(http::not_found))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests and closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.store.close().await;
        result
    }
}
