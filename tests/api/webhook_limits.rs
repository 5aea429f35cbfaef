//! Bounds on what one webhook delivery can make rcsync do.

use serde_json::json;

use crate::helpers::spawn_api_only_app;
use crate::webhooks::{deliver, fixture, with_webhook};

/// One TRANSFER names any number of ids; rcsync resyncs at most the first
/// `MAX_TRANSFER_USERS` identified ones (`transferred_from`, then `transferred_to`) (a delivery must not turn into an unbounded write on
/// the single SQLite writer), and still acknowledges the event.
#[tokio::test]
async fn a_transfer_resyncs_at_most_its_first_hundred_identified_users() {
    use rcsync::services::webhooks::MAX_TRANSFER_USERS;
    // No workers: the requested follow-ups stay visible instead of being run.
    let (app, header) = with_webhook(spawn_api_only_app().await).await;
    let from: Vec<String> = (0..120).map(|i| format!("from_{i:03}")).collect();
    let to: Vec<String> = (0..120).map(|i| format!("to_{i:03}")).collect();
    let mut transfer = fixture("transfer");
    transfer["event"]["id"] = json!("evt-big-transfer");
    transfer["event"]["transferred_from"] = json!(from);
    transfer["event"]["transferred_to"] = json!(to);
    assert_eq!(deliver(&app, &header, &transfer).await.0, 200);

    assert_eq!(MAX_TRANSFER_USERS, 100, "the README documents 100");
    assert_eq!(
        app.store.pending_resync_count().await.unwrap(),
        MAX_TRANSFER_USERS as i64
    );
}
