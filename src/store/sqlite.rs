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
/// How often the WAL is copied back into the database file, from a pooled connection beside
/// the writer: a checkpoint on the writer (every 1,000 pages by default) holds up every batch
/// behind it while it copies pages and fsyncs the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL pages after which the writer checkpoints after all. Only a checkpoint that catches up
/// with the writer lets the next transaction start the WAL over, and under sustained load the
/// background one never does (the writer appends meanwhile): without this the WAL grew to
/// 2.6 GB in `make bench`. By then the background checkpoints have copied nearly everything,
/// so the writer's is short. 4,000 pages bound the WAL at about 16 MB.
const WRITER_CHECKPOINT_PAGES: &str = "4000";

/// Page cache of the writer connection, in KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: &str = "-32768";

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
        .connect_with(
            options
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                // A multi-row statement inside a transaction keeps a statement journal (to undo
                // itself alone if it fails); past 64 KiB it spills to a temporary file, which
                // cost as many writes as the WAL itself. Keep it in memory.
                .pragma("temp_store", "memory")
                // Every batch inserts into indexes at random places (event ids, users): a
                // cache that holds their upper levels and recent leaves saves a read for most
                // of them. 32 MiB, filled only as pages are used.
                .pragma("cache_size", WRITER_CACHE_KIB),
        )
        .await?;
    spawn_checkpointer(pool.clone());
    Ok((pool, writer))
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] until the pool is closed. A checkpoint that
/// fails (the database busy, for example) is simply done by the next one.
fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint failed; the next one retries");
            }
        }
    });
}

pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}
