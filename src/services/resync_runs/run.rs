//! Running a full resync: the `revenuecat_sync` task handler.
//!
//! - Fast at any latency: users are fetched with many requests in flight — enough to keep the
//!   key's budget busy at round trips up to about 1.5 s — and the shared pacer, not the run,
//!   decides when each request goes out (at bulk priority, so webhook follow-ups and an
//!   admin's single-user sync keep their turns).
//! - Exact: each user is fetched and mapped as a single-user sync does, and written with the
//!   same compare-and-set on the user's ordering marker: a webhook event applied while
//!   RevenueCat was asked is never overwritten; that user is fetched again (a few times, then
//!   counted as an error — its own follow-up resync corrects it).
//! - Resumable: results are written in batches, each in one transaction with the run's
//!   checkpoint (users up to a cursor, counters, drift). After a crash the run resumes from
//!   the last checkpoint: no user counted twice, none skipped.
//! - Progress is written at least every [`TICK`]; a cancel request is seen within one tick.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::report::RunCounters;
use super::{import_missing, STRATEGY_LOOKUP, STRATEGY_WITH_IMPORT};
use crate::clock::ms;
use crate::domain::app_user::is_anonymous_id;
use crate::revenuecat::CallLog;
use crate::services::revenuecat_sync::{BulkSession, FetchedUser, SyncError};
use crate::services::user_resyncs::claim_policy;
use crate::services::Services;
use crate::store::job_runs::{JobCheckpoint, JobRun, JobStatus};
use crate::store::users::{ChangeOutcome, ChangeRule, UserChange};
use crate::store::StoreError;

/// Progress and cancel checks happen at least this often.
const TICK: Duration = Duration::from_secs(1);
/// A batch is written once this many users are fetched (or a tick passed).
const BATCH_USERS: usize = 200;
/// User ids read per page of the project's users.
const USER_PAGE: i64 = 500;
/// Customers per page of RevenueCat's list (import).
const LIST_PAGE: u32 = 100;
/// Fetches of a user whose write kept being refused by webhook events landing meanwhile.
const REFUSED_ROUNDS: usize = 3;
/// Attempts of a run (claims: crashes, or database and RevenueCat outages) before it fails.
const MAX_RUN_ATTEMPTS: i64 = 10;
/// Requests in flight at most, whatever the budget.
const MAX_IN_FLIGHT: usize = 256;

/// Where a run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// Looking up the project's identified users, in id order after the cursor.
    #[default]
    Lookup,
    /// Paging RevenueCat's customer list for customers the project does not know.
    Import,
}

/// The checkpointed state (with the cursor in its own column).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct RunState {
    phase: Phase,
    counters: RunCounters,
    /// Users whose write was refused (a webhook event landed): fetched again next.
    refused: Vec<String>,
    /// The list page to read next (import phase); `None` before the first.
    next_page: Option<String>,
}

/// How a run stops short of completing.
enum Stop {
    Cancelled,
    Failed(String),
    /// Transient (database, RevenueCat unreachable): released and resumed later.
    Retry(String),
    /// The claim is no longer ours (taken over, or cancelled while pending).
    Lost,
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Retry(format!("database: {}", crate::services::error_chain(&e)))
    }
}

/// How long a run this process had no room for waits before it is offered again.
const DEFER: Duration = Duration::from_secs(3);

