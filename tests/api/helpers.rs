//! `spawn_app()`: a real rcsync on port 0 with a fresh database, plus a team, a project and an
//! all-permission API key. With `RCSYNC_TEST_POSTGRES_URL` set, every test gets its own
//! PostgreSQL database; otherwise a SQLite file in a temporary directory.

use std::net::TcpListener;
use std::sync::Arc;

use fake_revenuecat::{DatasetSpec, FakeConfig, FakeRevenueCat};
use jsonwebtoken::{encode, EncodingKey, Header};
use rcsync::auth::api_key::generate_api_key;
use rcsync::clock::{ManualClock, SharedClock};
use rcsync::config::{JobTimings, RawSettings};
use rcsync::domain::permission::Permission;
use rcsync::services::Services;
use rcsync::startup::{open_store_with_clock, Application, Role};
use rcsync::store::tenancy::NewApiKey;
use rcsync::store::Store;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::Connection;

/// At least 32 bytes, as rcsync requires.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdefghijklmnop";
pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A fresh database for one test: its URL, and the temp dir that must outlive it.
pub struct TestDatabase {
    pub url: String,
    pub is_postgres: bool,
    pub dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("RCSYNC_TEST_POSTGRES_URL") {
            Ok(base) if !base.is_empty() => {
                let name = format!("rcsync_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("connect to RCSYNC_TEST_POSTGRES_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&base).expect("postgres url");
                url.set_path(&name);
                TestDatabase {
                    url: url.to_string(),
                    is_postgres: true,
                    dir,
                }
            }
            _ => TestDatabase {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("rcsync.db").display()
                ),
                is_postgres: false,
                dir,
            },
        }
    }

    pub fn raw_settings(&self) -> RawSettings {
        RawSettings {
            database_url: self.url.clone(),
            bind: "127.0.0.1:0".into(),
            jwt_secret: Some(JWT_SECRET.into()),
            master_key: self.is_postgres.then(|| TEST_MASTER_KEY.into()),
            ..RawSettings::defaults()
        }
    }
}

pub struct TestApp {
    pub address: String,
    /// RevenueCat, replaced at the HTTP boundary only.
    pub fake: FakeRevenueCat,
    pub client: reqwest::Client,
    pub store: Store,
    /// The app's own services, to read what HTTP does not show (cache and pacer sizes).
    pub services: Services,
    pub db: TestDatabase,
    pub team_id: String,
    pub project_id: String,
    pub api_key: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    spawn_app_with_fake(FakeConfig::default(), customize).await
}

/// The HTTP API without job workers (`rcsync serve --no-workers`).
pub async fn spawn_api_only_app() -> TestApp {
    spawn(
        FakeConfig::default(),
        Role::ApiOnly,
        SharedClock::system(),
        |_| {},
        |_| {},
    )
    .await
}

/// An app whose store reads time from `clock` (row times, due times, grace periods): a test
/// moves time with `clock.advance(…)` instead of sleeping.
pub async fn spawn_app_with_clock(
    clock: Arc<ManualClock>,
    customize: impl FnOnce(&mut RawSettings),
) -> TestApp {
    let clock = SharedClock::new(clock);
    spawn(
        FakeConfig::default(),
        Role::ApiAndWorkers,
        clock,
        customize,
        |_| {},
    )
    .await
}

/// Job timings a test on a manual clock wants: the real-time loops (dispatch, polling,
/// heartbeats' tick) fast, so moving the clock shows its effect within a few hundred ms.
/// Durations on the clock keep their production values unless the test changes them.
pub fn clocked_timings(timings: &mut JobTimings) {
    timings.dispatch_interval = std::time::Duration::from_millis(50);
    timings.poll_interval = std::time::Duration::from_millis(50);
    timings.schedule_check = std::time::Duration::from_millis(100);
    timings.retention_check = std::time::Duration::from_millis(100);
}

