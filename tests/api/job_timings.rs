//! What background work promises over time, driven by a [`ManualClock`]: retries and their
//! bound, the attempt cut, partial resyncs, database faults, the resolution window of anonymous
//! events, the follow-up debounce, the redispatch of lost pushes, the claim lease and scheduled
//! full resyncs. Time on the clock moves only when a test advances it; real waits are the few
//! hundred milliseconds the fast loops of [`crate::helpers::clocked_timings`] take.
//!
//! Absence ("nothing ran before the due time") is never shown by sleeping: a *barrier* — a
//! resync of another user requested at the current clock time — runs to completion, which
//! proves the dispatcher went through a whole round at this time; what that round leaves in the
//! database (a row not dispatched, a follow-up not promoted) is then asserted.

use std::sync::Arc;
use std::time::Duration;

use fake_revenuecat::dataset::customer_id;
use fake_revenuecat::{CustomerRecord, FakeConfig};
use rcsync::clock::{Clock, ManualClock};
use rcsync::config::JobTimings;
use rcsync::services::{resync_runs, user_resyncs};
use rcsync::store::resyncs::{ResyncRequest, UserResync};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{
    fake_with_dataset, spawn_app_with_clock_and_timings, status_json, wait_until, TestApp,
};
use crate::webhooks::{deliver, event_for, with_webhook};

/// Real time any one step may take (a few dispatcher rounds on a loaded machine).
const STEP: Duration = Duration::from_secs(10);

/// Timings of every test here, on top of [`crate::helpers::clocked_timings`]: RevenueCat's client repeats a
/// failed request after a millisecond or so instead of ~0.5–16 s of real time, and this live
/// process heartbeats often. Its instance timeout is long so that a clock jump (minutes in one
/// step) never makes the process look dead between two heartbeats: only the behaviour a test
/// names decides what happens.
fn fast(timings: &mut JobTimings) {
    timings.rc_first_backoff = Duration::from_millis(1);
    timings.rc_max_backoff = Duration::from_millis(5);
    timings.instance_heartbeat = Duration::from_millis(50);
    timings.instance_timeout = Duration::from_secs(24 * 3600);
}

/// An app on a manual clock, connected to a fake with 20 generated customers, both with a
/// roomy Customer Information budget (these tests are about time on the clock, not pacing).
async fn clocked_app(adjust: impl FnOnce(&mut JobTimings)) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let fake = FakeConfig {
        customer_rate_limit_per_min: crate::resync::FAST_RATE,
        ..fake_with_dataset(20)
    };
    let app = spawn_app_with_clock_and_timings(
        fake,
        clock.clone(),
        |timings| {
            fast(timings);
            adjust(timings);
        },
        |raw| raw.rc_rate_limit = crate::resync::FAST_RATE,
    )
    .await;
    app.connect_fake().await;
    (app, clock)
}

async fn enqueue(app: &TestApp, user_id: &str, delay: Duration) -> String {
    match user_resyncs::request(&app.store, &app.project_id, user_id, "test", delay)
        .await
        .expect("request a resync")
    {
        ResyncRequest::Created { id, .. } | ResyncRequest::AlreadyPending { id } => id,
    }
}

async fn row(app: &TestApp, id: &str) -> UserResync {
    app.store
        .get_user_resync(id)
        .await
        .unwrap()
        .expect("resync row")
}

/// Waits until the row has settled its `attempts`-th attempt (pending again or finished).
async fn settled_attempt(app: &TestApp, id: &str, attempts: i64) -> UserResync {
    wait_until(
        STEP,
        &format!("resync {id} to settle attempt {attempts}"),
        || async {
            let r = row(app, id).await;
            (r.attempts == attempts && r.status != "running").then_some(r)
        },
    )
    .await
}

