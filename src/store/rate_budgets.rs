//! Token buckets of RevenueCat's budget shared by every process on a PostgreSQL database (see
//! `revenuecat::shared_budget`). The database's clock is the one all processes agree on, so
//! refill times are read from it rather than from each process.

use super::{Backend, Store, StoreError};

/// What a lease took from a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketLease {
    pub granted: u32,
    /// With none granted: milliseconds until one token is there again.
    pub retry_in_ms: i64,
    /// Milliseconds a 429 still blocks the bucket.
    pub blocked_for_ms: i64,
}

/// One bucket's parameters.
#[derive(Debug, Clone, Copy)]
pub struct BucketSpec<'a> {
    pub key: &'a str,
    pub domain: &'a str,
    pub per_minute: u32,
    pub capacity: u32,
}

const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl Store {
    /// Whether this store can hold a budget shared between processes (PostgreSQL; a SQLite
    /// file serves one process).
    pub fn shares_rate_budgets(&self) -> bool {
        matches!(self.backend(), Backend::Postgres(_))
    }

    /// Takes up to `want` tokens from a bucket that refills at `per_minute` up to `capacity`.
    pub async fn lease_rate_budget(
        &self,
        bucket: BucketSpec<'_>,
        want: u32,
    ) -> Result<BucketLease, StoreError> {
        let Backend::Postgres(_) = self.backend() else {
            return Ok(BucketLease {
                granted: want,
                retry_in_ms: 0,
                blocked_for_ms: 0,
            });
        };
        let capacity = f64::from(bucket.capacity);
        // A full bucket is spent at once; the refill leaves room for it, so no minute holds
        // more than `per_minute` requests across all processes.
        let steady = bucket.per_minute.saturating_sub(bucket.capacity).max(1);
        let per_ms = f64::from(steady) / 60_000.0;
        let mut tx = self.postgres_transaction().await?;
        let insert = sqlx::AssertSqlSafe(format!(
            "INSERT INTO rate_budgets (key_fingerprint, domain, tokens, refreshed_at, blocked_until) \
             VALUES ($1, $2, $3, {NOW_MS}, 0) ON CONFLICT (key_fingerprint, domain) DO NOTHING"
        ));
        sqlx::query(insert)
            .bind(bucket.key)
            .bind(bucket.domain)
            .bind(capacity)
            .execute(&mut *tx)
            .await?;
        let select = sqlx::AssertSqlSafe(format!(
            "SELECT tokens, refreshed_at, blocked_until, {NOW_MS} FROM rate_budgets \
             WHERE key_fingerprint = $1 AND domain = $2 FOR UPDATE"
        ));
        let (tokens, refreshed_at, blocked_until, now): (f64, i64, i64, i64) =
            sqlx::query_as(select)
                .bind(bucket.key)
                .bind(bucket.domain)
                .fetch_one(&mut *tx)
                .await?;
        let elapsed = (now - refreshed_at).max(0) as f64;
        let available = (tokens + elapsed * per_ms).min(capacity);
        let blocked_for_ms = (blocked_until - now).max(0);
        let granted = if blocked_for_ms > 0 {
            0
        } else {
            (available.floor().max(0.0) as u32).min(want)
        };
        let left = available - f64::from(granted);
        sqlx::query(
            "UPDATE rate_budgets SET tokens = $1, refreshed_at = $2 \
             WHERE key_fingerprint = $3 AND domain = $4",
        )
        .bind(left)
        .bind(now)
        .bind(bucket.key)
        .bind(bucket.domain)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let retry_in_ms = if granted > 0 {
            0
        } else {
            ((1.0 - left).max(0.0) / per_ms).ceil() as i64
        };
        Ok(BucketLease {
            granted,
            retry_in_ms: retry_in_ms.max(blocked_for_ms),
            blocked_for_ms,
        })
    }

    /// Blocks a bucket for everyone for `wait_ms` (RevenueCat answered 429) and empties it, so
    /// pacing resumes at the steady rate afterwards.
    pub async fn block_rate_budget(
        &self,
        key: &str,
        domain: &str,
        wait_ms: i64,
    ) -> Result<(), StoreError> {
        let Backend::Postgres(_) = self.backend() else {
            return Ok(());
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO rate_budgets (key_fingerprint, domain, tokens, refreshed_at, blocked_until) \
             VALUES ($1, $2, 0, {NOW_MS} + $3, {NOW_MS} + $3) \
             ON CONFLICT (key_fingerprint, domain) DO UPDATE SET tokens = 0, \
                 refreshed_at = GREATEST(rate_budgets.refreshed_at, excluded.refreshed_at), \
                 blocked_until = GREATEST(rate_budgets.blocked_until, excluded.blocked_until)"
        ));
        sqlx::query(sql)
            .bind(key)
            .bind(domain)
            .bind(wait_ms)
            .execute(&mut *self.postgres_connection().await?)
            .await?;
        Ok(())
    }
}
