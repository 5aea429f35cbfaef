//! The transaction handle services compose: statements are methods on [`Tx`] (defined next to
//! the tables they touch), and a service decides what goes into one commit.
//!
//! On SQLite every transaction runs on the single writer connection, so writers queue in
//! order instead of busy-waiting on the file lock; on PostgreSQL it is a pooled connection.
//! "Now" is read from the store's clock once, when the transaction begins, so every row a
//! transaction writes carries the same time.

use sqlx::{PgConnection, Postgres, Sqlite, Transaction};

use super::{Dialect, StoreError};

pub(super) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(super) inner: TxInner,
    now_ms: i64,
}

/// Runs the same statement-building code on whichever connection backs the transaction. The
/// body is compiled once per backend, so it may only use SQL both dialects accept; `$conn` is
/// a `&mut` connection (reborrow it with `&mut *$conn` for each statement).
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::store::tx::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::tx::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Tx {
    pub(super) fn new(inner: TxInner, now_ms: i64) -> Self {
        Self { inner, now_ms }
    }

    /// The time this transaction stamps on what it writes.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The PostgreSQL connection, for batch statements written with arrays (`UNNEST`,
    /// `= ANY`): one statement text whatever the batch size, so PostgreSQL parses and plans it
    /// once per connection instead of once per batch.
    pub(super) fn postgres(&mut self) -> Option<&mut PgConnection> {
        match &mut self.inner {
            TxInner::Postgres(tx) => Some(&mut **tx),
            TxInner::Sqlite(_) => None,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Opens a savepoint: work after it can be undone alone with
    /// [`Tx::rollback_to_savepoint`] while the rest of the transaction stays.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.raw("SAVEPOINT rcsync_item").await
    }

    pub async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.raw("RELEASE SAVEPOINT rcsync_item").await
    }

    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        // ROLLBACK TO keeps the savepoint open; release it so the next item opens a fresh one.
        self.raw("ROLLBACK TO SAVEPOINT rcsync_item").await?;
        self.raw("RELEASE SAVEPOINT rcsync_item").await
    }

    async fn raw(&mut self, sql: &'static str) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(sql).execute(&mut *conn).await?;
        });
        Ok(())
    }
}