/// An app on `clock` whose job timings `timings` adjusts (after [`clocked_timings`]), with
/// `fake_config` behind it: the seam for testing what background work promises over time.
pub async fn spawn_app_with_clock_and_timings(
    fake_config: FakeConfig,
    clock: Arc<ManualClock>,
    timings: impl FnOnce(&mut JobTimings),
    customize: impl FnOnce(&mut RawSettings),
) -> TestApp {
    let clock = SharedClock::new(clock);
    spawn(
        fake_config,
        Role::ApiAndWorkers,
        clock,
        customize,
        |jobs: &mut JobTimings| {
            clocked_timings(jobs);
            timings(jobs);
        },
    )
    .await
}

/// A fake whose dataset holds `customers` generated customers (seeded, deterministic).
pub fn fake_with_dataset(customers: usize) -> FakeConfig {
    FakeConfig {
        dataset: Some(DatasetSpec {
            customers,
            subscriber_share: 1.0,
            seed: 7,
            anonymous_aliases: 3,
        }),
        ..FakeConfig::default()
    }
}

pub async fn spawn_app_with_fake(
    fake_config: FakeConfig,
    customize: impl FnOnce(&mut RawSettings),
) -> TestApp {
    spawn(
        fake_config,
        Role::ApiAndWorkers,
        SharedClock::system(),
        customize,
        |_| {},
    )
    .await
}

async fn spawn(
    fake_config: FakeConfig,
    role: Role,
    clock: SharedClock,
    customize: impl FnOnce(&mut RawSettings),
    timings: impl FnOnce(&mut JobTimings),
) -> TestApp {
    // Logs are noise in a passing run; `TEST_LOG=1 cargo test` shows them.
    if std::env::var_os("TEST_LOG").is_some() {
        rcsync::telemetry::init(rcsync::config::LogFormat::Pretty);
    }
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(fake_config).expect("start fake RevenueCat");
    let mut raw = db.raw_settings();
    raw.revenuecat_api_url = fake.base_url();
    customize(&mut raw);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().unwrap().port();
    if raw.public_url.is_none() {
        raw.public_url = Some(format!("http://127.0.0.1:{port}"));
    }
    let mut settings = raw.resolve().expect("test settings");
    timings(&mut settings.jobs);
    let store = open_store_with_clock(&settings, clock)
        .await
        .expect("open store");
    let app = Application::build_with(settings, store.clone(), listener, role)
        .await
        .expect("build app");
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped());

    let team_id = uuid::Uuid::new_v4().to_string();
    let project_id = uuid::Uuid::new_v4().to_string();
    store.create_team(&team_id, "Test team").await.unwrap();
    store
        .create_project(&project_id, &team_id, "Test project")
        .await
        .unwrap();
    let mut app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        fake,
        client: reqwest::Client::new(),
        store,
        services,
        db,
        team_id: team_id.clone(),
        project_id,
        api_key: String::new(),
    };
    app.api_key = app.create_api_key(&team_id, &Permission::ALL).await;
    app
}

/// Another rcsync on `app`'s database and fake, API only, reading time from `clock`: what a
/// second process sees. Returns its base URL.
pub async fn spawn_second_process_app(app: &TestApp, clock: SharedClock) -> String {
    let mut raw = app.db.raw_settings();
    raw.revenuecat_api_url = app.fake.base_url();
    let settings = raw.resolve().expect("test settings");
    let store = open_store_with_clock(&settings, clock)
        .await
        .expect("open store");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let other = Application::build_with(settings, store, listener, Role::ApiOnly)
        .await
        .expect("build app");
    tokio::spawn(other.run_until_stopped());
    address
}

impl TestApp {
    pub async fn create_api_key(&self, team_id: &str, permissions: &[Permission]) -> String {
        let generated = generate_api_key();
        self.store
            .create_api_key(NewApiKey {
                id: &uuid::Uuid::new_v4().to_string(),
                team_id,
                name: "test",
                key_prefix: &generated.display_prefix,
                key_hash: &generated.hash,
                permissions,
            })
            .await
            .unwrap();
        generated.key.expose_secret().to_owned()
    }

