//! `make bench` (second part): full-project resyncs. The release `rcsync` binary runs as its
//! own process(es) on a fresh database; this process hosts the fake RevenueCat (rate limited,
//! with added latency) and drives the API like a UI would: upsert the users, trigger, poll the
//! job until it ends, then check every user against what the fake's dataset says they are.
//!
//! Rows (issue 15): 10,000 users against a fake limited to 6,000 requests/min with 100 ms added
//! latency; 100,000 users at 60,000/min (RSS must stay flat in the number of users); 10 users
//! inside a 50,000-customer RevenueCat project (no list paging); two `rcsync worker` processes
//! on PostgreSQL sharing one key at 6,000/min. Revenue tracking is off in these rows (2 calls
//! per user, the floor); `BENCH_QUICK=1` runs smaller datasets. The first two rows run
//! side by side (see `main`).

#[path = "../common/server.rs"]
mod server;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_revenuecat::dataset::{customer_id, expected_case, DatasetCase};
use fake_revenuecat::{DatasetSpec, FakeConfig, FakeRevenueCat, RateLimitDomain};
use rcsync::store::users::UserQuery;
use serde_json::{json, Value};

use server::{Backend, Database, Server, Tenant};

struct Scenario {
    name: String,
    /// Users the project knows (the first `users` customers of the dataset).
    users: usize,
    /// Customers RevenueCat holds.
    customers: usize,
    per_minute: u32,
    latency: Duration,
    /// Runs at once, each in its own project with the same key, on PostgreSQL worker processes.
    parallel_runs: usize,
}

struct Measured {
    scenario: String,
    backend: &'static str,
    users: usize,
    wall_s: f64,
    calls_per_user: f64,
    floor_per_user: f64,
    rate_limited: usize,
    budget_use: f64,
    peak_rss_mb: f64,
    processes: usize,
    wrong: usize,
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let scale = |full: usize, small: usize| if quick { small } else { full };
    vec![
        Scenario {
            name: "6,000/min, +100 ms latency".into(),
            users: scale(10_000, 2_000),
            customers: scale(10_000, 2_000),
            per_minute: 6_000,
            latency: Duration::from_millis(100),
            parallel_runs: 1,
        },
        Scenario {
            name: "60,000/min".into(),
            users: scale(100_000, 10_000),
            customers: scale(100_000, 10_000),
            per_minute: 60_000,
            latency: Duration::ZERO,
            parallel_runs: 1,
        },
        Scenario {
            name: "10 users of a large RevenueCat project, 6,000/min, +100 ms".into(),
            users: 10,
            customers: scale(50_000, 10_000),
            per_minute: 6_000,
            latency: Duration::from_millis(100),
            parallel_runs: 1,
        },
        Scenario {
            name: "two worker processes, one key at 6,000/min, +100 ms".into(),
            users: scale(2_000, 1_000),
            customers: scale(2_000, 1_000),
            per_minute: 6_000,
            latency: Duration::from_millis(100),
            parallel_runs: 2,
        },
    ]
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("resync bench: run it with `make bench`");
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let backends = Backend::available().await;
    let mut scenarios = scenarios(quick).into_iter();
    // The first two rows run side by side: the first is bound by RevenueCat's budget and
    // latency (its process mostly waits), the second by CPU; together they take the time of
    // one, which keeps `make bench` inside its 15 minutes.
    let (first, second) = (scenarios.next().unwrap(), scenarios.next().unwrap());
    eprintln!(
        "== {} ({} users) and {} ({} users), side by side, SQLite",
        first.name, first.users, second.name, second.users
    );
    let (a, b) = tokio::join!(
        run(&first, &Backend::Sqlite),
        run(&second, &Backend::Sqlite)
    );
    let mut rows = vec![a, b];
    for scenario in scenarios {
        let backend = if scenario.parallel_runs > 1 {
            match backends.iter().find(|b| matches!(b, Backend::Postgres(_))) {
                Some(pg) => pg.clone(),
                None => {
                    eprintln!("skipping '{}': PostgreSQL not reachable", scenario.name);
                    continue;
                }
            }
        } else {
            Backend::Sqlite
        };
        eprintln!(
            "== {} ({} users, {})",
            scenario.name,
            scenario.users,
            backend.name()
        );
        rows.push(run(&scenario, &backend).await);
    }
    print_table(&rows);
    if rows.iter().any(|r| r.wrong > 0) {
        std::process::exit(1);
    }
}

