//! Requests that are not answered (yet): holds a test releases, and path prefixes the fake
//! never answers, which a client sees as a network failure (its request times out).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;

/// One hold: requests whose path-and-query contains `path_contains` wait until released.
struct HoldState {
    path_contains: String,
    released: watch::Sender<bool>,
    arrived: watch::Sender<usize>,
}

/// Holds in force and unreachable prefixes, shared by the server and the test-side handles.
pub(crate) struct Network {
    holds: Mutex<Vec<Arc<HoldState>>>,
    unreachable: watch::Sender<Vec<String>>,
    unanswered: Mutex<Vec<String>>,
    /// Requests waiting on an unreachable prefix right now.
    waiting: watch::Sender<usize>,
}

impl Network {
    pub(crate) fn new() -> Network {
        Network {
            holds: Mutex::new(Vec::new()),
            unreachable: watch::Sender::new(Vec::new()),
            unanswered: Mutex::new(Vec::new()),
            waiting: watch::Sender::new(0),
        }
    }

    pub(crate) fn hold(self: &Arc<Self>, path_contains: &str) -> Hold {
        let state = Arc::new(HoldState {
            path_contains: path_contains.to_string(),
            released: watch::Sender::new(false),
            arrived: watch::Sender::new(0),
        });
        lock(&self.holds).push(state.clone());
        Hold {
            state,
            network: self.clone(),
        }
    }

    fn release(&self, state: &Arc<HoldState>) {
        lock(&self.holds).retain(|h| !Arc::ptr_eq(h, state));
        state.released.send_replace(true);
    }

    /// Wait while a hold matches `path_and_query` (the first matching hold wins).
    pub(crate) async fn wait_if_held(&self, path_and_query: &str) {
        let gate = {
            let holds = lock(&self.holds);
            holds
                .iter()
                .find(|h| path_and_query.contains(&h.path_contains))
                .map(|h| {
                    h.arrived.send_modify(|n| *n += 1);
                    h.released.subscribe()
                })
        };
        if let Some(mut released) = gate {
            // An error means the hold is gone, which releases too.
            let _ = released.wait_for(|r| *r).await;
        }
    }

    pub(crate) fn add_unreachable(&self, prefix: &str) {
        self.unreachable
            .send_modify(|prefixes| prefixes.push(prefix.to_string()));
    }

    pub(crate) fn clear_unreachable(&self) {
        self.unreachable.send_modify(|prefixes| prefixes.clear());
    }

    pub(crate) fn unreachable_prefixes(&self) -> Vec<String> {
        self.unreachable.borrow().clone()
    }

    pub(crate) fn unanswered(&self) -> Vec<String> {
        lock(&self.unanswered).clone()
    }

    /// Never answer while `path_and_query` starts with an unreachable prefix; returns whether
    /// it did. Such a request never reached "RevenueCat": the caller must not process it even
    /// after the prefix is cleared (actix keeps a handler running after its client is gone).
    pub(crate) async fn wait_while_unreachable(&self, path_and_query: &str) -> bool {
        let blocked = |prefixes: &Vec<String>| {
            prefixes
                .iter()
                .any(|p| path_and_query.starts_with(p.as_str()))
        };
        let mut rx = self.unreachable.subscribe();
        if !blocked(&rx.borrow_and_update()) {
            return false;
        }
        lock(&self.unanswered).push(path_and_query.to_string());
        self.waiting.send_modify(|n| *n += 1);
        let _ = rx.wait_for(|prefixes| !blocked(prefixes)).await;
        self.waiting.send_modify(|n| *n -= 1);
        true
    }

    /// Wait until no request waits on an unreachable prefix (each one that waited has been
    /// dropped unprocessed by then).
    #[cfg(test)]
    pub(crate) async fn until_none_unreachable_waiting(&self) {
        let _ = self.waiting.subscribe().wait_for(|n| *n == 0).await;
    }
}

/// Holds the answers to matching requests until [`Hold::release`] (or until dropped).
///
/// ```no_run
/// # async fn demo(fake: &fake_revenuecat::FakeRevenueCat) {
/// let hold = fake.hold_matching("/customers/user_000003");
/// // ... start the client ...
/// hold.arrived().await; // the client's request is in flight now
/// // ... kill the client, or change the fake's data ...
/// hold.release();
/// # }
/// ```
pub struct Hold {
    state: Arc<HoldState>,
    network: Arc<Network>,
}

impl Hold {
    /// Requests held so far (released ones included).
    pub fn arrived_count(&self) -> usize {
        *self.state.arrived.borrow()
    }

    /// Wait until at least one matching request is being held.
    pub async fn arrived(&self) {
        self.arrived_at_least(1).await
    }

    /// Wait until `n` matching requests have arrived.
    pub async fn arrived_at_least(&self, n: usize) {
        let mut rx = self.state.arrived.subscribe();
        // The sender lives in `self.state`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Let the held requests (and later matching ones) through.
    pub fn release(&self) {
        self.network.release(&self.state);
    }

    pub fn path_contains(&self) -> &str {
        &self.state.path_contains
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}
