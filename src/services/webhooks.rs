//! Receiving RevenueCat webhooks: authenticate, validate, decide what the event means, and
//! hand it to the group-commit writer, which records it with its effects and answers once the
//! batch it rode in is committed.
//!
//! Decisions, documented once:
//! - Ordering: an event is applied only if its `event_timestamp_ms` is newer than the last one
//!   applied to the user; ties go to the larger event id. Older events are recorded as
//!   `superseded`. An implausible timestamp (missing, not a number, not positive, or more than a
//!   day ahead of our clock — RevenueCat's own TRANSFER sample carries one from the year 4466,
//!   which would freeze the user's ordering) never makes a delivery fail: the event is
//!   recorded, flagged, and ordered by the time we received it.
//! - The user is `app_user_id` unless it is anonymous, then `original_app_user_id`, then the
//!   first non-anonymous alias. With only anonymous ids the event waits (`pending_resolution`)
//!   for a job that asks RevenueCat who the customer is; no user row is ever created for an
//!   anonymous id.
//! - Sandbox events are applied like production ones (the webhook setup asks RevenueCat for
//!   both, so testers see their state); the event log keeps the environment.
//! - Every event that changes state, applied or superseded, requests a resync of its user after
//!   a debounce (one pending resync per user): webhooks give speed, the resync gives
//!   RevenueCat's word, revenue included. A TRANSFER resyncs both sides, at most
//!   [`MAX_TRANSFER_USERS`] of them.
//! - Group commit: concurrent deliveries are committed together (one fsync for the batch);
//!   200 still means committed. A batch that fails is retried event by event under savepoints,
//!   so one poisoned event fails alone.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::clock::{ms, SharedClock};
use crate::crypto::secret_digest;
use crate::domain::app_user::{has_nul, is_anonymous_id};
use crate::domain::event_plan::EventPlan;
use crate::domain::integration::{WebhookSecrets, REVENUECAT};
use crate::metrics::WebhookMetrics;
use crate::revenuecat::{map_webhook_event, EventType, WebhookEvent, WebhookPayload};
use crate::store::webhook_events::{EventOutcome, NewEvent};
use crate::store::{retry_transient_once, Store, StoreError};

/// Longest accepted event or user id (indexes stay well within PostgreSQL's limits).
pub const MAX_ID_LEN: usize = 512;
/// Users a TRANSFER resyncs at most (the first ones of `transferred_from` then
/// `transferred_to`): one delivery must not turn into an unbounded write.
pub const MAX_TRANSFER_USERS: usize = 100;
/// Events committed together at most.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer at most; beyond, handlers wait for room.
const QUEUE_DEPTH: usize = 8192;
/// A delivery whose batch has not committed by then answers 503 (RevenueCat retries).
const COMMIT_DEADLINE: Duration = Duration::from_secs(30);
/// How far ahead of our clock RevenueCat's may plausibly be.
const MAX_CLOCK_LEAD_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("RevenueCat is not configured or is disabled for this project")]
    NotConfigured,
    #[error("Missing Authorization header")]
    MissingAuthorization,
    #[error("Invalid webhook authorization")]
    InvalidAuthorization,
    /// The delivery cannot be recorded as sent (the message says why).
    #[error("{0}")]
    InvalidPayload(String),
    /// The database is contended or the writer is saturated: try again shortly.
    #[error("The event could not be committed in time; retry later")]
    Busy,
    /// The batch the event rode in failed to commit (the cause is logged once, by the writer).
    #[error("webhook batch could not be committed")]
    CommitFailed,
    /// The project was deleted (by another process) after the delivery was authenticated.
    #[error("The project no longer exists")]
    ProjectGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> WebhookError {
    WebhookError::InvalidPayload(message.into())
}

/// What an event means for user state, decided from the payload alone (pure). `resolved_user`
/// is the user an anonymous-only event turned out to belong to; without it the event applies
/// to its first identified id, or waits for resolution.
pub fn plan_event(event: &WebhookEvent, resolved_user: Option<&str>) -> EventPlan {
    if event.event_type == EventType::Transfer {
        let mut ids: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for id in event.transferred_from.iter().chain(&event.transferred_to) {
            if !id.is_empty() && !is_anonymous_id(id) && seen.insert(id.as_str()) {
                ids.push(id.clone());
            }
        }
        ids.truncate(MAX_TRANSFER_USERS);
        return EventPlan::Resync(ids);
    }
    let Some(patch) = map_webhook_event(event) else {
        return EventPlan::Ignore;
    };
    match resolved_user.or_else(|| event.identified_user_id()) {
        Some(user_id) => EventPlan::Apply {
            user_id: user_id.to_owned(),
            patch,
        },
        None => EventPlan::Resolve,
    }
}