/// A resync of `user` requested now and due now runs to completion: the dispatcher went
/// through at least one whole round at the current clock time (the round that pushed it
/// promoted due follow-ups and pushed every due resync first).
async fn barrier(app: &TestApp, user: &str) {
    let id = enqueue(app, user, Duration::ZERO).await;
    wait_until(STEP, "the barrier resync to succeed", || async {
        (row(app, &id).await.status == "succeeded").then_some(())
    })
    .await;
}

/// Runs SQL statements on the test's database, from a connection of the test's own.
async fn exec(app: &TestApp, sql: String) {
    if app.db.is_postgres {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// One nullable integer read with SQL from the test's database.
async fn query_i64(app: &TestApp, sql: String) -> Option<i64> {
    if app.db.is_postgres {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

/// Moves the clock to `at` (never back).
fn advance_to(clock: &ManualClock, at: i64) {
    if at > clock.now_ms() {
        clock.set_ms(at);
    }
}

// a. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_resync_failing_every_attempt_ends_failed_after_max_attempts() {
    let (app, clock) = clocked_app(|_| {}).await;
    let max = JobTimings::default().max_attempts;
    assert_eq!(max, 8, "the README promises 8 attempts");
    let user = customer_id(3);
    // Every call about the customer fails (the client's own retries included). Project
    // Configuration calls (the catalog) succeed: at RevenueCat's 60/min they would make each
    // attempt take seconds of real time.
    app.fake.fail_next_matching(1_000_000, 500, "/customers/");
    let id = enqueue(&app, &user, Duration::ZERO).await;
    for attempt in 1..=max {
        let r = settled_attempt(&app, &id, attempt).await;
        let error = r.last_error.clone().expect("last_error recorded");
        assert!(error.contains("RevenueCat"), "attempt {attempt}: {error}");
        if attempt < max {
            assert_eq!(r.status, "pending", "attempt {attempt} is retried: {r:?}");
            assert!(r.run_after > clock.now_ms(), "with a backoff: {r:?}");
            advance_to(&clock, r.run_after);
        } else {
            assert_eq!(r.status, "failed", "the last attempt ends it: {r:?}");
        }
    }
    // No 9th attempt, however late it gets (and with RevenueCat healthy again).
    let requests = app.fake.request_log().len();
    app.fake.clear_faults();
    clock.advance(Duration::from_secs(3600));
    barrier(&app, &customer_id(4)).await;
    let r = row(&app, &id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("failed", max), "{r:?}");
    assert!(r.last_error.is_some_and(|e| e.contains("RevenueCat")));
    let later: Vec<_> = app.fake.request_log()[requests..]
        .iter()
        .filter(|r| r.path_and_query.contains(&user))
        .map(|r| r.path_and_query.clone())
        .collect();
    assert!(
        later.is_empty(),
        "nothing asked for {user} after `failed`: {later:?}"
    );
}

// b. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_attempt_longer_than_the_time_limit_is_cut_and_retried() {
    let limit = Duration::from_millis(1500);
    let (app, clock) = clocked_app(|t| t.attempt_time_limit = limit).await;
    // A first sync fetches the catalog (cached for minutes, paced at the Project
    // Configuration budget): the attempt below spends its time on the held customer only.
    assert_eq!(app.sync_user(&customer_id(5)).await.0, 200);
    let user = customer_id(0);
    let hold = app.fake.hold_matching(&format!("/customers/{user}"));
    let id = enqueue(&app, &user, Duration::ZERO).await;
    tokio::time::timeout(STEP, hold.arrived())
        .await
        .expect("the attempt asks RevenueCat for the user");
    // RevenueCat never answers; the attempt is cut at the limit (the client's own request
    // timeout, 10 s, would come much later) and recorded for a retry.
    let cut = settled_attempt(&app, &id, 1).await;
    assert_eq!(cut.status, "pending", "{cut:?}");
    let error = cut.last_error.clone().unwrap_or_default();
    assert!(error.contains("attempt exceeded"), "{error}");
    assert!(cut.run_after > clock.now_ms(), "retried later: {cut:?}");
    hold.release();
    advance_to(&clock, cut.run_after);
    let done = settled_attempt(&app, &id, 2).await;
    assert_eq!(done.status, "succeeded", "{done:?}");
    assert_eq!(done.last_error, None);
    let (_, stored) = app.get_user(&user).await;
    assert_eq!(stored["properties"]["rc_status"], "active", "{stored}");
}

// c. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_partial_resync_writes_entitlements_and_is_retried() {
    let (app, clock) = clocked_app(|_| {}).await;
    let user = customer_id(0); // monthly subscriber
                               // `/subscriptions` fails past the client's retries (1 + 5 calls): entitlements only.
    app.fake.fail_next_matching(6, 500, "/subscriptions");
    let id = enqueue(&app, &user, Duration::ZERO).await;
    let partial = settled_attempt(&app, &id, 1).await;
    assert_eq!(partial.status, "pending", "retried: {partial:?}");
    assert!(
        partial
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("only entitlements")),
        "{partial:?}"
    );
    assert!(partial.run_after > clock.now_ms());
    let (_, stored) = app.get_user(&user).await;
    assert_eq!(
        stored["properties"]["rc_entitlements"], "premium",
        "{stored}"
    );
    assert!(
        stored["properties"].get("rc_product").is_none(),
        "no subscription data yet: {stored}"
    );

    advance_to(&clock, partial.run_after);
    let done = settled_attempt(&app, &id, 2).await;
    assert_eq!(done.status, "succeeded", "{done:?}");
    let (_, stored) = app.get_user(&user).await;
    let p = &stored["properties"];
    assert_eq!(p["rc_status"], "active", "{p}");
    assert_eq!(p["rc_product"], "premium_monthly", "{p}");
}