/// Runs (or resumes) the run `run_id`, if it can be claimed and this process has room for it.
pub async fn run(services: &Services, run_id: &str) -> Result<(), StoreError> {
    let Ok(_slot) = services.resync_slots.clone().try_acquire_owned() else {
        tracing::debug!(%run_id, "this process runs as many full resyncs as it may; offering it again later");
        let store = &services.store;
        return store
            .defer_job_run(run_id, store.now_ms() + ms(DEFER))
            .await;
    };
    let Some(claim) = services
        .store
        .claim_job_run(
            run_id,
            &services.instance_id,
            claim_policy(&services.timings),
        )
        .await?
    else {
        tracing::debug!(%run_id, "nothing to claim (done, cancelled, or running elsewhere)");
        return Ok(());
    };
    let state: RunState = claim
        .checkpoint
        .as_ref()
        .and_then(|c| serde_json::from_value(c.0.clone()).ok())
        .unwrap_or_else(|| RunState {
            counters: RunCounters {
                total: claim.progress_total,
                ..RunCounters::default()
            },
            ..RunState::default()
        });
    let mut state = state;
    if state.counters.instances.last() != Some(&services.instance_id) {
        state.counters.instances.push(services.instance_id.clone());
    }
    let mut runner = Runner {
        services,
        cursor: claim.checkpoint_cursor.clone(),
        claim,
        state,
        log: Arc::new(CallLog::default()),
    };
    let outcome = if runner.claim.attempts > MAX_RUN_ATTEMPTS {
        Err(Stop::Failed(format!(
            "gave up after {MAX_RUN_ATTEMPTS} interrupted attempts"
        )))
    } else {
        tracing::info!(run_id = %runner.claim.id, attempt = runner.claim.attempts, "full resync running");
        runner.execute().await
    };
    runner.settle(outcome).await
}

struct Runner<'a> {
    services: &'a Services,
    claim: JobRun,
    state: RunState,
    cursor: Option<String>,
    /// This attempt's calls (earlier attempts' are in the counters).
    log: Arc<CallLog>,
}

/// A fetch spawned on its own task (so it progresses while the run writes), aborted when
/// dropped (so a cancelled or failed run stops calling RevenueCat at once).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

type Fetch = (
    String,
    Result<Result<FetchedUser, SyncError>, tokio::task::JoinError>,
);

