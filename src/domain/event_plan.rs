//! What a webhook event means for a user's state, as decided by the webhook service and carried
//! out by the store in the event's own transaction.

use super::app_user::PropertyPatch;

#[derive(Debug, Clone, PartialEq)]
pub enum EventPlan {
    /// Merge `patch` into `user_id` unless newer state is there; `resync` also asks for a
    /// debounced resync of the user once the event is applied.
    Apply {
        user_id: String,
        patch: PropertyPatch,
        resync: bool,
    },
    /// Resync these users (TRANSFER moves purchases between customers).
    Resync(Vec<String>),
    /// Only anonymous ids: find the real user through RevenueCat later.
    Resolve,
    /// Recorded and acknowledged; the event does not change subscription state.
    Ignore,
}
