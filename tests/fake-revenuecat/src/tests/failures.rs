//! Faults, 429s and held answers, as a client meets them.

use std::time::SystemTime;

use super::*;

fn limited(per_min: u32) -> FakeConfig {
    let mut cfg = config(5);
    cfg.customer_rate_limit_per_min = per_min;
    cfg
}

#[tokio::test]
async fn injected_faults_count_against_the_window_and_a_full_window_answers_429_first() {
    let c = Client::new(limited(3));
    let url = c.project_url("/customers/user_000001");
    c.fake.fail_next(1, 500);
    assert_eq!(c.get(&url).await.status(), 500);
    assert_eq!(c.get(&url).await.status(), 200);
    let third = c.get(&url).await;
    assert_eq!(third.status(), 200);
    assert_eq!(third.headers()["revenuecat-rate-limit-current-usage"], "3");
    // the window is full: the fault waits behind the 429
    c.fake.fail_next(1, 503);
    assert_eq!(c.get(&url).await.status(), 429);
    assert_eq!(
        c.fake.max_accepted_in_window(
            RateLimitDomain::CustomerInformation,
            Duration::from_secs(60)
        ),
        3
    );
    c.fake.reset_rate_limits();
    assert_eq!(c.get(&url).await.status(), 503);
    assert_eq!(c.get(&url).await.status(), 200);
    let statuses: Vec<u16> = c.fake.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200, 200, 429, 503, 200]);
    c.fake.stop().await;
}

#[tokio::test]
async fn retry_after_can_be_an_http_date_or_a_fixed_number_and_is_logged() {
    let c = Client::new(limited(1));
    let url = c.project_url("/customers/user_000001");
    assert_eq!(c.get(&url).await.status(), 200);
    let r = c.get(&url).await;
    assert_eq!(r.status(), 429);
    let secs: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs));
    let logged = c.fake.request_log().pop().unwrap();
    assert_eq!(logged.retry_after_secs, Some(secs));
    assert_eq!(
        logged.retry_after.as_deref(),
        Some(secs.to_string().as_str())
    );
    assert_eq!(
        logged.retry_allowed_at(),
        Some(logged.at + Duration::from_secs(secs))
    );

    c.fake.set_retry_after_secs(Some(7));
    let r = c.get(&url).await;
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backoff_ms"], 7000);

    c.fake.set_retry_after_format(RetryAfterFormat::HttpDate);
    let asked = SystemTime::now();
    let r = c.get(&url).await;
    assert_eq!(r.status(), 429);
    let header = r.headers()["retry-after"].to_str().unwrap().to_string();
    assert!(header.ends_with(" GMT"), "{header}");
    let date = chrono::DateTime::parse_from_rfc2822(&header).expect("an HTTP-date");
    let wait = date.timestamp() - chrono::DateTime::<chrono::Utc>::from(asked).timestamp();
    assert!((7..=8).contains(&wait), "{header} is {wait} s away");
    let logged = c.fake.request_log().pop().unwrap();
    assert_eq!(logged.retry_after_secs, Some(7));
    assert_eq!(logged.retry_after.as_deref(), Some(header.as_str()));
    assert!(c.fake.request_log()[0].retry_after.is_none());

    // an injected 429 announces its wait the same way
    c.fake.reset_rate_limits();
    c.fake.set_retry_after_format(RetryAfterFormat::Seconds);
    c.fake.fail_next(1, 429);
    let r = c.get(&url).await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    c.fake.stop().await;
}

/// A broken hold fails the test instead of hanging it.
async fn arrived(hold: &Hold) {
    tokio::time::timeout(Duration::from_secs(10), hold.arrived())
        .await
        .expect("the held request arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_keeps_matching_requests_in_flight_until_released() {
    let c = Client::new(config(5));
    let held_url = c.project_url("/customers/user_000003");
    let hold = c.fake.hold_matching("/customers/user_000003");
    let (http, key) = (c.http.clone(), c.fake.api_key());
    let in_flight = tokio::spawn({
        let url = held_url.clone();
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    arrived(&hold).await;
    assert_eq!(hold.arrived_count(), 1);
    // other requests are answered meanwhile; the held one is neither answered nor logged
    assert_eq!(
        c.get(&c.project_url("/customers/user_000002"))
            .await
            .status(),
        200
    );
    assert!(!in_flight.is_finished());
    assert!(c
        .fake
        .request_log()
        .iter()
        .all(|r| !r.path_and_query.contains("user_000003")));
    // what the fake answers is decided after the release
    c.fake
        .state()
        .with(|s| s.customer_mut("user_000003").unwrap().last_seen_country = Some("NZ".into()));
    hold.release();
    assert_eq!(in_flight.await.unwrap(), 200);
    let (_, v) = c.get_json(&held_url).await;
    assert_eq!(v["last_seen_country"], "NZ");
    assert_eq!(hold.arrived_count(), 1, "released holds hold nothing more");

    // dropping a hold releases it too
    let hold = c.fake.hold_matching("/subscriptions");
    let (http, key) = (c.http.clone(), c.fake.api_key());
    let url = c.project_url("/customers/user_000001/subscriptions");
    let in_flight = tokio::spawn(async move {
        http.get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
    });
    arrived(&hold).await;
    drop(hold);
    assert_eq!(in_flight.await.unwrap(), 200);
    c.fake.stop().await;
}
