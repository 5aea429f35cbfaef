//! `make bench`: durable webhook ingestion. The release `rcsync` binary runs as its own process
//! on a fresh database (SQLite, then PostgreSQL when reachable); this process is the load
//! generator (a minimal HTTP/1.1 client, 64 keep-alive connections) and hosts the fake
//! RevenueCat the follow-up resyncs call.
//!
//! Per backend: the `/healthz` ceiling; saturation (closed loop); fixed arrival rates of 1,000/s
//! and 5,000/s (open loop: latency is measured from each request's scheduled time, so a slow
//! server cannot hide behind fewer requests); peak RSS; and an exactness check of everything
//! sent (stored events per status, every user's final properties). A fast but lossy run
//! prints FAIL. `BENCH_QUICK=1` runs a smaller workload for iterating.

#[path = "../common/http1.rs"]
mod http1;
#[path = "../common/server.rs"]
mod server;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_revenuecat::{FakeConfig, FakeRevenueCat};
use rcsync::config::RawSettings;
use rcsync::store::users::UserQuery;
use rcsync::store::Store;

use http1::{Connection, Latencies};
use server::{Backend, Database, Server, Tenant};
use workload::{Expected, Workload};

const CONNECTIONS: usize = 64;

struct Sizes {
    healthz_seconds: u64,
    saturation_events: usize,
    open_seconds: u64,
}

impl Sizes {
    fn from_env() -> Self {
        if std::env::var_os("BENCH_QUICK").is_some() {
            Sizes {
                healthz_seconds: 2,
                saturation_events: 30_000,
                open_seconds: 4,
            }
        } else {
            Sizes {
                healthz_seconds: 5,
                saturation_events: 150_000,
                open_seconds: 10,
            }
        }
    }
}

/// One measured load.
struct Row {
    backend: &'static str,
    load: String,
    offered: Option<f64>,
    achieved: f64,
    latencies: Latencies,
    non_200: usize,
}

/// What a backend's runs add up to.
struct Summary {
    backend: &'static str,
    ceiling: f64,
    saturation: f64,
    peak_rss_mb: f64,
    exactness: String,
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs bench binaries once without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("webhooks bench: run it with `make bench`");
        return;
    }
    let sizes = Sizes::from_env();
    let fake = FakeRevenueCat::start(FakeConfig {
        workers: 1,
        ..FakeConfig::default()
    })
    .expect("fake RevenueCat");
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for backend in Backend::available().await {
        let (mut backend_rows, summary) = bench_backend(&backend, &fake, &sizes).await;
        rows.append(&mut backend_rows);
        summaries.push(summary);
    }
    print_report(&rows, &summaries, &sizes);
    if summaries.iter().any(|s| !s.exactness.starts_with("PASS")) {
        std::process::exit(1);
    }
}

async fn bench_backend(
    backend: &Backend,
    fake: &FakeRevenueCat,
    sizes: &Sizes,
) -> (Vec<Row>, Summary) {
    let db = Database::create(backend).await;
    let tenant = server::bootstrap(&db, &fake.base_url());
    // BENCH_SERVE_ARGS (e.g. `--no-workers`) is for experiments when profiling.
    let extra = std::env::var("BENCH_SERVE_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let server = Server::start(&db, &fake.base_url(), &extra).await;
    let auth = server::connect_revenuecat(&server, &tenant, &fake.api_key()).await;
    let name = backend.name();
    eprintln!(
        "== {name}: rcsync pid {} on {}",
        server.pid(),
        server.address
    );

    let healthz = closed_loop_healthz(&server.address, sizes.healthz_seconds).await;
    let ceiling = healthz.achieved;
    let mut rows = vec![Row {
        backend: name,
        ..healthz
    }];
    let mut expected = Expected::default();
    let target = Target {
        address: server.address.clone(),
        path: format!("/v1/webhooks/revenuecat/{}", tenant.project_id),
        auth,
    };

    let saturation = workload::build(
        "sat",
        sizes.saturation_events,
        sizes.saturation_events / 2,
        CONNECTIONS,
        1,
    );
    saturation.expect(&mut expected);
    let row = drive(&target, &saturation, None).await;
    let saturation_rate = row.achieved;
    rows.push(Row {
        backend: name,
        load: format!("webhooks, {CONNECTIONS} connections (saturation)"),
        ..row
    });
    // BENCH_SATURATION_ONLY skips the fixed-rate runs (for profiling).
    let rates: &[f64] = if std::env::var_os("BENCH_SATURATION_ONLY").is_some() {
        &[]
    } else {
        &[1_000.0, 5_000.0]
    };
    for &rate in rates {
        let events = (rate as usize) * sizes.open_seconds as usize;
        let tag = format!("r{}", rate as u64);
        let load = workload::build(&tag, events, events / 2, CONNECTIONS, rate as u64);
        load.expect(&mut expected);
        let row = drive(&target, &load, Some(rate)).await;
        rows.push(Row {
            backend: name,
            load: format!("webhooks at {rate:.0}/s offered"),
            ..row
        });
    }
    let peak_rss_mb = server.peak_rss_mb();
    let exactness = check_exactness(&db, &tenant, &expected).await;
    drop(server);
    db.drop_database().await;
    let summary = Summary {
        backend: name,
        ceiling,
        saturation: saturation_rate,
        peak_rss_mb,
        exactness,
    };
    (rows, summary)
}

struct Target {
    address: String,
    path: String,
    auth: String,
}

/// Sends every delivery of `load`, each connection its own list in order: back to back
/// (`rate` None), or each at its scheduled time `index / rate` after the start.
async fn drive(target: &Target, load: &Workload, rate: Option<f64>) -> Row {
    let target = Arc::new((
        target.address.clone(),
        target.path.clone(),
        target.auth.clone(),
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for list in &load.per_connection {
        let jobs: Vec<(usize, Vec<u8>)> = list.iter().map(|(i, d)| (*i, d.body.clone())).collect();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let (address, path, auth) = &*target;
            let mut connection = Connection::open(address).await.expect("connect");
            let mut samples = Vec::with_capacity(jobs.len());
            let mut non_200 = 0;
            for (index, body) in jobs {
                let scheduled = match rate {
                    Some(rate) => started + Duration::from_secs_f64(index as f64 / rate),
                    None => Instant::now(),
                };
                tokio::time::sleep_until(scheduled.into()).await;
                let head = http1::head(
                    "POST",
                    path,
                    &[
                        ("Authorization", auth),
                        ("Content-Type", "application/json"),
                    ],
                    body.len(),
                );
                match connection.request(&head, &body).await {
                    Ok(answer) if answer.status == 200 => {}
                    Ok(_) => non_200 += 1,
                    Err(_) => {
                        non_200 += 1;
                        connection = Connection::open(address).await.expect("reconnect");
                    }
                }
                samples.push(scheduled.elapsed());
            }
            (samples, non_200)
        }));
    }
    let mut samples = Vec::with_capacity(load.total);
    let mut non_200 = 0;
    for task in tasks {
        let (mut s, n) = task.await.unwrap();
        samples.append(&mut s);
        non_200 += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Row {
        backend: "",
        load: String::new(),
        offered: rate,
        achieved: load.total as f64 / elapsed,
        latencies: Latencies::new(samples),
        non_200,
    }
}

/// `GET /healthz` back to back on every connection for `seconds`: the HTTP ceiling.
async fn closed_loop_healthz(address: &str, seconds: u64) -> Row {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let address = address.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(&address).await.expect("connect");
            let head = http1::head("GET", "/healthz", &[], 0);
            let mut samples = Vec::new();
            let mut non_200 = 0;
            while Instant::now() < until {
                let sent = Instant::now();
                match connection.request(&head, &[]).await {
                    Ok(a) if a.status == 200 => {}
                    _ => non_200 += 1,
                }
                samples.push(sent.elapsed());
            }
            (samples, non_200)
        }));
    }
    let mut samples = Vec::new();
    let mut non_200 = 0;
    for task in tasks {
        let (mut s, n) = task.await.unwrap();
        samples.append(&mut s);
        non_200 += n;
    }
    let achieved = samples.len() as f64 / started.elapsed().as_secs_f64();
    Row {
        backend: "",
        load: format!("/healthz, {CONNECTIONS} connections (ceiling)"),
        offered: None,
        achieved,
        latencies: Latencies::new(samples),
        non_200,
    }
}

