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

/// Every sample payload RevenueCat publishes in its docs, delivered verbatim (formatting and
/// the TRANSFER sample's year-4466 timestamp included), is acknowledged: a refusal would make
/// RevenueCat retry it for hours and then drop it. The samples share a handful of event ids, so
/// each is also delivered with its id made unique (the bytes otherwise untouched) to be
/// recorded as an event of its own.
#[tokio::test]
async fn every_sample_revenuecat_publishes_is_acknowledged_and_recorded() {
    let (app, header) = with_webhook(spawn_api_only_app().await).await;
    let dir = format!(
        "{}/fixtures/webhooks/revenuecat_samples",
        env!("CARGO_MANIFEST_DIR")
    );
    let send = |body: Vec<u8>| {
        app.client
            .post(crate::webhooks::webhook_url(&app))
            .header("Authorization", &header)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let mut delivered = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let verbatim = std::fs::read_to_string(&path).unwrap();
        let response = send(verbatim.clone().into_bytes()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", path.display());

        let id = serde_json::from_str::<serde_json::Value>(&verbatim).unwrap()["event"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let unique_id = format!("{id}-{delivered}");
        let unique = verbatim.replacen(&format!("\"{id}\""), &format!("\"{unique_id}\""), 1);
        let response = send(unique.into_bytes()).await.unwrap();
        assert_eq!(response.status(), 200, "{} (unique id)", path.display());
        let stored = app
            .store
            .get_webhook_event(&app.project_id, &unique_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} is recorded", path.display()));
        assert_ne!(stored.status, "failed", "{}", path.display());
        delivered += 1;
    }
    assert_eq!(delivered, 18);
}
