//! The storage interface. Services read through [`Store`] and write through a [`Tx`] they
//! compose; only this module knows SQL, pools and which backend is in use.
//!
//! Both backends share one schema shape (ms-epoch BIGINT timestamps, TEXT ids) so most
//! statements are written once and run on either pool through [`with_pool!`] or on a
//! transaction through [`tx::on_tx!`]; where the dialects differ (JSON filters, row locks,
//! connection setup) the backend modules [`sqlite`] and [`postgres`] hold the variant.

use sqlx::{PgPool, SqlitePool};

use std::path::PathBuf;

use secrecy::SecretString;

use crate::clock::SharedClock;
use crate::crypto::MasterKey;

mod claims;
mod error;
pub mod event_history;
pub mod event_log;
pub mod instances;
pub mod integrations;
pub mod job_runs;
pub mod postgres;
pub mod rate_budgets;
pub mod resyncs;
pub mod retention;
pub mod sqlite;
pub mod stats;
pub mod tenancy;
pub mod tx;
pub mod users;
pub mod webhook_events;

pub use error::{retry_transient_once, StoreError};
pub use tx::Tx;

/// Our migration history table. apalis-sqlite uses `_sqlx_migrations` in the same database;
/// sharing it would make each migrator reject the other's rows.
pub const MIGRATIONS_TABLE: &str = "rcsync_migrations";

/// Which database to open (built from `RCSYNC_DATABASE_URL` by the configuration).
#[derive(Debug, Clone)]
pub enum DatabaseSettings {
    /// `path` is the file behind the URL, `None` for an in-memory database.
    Sqlite {
        url: String,
        path: Option<PathBuf>,
    },
    Postgres {
        url: SecretString,
    },
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite only: a one-connection pool every write of ours goes through. SQLite admits one
    /// writer at a time; queueing writers here (FIFO, async) replaces busy-waiting on the
    /// file lock, which under load means long sleeps and `database is locked` tails.
    sqlite_writer: Option<SqlitePool>,
    /// PostgreSQL only: where connections are opened.
    postgres_home: Option<postgres::Home>,
    master_key: MasterKey,
    clock: SharedClock,
}

#[derive(Clone)]
pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Runs the same statement-building code against whichever pool backs the store.
/// The body is compiled once per backend, so it may only use SQL both dialects accept.
/// On PostgreSQL `$pool` is a connection acquired on the main runtime (see
/// [`postgres::Home`]); each statement takes it as `&mut *$pool`.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres(_) => {
                let mut connection = $store.postgres_connection().await?;
                let $pool = &mut *connection;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// Like [`with_pool!`], for statements that write: on SQLite they go through the single
/// writer connection, on PostgreSQL through the shared pool.
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match ($store.backend(), $store.sqlite_writer()) {
            (_, Some($pool)) => $body,
            ($crate::store::Backend::Sqlite($pool), None) => $body,
            ($crate::store::Backend::Postgres(_), None) => {
                let mut connection = $store.postgres_connection().await?;
                let $pool = &mut *connection;
                $body
            }
        }
    };
}
pub(crate) use with_writer;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database named by the settings (creating a SQLite file if needed).
    pub async fn connect(
        database: &DatabaseSettings,
        master_key: MasterKey,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let (backend, sqlite_writer) = match database {
            DatabaseSettings::Sqlite { url, .. } => {
                let (pool, writer) = sqlite::connect(url).await?;
                (Backend::Sqlite(pool), Some(writer))
            }
            DatabaseSettings::Postgres { url } => {
                (Backend::Postgres(postgres::connect(url).await?), None)
            }
        };
        let postgres_home = match backend {
            Backend::Postgres(_) => postgres::Home::here(),
            Backend::Sqlite(_) => None,
        };
        Ok(Self {
            backend,
            sqlite_writer,
            postgres_home,
            master_key,
            clock,
        })
    }

    /// The clock every row's time comes from (a manual one in tests).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Opens a write transaction (on SQLite, on the single writer connection).
    ///
    /// SQLite transactions begin `IMMEDIATE`, taking the write lock up front: a deferred one
    /// that reads first fails at its first write with `SQLITE_BUSY_SNAPSHOT`, without waiting,
    /// whenever another connection (apalis's) committed in between.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        const IMMEDIATE: &str = "BEGIN IMMEDIATE";
        let inner = match (&self.backend, &self.sqlite_writer) {
            (_, Some(writer)) => tx::TxInner::Sqlite(writer.begin_with(IMMEDIATE).await?),
            (Backend::Sqlite(pool), None) => tx::TxInner::Sqlite(pool.begin_with(IMMEDIATE).await?),
            (Backend::Postgres(_), None) => {
                tx::TxInner::Postgres(self.postgres_transaction().await?)
            }
        };
        Ok(Tx::new(inner, self.now_ms()))
    }

    /// A pooled PostgreSQL connection, opened on the main runtime if the pool needs a new one
    /// (see [`postgres::Home`]). Panics on a SQLite store.
    pub(crate) async fn postgres_connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
        let Backend::Postgres(pool) = &self.backend else {
            unreachable!("a PostgreSQL connection from a SQLite store");
        };
        match &self.postgres_home {
            Some(home) => home.acquire(pool).await,
            None => pool.acquire().await,
        }
    }

    /// A PostgreSQL transaction on a connection from [`Store::postgres_connection`].
    pub(crate) async fn postgres_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let connection = self.postgres_connection().await?;
        sqlx::Transaction::begin(connection, None).await
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub(crate) fn sqlite_writer(&self) -> Option<&SqlitePool> {
        self.sqlite_writer.as_ref()
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    /// Applies our migrations; safe to run any number of times, from several processes.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::migrate(pool).await,
            Backend::Postgres(pool) => postgres::migrate(pool).await,
        }
    }

    /// A round trip to the database, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}