/// Whether RevenueCat's timestamp can order the event (see the module docs).
pub fn is_plausible_timestamp(event_timestamp_ms: i64, now_ms: i64) -> bool {
    (1..=now_ms.saturating_add(MAX_CLOCK_LEAD_MS)).contains(&event_timestamp_ms)
}

/// Parses and validates a body in one pass. Unknown event types and fields are accepted.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let payload: WebhookPayload = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            invalid(format!("Invalid event: {e}"))
        } else {
            invalid(format!("Malformed JSON: {e}"))
        }
    })?;
    let event = payload.event;
    if event.id.trim().is_empty() {
        return Err(invalid("event.id must not be empty"));
    }
    let ids = [
        Some(event.id.as_str()),
        event.app_user_id.as_deref(),
        event.original_app_user_id.as_deref(),
    ];
    let ids: Vec<&str> = ids
        .into_iter()
        .flatten()
        .chain(event.aliases.iter().map(String::as_str))
        .chain(event.transferred_from.iter().map(String::as_str))
        .chain(event.transferred_to.iter().map(String::as_str))
        .collect();
    if ids.iter().any(|id| id.len() > MAX_ID_LEN) {
        return Err(invalid(format!(
            "Event ids and user ids must be at most {MAX_ID_LEN} bytes"
        )));
    }
    if event.event_type != EventType::Transfer && event.target_user_id().is_none() {
        return Err(invalid(
            "Event has neither app_user_id nor original_app_user_id",
        ));
    }
    if ids.iter().any(|id| has_nul(id)) || has_nul(event.event_type.as_str()) {
        return Err(nul_characters());
    }
    Ok(event)
}

fn nul_characters() -> WebhookError {
    invalid("Payload contains NUL (\\u0000) characters")
}

/// An event ready for the writer: owned, validated, planned.
struct ReadyEvent {
    project_id: String,
    event_id: String,
    event_type: String,
    app_user_id: Option<String>,
    environment: Option<String>,
    event_timestamp_ms: i64,
    timestamp_trusted: bool,
    payload: String,
    plan: EventPlan,
}

impl ReadyEvent {
    fn as_new(&self) -> NewEvent<'_> {
        NewEvent {
            project_id: &self.project_id,
            event_id: &self.event_id,
            event_type: &self.event_type,
            app_user_id: self.app_user_id.as_deref(),
            environment: self.environment.as_deref(),
            event_timestamp_ms: self.event_timestamp_ms,
            timestamp_trusted: self.timestamp_trusted,
            payload: &self.payload,
            plan: &self.plan,
        }
    }
}

/// PostgreSQL cannot store NUL in TEXT or JSONB: refuse an event whose stored fields carry one.
fn check_stored_text(ready: &ReadyEvent) -> Result<(), WebhookError> {
    let patch_values = match &ready.plan {
        EventPlan::Apply { patch, .. } => patch
            .iter()
            .flat_map(|(k, v)| [Some(k.as_str()), v.as_deref()])
            .flatten()
            .any(has_nul),
        _ => false,
    };
    let fields = [ready.environment.as_deref(), Some(ready.payload.as_str())]
        .into_iter()
        .flatten()
        .any(has_nul);
    if patch_values || fields {
        Err(nul_characters())
    } else {
        Ok(())
    }
}

struct Pending {
    event: ReadyEvent,
    reply: oneshot::Sender<Result<EventOutcome, WebhookError>>,
}

/// Receives webhooks: the secret check and the group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct WebhookReceiver {
    store: Store,
    clock: SharedClock,
    follow_up_debounce: Duration,
    secrets: SecretCache,
    writer: mpsc::Sender<Pending>,
    metrics: WebhookMetrics,
    stats: Arc<WriterCounters>,
    writers: usize,
}

