use crate::crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A row with the same unique key exists (explicit ids from the CLI, for example).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// A referenced row (team of a project, project of a user…) does not exist.
    #[error("{0} not found")]
    MissingReference(&'static str),
}

/// SQLite's primary result codes for "another connection holds the lock" (extended codes
/// carry them in the low byte).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
/// PostgreSQL's serialization failure and deadlock: the transaction may simply be run again.
const PG_SERIALIZATION_FAILURE: &str = "40001";
const PG_DEADLOCK_DETECTED: &str = "40P01";
/// A lock wait ran past `lock_timeout` (see [`super::postgres::LOCK_TIMEOUT`]).
const PG_LOCK_NOT_AVAILABLE: &str = "55P03";
/// PostgreSQL refusing connections for now (too many clients, starting up, shutting down).
const PG_CANNOT_CONNECT_NOW: &str = "57P03";
const PG_TOO_MANY_CONNECTIONS: &str = "53300";

impl StoreError {
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }

    pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
    }

    /// A row the write refers to does not exist (any more): a foreign key refused it.
    pub fn is_missing_reference(&self) -> bool {
        match self {
            StoreError::MissingReference(_) => true,
            StoreError::Database(e) => Self::is_foreign_key_violation(e),
            _ => false,
        }
    }

    /// Contention rather than a fault: the same work is expected to succeed when tried again
    /// shortly (a pool timeout, a lock held too long, a PostgreSQL serialization failure or
    /// deadlock). Callers retry once, then answer 503 with `Retry-After`.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    return matches!(
                        pg.code(),
                        PG_SERIALIZATION_FAILURE
                            | PG_DEADLOCK_DETECTED
                            | PG_LOCK_NOT_AVAILABLE
                            | PG_CANNOT_CONNECT_NOW
                            | PG_TOO_MANY_CONNECTIONS
                    );
                }
                // SQLite reports its (extended) result code as a number.
                db.code()
                    .and_then(|code| code.parse::<i64>().ok())
                    .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
            }
            _ => false,
        }
    }
}

/// Runs `attempt` again once if it failed with a transient fault (see
/// [`StoreError::is_transient`]); the second failure is returned as it is.
pub async fn retry_transient_once<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    match attempt().await {
        Err(e) if e.is_transient() => {
            tracing::warn!(error.cause_chain = ?e, "transient database fault; retrying once");
            attempt().await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{Connection, SqliteConnection};

    use super::*;

    /// A real `database is locked` from SQLite (another connection holds the write lock and
    /// this one does not wait) is contention, not a fault.
    #[tokio::test]
    async fn a_locked_sqlite_database_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .busy_timeout(Duration::ZERO);
        let mut holder = SqliteConnection::connect_with(&options).await.unwrap();
        let mut waiter = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let err = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut waiter)
            .await
            .expect_err("the write lock is held");
        assert!(StoreError::from(err).is_transient());
        let not_contention = sqlx::query("SELECT * FROM missing_table")
            .execute(&mut holder)
            .await
            .expect_err("no such table");
        assert!(!StoreError::from(not_contention).is_transient());
    }
}
