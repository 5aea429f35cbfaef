//! SQLite backend: connection options, migrations and the SQL that differs from PostgreSQL.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{StoreError, MIGRATIONS_TABLE};

/// Writers queue on SQLite's single write lock; a generous timeout turns contention into
/// waiting instead of `database is locked` errors (which would also kill apalis workers).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CONNECTIONS: u32 = 8;

/// The shared pool (reads, apalis) and our single-connection writer pool.
pub async fn connect(url: &str) -> Result<(SqlitePool, SqlitePool), StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a 200 to RevenueCat promises the event survives power loss, not just kill -9.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options.clone())
        .await?;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        // Queued writers wait here instead of on the file lock.
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok((pool, writer))
}

pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}