/// What the group-commit writers are doing (for operators and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Writer tasks.
    pub writers: usize,
    /// Writers committing a batch now.
    pub busy: usize,
    /// Deliveries waiting for a writer.
    pub queued: usize,
    /// Batches of several events that failed as a whole and were then committed event by event
    /// (each held at least one event that failed alone), since the process started.
    pub split_batches: u64,
}

#[derive(Default)]
struct WriterCounters {
    busy: AtomicUsize,
    split_batches: AtomicU64,
}

impl WebhookReceiver {
    /// Starts the writer tasks: one on SQLite (one writer at a time anyway), several on
    /// PostgreSQL so batches commit in parallel.
    pub fn start(store: Store, follow_up_debounce: Duration, metrics: WebhookMetrics) -> Self {
        let (writer, queue) = mpsc::channel(QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        let stats = Arc::new(WriterCounters::default());
        let writers = match store.dialect() {
            crate::store::Dialect::Sqlite => 1,
            crate::store::Dialect::Postgres => 4,
        };
        for _ in 0..writers {
            tokio::spawn(run_writer(
                store.clone(),
                queue.clone(),
                ms(follow_up_debounce),
                metrics.clone(),
                stats.clone(),
            ));
        }
        Self {
            clock: store.clock().clone(),
            secrets: SecretCache::new(),
            store,
            follow_up_debounce,
            writer,
            metrics,
            stats,
            writers,
        }
    }

    /// 404 unless the project has an enabled RevenueCat integration, 401 unless the header
    /// carries its webhook secret, or the one a rotation replaced while its grace period runs
    /// on the clock (compared as digests, in constant time).
    pub async fn authenticate(
        &self,
        project_id: &str,
        authorization: Option<&str>,
    ) -> Result<(), WebhookError> {
        if has_nul(project_id) {
            return Err(WebhookError::NotConfigured);
        }
        let presented = authorization
            .map(|h| h.strip_prefix("Bearer ").unwrap_or(h).trim())
            .filter(|t| !t.is_empty());
        let cached = self.secrets.get(&self.store, project_id).await?;
        let verdict = verify(&cached.secrets, presented, self.clock.now_ms());
        if verdict.is_ok() || presented.is_none() {
            return verdict;
        }
        // A header we do not know, or a project we think has no integration, may be news from
        // another process (a rotation, a create): read again rather than refuse it for the rest
        // of the cache's life.
        match self
            .secrets
            .reread(&self.store, project_id, &cached)
            .await?
        {
            Some(fresh) => verify(&fresh.secrets, presented, self.clock.now_ms()),
            None => verdict,
        }
    }

    /// Forgets what the secret cache holds for a project (its integration changed).
    pub fn invalidate(&self, project_id: &str) {
        self.secrets.invalidate(project_id);
    }

    /// Records and applies one delivery; returns once it is committed.
    pub async fn receive(
        &self,
        project_id: &str,
        body: &[u8],
    ) -> Result<EventOutcome, WebhookError> {
        let started = std::time::Instant::now();
        let event = parse_event(body).inspect_err(|e| {
            self.metrics
                .delivered("UNPARSED", outcome_label(&Err(e)), started.elapsed())
        })?;
        let type_label = event_type_label(&event.event_type);
        let payload = std::str::from_utf8(body).map_err(|_| invalid("Body is not UTF-8"))?;
        let plan = plan_event(&event, None);
        let ready = ReadyEvent {
            project_id: project_id.to_owned(),
            event_type: event.event_type.as_str().to_owned(),
            app_user_id: event.app_user_id.clone(),
            environment: event.environment.as_ref().map(|e| e.as_str().to_owned()),
            event_timestamp_ms: event.event_timestamp_ms,
            timestamp_trusted: is_plausible_timestamp(
                event.event_timestamp_ms,
                self.clock.now_ms(),
            ),
            payload: payload.to_owned(),
            plan,
            event_id: event.id,
        };
        check_stored_text(&ready)?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            event: ready,
            reply,
        };
        let committed = async {
            self.writer
                .send(pending)
                .await
                .map_err(|_| WebhookError::Busy)?;
            answer.await.map_err(|_| WebhookError::Busy)?
        };
        let result = tokio::time::timeout(COMMIT_DEADLINE, committed)
            .await
            .unwrap_or(Err(WebhookError::Busy));
        let outcome = outcome_label(&result.as_ref());
        self.metrics
            .delivered(type_label, outcome, started.elapsed());
        result
    }

