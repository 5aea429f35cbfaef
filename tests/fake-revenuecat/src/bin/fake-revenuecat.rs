//! A stateful fake of RevenueCat REST API v2 for dev, tests, demo and benches.
//!
//! `fake-revenuecat --bind 127.0.0.1:8090 --customers 1000 --subscriber-share 0.4 --seed 42`
//! prints one line with the base URL, API key and project id, then serves until SIGINT or
//! SIGTERM. Admin endpoints (request log, stats, faults, latency, rate limits, Retry-After,
//! list knobs, permissions, unreachable paths, stored webhook integrations) live under
//! `/_fake`; see the library's crate docs for every knob.

use std::time::Duration;

use clap::Parser;
use fake_revenuecat::{DatasetExtras, DatasetSpec, FakeConfig, FakeRevenueCat, RetryAfterFormat};

#[derive(Debug, Parser)]
#[command(
    name = "fake-revenuecat",
    version,
    about = "Fake RevenueCat REST API v2"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_RC_BIND", default_value = "127.0.0.1:8090")]
    bind: String,
    /// Number of generated customers.
    #[arg(long, env = "FAKE_RC_CUSTOMERS", default_value_t = 1000)]
    customers: usize,
    /// Share of generated customers that are subscribers (0..=1).
    #[arg(long, env = "FAKE_RC_SUBSCRIBER_SHARE", default_value_t = 0.4)]
    subscriber_share: f64,
    /// Seed of the dataset generator.
    #[arg(long, env = "FAKE_RC_SEED", default_value_t = 42)]
    seed: u64,
    /// Number of `$RCAnonymousID:` aliases merged into generated customers.
    #[arg(long, env = "FAKE_RC_ANONYMOUS_ALIASES", default_value_t = 50)]
    anonymous_aliases: usize,
    /// Accepted secret API key (repeatable).
    #[arg(
        long = "api-key",
        env = "FAKE_RC_API_KEY",
        default_value = "sk_test_fake_key_0001"
    )]
    api_keys: Vec<String>,
    #[arg(long, env = "FAKE_RC_PROJECT_ID", default_value = "proj1ab2c3d4")]
    project_id: String,
    /// Customer Information requests per key per minute.
    #[arg(long, env = "FAKE_RC_CUSTOMER_RATE_LIMIT", default_value_t = 480)]
    customer_rate_limit: u32,
    /// Project Configuration requests per key per minute.
    #[arg(long, env = "FAKE_RC_CONFIG_RATE_LIMIT", default_value_t = 60)]
    config_rate_limit: u32,
    /// Largest accepted `limit` query parameter.
    #[arg(long, env = "FAKE_RC_MAX_PAGE_LIMIT", default_value_t = 100)]
    max_page_limit: u32,
    /// Added latency per request, in milliseconds.
    #[arg(long, env = "FAKE_RC_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Serve `active_entitlements` in list-customers items (RevenueCat's docs say it does not).
    #[arg(long, env = "FAKE_RC_LIST_CUSTOMERS_INCLUDES_ENTITLEMENTS")]
    list_customers_includes_entitlements: bool,
    /// Serve at most this many items per list page, whatever `limit` asks for.
    #[arg(long, env = "FAKE_RC_PAGE_CAP")]
    page_cap: Option<usize>,
    /// Embed lists (active entitlements, subscription entitlements) as pages of this size.
    #[arg(long, env = "FAKE_RC_EMBEDDED_PAGE_SIZE")]
    embedded_page_size: Option<usize>,
    /// Leave `next_page` out of last pages instead of sending null.
    #[arg(long, env = "FAKE_RC_OMIT_NEXT_PAGE_ON_LAST")]
    omit_next_page_on_last: bool,
    /// Send a 429's `Retry-After` as an HTTP-date instead of seconds.
    #[arg(long, env = "FAKE_RC_RETRY_AFTER_HTTP_DATE")]
    retry_after_http_date: bool,
    /// Announce this many seconds in every 429 instead of the time until the window frees.
    #[arg(long, env = "FAKE_RC_RETRY_AFTER_SECS")]
    retry_after_secs: Option<u64>,
    /// Add one customer per extra case (`extra_unknown_status`, `extra_incomplete`, ...).
    #[arg(long, env = "FAKE_RC_EXTRA_CASES")]
    extra_cases: bool,
    /// Customers known only by an `$RCAnonymousID:` id.
    #[arg(long, env = "FAKE_RC_ANONYMOUS_CUSTOMERS", default_value_t = 0)]
    anonymous_customers: usize,
    /// actix worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = FakeConfig {
        api_keys: args.api_keys.clone(),
        project_id: args.project_id.clone(),
        customer_rate_limit_per_min: args.customer_rate_limit,
        config_rate_limit_per_min: args.config_rate_limit,
        max_page_limit: args.max_page_limit,
        list_customers_includes_entitlements: args.list_customers_includes_entitlements,
        page_cap: args.page_cap,
        embedded_page_size: args.embedded_page_size,
        omit_next_page_on_last: args.omit_next_page_on_last,
        retry_after_format: if args.retry_after_http_date {
            RetryAfterFormat::HttpDate
        } else {
            RetryAfterFormat::Seconds
        },
        retry_after_secs: args.retry_after_secs,
        dataset_extras: DatasetExtras {
            anonymous_customers: args.anonymous_customers,
            extra_cases: args.extra_cases,
        },
        dataset: Some(DatasetSpec {
            customers: args.customers,
            subscriber_share: args.subscriber_share,
            seed: args.seed,
            anonymous_aliases: args.anonymous_aliases,
        }),
        latency: Duration::from_millis(args.latency_ms),
        workers: args.workers.max(1),
        ..Default::default()
    };
    let fake = FakeRevenueCat::start_on(&args.bind, config)?;
    println!(
        "fake-revenuecat listening: base_url={} api_key={} project_id={} customers={} admin={}/_fake",
        fake.base_url(),
        fake.api_key(),
        fake.project_id(),
        args.customers,
        fake.root_url()
    );
    shutdown_signal().await;
    eprintln!("fake-revenuecat: shutting down");
    fake.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