fn fake_for(scenario: &Scenario) -> FakeRevenueCat {
    let mut config = FakeConfig {
        dataset: Some(DatasetSpec {
            customers: scenario.customers,
            subscriber_share: 0.6,
            seed: 5,
            anonymous_aliases: 0,
        }),
        customer_rate_limit_per_min: scenario.per_minute,
        config_rate_limit_per_min: 600,
        latency: scenario.latency,
        workers: 2,
        ..FakeConfig::default()
    };
    config.max_page_limit = 1000;
    FakeRevenueCat::start(config).expect("fake RevenueCat")
}

/// `rcsync worker` (no HTTP): the bench's second process for the shared-budget row.
fn start_worker(
    db: &Database,
    revenuecat_url: &str,
    per_minute: u32,
    log: &std::path::Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .arg("worker")
        .env("RCSYNC_DATABASE_URL", &db.url)
        .env("RCSYNC_REVENUECAT_API_URL", revenuecat_url)
        .env("RCSYNC_MASTER_KEY", server::MASTER_KEY)
        .env("RCSYNC_RC_RATE_LIMIT", per_minute.to_string())
        // One run per process, so the two runs land on the two processes.
        .env("RCSYNC_MAX_RESYNC_RUNS", "1")
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("worker log"))
        .spawn()
        .expect("spawn rcsync worker")
}

