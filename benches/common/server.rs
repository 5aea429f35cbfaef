//! rcsync under test as its own process (the release binary), on a fresh database, with a
//! tenant and a RevenueCat integration against the in-process fake.
// Shared by the bench binaries; each uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Which database a run uses.
#[derive(Clone)]
pub enum Backend {
    Sqlite,
    /// The server URL; each run creates (and drops) its own database on it.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// The backends to bench: SQLite always; PostgreSQL when `RCSYNC_BENCH_POSTGRES_URL` (or
    /// the local default) answers. `BENCH_BACKENDS=sqlite` or `=postgres` runs only that one
    /// (for profiling).
    pub async fn available() -> Vec<Backend> {
        let only = std::env::var("BENCH_BACKENDS").unwrap_or_default();
        let mut backends = Vec::new();
        if only.is_empty() || only.contains("sqlite") {
            backends.push(Backend::Sqlite);
        }
        if !(only.is_empty() || only.contains("postgres")) {
            return backends;
        }
        let url = std::env::var("RCSYNC_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if url.is_empty() {
            return backends;
        }
        use sqlx::Connection;
        match sqlx::PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                backends.push(Backend::Postgres(url));
            }
            Err(e) => eprintln!("PostgreSQL not reachable at {url} ({e}); benching SQLite only"),
        }
        backends
    }
}

/// A fresh database: its URL, and what must outlive it.
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
    drop_on: Option<(String, String)>,
}

impl Database {
    pub async fn create(backend: &Backend) -> Database {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Database {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                ),
                dir,
                drop_on: None,
            },
            Backend::Postgres(server) => {
                use sqlx::Connection;
                let name = format!("rcsync_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(server).await.expect("postgres");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create bench database");
                let mut url = url::Url::parse(server).expect("postgres url");
                url.set_path(&name);
                Database {
                    url: url.to_string(),
                    dir,
                    drop_on: Some((server.clone(), name)),
                }
            }
        }
    }

    pub async fn drop_database(self) {
        if let Some((server, name)) = self.drop_on {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

/// A running rcsync process; killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment every rcsync command of a run shares.
fn command(db: &Database, revenuecat_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rcsync"));
    cmd.env("RCSYNC_DATABASE_URL", &db.url)
        .env("RCSYNC_REVENUECAT_API_URL", revenuecat_url)
        .env("RCSYNC_MASTER_KEY", MASTER_KEY)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null());
    cmd
}

impl Server {
    /// `rcsync serve` on a free port; waits for `/readyz`.
    pub async fn start(db: &Database, revenuecat_url: &str, args: &[&str]) -> Server {
        let port = free_port();
        // BENCH_LOG_DIR keeps the server's log after the run (for profiling).
        let log_dir = std::env::var("BENCH_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| db.dir.path().to_path_buf());
        let log = log_dir.join(format!("rcsync-{port}.log"));
        let child = command(db, revenuecat_url)
            .arg("serve")
            .args(args)
            .env("RCSYNC_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn rcsync");
        let server = Server {
            child,
            address: format!("127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("http://{}/readyz", server.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "rcsync did not become ready: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the process so far (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        peak_rss_mb_of(self.pid())
    }
}

/// Peak resident memory of process `pid` so far (`VmHWM`), in MB.
pub fn peak_rss_mb_of(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A team, a project and an admin API key (`rcsync bootstrap`).
pub struct Tenant {
    pub project_id: String,
    pub team_id: String,
    pub api_key: String,
}

pub fn bootstrap(db: &Database, revenuecat_url: &str) -> Tenant {
    let output = command(db, revenuecat_url)
        .args([
            "bootstrap",
            "--team-name",
            "Bench",
            "--project-name",
            "Bench",
        ])
        .output()
        .expect("rcsync bootstrap");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("bootstrap JSON");
    Tenant {
        project_id: created["project_id"].as_str().unwrap().to_owned(),
        team_id: created["team_id"].as_str().unwrap().to_owned(),
        api_key: created["api_key"].as_str().unwrap().to_owned(),
    }
}

/// Creates the RevenueCat integration; returns the webhook's `Authorization` value.
pub async fn connect_revenuecat(server: &Server, tenant: &Tenant, revenuecat_key: &str) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/projects/{}/integrations",
            server.address, tenant.project_id
        ))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"provider": "revenuecat", "config": {"api_key": revenuecat_key}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook_setup: {created}"))
        .to_owned()
}