// d. ---------------------------------------------------------------------------------------

/// Makes every write of a user row fail inside the database (a trigger raising an error).
async fn break_user_writes(app: &TestApp) {
    let sql = if app.db.is_postgres {
        "CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'injected database fault'; END $$; \
         CREATE TRIGGER test_fault BEFORE INSERT OR UPDATE ON app_users \
         FOR EACH ROW EXECUTE FUNCTION test_fault();"
    } else {
        "CREATE TRIGGER test_fault_insert BEFORE INSERT ON app_users \
         BEGIN SELECT RAISE(ABORT, 'injected database fault'); END; \
         CREATE TRIGGER test_fault_update BEFORE UPDATE ON app_users \
         BEGIN SELECT RAISE(ABORT, 'injected database fault'); END;"
    };
    exec(app, sql.to_owned()).await;
}

#[tokio::test]
async fn database_faults_are_retried_a_bounded_number_of_times() {
    let (app, clock) = clocked_app(|_| {}).await;
    let max = JobTimings::default().max_attempts;
    let user = customer_id(0);
    break_user_writes(&app).await;
    let id = enqueue(&app, &user, Duration::ZERO).await;
    for attempt in 1..=max {
        let r = settled_attempt(&app, &id, attempt).await;
        // What the row records is the store's own summary of the fault.
        let error = r.last_error.clone().unwrap_or_default();
        // The cause, not only "database error": an operator reads what went wrong.
        assert!(error.contains("injected database fault"), "{error}");
        if attempt < max {
            assert_eq!(r.status, "pending", "attempt {attempt}: {r:?}");
            advance_to(&clock, r.run_after);
        } else {
            assert_eq!(r.status, "failed", "{r:?}");
        }
    }
    // Each attempt fetched the user once (and wrote nothing); none after the last.
    assert_eq!(app.customer_fetches(&user), max as usize);
    clock.advance(Duration::from_secs(3600));
    let r = row(&app, &id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("failed", max));
    let (status, _) = app.get_user(&user).await;
    assert_eq!(status, 404, "nothing was written");
}

