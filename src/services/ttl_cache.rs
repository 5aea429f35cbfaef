//! A bounded time-to-live cache whose misses are single-flight: concurrent callers for one key
//! wait for the first fetch instead of each calling RevenueCat (whose configuration budget is
//! 60 requests a minute). Different keys never wait for each other. Entries expire after the
//! TTL, the least useful go first beyond `max_entries`, and failed fetches leave nothing
//! behind, so made-up keys cannot grow it.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

pub struct TtlCache<K, V> {
    entries: moka::future::Cache<K, V>,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_entries)
                .build(),
        }
    }

    /// The cached value, or the result of `fetch` (stored only when it succeeds). Callers that
    /// waited for another caller's failed fetch get a copy of its error.
    pub async fn get_or_fetch<E, Fut>(&self, key: K, fetch: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        self.entries
            .try_get_with(key, fetch())
            .await
            .map_err(Arc::unwrap_or_clone)
    }

    /// How many entries the cache holds once pending evictions have run.
    pub async fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_fetch_once_and_errors_are_not_cached() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60), 100);
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(7)
        };
        let results =
            futures::future::join_all((0..10).map(|_| cache.get_or_fetch("k", fetch))).await;
        assert!(results.iter().all(|r| *r == Ok(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let failed: Result<u32, &str> = cache.get_or_fetch("other", || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(
            cache
                .get_or_fetch("other", || async { Ok::<_, &str>(3) })
                .await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn distinct_keys_stay_within_the_cap_and_failures_leave_no_entry() {
        let cache: TtlCache<u32, u32> = TtlCache::new(Duration::from_secs(60), 100);
        for key in 0..5_000 {
            let _ = cache
                .get_or_fetch(key, || async move { Err::<u32, &str>("rejected") })
                .await;
        }
        assert_eq!(cache.entry_count().await, 0, "failed lookups are not kept");
        for key in 0..5_000 {
            let value = cache.get_or_fetch(key, || async move { Ok::<_, ()>(key) });
            assert_eq!(value.await, Ok(key));
        }
        let count = cache.entry_count().await;
        assert!(count <= 100, "{count} entries for a cap of 100");
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_millis(50), 100);
        let fetches = AtomicUsize::new(0);
        let fetch = || async { Ok::<_, ()>(fetches.fetch_add(1, Ordering::SeqCst) as u32) };
        assert_eq!(cache.get_or_fetch("k", fetch).await, Ok(0));
        assert_eq!(cache.get_or_fetch("k", fetch).await, Ok(0), "cached");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get_or_fetch("k", fetch).await, Ok(1), "refetched");
    }
}
