//! PostgreSQL backend: connection options, migrations and the SQL that differs from SQLite.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{StoreError, MIGRATIONS_TABLE};

const MAX_CONNECTIONS: u32 = 16;

pub async fn connect(url: &SecretString) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url.expose_secret())
        .await?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}