// e. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_still_anonymous_event_is_retried_for_the_resolution_window_then_skipped() {
    let clock = Arc::new(ManualClock::new());
    let app =
        spawn_app_with_clock_and_timings(FakeConfig::default(), clock.clone(), fast, |_| {}).await;
    let (app, header) = with_webhook(app).await;
    // RevenueCat knows this customer, but only by its anonymous id (nobody logged in).
    let anonymous = "$RCAnonymousID:0000000000000000000000000000a11e";
    app.fake
        .state()
        .upsert_customer(CustomerRecord::new(anonymous, app.fake.now_ms()));
    let mut body = event_for(
        "initial_purchase",
        anonymous,
        "evt-anon",
        clock.now_ms() - 1_000,
    );
    body["event"]["aliases"] = json!([anonymous]);
    assert_eq!(deliver(&app, &header, &body).await.0, 200);
    let received_at = event(&app).await.received_at;
    let window = ms(JobTimings::default().resolution_window);
    let max_retry = ms(JobTimings::default().max_retry);

    let mut attempts_at = Vec::new();
    loop {
        let expected = attempts_at.len() as i64 + 1;
        let now = clock.now_ms();
        let (e, next) = wait_until(STEP, "the resolution attempt to settle", || async {
            let e = event(&app).await;
            let next = next_attempt_at(&app).await;
            let settled = e.status != "pending_resolution" || next.is_some_and(|n| n > now);
            (e.attempts == expected && settled).then_some((e, next))
        })
        .await;
        let at = clock.now_ms();
        attempts_at.push(at - received_at);
        if e.status != "pending_resolution" {
            assert_eq!(e.status, "skipped", "{e:?}");
            assert!(
                e.status_detail
                    .as_deref()
                    .is_some_and(|d| d.contains("no identified user")),
                "{e:?}"
            );
            assert!(
                at - received_at >= window,
                "not given up before the window: {attempts_at:?}"
            );
            break;
        }
        assert!(
            at - received_at < window,
            "retried only within the window: {attempts_at:?}"
        );
        let next = next.unwrap();
        assert!(next > at, "a backoff: {next} <= {at}");
        assert!(attempts_at.len() < 20, "bounded: {attempts_at:?}");
        advance_to(&clock, next);
    }
    let last = *attempts_at.last().unwrap();
    assert!(
        last < window + max_retry * 6 / 5,
        "given up at the first attempt past the window: {attempts_at:?}"
    );
    assert!(
        attempts_at.len() >= 5,
        "retried with backoff: {attempts_at:?}"
    );
    // Never applied to anyone, and no user row for the anonymous id.
    let (status, _) = app.get_user(anonymous).await;
    assert_eq!(status, 404);
}

async fn event(app: &TestApp) -> rcsync::store::webhook_events::StoredWebhookEvent {
    app.store
        .get_webhook_event(&app.project_id, "evt-anon")
        .await
        .unwrap()
        .expect("event row")
}

async fn next_attempt_at(app: &TestApp) -> Option<i64> {
    query_i64(
        app,
        "SELECT next_attempt_at FROM webhook_events WHERE event_id = 'evt-anon'".into(),
    )
    .await
}

fn ms(duration: Duration) -> i64 {
    rcsync::clock::ms(duration)
}

