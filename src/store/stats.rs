//! Counts of what the database holds, for `/metrics`: job rows by status, work waiting, and
//! the connection pools.

use super::{with_pool, Backend, Store, StoreError};

/// Rows of one job table in one status.
pub struct JobCount {
    /// `revenuecat_sync` (job runs) or `revenuecat_user_resync` (resync rows).
    pub job_type: String,
    pub status: String,
    pub count: i64,
}

/// Work waiting, by queue.
pub struct QueueDepth {
    /// Follow-up resyncs requested on user rows, not yet queued as resync rows.
    pub follow_up_backlog: i64,
    pub pending_resyncs: i64,
    pub pending_runs: i64,
    /// Anonymous-only webhook events waiting for resolution.
    pub pending_resolutions: i64,
}

/// One connection pool's use.
pub struct PoolUse {
    /// `main` (reads, apalis; everything on PostgreSQL) or `writer` (SQLite's single writer).
    pub pool: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Job runs by type and status, and resync rows by status (a bounded table: retention
    /// prunes finished rows).
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT job_type, status, COUNT(*) FROM job_runs GROUP BY job_type, status \
                 UNION ALL SELECT 'revenuecat_user_resync', status, COUNT(*) FROM user_resyncs \
                 GROUP BY status",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(job_type, status, count)| JobCount {
                job_type,
                status,
                count,
            })
            .collect())
    }

    pub async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let (pending_runs, pending_resolutions): (i64, i64) = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM job_runs WHERE status = 'pending'), \
                        (SELECT COUNT(*) FROM webhook_events WHERE status = 'pending_resolution')",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(QueueDepth {
            follow_up_backlog: self.requested_follow_up_count().await?,
            pending_resyncs: self.pending_resync_count().await?,
            pending_runs,
            pending_resolutions,
        })
    }

    pub fn pool_use(&self) -> Vec<PoolUse> {
        fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolUse {
            let size = pool.size();
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            PoolUse {
                pool: name,
                in_use: size.saturating_sub(idle),
                idle,
                max: pool.options().get_max_connections(),
            }
        }
        let mut pools = vec![match self.backend() {
            Backend::Sqlite(pool) => of("main", pool),
            Backend::Postgres(pool) => of("main", pool),
        }];
        if let Some(writer) = self.sqlite_writer() {
            pools.push(of("writer", writer));
        }
        pools
    }
}