/// Reads what rcsync stored and compares it with what the workloads must leave behind.
async fn check_exactness(db: &Database, tenant: &Tenant, expected: &Expected) -> String {
    let settings = RawSettings {
        database_url: db.url.clone(),
        master_key: Some(server::MASTER_KEY.into()),
        ..RawSettings::defaults()
    }
    .resolve()
    .expect("settings");
    let store: Store = rcsync::startup::open_store(&settings).await.expect("store");
    let statuses: std::collections::BTreeMap<String, i64> = store
        .count_webhook_events(&tenant.project_id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut problems = Vec::new();
    if statuses != expected.statuses {
        problems.push(format!(
            "events per status {statuses:?}, expected {:?}",
            expected.statuses
        ));
    }
    let mut checked = 0usize;
    let mut wrong = 0usize;
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
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for user in &page {
            checked += 1;
            let rc: serde_json::Map<String, serde_json::Value> = user
                .properties
                .iter()
                .filter(|(k, _)| k.starts_with("rc_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if expected.properties.get(&user.user_id) != Some(&rc) {
                wrong += 1;
                if wrong <= 3 {
                    problems.push(format!(
                        "{}: stored {rc:?}, expected {:?}",
                        user.user_id,
                        expected.properties.get(&user.user_id)
                    ));
                }
            }
        }
    }
    if checked != expected.properties.len() {
        problems.push(format!(
            "{checked} users stored, {} expected",
            expected.properties.len()
        ));
    }
    store.close().await;
    let events: i64 = expected.statuses.values().sum();
    if problems.is_empty() && wrong == 0 {
        format!("PASS ({events} distinct events, {checked} users exact)")
    } else {
        format!("FAIL ({wrong} users wrong; {})", problems.join("; "))
    }
}

fn print_report(rows: &[Row], summaries: &[Summary], sizes: &Sizes) {
    println!("\nrcsync webhook ingestion — release build as its own process, load from a separate process on the same 2-core machine");
    println!(
        "mix of {} RevenueCat event types (~1.6 KB), 5% redelivered ids, 2% older than applied; every 200 is a committed event\n",
        11
    );
    println!("| backend | load | offered/s | achieved/s | p50 ms | p99 ms | p99.9 ms | non-200 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            row.backend,
            row.load,
            row.offered.map_or("—".to_owned(), |r| format!("{r:.0}")),
            row.achieved,
            row.latencies.percentile_ms(0.50),
            row.latencies.percentile_ms(0.99),
            row.latencies.percentile_ms(0.999),
            row.non_200,
        );
    }
    println!("\n| backend | saturation events/s | /healthz ceiling req/s | ingestion / ceiling | peak RSS MB | exactness |");
    println!("|---|---:|---:|---:|---:|---|");
    for s in summaries {
        println!(
            "| {} | {:.0} | {:.0} | {:.1}% | {:.0} | {} |",
            s.backend,
            s.saturation,
            s.ceiling,
            100.0 * s.saturation / s.ceiling,
            s.peak_rss_mb,
            s.exactness
        );
    }
    let _ = sizes;
}
