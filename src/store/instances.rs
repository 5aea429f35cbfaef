//! Liveness of the processes that run job workers. Each such process registers an instance,
//! heartbeats it, and stamps its id on the rows it claims; a claim whose instance stopped
//! heartbeating belonged to a process that died (kill -9, power loss) and may be taken over.

use super::{with_writer, Store, StoreError};

/// Instances silent this long are deleted (their claims were taken over long before).
const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    pub async fn register_instance(&self, id: &str) -> Result<(), StoreError> {
        let now = self.now_ms();
        with_writer!(self, pool => {
            sqlx::query(
                "INSERT INTO worker_instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
        });
        with_writer!(self, pool => {
            sqlx::query("DELETE FROM worker_instances WHERE heartbeat_at < $1")
                .bind(now - FORGET_AFTER_MS)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn heartbeat_instance(&self, id: &str) -> Result<(), StoreError> {
        with_writer!(self, pool => {
            sqlx::query("UPDATE worker_instances SET heartbeat_at = $1 WHERE id = $2")
                .bind(self.now_ms())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A clean shutdown: the claims of this process become reclaimable at once.
    pub async fn remove_instance(&self, id: &str) -> Result<(), StoreError> {
        with_writer!(self, pool => {
            sqlx::query("DELETE FROM worker_instances WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
