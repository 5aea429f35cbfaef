//! The process's life as an operator sees it (issue 18 item 7): the generated master key's
//! mode, SIGTERM draining what is in flight, `/readyz` when the workers died, and the API and
//! the workers as separate processes.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::FakeRevenueCat;
use rcsync::config::SHUTDOWN_GRACE;
use rcsync::services::user_resyncs as user_resync;
use rcsync::store::resyncs::ResyncRequest;
use serde_json::Value;

use crate::helpers::{fake_with_dataset, status_json, wait_until, TestDatabase, TEST_MASTER_KEY};
use crate::process::{
    create_tenant, open_test_store, spawn_rcsync, start_serve_with_args, start_server,
};

/// The default setup (no database URL, no master key: SQLite in the working directory)
/// generates `rcsync.key` with mode 0600 — even under a umask that would let anyone read it —
/// and keeps using it.
#[tokio::test]
async fn the_generated_master_key_file_is_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = || {
        Command::new("sh")
            .args(["-c", "umask 000 && exec \"$0\" migrate"])
            .arg(env!("CARGO_BIN_EXE_rcsync"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run rcsync")
    };
    let output = migrate();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        dir.path().join("rcsync.db").exists(),
        "the default database"
    );
    let key_path = dir.path().join("rcsync.key");
    let metadata = std::fs::metadata(&key_path).expect("rcsync.key was generated");
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o600,
        "rcsync.key mode {:o}",
        metadata.permissions().mode() & 0o777
    );
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert!(
        rcsync::crypto::MasterKey::from_base64(key.trim()).is_ok(),
        "a usable key: {key:?}"
    );

    let output = migrate();
    assert!(output.status.success());
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        key,
        "a second start reuses the key"
    );
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

fn customer_fetches(fake: &FakeRevenueCat, user: &str) -> usize {
    let suffix = format!("/customers/{user}");
    fake.request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
        .count()
}