impl Runner<'_> {
    fn project_id(&self) -> &str {
        &self.claim.project_id
    }

    fn strategy(&self) -> &'static str {
        if import_missing(&self.claim) {
            STRATEGY_WITH_IMPORT
        } else {
            STRATEGY_LOOKUP
        }
    }

    async fn execute(&mut self) -> Result<(), Stop> {
        let session = match self
            .services
            .sync
            .bulk_session(self.project_id(), self.log.clone())
            .await
        {
            Ok(session) => Arc::new(session),
            Err(e) => return Err(stop_for(e)),
        };
        if self.state.phase == Phase::Lookup {
            let users = self.project_users();
            self.sync_users(&session, users).await?;
            self.sync_refused(&session).await?;
            if import_missing(&self.claim) {
                self.state.phase = Phase::Import;
                self.checkpoint_alone().await?;
            }
        }
        if self.state.phase == Phase::Import {
            self.import_missing(&session).await?;
        }
        Ok(())
    }

    /// The project's identified users after the cursor, a page at a time.
    fn project_users(&self) -> Pin<Box<dyn Stream<Item = Result<String, StoreError>> + Send>> {
        let store = self.services.store.clone();
        let project_id = self.project_id().to_owned();
        let start = self.cursor.clone();
        let pages = stream::try_unfold(Some(start), move |after| {
            let (store, project_id) = (store.clone(), project_id.clone());
            async move {
                let Some(after) = after else {
                    return Ok::<_, StoreError>(None);
                };
                let ids = store
                    .identified_user_ids(&project_id, after.as_deref(), USER_PAGE)
                    .await?;
                let next = (ids.len() as i64 == USER_PAGE).then(|| ids.last().cloned());
                Ok(Some((
                    stream::iter(ids.into_iter().map(Ok::<_, StoreError>)),
                    next,
                )))
            }
        });
        Box::pin(pages.try_flatten())
    }

    fn in_flight(&self) -> usize {
        // Requests in flight needed to keep the budget busy at a 1.5 s round trip.
        let per_second = self.services.sync.customer_requests_per_second();
        ((per_second * 1.5).ceil() as usize + 4).min(MAX_IN_FLIGHT)
    }

    /// Fetches `users` (in order, many at a time) and writes them in checkpointed batches.
    async fn sync_users(
        &mut self,
        session: &Arc<BulkSession>,
        users: Pin<Box<dyn Stream<Item = Result<String, StoreError>> + Send>>,
    ) -> Result<(), Stop> {
        let fetches = users
            .map(|user| {
                let session = session.clone();
                async move {
                    let user_id = user?;
                    let task = {
                        let (session, user_id) = (session.clone(), user_id.clone());
                        AbortOnDrop(tokio::spawn(
                            async move { session.fetch_user(&user_id).await },
                        ))
                    };
                    Ok::<Fetch, StoreError>((user_id, task.await))
                }
            })
            .buffered(self.in_flight());
        let mut fetches = Box::pin(fetches);
        let mut batch: Vec<Fetch> = Vec::new();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = fetches.next() => match next {
                    Some(fetched) => {
                        batch.push(fetched?);
                        if batch.len() >= BATCH_USERS {
                            self.write_batch(std::mem::take(&mut batch)).await?;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.write_batch(std::mem::take(&mut batch)).await?;
                    }
                    self.tick().await?;
                }
            }
        }
        if !batch.is_empty() {
            self.write_batch(batch).await?;
        }
        Ok(())
    }

    /// Users whose write a webhook event refused are fetched again, a few rounds at most.
    async fn sync_refused(&mut self, session: &Arc<BulkSession>) -> Result<(), Stop> {
        for _ in 0..REFUSED_ROUNDS {
            if self.state.refused.is_empty() {
                return Ok(());
            }
            let again = std::mem::take(&mut self.state.refused);
            let users = Box::pin(stream::iter(again.into_iter().map(Ok)));
            self.sync_users(session, users).await?;
        }
        for user_id in std::mem::take(&mut self.state.refused) {
            self.state.counters.count_error(
                &user_id,
                "webhook events kept changing the user during the resync; its follow-up resync brings RevenueCat's state"
                    .into(),
            );
        }
        self.checkpoint_alone().await
    }

    /// Every cycle: record progress (which also keeps the claim alive) and honour a cancel.
    async fn tick(&mut self) -> Result<(), Stop> {
        let store = &self.services.store;
        if store.cancel_requested(&self.claim.id).await? {
            return Err(Stop::Cancelled);
        }
        let message = self.progress_message();
        let counters = &self.state.counters;
        if !store
            .record_job_progress(&self.claim, counters.processed(), counters.total, &message)
            .await?
        {
            return Err(Stop::Lost);
        }
        Ok(())
    }

    fn progress_message(&self) -> String {
        let c = &self.state.counters;
        let phase = match self.state.phase {
            Phase::Lookup => "looking up users",
            Phase::Import => "importing customers the project does not know",
        };
        format!(
            "{phase}: {} synced, {} not in RevenueCat, {} errors, {} RevenueCat calls",
            c.synced,
            c.not_found,
            c.errors,
            c.calls.calls + self.log.counts().calls
        )
    }

    /// Writes one batch of fetched users with the checkpoint after them, in one transaction.
    async fn write_batch(&mut self, batch: Vec<Fetch>) -> Result<(), Stop> {
        let importing = self.state.phase == Phase::Import;
        let mut counters = self.state.counters.clone();
        // A customer the project did not know counts once it is settled (synced, unknown or
        // failed), so a page redone after a crash counts only what was not settled before.
        let settle_missing = |counters: &mut RunCounters| {
            if importing {
                counters.missing_in_project += 1;
                counters.total += 1;
            }
        };
        let mut found = Vec::new();
        for (user_id, fetched) in batch {
            match fetched {
                Ok(Ok(user)) if user.found.is_some() => found.push(user),
                Ok(Ok(_)) => {
                    settle_missing(&mut counters);
                    counters.count_not_found();
                }
                Ok(Err(e)) => {
                    let message = stop_for_user(e)?;
                    settle_missing(&mut counters);
                    counters.count_error(&user_id, message);
                }
                Err(join) => {
                    settle_missing(&mut counters);
                    counters.count_error(&user_id, format!("fetch task failed: {join}"));
                }
            }
            if !importing {
                self.cursor = Some(user_id).max(self.cursor.take());
            }
        }
        let changes: Vec<UserChange<'_>> = found
            .iter()
            .filter_map(|user| {
                let customer = user.found.as_ref()?;
                Some(UserChange {
                    user_id: &user.user_id,
                    patch: &customer.patch,
                    rule: ChangeRule::MarkerUnchanged(user.marker.clone()),
                    follow_up_at: None,
                })
            })
            .collect();
        let store = &self.services.store;
        let mut tx = store.begin().await?;
        let outcomes = tx.change_properties(self.project_id(), &changes).await?;
        let mut applied = Vec::new();
        let mut partial = Vec::new();
        for (user, outcome) in found.iter().zip(outcomes) {
            let customer = user.found.as_ref().expect("only found users were written");
            match outcome {
                ChangeOutcome::Applied(change) => {
                    settle_missing(&mut counters);
                    if change.before.is_none() {
                        counters.imported += 1;
                    }
                    counters.count_synced(
                        &user.user_id,
                        change.before.as_ref(),
                        &change.after,
                        customer.entitlements_only,
                        customer.floor_calls,
                    );
                    applied.push(user.user_id.as_str());
                    if customer.entitlements_only {
                        partial.push(user.user_id.as_str());
                    }
                }
                ChangeOutcome::Refused => self.state.refused.push(user.user_id.clone()),
            }
        }
        // Follow-ups requested before the earliest fetch of the batch are answered by it.
        if let Some(fetched_from) = found.iter().map(|u| u.fetched_from).min() {
            let debounce = ms(self.services.timings.follow_up_debounce);
            counters.follow_ups_settled += tx
                .settle_follow_ups(
                    self.project_id(),
                    &applied,
                    fetched_from,
                    fetched_from + debounce,
                )
                .await?;
        }
        if !partial.is_empty() {
            // Entitlements only: their own resync fetches the rest (retried with backoff).
            tx.request_resyncs(
                self.project_id(),
                &partial,
                "full resync: partial data",
                tx.now_ms(),
            )
            .await?;
        }
        let state = RunState {
            counters,
            ..self.state.clone()
        };
        if !self.write_checkpoint(&mut tx, &state).await? {
            return Err(Stop::Lost);
        }
        tx.commit().await?;
        self.state = state;
        Ok(())
    }

    /// Stores `state` as the checkpoint inside `tx`; false when the claim is no longer ours.
    async fn write_checkpoint(
        &self,
        tx: &mut crate::store::Tx,
        state: &RunState,
    ) -> Result<bool, StoreError> {
        let mut state = state.clone();
        state.counters.calls = state.counters.with_calls(&self.log.counts());
        // The calls of this attempt now live in the checkpoint; a resumed attempt adds its own.
        let value = serde_json::to_value(&state).unwrap_or(Value::Null);
        let message = self.progress_message();
        tx.checkpoint_job_run(
            &self.claim,
            &JobCheckpoint {
                cursor: self.cursor.as_deref(),
                state: &value,
                processed: state.counters.processed(),
                total: state.counters.total,
                message: &message,
            },
        )
        .await
    }

    /// A checkpoint with no users (a phase change).
    async fn checkpoint_alone(&mut self) -> Result<(), Stop> {
        let mut tx = self.services.store.begin().await?;
        let state = self.state.clone();
        if !self.write_checkpoint(&mut tx, &state).await? {
            return Err(Stop::Lost);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pages RevenueCat's customer list and syncs the customers the project does not know.
    async fn import_missing(&mut self, session: &Arc<BulkSession>) -> Result<(), Stop> {
        loop {
            self.tick().await?;
            let next = self.state.next_page.clone();
            let page = session
                .customers_page(LIST_PAGE, next.as_deref())
                .await
                .map_err(stop_for)?;
            let ids: Vec<&str> = page.items.iter().map(|c| c.id.as_str()).collect();
            let (anonymous, identified): (Vec<&str>, Vec<&str>) =
                ids.into_iter().partition(|id| is_anonymous_id(id));
            let known = self
                .services
                .store
                .existing_user_ids(self.project_id(), &identified)
                .await?;
            let missing: Vec<String> = identified
                .into_iter()
                .filter(|id| !known.contains(*id))
                .map(str::to_owned)
                .collect();
            let users = Box::pin(stream::iter(missing.into_iter().map(Ok)));
            self.sync_users(session, users).await?;
            self.sync_refused(session).await?;
            // Only once the whole page is settled does the cursor move past it: a page
            // interrupted by a crash is read again, and its customers already imported are
            // then known, so nobody is counted twice.
            self.state.counters.skipped_anonymous += anonymous.len() as i64;
            self.state.next_page = page.next_page.clone();
            self.checkpoint_alone().await?;
            if page.next_page.is_none() {
                return Ok(());
            }
        }
    }

    /// Records how the attempt ended.
    async fn settle(self, outcome: Result<(), Stop>) -> Result<(), StoreError> {
        let store = &self.services.store;
        let counters = &self.state.counters;
        let calls = counters.with_calls(&self.log.counts());
        let duration_ms = store.now_ms() - self.claim.started_at.unwrap_or(self.claim.created_at);
        let backlog = store
            .follow_up_backlog(self.project_id())
            .await
            .unwrap_or(-1);
        let result = counters.result(&calls, self.strategy(), duration_ms, backlog);
        let run_id = &self.claim.id;
        let (status, error) = match outcome {
            Ok(()) => (JobStatus::Completed, None),
            Err(Stop::Cancelled) => (JobStatus::Cancelled, None),
            Err(Stop::Failed(message)) => (JobStatus::Failed, Some(message)),
            Err(Stop::Lost) => {
                tracing::info!(%run_id, "full resync no longer ours; stopped");
                return Ok(());
            }
            Err(Stop::Retry(message)) if self.claim.attempts < MAX_RUN_ATTEMPTS => {
                let delay = crate::services::user_resyncs::retry_delay(
                    &self.services.timings,
                    self.claim.attempts,
                );
                tracing::warn!(%run_id, error = %message, retry_in = ?delay, "full resync interrupted; it resumes later");
                store
                    .release_job_run(&self.claim, store.now_ms() + ms(delay), &message)
                    .await?;
                return Ok(());
            }
            Err(Stop::Retry(message)) => (JobStatus::Failed, Some(message)),
        };
        tracing::info!(%run_id, status = status.as_str(), ?error, "full resync finished");
        store
            .finish_job_run(&self.claim, status, Some(&result), error.as_deref())
            .await?;
        Ok(())
    }
}

/// A failure of the whole run.
fn stop_for(e: SyncError) -> Stop {
    match e {
        SyncError::NotConfigured => Stop::Failed(e.to_string()),
        SyncError::KeyRejected { .. } => Stop::Failed(e.to_string()),
        SyncError::Store(e) => e.into(),
        other => Stop::Retry(other.to_string()),
    }
}

/// A failure of one user: `Ok(message)` to count it, `Err` when the whole run must stop.
fn stop_for_user(e: SyncError) -> Result<String, Stop> {
    match e {
        SyncError::KeyRejected { .. } | SyncError::NotConfigured | SyncError::Store(_) => {
            Err(stop_for(e))
        }
        other => Ok(other.to_string()),
    }
}
