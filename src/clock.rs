//! The one source of "now" for everything rcsync stores or schedules: timestamps of rows, due
//! times of retries and debounces, leases and liveness. Tests inject a [`ManualClock`] and move
//! time forward instead of sleeping.
//!
//! What it does not cover, deliberately: waits that bound real work in flight (HTTP timeouts,
//! the pacing of RevenueCat requests, the time limit of one attempt) stay on the runtime's
//! timer, because they protect against real slowness; their lengths are settings instead.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Time that moves only when told to (tests). Starts at the wall-clock time of its creation.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            now_ms: AtomicI64::new(SystemClock.now_ms()),
        }
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// A shareable clock handle.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }

    pub fn system() -> Self {
        Self(Arc::new(SystemClock))
    }

    pub fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedClock({})", self.now_ms())
    }
}

/// A duration in the clock's unit.
pub fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_time_moves_only_when_told() {
        let clock = Arc::new(ManualClock::new());
        let shared = SharedClock::new(clock.clone());
        let start = shared.now_ms();
        assert_eq!(shared.now_ms(), start);
        clock.advance(Duration::from_secs(300));
        assert_eq!(shared.now_ms(), start + 300_000);
    }
}
