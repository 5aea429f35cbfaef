//! Full resyncs across real processes: kill -9 in the middle of a run and while it is
//! pending, the CLI, and two processes sharing one RevenueCat budget (PostgreSQL).

use std::process::{Command, Output};
use std::time::Duration;

use fake_revenuecat::{FakeRevenueCat, RateLimitDomain};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_fake, status_json, wait_until, TestDatabase, TEST_MASTER_KEY};
use futures::StreamExt;

use crate::process::{
    create_tenant, open_test_store, start_serve_with_args, start_server_with, Tenant,
};
use crate::resync::{customer_id, dataset, FAST_RATE};

const FAST: &str = "30000";

struct Remote {
    base: String,
    tenant: Tenant,
    client: reqwest::Client,
}

impl Remote {
    fn url(&self, rest: &str) -> String {
        format!("{}/v1/projects/{}{rest}", self.base, self.tenant.project_id)
    }

    async fn add_users(&self, ids: &[String]) {
        let users: Vec<Value> = ids.iter().map(|id| json!({"user_id": id})).collect();
        let response = self
            .client
            .post(self.url("/users"))
            .bearer_auth(&self.tenant.api_key)
            .json(&json!({ "users": users }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn trigger(&self) -> String {
        let (status, body) = status_json(
            self.client
                .post(self.url("/integrations/revenuecat/sync"))
                .bearer_auth(&self.tenant.api_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["job_run_id"].as_str().unwrap().to_owned()
    }

    async fn job(&self, team_id: &str, run_id: &str) -> Value {
        let url = format!("{}/v1/teams/{team_id}/jobs/{run_id}", self.base);
        let (status, body) = status_json(
            self.client
                .get(url)
                .bearer_auth(&self.tenant.api_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn properties(&self, user_id: &str) -> Value {
        let (_, body) = status_json(
            self.client
                .get(self.url(&format!("/users/{user_id}")))
                .bearer_auth(&self.tenant.api_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        body["properties"].clone()
    }
}

/// The fields of a result that must not depend on how often the run was interrupted.
fn comparable(result: &Value) -> Value {
    let mut result = result.clone();
    let object = result.as_object_mut().unwrap();
    for volatile in [
        "api_calls",
        "api_calls_by_endpoint",
        "calls_per_user",
        "rate_limited",
        "duration_ms",
        "follow_up_backlog",
        "instances",
    ] {
        object.remove(volatile);
    }
    result
}

/// The same run, uninterrupted, in-process: the reference result and properties.
async fn uninterrupted(customers: usize, ids: &[String]) -> (Value, Vec<Value>) {
    let app =
        spawn_app_with_fake(dataset(customers, 1.0), |raw| raw.rc_rate_limit = FAST_RATE).await;
    app.connect_fake().await;
    crate::resync::add_users(&app, ids).await;
    let (_, body) = crate::resync::trigger(&app, "").await;
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job = crate::resync::wait_for_end(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let mut properties = Vec::new();
    for id in ids {
        properties.push(app.get_user(id).await.1["properties"].clone());
    }
    (job["result"].clone(), properties)
}

/// kill -9 while a run is half done (its answer for one user held, so the checkpoint is
/// certain to stop before it): after a restart the run resumes from its checkpoint and ends
/// exactly as an uninterrupted run does — no user counted twice, none skipped.
#[tokio::test]
async fn a_resync_killed_mid_run_resumes_and_ends_like_an_uninterrupted_one() {
    let customers = 60;
    let ids: Vec<String> = (0..customers).map(customer_id).collect();
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(dataset(customers, 1.0)).expect("fake");
    let env = [("RCSYNC_RC_RATE_LIMIT", FAST)];
    let (mut server, base) = start_server_with(&db, &fake, 1, &env).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project = store
        .get_project(&tenant.project_id)
        .await
        .unwrap()
        .unwrap();
    let remote = Remote {
        base,
        tenant,
        client: reqwest::Client::new(),
    };
    remote.add_users(&ids).await;

    let hold = fake.hold_matching(&format!("/customers/{}", ids[40]));
    let run_id = remote.trigger().await;
    hold.arrived().await;
    wait_until(
        Duration::from_secs(30),
        "the first 40 users checkpointed",
        || async {
            let job = remote.job(&project.team_id, &run_id).await;
            (job["progress"]["processed"] == 40).then_some(())
        },
    )
    .await;
    server.kill9();
    hold.release();

    let (_server, base) = start_server_with(&db, &fake, 2, &env).await;
    let remote = Remote { base, ..remote };
    let job = wait_until(
        Duration::from_secs(90),
        "the run to resume and end",
        || async {
            let job = remote.job(&project.team_id, &run_id).await;
            (job["status"] != "running" && job["status"] != "pending").then_some(job)
        },
    )
    .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["result"]["instances"].as_array().unwrap().len(),
        2,
        "taken over by the restarted process: {job}"
    );

    let (reference, reference_properties) = uninterrupted(customers, &ids).await;
    assert_eq!(comparable(&job["result"]), comparable(&reference));
    for (id, expected) in ids.iter().zip(&reference_properties) {
        let mut actual = remote.properties(id).await;
        let mut expected = expected.clone();
        // Revenue is exact either way; only the set of properties and values must agree.
        actual
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k.starts_with("rc_"));
        expected
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k.starts_with("rc_"));
        assert_eq!(actual, expected, "{id}");
    }
}

fn rcsync(db: &TestDatabase, fake: &FakeRevenueCat, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .args(args)
        .current_dir(db.dir.path())
        .env_clear()
        .env("RCSYNC_REVENUECAT_API_URL", fake.base_url())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RCSYNC_DATABASE_URL", &db.url)
        .env("RCSYNC_MASTER_KEY", TEST_MASTER_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rcsync")
}

/// A run triggered from the CLI while no worker runs stays pending across a kill -9 of the
/// server; once one runs again it completes, and `jobs show --wait` follows it to the end.
#[tokio::test]
async fn a_resync_pending_at_kill_9_completes_after_restart_and_the_cli_follows_it() {
    let ids: Vec<String> = (0..20).map(customer_id).collect();
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(dataset(20, 1.0)).expect("fake");
    let env = [("RCSYNC_RC_RATE_LIMIT", FAST)];
    let (mut server, base) = start_server_with(&db, &fake, 1, &env).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let remote = Remote {
        base,
        tenant,
        client: reqwest::Client::new(),
    };
    remote.add_users(&ids).await;
    server.kill9();

    let output = rcsync(
        &db,
        &fake,
        &["sync", "--project", &remote.tenant.project_id],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let started: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(started["syncing"], true);
    assert_eq!(started["total"], 20);
    let run_id = started["job_run_id"].as_str().unwrap().to_owned();
    let output = rcsync(&db, &fake, &["jobs", "show", &run_id]);
    let pending: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["triggered_by"], "cli");
    // A second trigger is refused while it waits.
    let output = rcsync(
        &db,
        &fake,
        &["sync", "--project", &remote.tenant.project_id],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already pending or running"));

    let (_server, base) = start_server_with(&db, &fake, 2, &env).await;
    let remote = Remote { base, ..remote };
    let followed = tokio::task::spawn_blocking({
        let (url, dir) = (db.url.clone(), db.dir.path().to_owned());
        let run_id = run_id.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_rcsync"))
                .args(["jobs", "show", &run_id, "--wait"])
                .current_dir(dir)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("RCSYNC_DATABASE_URL", url)
                .env("RCSYNC_MASTER_KEY", TEST_MASTER_KEY)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let done: Value = serde_json::from_slice(&followed.stdout).unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["synced"], 20);

    let output = rcsync(
        &db,
        &fake,
        &["jobs", "list", "--team", done["team_id"].as_str().unwrap()],
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["job_runs"][0]["id"], run_id);

    // One user, now, as `POST …/revenuecat/sync/:userId` answers.
    let output = rcsync(
        &db,
        &fake,
        &[
            "sync",
            "--project",
            &remote.tenant.project_id,
            "--user",
            &ids[0],
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let synced: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(synced["updated"], 1);
    assert_eq!(synced["properties"], remote.properties(&ids[0]).await);
}

/// Two processes on one PostgreSQL database use one RevenueCat key at once — one runs a full
/// resync, the other (API only) serves a stream of single-user syncs — and stay together
/// within the key's budget: the busiest 5 s at the fake hold one process's worth of
/// requests, not two.
#[tokio::test]
async fn two_processes_share_one_revenuecat_budget_on_postgres() {
    let db = TestDatabase::create().await;
    if !db.is_postgres {
        return;
    }
    const PER_MINUTE: u32 = 600;
    let fake = FakeRevenueCat::start(dataset(80, 1.0)).expect("fake");
    let env = [
        ("RCSYNC_DATABASE_URL", db.url.as_str()),
        ("RCSYNC_MASTER_KEY", TEST_MASTER_KEY),
        ("RCSYNC_RC_RATE_LIMIT", "600"),
    ];
    let (_worker, worker_base) = start_serve_with_args(&db, &fake, 1, &[], &env).await;
    let (_api, api_base) = start_serve_with_args(&db, &fake, 2, &["--no-workers"], &env).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &worker_base, &fake).await;
    let team_id = tenant.team_id.clone();
    let bulk = Remote {
        base: worker_base,
        tenant,
        client: reqwest::Client::new(),
    };
    let ids: Vec<String> = (0..80).map(customer_id).collect();
    bulk.add_users(&ids[..50]).await;

    fake.clear_log();
    let run_id = bulk.trigger().await;
    let api = Remote {
        base: api_base,
        ..bulk
    };
    // Meanwhile, 30 single-user syncs through the API-only process, 6 at a time.
    let syncs = futures::stream::iter(ids[50..].iter().cloned())
        .map(|id| {
            let (client, url, key) = (
                api.client.clone(),
                api.url(&format!("/integrations/revenuecat/sync/{id}")),
                api.tenant.api_key.clone(),
            );
            async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(6)
        .collect::<Vec<u16>>()
        .await;
    assert!(syncs.iter().all(|s| *s == 200), "{syncs:?}");
    let job = wait_until(Duration::from_secs(120), "the run to end", || async {
        let job = api.job(&team_id, &run_id).await;
        (job["status"] == "completed" || job["status"] == "failed").then_some(job)
    })
    .await;
    assert_eq!(job["status"], "completed", "{job}");

    let window = Duration::from_secs(5);
    let busiest = fake.max_accepted_in_window(RateLimitDomain::CustomerInformation, window);
    // One budget: 600/min is 50 per 5 s, plus the bucket's few tokens of burst.
    let one_budget = (PER_MINUTE as usize) / 12 + 5;
    assert!(
        busiest <= one_budget,
        "{busiest} requests in the busiest 5 s; one shared budget allows {one_budget}"
    );
    assert_eq!(fake.stats().rate_limited, 0, "no 429s");
}
