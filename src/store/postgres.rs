//! PostgreSQL backend: connection options, migrations and the SQL that differs from SQLite.

use std::str::FromStr;
use std::thread::ThreadId;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::{StoreError, MIGRATIONS_TABLE};

const MAX_CONNECTIONS: u32 = 16;
/// How long a statement waits for a row or table lock before it fails with `lock_not_available`
/// (55P03), which callers treat as contention: retried once, then 503 with `Retry-After`. Our
/// transactions hold locks for milliseconds; a wait this long means something else holds them
/// (a manual session, a migration), and a webhook must not hang on it until RevenueCat's 60 s
/// delivery timeout.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn connect(url: &SecretString) -> Result<PgPool, StoreError> {
    // Our batch statements have one text whatever the batch size, so each connection prepares
    // them once. PostgreSQL would then switch to a generic plan after five runs — chosen while
    // the tables may still be nearly empty, where a sequential scan looks cheapest, and kept as
    // they grow. Plan every execution for its actual arguments instead (planning costs far less
    // than the parse that prepared statements already save).
    let lock_timeout = format!("{}ms", LOCK_TIMEOUT.as_millis());
    let options = PgConnectOptions::from_str(url.expose_secret())?.options([
        ("plan_cache_mode", "force_custom_plan"),
        ("lock_timeout", lock_timeout.as_str()),
    ]);
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The runtime PostgreSQL connections are opened on: the one the store was opened on (the
/// process's main runtime).
///
/// A connection's socket belongs to the runtime that opened it and fails once that runtime
/// stops ("A Tokio 1.x context was found, but it is being shutdown"). The HTTP server runs its
/// own runtime on each worker thread, and those stop at shutdown while jobs still drain on the
/// main one: a pooled connection one of them had opened then failed under the job using it,
/// leaving its row `running`. Acquiring on the main runtime means no connection dies before
/// the process does; callers on other threads still use the connection where they are.
#[derive(Clone)]
pub(super) struct Home {
    runtime: tokio::runtime::Handle,
    /// The main runtime runs on one thread (`current_thread`): being on it needs no hop.
    thread: ThreadId,
}

impl Home {
    /// The current runtime, if there is one.
    pub(super) fn here() -> Option<Home> {
        tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| Home {
                runtime,
                thread: std::thread::current().id(),
            })
    }

    /// A pooled connection, opened (if the pool needs a new one) on this runtime.
    pub(super) async fn acquire(
        &self,
        pool: &PgPool,
    ) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        if std::thread::current().id() == self.thread {
            return pool.acquire().await;
        }
        match self.runtime.spawn(pool.acquire()).await {
            Ok(acquired) => acquired,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The main runtime is gone: the process is ending.
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}