    /// The debounce of follow-up resyncs.
    pub fn follow_up_debounce(&self) -> Duration {
        self.follow_up_debounce
    }

    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            writers: self.writers,
            busy: self.stats.busy.load(Ordering::SeqCst),
            queued: QUEUE_DEPTH - self.writer.capacity(),
            split_batches: self.stats.split_batches.load(Ordering::SeqCst),
        }
    }
}

/// One writer: takes whatever deliveries are waiting (without waiting for more), commits them
/// together, answers each.
async fn run_writer(
    store: Store,
    queue: Arc<Mutex<mpsc::Receiver<Pending>>>,
    follow_up_delay_ms: i64,
    metrics: WebhookMetrics,
    stats: Arc<WriterCounters>,
) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            stats.busy.fetch_add(1, Ordering::SeqCst);
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let events: Vec<NewEvent<'_>> = batch.iter().map(|p| p.event.as_new()).collect();
        let started = std::time::Instant::now();
        let results = commit_batch(&store, &events, follow_up_delay_ms, &stats.split_batches).await;
        metrics.batch(events.len());
        tracing::debug!(
            events = events.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "webhook batch committed"
        );
        for (pending, result) in batch.into_iter().zip(results) {
            if let Ok(EventOutcome::Recorded(status)) = &result {
                tracing::debug!(event_id = %pending.event.event_id, status = status.as_str(), "webhook event recorded");
            }
            let _ = pending.reply.send(result);
        }
        stats.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn commit_batch(
    store: &Store,
    events: &[NewEvent<'_>],
    follow_up_delay_ms: i64,
    split_batches: &AtomicU64,
) -> Vec<Result<EventOutcome, WebhookError>> {
    let all = retry_transient_once(|| store.ingest_webhook_events(events, follow_up_delay_ms));
    match all.await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if e.is_transient() => {
            tracing::warn!(error.cause_chain = ?e, events = events.len(), "webhook batch contended; answering 503");
            events.iter().map(|_| Err(WebhookError::Busy)).collect()
        }
        Err(e) if events.len() == 1 => vec![Err(event_failed(e))],
        Err(e) => {
            tracing::warn!(error.cause_chain = ?e, events = events.len(), "webhook batch failed; committing its events one by one");
            split_batches.fetch_add(1, Ordering::SeqCst);
            commit_one_by_one(store, events, follow_up_delay_ms).await
        }
    }
}

/// The fallback: each event under its own savepoint, so a poisoned one fails alone.
async fn commit_one_by_one(
    store: &Store,
    events: &[NewEvent<'_>],
    follow_up_delay_ms: i64,
) -> Vec<Result<EventOutcome, WebhookError>> {
    let attempt = async {
        let mut tx = store.begin().await?;
        let follow_up_at = tx.now_ms() + follow_up_delay_ms;
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            tx.savepoint().await?;
            match tx
                .record_events(std::slice::from_ref(event), follow_up_at)
                .await
            {
                Ok(outcome) => {
                    tx.release_savepoint().await?;
                    results.push(Ok(outcome[0]));
                }
                Err(e) => {
                    tracing::warn!(error.cause_chain = ?e, event_id = %event.event_id, "webhook event could not be recorded");
                    tx.rollback_to_savepoint().await?;
                    results.push(Err(event_failed(e)));
                }
            }
        }
        tx.commit().await?;
        Ok::<_, StoreError>(results)
    };
    match attempt.await {
        Ok(results) => results,
        Err(e) => {
            let busy = e.is_transient();
            tracing::error!(error.cause_chain = ?e, "webhook batch could not be committed");
            let error = || {
                if busy {
                    WebhookError::Busy
                } else {
                    WebhookError::CommitFailed
                }
            };
            events.iter().map(|_| Err(error())).collect()
        }
    }
}

/// Why one event could not be recorded. Its project vanishing (deleted by another process while
/// the secret was cached) is the one case that is not a server fault.
fn event_failed(e: StoreError) -> WebhookError {
    if e.is_missing_reference() {
        WebhookError::ProjectGone
    } else {
        WebhookError::Store(e)
    }
}

