//! A small time-to-live cache whose misses are single-flight: concurrent callers for one key
//! wait for the first fetch instead of each calling RevenueCat (whose configuration budget is
//! 60 requests a minute). Different keys never wait for each other.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

pub struct TtlCache<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the result of `fetch` (stored only when it succeeds).
    pub async fn get_or_fetch<E, Fut>(&self, key: K, fetch: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self
            .slots
            .lock()
            .expect("ttl cache lock")
            .entry(key)
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some((fetched, value)) = cached.as_ref() {
            if fetched.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = fetch().await?;
        *cached = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_fetch_once_and_errors_are_not_cached() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
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
        assert!(failed.is_err());
        assert_eq!(
            cache
                .get_or_fetch("other", || async { Ok::<_, &str>(3) })
                .await,
            Ok(3)
        );
    }
}