// f. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_events_of_one_user_within_the_debounce_cost_one_resync() {
    let clock = Arc::new(ManualClock::new());
    let app =
        spawn_app_with_clock_and_timings(fake_with_dataset(20), clock.clone(), fast, |_| {}).await;
    let (app, header) = with_webhook(app).await;
    let debounce = ms(JobTimings::default().follow_up_debounce);
    assert_eq!(debounce, 2_000, "the README promises a 2 s debounce");
    let user = customer_id(0);
    let first_at = clock.now_ms();
    // Four events of the user within the window, 500 ms apart on the clock.
    for i in 0..4 {
        let body = event_for(
            "renewal",
            &user,
            &format!("evt-{i}"),
            clock.now_ms() - 60_000,
        );
        assert_eq!(deliver(&app, &header, &body).await.0, 200);
        if i < 3 {
            clock.advance(Duration::from_millis(500));
        }
    }
    // Just before the first event's debounce has passed: nothing promoted, nothing fetched.
    advance_to(&clock, first_at + debounce - 1);
    barrier(&app, &customer_id(5)).await;
    assert_eq!(
        resync_rows(&app, &user).await,
        0,
        "no resync before the debounce"
    );
    assert_eq!(app.customer_fetches(&user), 0);

    // Past it (and still within the last event's window): one resync, one fetch.
    advance_to(&clock, first_at + debounce);
    wait_until(STEP, "the follow-up resync to succeed", || async {
        let done = query_i64(
            &app,
            format!(
                "SELECT COUNT(*) FROM user_resyncs WHERE user_id = '{user}' AND status = 'succeeded'"
            ),
        )
        .await;
        (done == Some(1)).then_some(())
    })
    .await;
    barrier(&app, &customer_id(6)).await;
    assert_eq!(
        resync_rows(&app, &user).await,
        1,
        "one resync for four events"
    );
    assert_eq!(app.customer_fetches(&user), 1);
}

async fn resync_rows(app: &TestApp, user: &str) -> i64 {
    query_i64(
        app,
        format!("SELECT COUNT(*) FROM user_resyncs WHERE user_id = '{user}'"),
    )
    .await
    .unwrap_or_default()
}

// g. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn work_whose_push_was_lost_is_pushed_again_after_the_redispatch_window() {
    let (app, clock) = clocked_app(|_| {}).await;
    let redispatch = JobTimings::default().redispatch_after;
    let user = customer_id(0);
    let id = enqueue(&app, &user, Duration::from_secs(10)).await;
    // The dispatcher "pushed" it and the task never reached the queue (a crash between the
    // two, a lost task): the row says dispatched, the queue holds nothing for it.
    let pushed_at = clock.now_ms();
    exec(
        &app,
        format!("UPDATE user_resyncs SET dispatched_at = {pushed_at} WHERE id = '{id}'"),
    )
    .await;
    clock.advance(Duration::from_secs(11));
    barrier(&app, &customer_id(5)).await;
    let waiting = row(&app, &id).await;
    assert_eq!((waiting.status.as_str(), waiting.attempts), ("pending", 0));
    assert_eq!(app.customer_fetches(&user), 0, "not pushed again yet");

    // Re-pushed once the push is older than the window (strictly).
    advance_to(&clock, pushed_at + ms(redispatch) + 1);
    let done = settled_attempt(&app, &id, 1).await;
    assert_eq!(done.status, "succeeded", "{done:?}");
    barrier(&app, &customer_id(6)).await;
    assert_eq!(row(&app, &id).await.attempts, 1);
    assert_eq!(app.customer_fetches(&user), 1, "ran once");
}

// h. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_row_left_running_is_reclaimed_after_the_claim_lease() {
    let (app, clock) = clocked_app(|_| {}).await;
    let lease = JobTimings::default().claim_lease;
    let user = customer_id(0);
    let id = enqueue(&app, &user, Duration::from_secs(3600)).await;
    // A claim that never settled, held in the name of this (live, heartbeating) process: an
    // attempt whose worker was lost without its process dying.
    let claimed_at = clock.now_ms();
    exec(
        &app,
        format!(
            "UPDATE user_resyncs SET status = 'running', attempts = 1, claimed_by = '{instance}', \
             updated_at = {claimed_at} WHERE id = '{id}'",
            instance = app.services.instance_id
        ),
    )
    .await;
    advance_to(&clock, claimed_at + ms(lease) - 1_000);
    barrier(&app, &customer_id(5)).await;
    let held = row(&app, &id).await;
    assert_eq!((held.status.as_str(), held.attempts), ("running", 1));
    assert_eq!(
        app.customer_fetches(&user),
        0,
        "not taken over within the lease"
    );

    advance_to(&clock, claimed_at + ms(lease) + 1);
    let done = settled_attempt(&app, &id, 2).await;
    assert_eq!(done.status, "succeeded", "{done:?}");
    barrier(&app, &customer_id(6)).await;
    assert_eq!(row(&app, &id).await.attempts, 2);
    assert_eq!(app.customer_fetches(&user), 1, "ran to completion once");
    let (_, stored) = app.get_user(&user).await;
    assert_eq!(stored["properties"]["rc_status"], "active", "{stored}");
}

