//! Syncing users from RevenueCat's REST API v2: the single-user sync behind
//! `POST …/revenuecat/sync/:userId` and the `revenuecat_user_resync` job.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::DEFAULT_RC_DEADLINE;
use crate::domain::app_user::{has_nul, is_anonymous_id};
use crate::domain::integration::{Integration, REVENUECAT};
use crate::revenuecat::model::{Customer, ListPage};
use crate::revenuecat::{
    map_customer, CallLog, Catalog, CustomerData, FetchPlan, KeyFingerprint, Priority,
    PropertyPatch, RevenueCatClient, RevenueCatError,
};
use crate::services::ttl_cache::TtlCache;
use crate::store::users::{ChangeOutcome, ChangeRule, EventMarker, PropertyChange, UserChange};
use crate::store::{retry_transient_once, Store, StoreError};

/// Entitlements and products change rarely and cost the 60/min Project Configuration budget:
/// one fetch per project per TTL serves every sync in between.
const CATALOG_TTL: Duration = Duration::from_secs(300);
/// A verified key's project is remembered briefly, so a burst of creates/PATCHes with one
/// key spends one Project Configuration call rather than one each.
const KEY_PROJECT_TTL: Duration = Duration::from_secs(60);
/// Size caps of the two caches. A catalog is a few KiB per project; old integration revisions
/// age out with the TTL and, beyond the cap, before it.
const MAX_CACHED_CATALOGS: u64 = 2_000;
const MAX_CACHED_KEY_PROJECTS: u64 = 10_000;
/// How many times a sync fetches again when a webhook event landed on the user while RevenueCat
/// was being asked (the compare-and-set refused the write).
const FETCH_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("RevenueCat integration is not configured or is disabled for this project")]
    NotConfigured,
    #[error("Anonymous RevenueCat ids cannot be synced; sync the identified app user id")]
    AnonymousUser,
    #[error("Subscriber not found in RevenueCat")]
    SubscriberNotFound,
    #[error("RevenueCat rejected the API key: {message}")]
    KeyRejected {
        /// RevenueCat's answer (401/403), when the rejection came from a response.
        status: Option<u16>,
        message: String,
    },
    #[error("RevenueCat API error: {0}")]
    Upstream(#[source] RevenueCatError),
    /// A waiting caller's deadline passed (RevenueCat slow, or rate limiting this key).
    #[error("RevenueCat did not answer within {} s; try again later", .0.as_secs())]
    DeadlineExceeded(Duration),
    /// Webhook events kept landing on the user while RevenueCat was asked; nothing was written.
    #[error("The user changed during every sync attempt; retry later")]
    ConcurrentChanges,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RevenueCatError> for SyncError {
    fn from(err: RevenueCatError) -> Self {
        if err.is_unauthorized() {
            SyncError::KeyRejected {
                status: err.status(),
                message: err.message(),
            }
        } else {
            SyncError::Upstream(err)
        }
    }
}

/// The result of a sync: the patch RevenueCat's state maps to, and what it changed.
#[derive(Debug, Clone)]
pub struct SyncedUser {
    pub user_id: String,
    pub patch: PropertyPatch,
    pub change: PropertyChange,
    /// True when `/subscriptions` kept failing and only entitlements were written.
    pub entitlements_only: bool,
}

impl SyncedUser {
    /// Seed 001's answer to a single-user sync (the HTTP route and `rcsync sync --user`):
    /// the properties written, and `"partial": true` when only entitlements could be.
    pub fn answer(&self) -> serde_json::Value {
        let properties: std::collections::BTreeMap<&str, &str> = self
            .patch
            .iter()
            .filter_map(|(key, value)| value.as_deref().map(|v| (key.as_str(), v)))
            .collect();
        let mut body = serde_json::json!({"updated": 1, "properties": properties});
        if self.entitlements_only {
            // The seed's fallback, made visible: status, product and revenue were not refreshed.
            body["partial"] = serde_json::json!(true);
        }
        body
    }
}

#[derive(Clone)]
pub struct RevenueCatSync {
    store: Store,
    client: RevenueCatClient,
    /// Keyed by integration, revision and RevenueCat project: a rotated key may point at a
    /// different project.
    catalogs: Arc<TtlCache<String, Arc<Catalog>>>,
    /// `None`: the key works but reaches no project.
    key_projects: Arc<TtlCache<KeyFingerprint, Option<String>>>,
    /// How long a caller that is waiting (an HTTP request) gives RevenueCat.
    request_deadline: Duration,
}

impl RevenueCatSync {
    pub fn new(store: Store, client: RevenueCatClient) -> Self {
        Self {
            store,
            client,
            catalogs: Arc::new(TtlCache::new(CATALOG_TTL, MAX_CACHED_CATALOGS)),
            key_projects: Arc::new(TtlCache::new(KEY_PROJECT_TTL, MAX_CACHED_KEY_PROJECTS)),
            request_deadline: DEFAULT_RC_DEADLINE,
        }
    }

    pub fn with_request_deadline(mut self, deadline: Duration) -> Self {
        self.request_deadline = deadline;
        self
    }

    pub fn client(&self) -> &RevenueCatClient {
        &self.client
    }

    /// How many entries the two caches hold.
    pub async fn cache_sizes(&self) -> CacheSizes {
        CacheSizes {
            catalogs: self.catalogs.entry_count().await,
            key_projects: self.key_projects.entry_count().await,
        }
    }

    /// The RevenueCat project of a key that is about to be stored, within the deadline.
    pub async fn verify_key(&self, api_key: &SecretString) -> Result<String, SyncError> {
        let client = self.client.with_priority(Priority::Interactive);
        self.within(
            Some(self.request_deadline),
            self.resolve_project(&client, api_key),
        )
        .await
    }

    /// The RevenueCat project a key belongs to (V2 secret keys are project-scoped), cached;
    /// any deadline is the caller's.
    pub async fn resolve_project(
        &self,
        client: &RevenueCatClient,
        api_key: &SecretString,
    ) -> Result<String, SyncError> {
        let project = self
            .key_projects
            .get_or_fetch(KeyFingerprint::of(api_key), || async {
                let projects = client.verify_key(api_key).await?;
                Ok::<_, RevenueCatError>(projects.into_iter().next().map(|p| p.id))
            })
            .await
            .map_err(SyncError::from)?;
        project.ok_or_else(|| SyncError::KeyRejected {
            status: None,
            message: "the key has access to no project".into(),
        })
    }

    /// The enabled RevenueCat integration of a project, with its key and RevenueCat project.
    async fn connection(
        &self,
        client: &RevenueCatClient,
        project_id: &str,
    ) -> Result<Connection, SyncError> {
        let integration = self
            .store
            .get_active_integration(project_id, REVENUECAT)
            .await?
            .filter(|i| i.enabled)
            .ok_or(SyncError::NotConfigured)?;
        let api_key = integration
            .config
            .get("api_key")
            .map(|k| SecretString::from(k.to_owned()))
            .ok_or(SyncError::NotConfigured)?;
        let rc_project = match &integration.provider_project_id {
            Some(id) => id.clone(),
            None => self.resolve_project(client, &api_key).await?,
        };
        Ok(Connection {
            integration,
            api_key,
            rc_project,
        })
    }

    async fn catalog(
        &self,
        client: &RevenueCatClient,
        connection: &Connection,
    ) -> Result<Arc<Catalog>, SyncError> {
        let cache_key = format!(
            "{}:{}:{}",
            connection.integration.id, connection.integration.revision, connection.rc_project
        );
        self.catalogs
            .get_or_fetch(cache_key, || async {
                let catalog = client
                    .fetch_catalog(&connection.api_key, &connection.rc_project)
                    .await?;
                Ok::<_, RevenueCatError>(Arc::new(catalog))
            })
            .await
            .map_err(SyncError::from)
    }

    /// Fetches one user from RevenueCat and merges the mapped `rc_*` properties onto them
    /// (background resyncs: no deadline of their own).
    pub async fn sync_user(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<SyncedUser, SyncError> {
        let client = self.client.with_priority(Priority::FollowUp);
        self.sync(&client, project_id, user_id, None).await
    }

    /// [`Self::sync_user`] for the HTTP route: asking RevenueCat gets the request deadline;
    /// the write that follows is not cut.
    pub async fn sync_user_within_deadline(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<SyncedUser, SyncError> {
        let client = self.client.with_priority(Priority::Interactive);
        self.sync(&client, project_id, user_id, Some(self.request_deadline))
            .await
    }

    /// Never older over newer: the write is a compare-and-set on the user's ordering marker as
    /// it was before RevenueCat was asked, so a webhook event applied meanwhile is not
    /// overwritten (the sync asks again instead), and the marker — RevenueCat's event time —
    /// is never stamped with ours.
    async fn sync(
        &self,
        client: &RevenueCatClient,
        project_id: &str,
        user_id: &str,
        deadline: Option<Duration>,
    ) -> Result<SyncedUser, SyncError> {
        if is_anonymous_id(user_id) {
            return Err(SyncError::AnonymousUser);
        }
        if !is_customer_id(user_id) {
            return Err(SyncError::SubscriberNotFound);
        }
        let started = tokio::time::Instant::now();
        let remaining = || deadline.map(|d| d.saturating_sub(started.elapsed()));
        let (connection, catalog) = self
            .within(remaining(), async {
                let connection = self.connection(client, project_id).await?;
                let catalog = self.catalog(client, &connection).await?;
                Ok((connection, catalog))
            })
            .await?;
        let plan = FetchPlan::new(connection.integration.config.track_revenue());
        for _ in 0..FETCH_ATTEMPTS {
            let marker = self.store.event_marker(project_id, user_id).await?;
            let data = self
                .within(remaining(), fetch(client, &connection, user_id, plan))
                .await?;
            let patch = map_customer(&data, &catalog);
            let change = UserChange {
                user_id,
                patch: &patch,
                rule: ChangeRule::MarkerUnchanged(marker),
                follow_up_at: None,
            };
            let outcome = retry_transient_once(|| self.write_change(project_id, &change)).await?;
            if let ChangeOutcome::Applied(change) = outcome {
                return Ok(SyncedUser {
                    user_id: user_id.to_owned(),
                    patch,
                    change,
                    entitlements_only: data.is_entitlements_only(),
                });
            }
            tracing::debug!(%user_id, "a webhook event landed during the sync; fetching again");
        }
        Err(SyncError::ConcurrentChanges)
    }

    /// `work` within `deadline` when there is one. Past it the work is dropped, which also
    /// gives up its place in the pacers.
    async fn within<T>(
        &self,
        deadline: Option<Duration>,
        work: impl std::future::Future<Output = Result<T, SyncError>>,
    ) -> Result<T, SyncError> {
        match deadline {
            Some(deadline) => tokio::time::timeout(deadline, work)
                .await
                .map_err(|_| SyncError::DeadlineExceeded(self.request_deadline))?,
            None => work.await,
        }
    }

    async fn write_change(
        &self,
        project_id: &str,
        change: &UserChange<'_>,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut tx = self.store.begin().await?;
        let outcome = tx
            .change_properties(project_id, std::slice::from_ref(change))
            .await?
            .pop()
            .unwrap_or(ChangeOutcome::Refused);
        tx.commit().await?;
        Ok(outcome)
    }

    /// Resolves any id (anonymous ids included) to RevenueCat's canonical customer id.
    pub async fn canonical_customer_id(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Option<String>, SyncError> {
        if !is_customer_id(customer_id) {
            return Ok(None);
        }
        let client = self.client.with_priority(Priority::FollowUp);
        let connection = self.connection(&client, project_id).await?;
        let customer = client
            .get_customer(&connection.api_key, &connection.rc_project, customer_id)
            .await?;
        Ok(customer.map(|c| c.id))
    }

    /// What a full resync needs for its whole run: the connection and the catalog, fetched
    /// once, and a client at bulk priority that counts its calls into `log`.
    pub async fn bulk_session(
        &self,
        project_id: &str,
        log: Arc<CallLog>,
    ) -> Result<BulkSession, SyncError> {
        let client = self
            .client
            .with_priority(Priority::Bulk)
            .recording_into(log);
        let connection = self.connection(&client, project_id).await?;
        let catalog = self.catalog(&client, &connection).await?;
        let plan = FetchPlan::new(connection.integration.config.track_revenue());
        Ok(BulkSession {
            store: self.store.clone(),
            project_id: project_id.to_owned(),
            client,
            connection,
            catalog,
            plan,
        })
    }

    /// Requests per second the Customer Information budget of one key allows.
    pub fn customer_requests_per_second(&self) -> f64 {
        f64::from(self.client.config().customer_rate_limit_per_min) / 60.0
    }
}

async fn fetch(
    client: &RevenueCatClient,
    connection: &Connection,
    user_id: &str,
    plan: FetchPlan,
) -> Result<CustomerData, SyncError> {
    client
        .fetch_customer_data(&connection.api_key, &connection.rc_project, user_id, plan)
        .await?
        .ok_or(SyncError::SubscriberNotFound)
}

/// A full resync's connection to RevenueCat (see [`RevenueCatSync::bulk_session`]). Fetches
/// exactly what a single-user sync fetches and maps it the same way, so both give the same
/// properties; the run writes them itself, in batches with its checkpoints.
pub struct BulkSession {
    store: Store,
    project_id: String,
    client: RevenueCatClient,
    connection: Connection,
    catalog: Arc<Catalog>,
    plan: FetchPlan,
}

/// One user as a full resync fetched them.
#[derive(Debug)]
pub struct FetchedUser {
    pub user_id: String,
    /// The user's ordering marker before RevenueCat was asked: the write is a compare-and-set
    /// on it, as in a single-user sync.
    pub marker: Option<EventMarker>,
    /// When the fetch began (store clock): follow-ups requested before are answered by it.
    pub fetched_from: i64,
    /// `None`: RevenueCat does not know the customer.
    pub found: Option<FoundCustomer>,
}

#[derive(Debug)]
pub struct FoundCustomer {
    pub patch: PropertyPatch,
    /// `/subscriptions` kept failing: only entitlements are known.
    pub entitlements_only: bool,
    /// The fewest calls that could have fetched this customer (see [`FetchPlan::floor_calls`]).
    pub floor_calls: usize,
}

impl BulkSession {
    pub fn plan(&self) -> FetchPlan {
        self.plan
    }

    /// Fetches one user and maps their state. A rejected key is an error (the run fails);
    /// other RevenueCat failures are errors of this user alone.
    pub async fn fetch_user(&self, user_id: &str) -> Result<FetchedUser, SyncError> {
        let marker = self.store.event_marker(&self.project_id, user_id).await?;
        let fetched_from = self.store.now_ms();
        let found = if is_customer_id(user_id) {
            self.client
                .fetch_customer_data(
                    &self.connection.api_key,
                    &self.connection.rc_project,
                    user_id,
                    self.plan,
                )
                .await?
        } else {
            None
        };
        Ok(FetchedUser {
            user_id: user_id.to_owned(),
            marker,
            fetched_from,
            found: found.map(|data| FoundCustomer {
                patch: map_customer(&data, &self.catalog),
                entitlements_only: data.is_entitlements_only(),
                floor_calls: self.plan.floor_calls(&data),
            }),
        })
    }

    /// One page of RevenueCat's customer list (`next_page` followed verbatim).
    pub async fn customers_page(
        &self,
        limit: u32,
        next_page: Option<&str>,
    ) -> Result<ListPage<Customer>, SyncError> {
        Ok(self
            .client
            .list_customers_page(
                &self.connection.api_key,
                &self.connection.rc_project,
                limit,
                next_page,
            )
            .await?)
    }
}

/// Ids RevenueCat could hold: no NUL (PostgreSQL), and not `.`/`..`, which URL
/// normalisation would turn into a different endpoint.
fn is_customer_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !has_nul(id)
}

struct Connection {
    integration: Integration,
    api_key: SecretString,
    rc_project: String,
}

/// Entry counts of [`RevenueCatSync`]'s caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub catalogs: u64,
    pub key_projects: u64,
}