/// An event type as a metric label: RevenueCat's known types, `OTHER` for the rest (labels
/// stay bounded whatever a sender puts in `type`).
fn event_type_label(event_type: &EventType) -> &'static str {
    event_type.known_str().unwrap_or("OTHER")
}

/// A delivery's outcome as a metric label.
fn outcome_label(result: &Result<&EventOutcome, &WebhookError>) -> &'static str {
    match result {
        Ok(EventOutcome::Recorded(status)) => status.as_str(),
        Ok(EventOutcome::AlreadyProcessed) => "duplicate",
        Err(WebhookError::InvalidPayload(_)) => "invalid",
        Err(WebhookError::Busy) => "busy",
        Err(_) => "error",
    }
}

/// Whether `presented` (the bearer token, if any) authenticates a delivery to a project with
/// these secrets (`None`: no enabled integration) at `now_ms`.
fn verify(
    secrets: &Option<WebhookSecrets>,
    presented: Option<&str>,
    now_ms: i64,
) -> Result<(), WebhookError> {
    let expected = secrets.as_ref().ok_or(WebhookError::NotConfigured)?;
    if expected.current.is_none() {
        return Err(WebhookError::InvalidAuthorization);
    }
    let presented = presented.ok_or(WebhookError::MissingAuthorization)?;
    if expected.accepts(&secret_digest(presented), now_ms) {
        Ok(())
    } else {
        Err(WebhookError::InvalidAuthorization)
    }
}

/// The webhook secret digests of each project, so a delivery costs no database read. Entries
/// expire after [`SECRET_TTL`] and are dropped at once when this process changes the
/// integration. An entry holds a rotation's previous digest with the end of its grace, which
/// is checked on every delivery, so the old secret stops working when the grace ends, not when
/// the entry expires.
///
/// A delivery the entry cannot authenticate reads the digests again, at most once per
/// [`SECRET_REREAD_AFTER`] per project (on the store's clock): a rotation or a create in
/// another process is honoured within that second, and a stream of bad headers costs one read
/// a second. What stays up to [`SECRET_TTL`] late is a revocation made elsewhere.
#[derive(Clone)]
struct SecretCache(moka::sync::Cache<String, CachedSecrets>);

#[derive(Clone)]
struct CachedSecrets {
    /// `None`: no enabled integration.
    secrets: Option<WebhookSecrets>,
    read_at_ms: i64,
}

const SECRET_TTL: Duration = Duration::from_secs(5);
const SECRET_REREAD_AFTER: Duration = Duration::from_secs(1);
const SECRET_CACHE_PROJECTS: u64 = 100_000;

impl SecretCache {
    fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(SECRET_CACHE_PROJECTS)
                .time_to_live(SECRET_TTL)
                .build(),
        )
    }

    async fn get(&self, store: &Store, project_id: &str) -> Result<CachedSecrets, StoreError> {
        match self.0.get(project_id) {
            Some(hit) => Ok(hit),
            None => self.read(store, project_id).await,
        }
    }

    /// Reads the secrets again unless `seen` was read less than [`SECRET_REREAD_AFTER`] ago
    /// (`None`) or a newer read is cached already (that one).
    async fn reread(
        &self,
        store: &Store,
        project_id: &str,
        seen: &CachedSecrets,
    ) -> Result<Option<CachedSecrets>, StoreError> {
        if let Some(newer) = self
            .0
            .get(project_id)
            .filter(|cached| cached.read_at_ms > seen.read_at_ms)
        {
            return Ok(Some(newer));
        }
        if store.now_ms() - seen.read_at_ms < ms(SECRET_REREAD_AFTER) {
            return Ok(None);
        }
        self.read(store, project_id).await.map(Some)
    }

    async fn read(&self, store: &Store, project_id: &str) -> Result<CachedSecrets, StoreError> {
        let read_at_ms = store.now_ms();
        let secrets = store.webhook_secrets(project_id, REVENUECAT).await?;
        let read = CachedSecrets {
            secrets,
            read_at_ms,
        };
        self.0.insert(project_id.to_owned(), read.clone());
        Ok(read)
    }

    fn invalidate(&self, project_id: &str) {
        self.0.invalidate(project_id);
    }
}