#[tokio::test]
async fn a_row_claimed_by_a_dead_process_is_reclaimed_after_the_instance_timeout() {
    let timeout = JobTimings::default().instance_timeout;
    // The production timeout; this process heartbeats every 50 ms of real time and the clock
    // moves in steps shorter than the timeout, so only the dead process looks dead.
    let (app, clock) = clocked_app(|t| t.instance_timeout = timeout).await;
    let user = customer_id(0);
    let id = enqueue(&app, &user, Duration::from_secs(3600)).await;
    let died_at = clock.now_ms();
    exec(
        &app,
        format!(
            "INSERT INTO worker_instances (id, started_at, heartbeat_at) \
             VALUES ('dead-process', {died_at}, {died_at}); \
             UPDATE user_resyncs SET status = 'running', attempts = 1, claimed_by = 'dead-process', \
             updated_at = {died_at} WHERE id = '{id}';"
        ),
    )
    .await;
    advance_to(&clock, died_at + ms(timeout) - 1_000);
    barrier(&app, &customer_id(5)).await;
    let held = row(&app, &id).await;
    assert_eq!((held.status.as_str(), held.attempts), ("running", 1));
    assert_eq!(
        app.customer_fetches(&user),
        0,
        "its process may still be alive"
    );

    advance_to(&clock, died_at + ms(timeout) + 1_000);
    let done = settled_attempt(&app, &id, 2).await;
    assert_eq!(done.status, "succeeded", "{done:?}");
    barrier(&app, &customer_id(6)).await;
    assert_eq!(row(&app, &id).await.attempts, 2);
    assert_eq!(app.customer_fetches(&user), 1, "ran to completion once");
}

// i. ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_scheduled_full_resync_starts_when_due_and_not_before() {
    let (app, clock) = {
        let clock = Arc::new(ManualClock::new());
        let app =
            spawn_app_with_clock_and_timings(fake_with_dataset(5), clock.clone(), fast, |_| {})
                .await;
        (app, clock)
    };
    let key = app.fake.api_key();
    app.fake.add_api_key(&key);
    let (status, created) = status_json(
        app.post(
            &app.project_url("/integrations"),
            &json!({"provider": "revenuecat",
                    "config": {"api_key": key, "resync_interval_hours": "1"}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created_at = iso_ms(&created["created_at"]);
    let users: Vec<String> = (0..3).map(customer_id).collect();
    crate::resync::add_users(&app, &users).await;
    let due = created_at + 3_600_000;

    // A minute before due: a check (the one the schedule loop runs) starts nothing.
    advance_to(&clock, due - 60_000);
    let started = resync_runs::start_scheduled(&app.services).await.unwrap();
    assert_eq!(started, 0, "not due yet");
    assert!(job_runs(&app).await.is_empty());

    advance_to(&clock, due);
    let runs = wait_until(STEP, "a scheduled run", || async {
        let runs = job_runs(&app).await;
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["triggered_by"], "schedule", "{run}");
    assert!(iso_ms(&run["created_at"]) >= due, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let ended = crate::resync::wait_for_end(&app, &id, STEP).await;
    assert_eq!(ended["status"], "completed", "{ended}");
}

async fn job_runs(app: &TestApp) -> Vec<Value> {
    let url = app.url(&format!("/v1/teams/{}/jobs", app.team_id));
    let (status, body) = status_json(app.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["job_runs"].as_array().unwrap().clone()
}

fn iso_ms(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("an ISO time"))
        .expect("ISO 8601")
        .timestamp_millis()
}
