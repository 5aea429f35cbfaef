//! The "Done when": a resync requested before a `kill -9` runs exactly once after a
//! restart on the same database. Runs the real `rcsync` binary.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::FakeRevenueCat;
use futures::StreamExt;
use rcsync::domain::permission::Permission;
use rcsync::services::user_resyncs as user_resync;
use rcsync::store::resyncs::ResyncRequest;
use rcsync::store::tenancy::NewApiKey;
use rcsync::store::Store;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{fake_with_dataset, status_json, wait_until, TestDatabase, TEST_MASTER_KEY};

/// Kills the child (SIGKILL) if the test ends, passing or not, while it still runs.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// `kill -9` and reap.
    fn kill9(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `rcsync serve` and waits for `/healthz`; returns the guard and the base URL.
async fn start_server(db: &TestDatabase, fake: &FakeRevenueCat, run: u32) -> (ChildGuard, String) {
    let port = free_port();
    let log_path = db.dir.path().join(format!("rcsync-{run}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .arg("serve")
        .env("RCSYNC_DATABASE_URL", &db.url)
        .env("RCSYNC_BIND", format!("127.0.0.1:{port}"))
        .env("RCSYNC_REVENUECAT_API_URL", fake.base_url())
        .env("RCSYNC_MASTER_KEY", TEST_MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rcsync");
    let mut guard = ChildGuard(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let healthz = format!("{base}/healthz");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(&healthz).send().await {
            if response.status().is_success() {
                break;
            }
        }
        let exited = guard.0.as_mut().unwrap().try_wait().unwrap();
        if exited.is_some() || std::time::Instant::now() > deadline {
            guard.kill9();
            panic!(
                "rcsync did not become healthy ({exited:?}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (guard, base)
}

async fn open_test_store(db: &TestDatabase) -> Store {
    let mut raw = db.raw_settings();
    raw.master_key = Some(TEST_MASTER_KEY.into());
    let settings = raw.resolve().expect("settings");
    rcsync::startup::open_store(&settings)
        .await
        .expect("open store")
}

/// A project with an admin key and a RevenueCat integration, on a running server.
struct Tenant {
    project_id: String,
    webhook_url: String,
    webhook_auth: String,
}

async fn create_tenant(store: &Store, base: &str, fake: &FakeRevenueCat) -> Tenant {
    let team_id = uuid::Uuid::new_v4().to_string();
    let project_id = uuid::Uuid::new_v4().to_string();
    store.create_team(&team_id, "Restart team").await.unwrap();
    store
        .create_project(&project_id, &team_id, "Restart project")
        .await
        .unwrap();
    let generated = rcsync::auth::api_key::generate_api_key();
    store
        .create_api_key(NewApiKey {
            id: &uuid::Uuid::new_v4().to_string(),
            team_id: &team_id,
            name: "restart",
            key_prefix: &generated.display_prefix,
            key_hash: &generated.hash,
            permissions: &Permission::ALL,
        })
        .await
        .unwrap();
    let api_key = generated.key.expose_secret().to_owned();
    let (status, body) = status_json(
        reqwest::Client::new()
            .post(format!("{base}/v1/projects/{project_id}/integrations"))
            .bearer_auth(&api_key)
            .json(&json!({"provider": "revenuecat", "config": {"api_key": fake.api_key()}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Tenant {
        project_id,
        webhook_url: body["webhook_setup"]["webhook_url"]
            .as_str()
            .unwrap()
            .to_owned(),
        webhook_auth: body["webhook_setup"]["authorization_header"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

#[tokio::test]
async fn every_webhook_acknowledged_before_kill_9_survives_it() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(5)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;

    // A burst of 400 distinct events; the server is killed -9 once 200 have been answered.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let sends = (0..400).map(|i| {
        let event_id = format!("burst-{i:04}");
        let body = crate::webhooks::event_for(
            "initial_purchase",
            &format!("burst_user_{}", i % 50),
            &event_id,
            1_000 + i,
        );
        let (client, tenant_url, auth, acknowledged) = (
            client.clone(),
            tenant.webhook_url.clone(),
            tenant.webhook_auth.clone(),
            acknowledged.clone(),
        );
        async move {
            let response = client
                .post(tenant_url)
                .header("Authorization", auth)
                .json(&body)
                .send()
                .await;
            if matches!(response, Ok(ref r) if r.status() == 200) {
                acknowledged.lock().unwrap().push(event_id);
            }
        }
    });
    let burst = futures::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    let killer = async {
        while acknowledged.lock().unwrap().len() < 200 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill9();
    };
    futures::future::join(burst, killer).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "{}", acknowledged.len());

    let (_server, _base) = start_server(&db, &fake, 2).await;
    let mut missing = Vec::new();
    for event_id in &acknowledged {
        if store
            .get_webhook_event(&tenant.project_id, event_id)
            .await
            .unwrap()
            .is_none()
        {
            missing.push(event_id.clone());
        }
    }
    let stored: i64 = store
        .count_webhook_events(&tenant.project_id)
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    println!(
        "kill -9 during a burst: {} acknowledged, {stored} stored, {} acknowledged but missing",
        acknowledged.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged events lost: {missing:?}");
    assert!(stored >= acknowledged.len() as i64);
}

#[tokio::test]
async fn a_resync_pending_at_kill_9_runs_exactly_once_after_restart() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(20)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;

    // Tenancy and an API key, straight into the shared database.
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project_id = tenant.project_id;

    // Enqueue with a delay, then kill -9 before it can run.
    let user = customer_id(0);
    let request = user_resync::request(
        &store,
        &project_id,
        &user,
        "restart-test",
        Duration::from_secs(3),
    )
    .await
    .expect("enqueue");
    let ResyncRequest::Created { id, .. } = request else {
        panic!("expected a new request: {request:?}");
    };
    server.kill9();
    let row = store.get_user_resync(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "pending", "{row:?}");
    assert_eq!(row.attempts, 0);

    let started = std::time::Instant::now();
    let (_server, _base) = start_server(&db, &fake, 2).await;
    let done = wait_until(
        Duration::from_secs(40),
        "the resync after restart",
        || async {
            let row = store.get_user_resync(&id).await.unwrap().unwrap();
            (row.status == "succeeded").then_some(row)
        },
    )
    .await;
    println!(
        "resync succeeded {:?} after the restart (attempts {})",
        started.elapsed(),
        done.attempts
    );
    assert_eq!(done.attempts, 1, "{done:?}");
    // Let any duplicate task surface before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let suffix = format!("/customers/{user}");
    let fetches: Vec<String> = fake
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(fetches.len(), 1, "the job ran once: {fetches:?}");
    let user_row = store.get_user(&project_id, &user).await.unwrap().unwrap();
    assert_eq!(user_row.properties["rc_status"], "active");
}