/// SIGTERM while a request and a resync task are both waiting on RevenueCat (their answers
/// held at the fake): the listener closes at once (a new connection is refused), the request
/// still gets its answer, the task still completes, and the process exits 0 within the grace
/// period. On PostgreSQL this failed about one run in six, and two in five once the pool was
/// filled from the HTTP threads first: connections opened on an HTTP worker's runtime died
/// with it at shutdown, under the request or task still using them (see `postgres::Home`).
#[tokio::test]
async fn sigterm_drains_the_request_and_task_in_flight_then_exits_0() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(20)).expect("fake");
    let (mut server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let project_id = tenant.project_id.clone();
    let (request_user, task_user) = (customer_id(1), customer_id(2));

    // A resync task in flight.
    let task_hold = fake.hold_matching(&format!("/customers/{task_user}"));
    let request = user_resync::request(&store, &project_id, &task_user, "sigterm", Duration::ZERO)
        .await
        .expect("enqueue");
    let ResyncRequest::Created { id: resync_id, .. } = request else {
        panic!("expected a new request: {request:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), task_hold.arrived())
        .await
        .expect("the resync's fetch reached the fake");

    // Requests that fill the pool with connections the HTTP worker threads opened: those
    // threads' runtimes stop before the held task settles, and a connection one of them had
    // opened would fail under the task's last write.
    let list_users = format!("{base}/v1/projects/{project_id}/users?limit=1");
    let client = reqwest::Client::new();
    let listed = futures::future::join_all((0..32).map(|_| {
        let request = client.get(&list_users).bearer_auth(&tenant.api_key);
        async move { request.send().await.unwrap().status().as_u16() }
    }))
    .await;
    assert!(listed.iter().all(|s| *s == 200), "{listed:?}");

    // A request in flight.
    let request_hold = fake.hold_matching(&format!("/customers/{request_user}"));
    let sync = tokio::spawn({
        let request = reqwest::Client::new()
            .post(format!(
                "{base}/v1/projects/{project_id}/integrations/revenuecat/sync/{request_user}"
            ))
            .bearer_auth(&tenant.api_key);
        async move { status_json(request.send().await.unwrap()).await }
    });
    tokio::time::timeout(Duration::from_secs(20), request_hold.arrived())
        .await
        .expect("the sync request's fetch reached the fake");

    server.terminate();
    let terminated = Instant::now();
    let address = base.trim_start_matches("http://").to_owned();
    wait_until(
        Duration::from_secs(5),
        "the listener to close after SIGTERM",
        || async {
            tokio::net::TcpStream::connect(&address)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    assert!(
        server.wait_exit(Duration::ZERO).await.is_none(),
        "the process waits for what is in flight"
    );

    request_hold.release();
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), sync)
        .await
        .expect("the held request was answered")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated"], 1, "{body}");
    // The HTTP side has drained (the answered connection closed with its client); the
    // process now waits for the task still held. One that did not wait for it would exit
    // here, leaving the row `running`.
    assert!(
        server.wait_exit(Duration::from_secs(3)).await.is_none(),
        "rcsync exited with a task in flight"
    );
    let row = store.get_user_resync(&resync_id).await.unwrap().unwrap();
    assert_eq!(row.status, "running", "still held: {row:?}");
    task_hold.release();

    let exit = server
        .wait_exit(SHUTDOWN_GRACE.saturating_sub(terminated.elapsed()))
        .await
        .expect("rcsync exited within the shutdown grace");
    assert!(exit.success(), "exit status {exit:?}");
    let row = store.get_user_resync(&resync_id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("succeeded", 1),
        "the task in flight settled before the exit: {row:?}"
    );
    // Exactly one fetch each: the client's connections live on the main runtime, so none
    // dies with an HTTP worker thread at SIGTERM under the task that reuses it.
    let task_fetches = customer_fetches(&fake, &task_user);
    assert_eq!(task_fetches, 1, "the task's fetch was not resent");
    assert_eq!(customer_fetches(&fake, &request_user), 1);
    let user = store
        .get_user(&project_id, &request_user)
        .await
        .unwrap()
        .expect("the request's sync was stored");
    assert!(user.properties.get("rc_status").is_some(), "{user:?}");
}

/// `rcsync serve --no-workers` and `rcsync worker` as separate processes: a resync triggered
/// through the API process is run by the worker process (its run names the worker's
/// instance, the worker's pid), and the API process reports that it runs no workers.
#[tokio::test]
async fn a_resync_triggered_on_the_api_process_runs_in_the_worker_process() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_with_dataset(5)).expect("fake");
    let env = [
        ("RCSYNC_DATABASE_URL", db.url.as_str()),
        ("RCSYNC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    let (_api, base) = start_serve_with_args(&db, &fake, 1, &["--no-workers"], &env).await;
    let (readyz, body) = status_json(reqwest::get(format!("{base}/readyz")).await.unwrap()).await;
    assert_eq!(readyz, 200, "{body}");
    assert_eq!(body["workers"], "not run by this process", "{body}");

    let (worker, worker_log) = spawn_rcsync(&db, &fake, 2, &["worker"], &env);
    let worker_pid = worker.pid();
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let team_id = tenant.team_id.clone();
    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..5).map(customer_id).collect();
    let users: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"user_id": id}))
        .collect();
    let (status, body) = status_json(
        client
            .post(format!("{base}/v1/projects/{}/users", tenant.project_id))
            .bearer_auth(&tenant.api_key)
            .json(&serde_json::json!({ "users": users }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_json(
        client
            .post(format!(
                "{base}/v1/projects/{}/integrations/revenuecat/sync",
                tenant.project_id
            ))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["job_run_id"].as_str().unwrap().to_owned();
    let job: Value = wait_until(Duration::from_secs(60), "the run to end", || async {
        let (_, job) = status_json(
            client
                .get(format!("{base}/v1/teams/{team_id}/jobs/{run_id}"))
                .bearer_auth(&tenant.api_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        (job["status"] != "pending" && job["status"] != "running").then_some(job)
    })
    .await;
    assert_eq!(
        job["status"],
        "completed",
        "{job}\nworker log: {}",
        std::fs::read_to_string(&worker_log).unwrap_or_default()
    );
    let instances = job["result"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{job}");
    let instance = instances[0].as_str().unwrap();
    assert!(
        instance.starts_with(&format!("{worker_pid}-")),
        "run by the worker process (pid {worker_pid}), not {instance}"
    );
    assert_eq!(job["result"]["synced"], 5, "{job}");
    for id in &ids {
        let user = store
            .get_user(&tenant.project_id, id)
            .await
            .unwrap()
            .unwrap();
        assert!(user.properties.get("rc_status").is_some(), "{id}: {user:?}");
    }
}

/// Makes apalis's task table disappear under the running workers (renamed away): every fetch
/// of theirs fails, which kills them (apalis notes: any database error inside a worker does),
/// while our own tables — and so the database probe — keep working.
async fn break_the_task_queue(db: &TestDatabase) {
    use sqlx::Connection;
    if db.is_postgres {
        let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ALTER TABLE apalis.jobs RENAME TO jobs_gone")
            .execute(&mut connection)
            .await
            .unwrap();
    } else {
        let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query("ALTER TABLE Jobs RENAME TO JobsGone")
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

/// `/readyz` answers 503 when this process's job workers died, though the database answers:
/// a process whose workers cannot run must not look ready while it accepts work that will
/// never run.
#[tokio::test]
async fn readyz_answers_503_when_the_workers_died() {
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(Default::default()).expect("fake");
    let (_server, base) = start_server(&db, &fake, 1).await;
    let readyz =
        || async { status_json(reqwest::get(format!("{base}/readyz")).await.unwrap()).await };
    let (status, body) = readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workers"], "running", "{body}");

    break_the_task_queue(&db).await;
    let body = wait_until(
        Duration::from_secs(10),
        "/readyz to report the dead workers",
        || async {
            let (status, body) = readyz().await;
            (status == 503).then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["workers"], "stopped", "{body}");
    assert_eq!(
        body["database"], "ok",
        "the database itself answers: {body}"
    );
    // It stays so while they keep dying (a restarted worker dies again at once).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body) = readyz().await;
        assert_eq!(
            (status, body["workers"].as_str()),
            (503, Some("stopped")),
            "{body}"
        );
    }
    // Restarts are paced (250 ms, 500 ms, 1 s, …): over the second or two this took, a
    // handful of deaths, where restarting at once made hundreds.
    let log = std::fs::read_to_string(db.dir.path().join("rcsync-1.log")).unwrap();
    let deaths = log.matches("job worker died; restarting").count();
    assert!((3..=8).contains(&deaths), "{deaths} deaths: {log}");
}
