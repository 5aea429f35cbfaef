//! What reaches a handler as a request body: no compressed bodies (refused before they are
//! read, so memory stays flat — measured on the real `rcsync` process), and no body trickled
//! in slower than the body timeout.

use std::io::Write;
use std::time::{Duration, Instant};

use fake_revenuecat::{FakeConfig, FakeRevenueCat};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, status_json, TestApp, TestDatabase};
use crate::process::{create_tenant, open_test_store, start_server};

/// `inflated` bytes of zeros as one zstd frame (a few KB per GiB).
fn zstd_bomb(inflated: usize) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    write_zeros(&mut encoder, inflated);
    encoder.finish().unwrap()
}

/// `inflated` bytes of zeros gzipped (deflate tops out near 1:1000).
fn gzip_bomb(inflated: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    write_zeros(&mut encoder, inflated);
    encoder.finish().unwrap()
}

fn write_zeros(out: &mut impl Write, total: usize) {
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..total / zeros.len() {
        out.write_all(&zeros).unwrap();
    }
}

/// The process's peak resident set (`VmHWM`) in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[tokio::test]
async fn compressed_bombs_are_refused_before_they_inflate() {
    const GIB: usize = 1 << 30;
    let bombs = [("zstd", zstd_bomb(2 * GIB)), ("gzip", gzip_bomb(GIB / 4))];
    for (coding, bomb) in &bombs {
        println!("{coding} bomb: {} KiB on the wire", bomb.len() / 1024);
    }
    let db = TestDatabase::create().await;
    let fake = FakeRevenueCat::start(FakeConfig::default()).expect("fake");
    let (server, base) = start_server(&db, &fake, 1).await;
    let store = open_test_store(&db).await;
    let tenant = create_tenant(&store, &base, &fake).await;
    let users_url = format!("{base}/v1/projects/{}/users", tenant.project_id);
    let made_up_token = format!(
        "rcs_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 40)
    );
    let client = reqwest::Client::new();

    // Warm up both routes with ordinary bodies, so the baseline includes their allocations.
    let upsert = json!({"users": [{"user_id": "warm", "properties": {"plan": "pro"}}]});
    let response = client
        .post(&users_url)
        .bearer_auth(&tenant.api_key)
        .json(&upsert);
    assert_eq!(response.send().await.unwrap().status(), 200);
    let event = crate::webhooks::event_for("initial_purchase", "warm", "warm-1", 1_000);
    let response = client
        .post(&tenant.webhook_url)
        .header("Authorization", &tenant.webhook_auth)
        .json(&event);
    assert_eq!(response.send().await.unwrap().status(), 200);
    let before = peak_rss_kib(server.pid());

    let targets = [
        (users_url.as_str(), format!("Bearer {made_up_token}")),
        (users_url.as_str(), format!("Bearer {}", tenant.api_key)),
        (tenant.webhook_url.as_str(), tenant.webhook_auth.clone()),
    ];
    for _round in 0..3 {
        for (coding, bomb) in &bombs {
            for (url, authorization) in &targets {
                let response = client
                    .post(*url)
                    .header("Authorization", authorization)
                    .header("Content-Type", "application/json")
                    .header("Content-Encoding", *coding)
                    .body(bomb.clone())
                    .send()
                    .await
                    .unwrap();
                let (status, body) = status_json(response).await;
                assert_eq!(status, 415, "{coding} to {url}: {body}");
                assert!(body["error"].as_str().unwrap().contains(coding), "{body}");
            }
        }
    }
    let after = peak_rss_kib(server.pid());
    println!(
        "peak RSS: {} MiB before 18 bombs, {} MiB after",
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + 50 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    // Nothing inflated was stored either.
    let (status, user) = status_json(
        client
            .get(format!("{users_url}/warm"))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{user}");
}

#[tokio::test]
async fn identity_is_the_one_accepted_content_encoding() {
    let app = crate::helpers::spawn_app().await;
    let url = app.project_url("/users");
    let upsert = json!({"users": [{"user_id": "plain"}]});
    let identity = app
        .post(&url, &upsert)
        .header("Content-Encoding", "identity");
    assert_eq!(identity.send().await.unwrap().status(), 200);
    for coding in [
        "gzip",
        "br",
        "deflate",
        "zstd",
        "identity, gzip",
        "x-unknown",
    ] {
        let response = app.post(&url, &upsert).header("Content-Encoding", coding);
        let (status, body) = status_json(response.send().await.unwrap()).await;
        assert_eq!(status, 415, "{coding}: {body}");
    }
    // Every route, before authentication or routing looks at the request.
    let unauthenticated = app
        .client
        .get(app.url("/healthz"))
        .header("Content-Encoding", "gzip");
    assert_eq!(unauthenticated.send().await.unwrap().status(), 415);
}

/// Sends `head` and then one byte of body every 100 ms; returns what the server answered
/// before it closed the connection, or `None` if it was still open after `patience`.
async fn trickle_body(app: &TestApp, head: String, patience: Duration) -> Option<String> {
    let address = app.address.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = Vec::new();
    // A reset after the answer is a close too: keep whatever arrived before it.
    let closed = tokio::time::timeout(patience, reader.read_to_end(&mut answer))
        .await
        .is_ok();
    trickle.abort();
    closed.then(|| String::from_utf8_lossy(&answer).into_owned())
}

fn post_head(path: &str, authorization: &str, address: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
    )
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_with_408() {
    let app = spawn_app_with(|s| s.request_body_timeout_secs = 1).await;
    let created: Value = app.connect_fake().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let webhook_path = format!("/v1/webhooks/revenuecat/{}", app.project_id);
    let heads = [
        post_head(
            &format!("/v1/projects/{}/users", app.project_id),
            &format!("Bearer {}", app.api_key),
            &address,
        ),
        post_head(
            &webhook_path,
            created["webhook_setup"]["authorization_header"]
                .as_str()
                .unwrap(),
            &address,
        ),
    ];
    for head in heads {
        let started = Instant::now();
        // Body timeout (1 s) plus the linger after the answer (5 s), with room to spare.
        let answer = trickle_body(&app, head.clone(), Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("still connected after 20 s: {head}"));
        println!("trickled body cut off after {:?}", started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("not received within 1 s"), "{answer}");
    }
}

/// A webhook body sent chunked (no `Content-Length` to refuse up front) is cut off at the
/// 1 MiB limit as it streams in: 413, and nothing of it is recorded.
#[tokio::test]
async fn a_chunked_webhook_body_over_one_mib_is_413() {
    let app = spawn_app_with(|_| {}).await;
    let created: Value = app.connect_fake().await;
    let authorization = created["webhook_setup"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();
    let address = app.address.trim_start_matches("http://").to_owned();
    let path = format!("/v1/webhooks/revenuecat/{}", app.project_id);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    // A well-formed start, then 2 MiB of one string in 64 KiB chunks: only the size is wrong.
    let sending = tokio::spawn(async move {
        let start = br#"{"api_version": "1.0", "event": {"id": "evt-chunked", "type": "RENEWAL", "app_user_id": "chunky", "big": ""#;
        let mut chunks = vec![start.to_vec()];
        chunks.extend(std::iter::repeat_n(vec![b'x'; 64 * 1024], 32));
        for chunk in chunks {
            let frame = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut answer = Vec::new();
    // A reset after the answer is a close too: keep whatever arrived before it.
    let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    sending.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let stored = app
        .store
        .get_webhook_event(&app.project_id, "evt-chunked")
        .await
        .unwrap();
    assert!(stored.is_none(), "{stored:?}");
}
