//! PostgreSQL backend: connection options, migrations and the SQL that differs from SQLite.

use std::time::Duration;

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

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

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}
