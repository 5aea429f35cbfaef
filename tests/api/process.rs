//! The real `rcsync` binary as its own process, for tests that need one: kill -9 and restart,
//! the process's own memory, its command line.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_revenuecat::FakeRevenueCat;
use rcsync::domain::permission::Permission;
use rcsync::store::tenancy::NewApiKey;
use rcsync::store::Store;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{status_json, TestDatabase, TEST_MASTER_KEY};

/// Kills the child (SIGKILL) if the test ends, passing or not, while it still runs.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("the child runs").id()
    }

    /// Sends SIGTERM (what a service manager sends to stop it).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits up to `timeout` for the child to exit; its exit status, `None` if it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let child = self.0.as_mut().expect("the child was not reaped yet");
            if let Some(status) = child.try_wait().unwrap() {
                self.0 = None;
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `rcsync serve` and waits for `/healthz`; returns the guard and the base URL.
pub async fn start_server(
    db: &TestDatabase,
    fake: &FakeRevenueCat,
    run: u32,
) -> (ChildGuard, String) {
    start_server_with(db, fake, run, &[]).await
}

/// [`start_server`] with extra environment variables.
pub async fn start_server_with(
    db: &TestDatabase,
    fake: &FakeRevenueCat,
    run: u32,
    env: &[(&str, &str)],
) -> (ChildGuard, String) {
    let mut all = vec![
        ("RCSYNC_DATABASE_URL", db.url.as_str()),
        ("RCSYNC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    all.extend_from_slice(env);
    start_serve(db, fake, run, &all).await
}

/// `rcsync serve` with only `env` (and bind, RevenueCat URL, log level) set, its working
/// directory the test's own; waits for `/healthz`.
pub async fn start_serve(
    db: &TestDatabase,
    fake: &FakeRevenueCat,
    run: u32,
    env: &[(&str, &str)],
) -> (ChildGuard, String) {
    start_serve_with_args(db, fake, run, &[], env).await
}

/// [`start_serve`] with extra arguments after `serve` (e.g. `--no-workers`).
pub async fn start_serve_with_args(
    db: &TestDatabase,
    fake: &FakeRevenueCat,
    run: u32,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ChildGuard, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut all_args = vec!["serve"];
    all_args.extend_from_slice(args);
    let mut all_env = vec![("RCSYNC_BIND", bind.as_str())];
    all_env.extend_from_slice(env);
    let (mut guard, log_path) = spawn_rcsync(db, fake, run, &all_args, &all_env);
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

/// Starts `rcsync ARGS` with only `env` (and the RevenueCat URL and log level) set, its
/// working directory the test's own, stderr into `rcsync-RUN.log` there; does not wait for
/// anything. Returns the guard and the log's path.
pub fn spawn_rcsync(
    db: &TestDatabase,
    fake: &FakeRevenueCat,
    run: u32,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ChildGuard, std::path::PathBuf) {
    let log_path = db.dir.path().join(format!("rcsync-{run}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .args(args)
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RCSYNC_REVENUECAT_API_URL", fake.base_url())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rcsync");
    (ChildGuard(Some(child)), log_path)
}

pub async fn open_test_store(db: &TestDatabase) -> Store {
    let mut raw = db.raw_settings();
    raw.master_key = Some(TEST_MASTER_KEY.into());
    let settings = raw.resolve().expect("settings");
    rcsync::startup::open_store(&settings)
        .await
        .expect("open store")
}

/// A project with an admin key and a RevenueCat integration, on a running server.
pub struct Tenant {
    pub team_id: String,
    pub project_id: String,
    /// Holds every permission.
    pub api_key: String,
    pub webhook_url: String,
    pub webhook_auth: String,
}

pub async fn create_tenant(store: &Store, base: &str, fake: &FakeRevenueCat) -> Tenant {
    let team_id = uuid::Uuid::new_v4().to_string();
    let project_id = uuid::Uuid::new_v4().to_string();
    store.create_team(&team_id, "Process team").await.unwrap();
    store
        .create_project(&project_id, &team_id, "Process project")
        .await
        .unwrap();
    let generated = rcsync::auth::api_key::generate_api_key();
    store
        .create_api_key(NewApiKey {
            id: &uuid::Uuid::new_v4().to_string(),
            team_id: &team_id,
            name: "process",
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
        team_id,
        project_id,
        api_key,
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
