//! `make bench`: sustained webhook ingestion on the embedded default (SQLite, API and
//! workers in one process) against the fake RevenueCat, printed as a table.
//!
//! Every request is a distinct RENEWAL (revenue-affecting: each also requests a debounced
//! resync, so the workers compete for the write lock as they would in production). The load
//! generator shares the machine's cores with the server; numbers are a floor.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use fake_revenuecat::{FakeConfig, FakeRevenueCat};
use futures::stream::{self, StreamExt};
use rcsync::auth::api_key::generate_api_key;
use rcsync::config::RawSettings;
use rcsync::domain::permission::Permission;
use rcsync::startup::{open_store, Application, Role};
use rcsync::store::tenancy::NewApiKey;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const USERS: usize = 2_000;

struct Run {
    concurrency: usize,
    requests: usize,
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs bench binaries once without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("webhooks bench: run it with `make bench`");
        return;
    }
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRevenueCat::start(FakeConfig::default()).unwrap();
    let settings = RawSettings {
        database_url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
        bind: "127.0.0.1:0".into(),
        revenuecat_api_url: fake.base_url(),
        log_format: "pretty".into(),
        ..RawSettings::defaults()
    }
    .resolve()
    .unwrap();
    let store = open_store(&settings).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let app = Application::build_with(settings, store.clone(), listener, Role::ApiAndWorkers)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped());

    store.create_team("bench", "Bench").await.unwrap();
    store
        .create_project("bench", "bench", "Bench")
        .await
        .unwrap();
    let key = generate_api_key();
    store
        .create_api_key(NewApiKey {
            id: "bench",
            team_id: "bench",
            name: "bench",
            key_prefix: &key.display_prefix,
            key_hash: &key.hash,
            permissions: &Permission::ALL,
        })
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let created: Value = client
        .post(format!("{address}/v1/projects/bench/integrations"))
        .bearer_auth(key.key.expose_secret())
        .json(&json!({"provider": "revenuecat", "config": {"api_key": fake.api_key()}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auth = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{address}/v1/webhooks/revenuecat/bench");
    let template: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks/renewal.json")).unwrap();

    println!(
        "rcsync webhook ingestion — SQLite (WAL, synchronous=FULL), API + workers in one process"
    );
    println!(
        "{} distinct RENEWAL events over {USERS} users per run; load generator on the same host\n",
        requests
    );
    println!("| concurrency | requests | non-200 | webhooks/s | p50 ms | p99 ms | max ms | events stored |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sent = 0usize;
    for run in [
        Run {
            concurrency: 16,
            requests,
        },
        Run {
            concurrency: 64,
            requests,
        },
    ] {
        let bodies: Vec<String> = (0..run.requests)
            .map(|i| {
                let n = sent + i;
                let mut body = template.clone();
                let user = format!("bench_user_{:05}", n % USERS);
                body["event"]["id"] = json!(format!("bench-{n:08}"));
                body["event"]["app_user_id"] = json!(user);
                body["event"]["original_app_user_id"] = json!(user);
                body["event"]["aliases"] = json!([user]);
                body["event"]["event_timestamp_ms"] = json!(1_700_000_000_000i64 + n as i64);
                body.to_string()
            })
            .collect();
        sent += run.requests;
        let started = Instant::now();
        let results: Vec<(u16, Duration)> = stream::iter(bodies)
            .map(|body| {
                let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
                async move {
                    let t = Instant::now();
                    let status = client
                        .post(&url)
                        .header("Authorization", auth)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    (status, t.elapsed())
                }
            })
            .buffer_unordered(run.concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let failures = results.iter().filter(|(s, _)| *s != 200).count();
        let stored: i64 = store
            .count_webhook_events("bench")
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
            run.concurrency,
            run.requests,
            failures,
            run.requests as f64 / elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
            stored,
        );
    }
}