    /// Another team with its own project; returns (team_id, project_id).
    pub async fn create_other_team(&self) -> (String, String) {
        let team_id = uuid::Uuid::new_v4().to_string();
        let project_id = uuid::Uuid::new_v4().to_string();
        self.store.create_team(&team_id, "Other").await.unwrap();
        self.store
            .create_project(&project_id, &team_id, "Other project")
            .await
            .unwrap();
        (team_id, project_id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn project_url(&self, rest: &str) -> String {
        self.url(&format!("/v1/projects/{}{}", self.project_id, rest))
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.get(url).bearer_auth(&self.api_key)
    }

    pub fn post(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(url).bearer_auth(&self.api_key).json(body)
    }

    pub fn patch(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.patch(url).bearer_auth(&self.api_key).json(body)
    }

    pub fn delete(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.delete(url).bearer_auth(&self.api_key)
    }

    /// Creates the integration with a key the fake RevenueCat accepts.
    pub async fn create_revenuecat_integration(&self, api_key: &str) -> Value {
        self.fake.add_api_key(api_key);
        let response = self
            .post(
                &self.project_url("/integrations"),
                &serde_json::json!({"provider": "revenuecat", "config": {"api_key": api_key}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }
}

/// A HS256 token signed with the test secret; `exp` in seconds since the epoch.
pub fn jwt(teams: Value, exp: Option<i64>) -> String {
    let mut claims = serde_json::json!({"sub": "user-1", "teams": teams});
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

pub fn in_one_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// Status and JSON body of a response; panics if the body is not JSON.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Percent-encodes one URL path segment (everything but unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// Requests the fake got for `GET …/customers/<user>` itself (not its sub-resources).
    pub fn customer_fetches(&self, user_id: &str) -> usize {
        let suffix = format!("/customers/{user_id}");
        self.fake
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path_and_query.ends_with(&suffix))
            .count()
    }

    /// `POST …/integrations/revenuecat/sync/:userId` (the id percent-encoded).
    pub async fn sync_user(&self, user_id: &str) -> (u16, Value) {
        let url = self.project_url(&format!(
            "/integrations/revenuecat/sync/{}",
            encode_segment(user_id)
        ));
        status_json(
            self.post(&url, &serde_json::json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `GET …/users/:id` → (status, body).
    pub async fn get_user(&self, user_id: &str) -> (u16, Value) {
        let url = self.project_url(&format!("/users/{}", encode_segment(user_id)));
        status_json(self.get(&url).send().await.unwrap()).await
    }

    /// Creates the integration with the fake's own (already accepted) key.
    pub async fn connect_fake(&self) -> Value {
        self.create_revenuecat_integration(&self.fake.api_key())
            .await
    }
}

/// Every byte the database holds, as text: the SQLite files (WAL included) in the test's
/// directory, or the bytes of every column of every table in every schema of the PostgreSQL
/// test database (apalis's own included).
pub async fn raw_database_dump(app: &TestApp) -> String {
    if !app.db.is_postgres {
        let mut dump = String::new();
        for entry in std::fs::read_dir(app.db.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            dump.push_str(&String::from_utf8_lossy(&bytes));
        }
        return dump;
    }
    // Every column of every table in every schema, as the bytes it holds: a BYTEA as its raw
    // bytes (its text form is hex, where a plaintext secret would hide), anything else as text.
    let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.data_type::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE t.table_type = 'BASE TABLE' \
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!columns.is_empty(), "the dump sees the tables");
    let mut bytes = Vec::new();
    for (schema, table, column, data_type) in columns {
        let value = if data_type == "bytea" {
            format!("\"{column}\"")
        } else {
            format!("convert_to(\"{column}\"::text, 'UTF8')")
        };
        let rows: Vec<(Option<Vec<u8>>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {value} FROM \"{schema}\".\"{table}\""
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for row in rows.into_iter().filter_map(|(row,)| row) {
            bytes.extend_from_slice(&row);
            bytes.push(b'\n');
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