async fn run(scenario: &Scenario, backend: &Backend) -> Measured {
    let fake = fake_for(scenario);
    let db = Database::create(backend).await;
    let rate = scenario.per_minute.to_string();
    let mut serve_args = vec!["--rc-rate-limit", rate.as_str()];
    if scenario.parallel_runs > 1 {
        serve_args.push("--no-workers");
    }
    let api = Server::start(&db, &fake.base_url(), &serve_args).await;
    let mut workers: Vec<Child> = (1..=scenario.parallel_runs.min(2))
        .filter(|_| scenario.parallel_runs > 1)
        .map(|i| {
            let log = db.dir.path().join(format!("worker-{i}.log"));
            start_worker(&db, &fake.base_url(), scenario.per_minute, &log)
        })
        .collect();
    let client = reqwest::Client::new();
    let mut runs = Vec::new();
    let mut tenants = Vec::new();
    for _ in 0..scenario.parallel_runs {
        let tenant = server::bootstrap(&db, &fake.base_url());
        server::connect_revenuecat(&api, &tenant, &fake.api_key()).await;
        set_config(&client, &api, &tenant, json!({"track_revenue": "false"})).await;
        add_users(&client, &api, &tenant, scenario.users).await;
        tenants.push(tenant);
    }
    let started = Instant::now();
    fake.clear_log();
    for tenant in &tenants {
        runs.push(trigger(&client, &api, tenant).await);
    }
    let mut results = Vec::new();
    for (tenant, run_id) in tenants.iter().zip(&runs) {
        results.push(wait_for_end(&client, &api, tenant, run_id).await);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let peak_rss_mb = workers
        .iter()
        .map(|w| server::peak_rss_mb_of(w.id()))
        .fold(api.peak_rss_mb(), f64::max);
    let stats = fake.stats();
    let per_user = |field: &str| {
        results
            .iter()
            .map(|r| r[field].as_f64().unwrap_or(f64::NAN))
            .sum::<f64>()
            / results.len() as f64
    };
    let processes: std::collections::BTreeSet<String> = results
        .iter()
        .flat_map(|r| r["instances"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| {
            i.as_str()
                .map(|s| s.split('-').next().unwrap_or(s).to_owned())
        })
        .collect();
    let customer_calls = stats
        .accepted_by_domain
        .get(RateLimitDomain::CustomerInformation.as_str())
        .copied()
        .unwrap_or_default();
    let budget = f64::from(scenario.per_minute) / 60.0 * wall_s;
    let mut wrong = 0;
    for (tenant, result) in tenants.iter().zip(&results) {
        wrong += check_users(&db, tenant, scenario).await;
        if result["errors"].as_i64() != Some(0) {
            eprintln!("run had errors: {result}");
        }
    }
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    drop(api);
    db.drop_database().await;
    Measured {
        scenario: scenario.name.clone(),
        backend: backend.name(),
        users: scenario.users * scenario.parallel_runs,
        wall_s,
        calls_per_user: per_user("calls_per_user"),
        floor_per_user: per_user("floor_calls_per_user"),
        rate_limited: stats.rate_limited,
        budget_use: customer_calls as f64 / budget,
        peak_rss_mb,
        processes: processes.len(),
        wrong,
    }
}

fn api_url(api: &Server, rest: &str) -> String {
    format!("http://{}{rest}", api.address)
}

async fn set_config(client: &reqwest::Client, api: &Server, tenant: &Tenant, config: Value) {
    let url = api_url(
        api,
        &format!("/v1/projects/{}/integrations/revenuecat", tenant.project_id),
    );
    let response = client
        .patch(url)
        .bearer_auth(&tenant.api_key)
        .json(&json!({ "config": config }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn add_users(client: &reqwest::Client, api: &Server, tenant: &Tenant, users: usize) {
    let url = api_url(api, &format!("/v1/projects/{}/users", tenant.project_id));
    for start in (0..users).step_by(1000) {
        let batch: Vec<Value> = (start..users.min(start + 1000))
            .map(|i| json!({"user_id": customer_id(i)}))
            .collect();
        let response = client
            .post(&url)
            .bearer_auth(&tenant.api_key)
            .json(&json!({ "users": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

async fn trigger(client: &reqwest::Client, api: &Server, tenant: &Tenant) -> String {
    let url = api_url(
        api,
        &format!(
            "/v1/projects/{}/integrations/revenuecat/sync",
            tenant.project_id
        ),
    );
    let answer: Value = client
        .post(url)
        .bearer_auth(&tenant.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["job_run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run: {answer}"))
        .to_owned()
}

async fn wait_for_end(
    client: &reqwest::Client,
    api: &Server,
    tenant: &Tenant,
    run_id: &str,
) -> Value {
    let url = api_url(api, &format!("/v1/teams/{}/jobs/{run_id}", tenant.team_id));
    loop {
        let job: Value = client
            .get(&url)
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match job["status"].as_str() {
            Some("completed") => return job["result"].clone(),
            Some("failed" | "cancelled") => panic!("run ended {}: {job}", job["status"]),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The `rc_status` and entitlement a sync must conclude for each dataset case.
fn expected_status(case: DatasetCase) -> &'static str {
    match case {
        DatasetCase::Monthly
        | DatasetCase::Yearly
        | DatasetCase::Lifetime
        | DatasetCase::Promotional => "active",
        DatasetCase::Trial => "trialing",
        DatasetCase::CancelledActive => "cancelled",
        DatasetCase::BillingRetry | DatasetCase::GracePeriod => "billing_issue",
        DatasetCase::Paused => "paused",
        DatasetCase::Expired | DatasetCase::NeverSubscribed => "expired",
    }
}

/// Users whose status or entitlement disagrees with the dataset.
async fn check_users(db: &Database, tenant: &Tenant, scenario: &Scenario) -> usize {
    let mut raw = rcsync::config::RawSettings::defaults();
    raw.database_url = db.url.clone();
    raw.master_key = Some(server::MASTER_KEY.into());
    let settings = raw.resolve().expect("settings");
    let store = rcsync::store::Store::connect(
        &settings.database,
        settings.master_key.clone(),
        rcsync::clock::SharedClock::system(),
    )
    .await
    .expect("store");
    let spec = DatasetSpec {
        customers: scenario.customers,
        subscriber_share: 0.6,
        seed: 5,
        anonymous_aliases: 0,
    };
    let mut wrong = 0;
    let mut checked = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_users(UserQuery {
                project_id: &tenant.project_id,
                property_equals: &[],
                after_user_id: after.as_deref(),
                limit: 1000,
            })
            .await
            .expect("list users");
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for user in &page {
            checked += 1;
            let Some(case) = expected_case(&spec, &user.user_id) else {
                wrong += 1;
                continue;
            };
            let status = user.properties.get("rc_status").and_then(Value::as_str);
            let entitled = user.properties.contains_key("rc_entitlements");
            if status != Some(expected_status(case)) || entitled != case.has_access() {
                if wrong < 5 {
                    eprintln!("{} ({case:?}): {:?}", user.user_id, user.properties);
                }
                wrong += 1;
            }
        }
    }
    store.close().await;
    wrong + scenario.users.saturating_sub(checked)
}

fn print_table(rows: &[Measured]) {
    println!();
    println!("rcsync full-project resync — release build as its own process(es), fake RevenueCat in the bench process, same 2-core machine; track_revenue off (floor: 2 calls per known customer, 1 per unknown)");
    println!();
    println!("| scenario | backend | users | wall s | users/min | calls/user | floor | 429s | budget use | processes | peak RSS MB | users wrong |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {} | {:.0}% | {} | {:.0} | {} |",
            r.scenario,
            r.backend,
            r.users,
            r.wall_s,
            r.users as f64 / r.wall_s * 60.0,
            r.calls_per_user,
            r.floor_per_user,
            r.rate_limited,
            r.budget_use * 100.0,
            r.processes,
            r.peak_rss_mb,
            r.wrong,
        );
    }
}
