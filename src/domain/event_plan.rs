//! What a webhook event means for a user's state, as decided by the webhook service and carried
//! out by the store in the event's own transaction.

use super::app_user::PropertyPatch;

#[derive(Debug, Clone, PartialEq)]
pub enum EventPlan {
    /// Merge `patch` into `user_id` unless newer state is there.
    Apply {
        user_id: String,
        patch: PropertyPatch,
    },
    /// Resync these users (TRANSFER moves purchases between customers).
    Resync(Vec<String>),
    /// Only anonymous ids: find the real user through RevenueCat later.
    Resolve,
    /// Recorded and acknowledged; the event does not change subscription state.
    Ignore,
}

impl EventPlan {
    /// Users to resync from RevenueCat shortly after the event is recorded, whether it was
    /// applied or superseded: webhooks give speed, the resync gives RevenueCat's word (an
    /// event superseded by our ordering may still carry news, and revenue only comes from the
    /// REST API).
    pub fn follow_up_users(&self) -> impl Iterator<Item = &str> {
        let users: &[String] = match self {
            EventPlan::Apply { user_id, .. } => std::slice::from_ref(user_id),
            EventPlan::Resync(user_ids) => user_ids,
            EventPlan::Resolve | EventPlan::Ignore => &[],
        };
        users.iter().map(String::as_str)
    }
}
