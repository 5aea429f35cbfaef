//! Syncing users from RevenueCat's REST API v2: the single-user sync behind
//! `POST …/revenuecat/sync/:userId` and the `revenuecat_user_resync` job.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::DEFAULT_RC_DEADLINE;
use crate::domain::app_user::{has_nul, is_anonymous_id};
use crate::domain::integration::{Integration, REVENUECAT};
use crate::revenuecat::{
    map_customer, Catalog, CustomerData, KeyFingerprint, PropertyPatch, RevenueCatClient,
    RevenueCatError,
};
use crate::services::ttl_cache::TtlCache;
use crate::store::subscriber_state::ApplyMode;
use crate::store::{Store, StoreError};
use crate::timestamp::now_ms;

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

/// The result of a sync: the properties written (removed keys are not listed).
#[derive(Debug, Clone)]
pub struct SyncedUser {
    pub user_id: String,
    pub patch: PropertyPatch,
    /// False when a background resync found newer state already applied and wrote nothing.
    pub applied: bool,
    /// True when `/subscriptions` kept failing and only entitlements were written.
    pub entitlements_only: bool,
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

    /// Runs RevenueCat work for a caller that is waiting. When the deadline passes the work is
    /// dropped, which also gives up its place in the pacers.
    async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SyncError>>,
    ) -> Result<T, SyncError> {
        tokio::time::timeout(self.request_deadline, work)
            .await
            .map_err(|_| SyncError::DeadlineExceeded(self.request_deadline))?
    }

    /// The RevenueCat project of a key that is about to be stored, within the deadline.
    pub async fn verify_key(&self, api_key: &SecretString) -> Result<String, SyncError> {
        self.within_deadline(self.resolve_project(api_key)).await
    }

    /// The RevenueCat project a key belongs to (V2 secret keys are project-scoped), cached;
    /// any deadline is the caller's.
    pub async fn resolve_project(&self, api_key: &SecretString) -> Result<String, SyncError> {
        let project = self
            .key_projects
            .get_or_fetch(KeyFingerprint::of(api_key), || async {
                let projects = self.client.verify_key(api_key).await?;
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
    async fn connection(&self, project_id: &str) -> Result<Connection, SyncError> {
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
            None => self.resolve_project(&api_key).await?,
        };
        Ok(Connection {
            integration,
            api_key,
            rc_project,
        })
    }

    async fn catalog(&self, connection: &Connection) -> Result<Arc<Catalog>, SyncError> {
        let cache_key = format!(
            "{}:{}:{}",
            connection.integration.id, connection.integration.revision, connection.rc_project
        );
        self.catalogs
            .get_or_fetch(cache_key, || async {
                let catalog = self
                    .client
                    .fetch_catalog(&connection.api_key, &connection.rc_project)
                    .await?;
                Ok::<_, RevenueCatError>(Arc::new(catalog))
            })
            .await
            .map_err(SyncError::from)
    }

    /// Fetches one user from RevenueCat and merges the mapped `rc_*` properties onto them.
    pub async fn sync_user(
        &self,
        project_id: &str,
        user_id: &str,
        mode: ApplyMode,
    ) -> Result<SyncedUser, SyncError> {
        let fetched = self.fetch_user(project_id, user_id).await?;
        self.apply(project_id, user_id, fetched, mode).await
    }

    /// [`Self::sync_user`] for the HTTP route: RevenueCat gets the request deadline; the write
    /// that follows is not cut.
    pub async fn sync_user_within_deadline(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<SyncedUser, SyncError> {
        let fetched = self
            .within_deadline(self.fetch_user(project_id, user_id))
            .await?;
        self.apply(project_id, user_id, fetched, ApplyMode::Always)
            .await
    }

    async fn fetch_user(&self, project_id: &str, user_id: &str) -> Result<FetchedUser, SyncError> {
        if is_anonymous_id(user_id) {
            return Err(SyncError::AnonymousUser);
        }
        if !is_customer_id(user_id) {
            return Err(SyncError::SubscriberNotFound);
        }
        let connection = self.connection(project_id).await?;
        let catalog = self.catalog(&connection).await?;
        let as_of = now_ms();
        let data = self
            .client
            .fetch_customer_data(&connection.api_key, &connection.rc_project, user_id)
            .await?
            .ok_or(SyncError::SubscriberNotFound)?;
        Ok(FetchedUser {
            data,
            catalog,
            as_of,
        })
    }

    async fn apply(
        &self,
        project_id: &str,
        user_id: &str,
        fetched: FetchedUser,
        mode: ApplyMode,
    ) -> Result<SyncedUser, SyncError> {
        let FetchedUser {
            data,
            catalog,
            as_of,
        } = fetched;
        let patch = map_customer(&data, &catalog);
        // Entitlements-only data leaves status and renewal as they were: it must not claim to
        // be newer than events that may still correct them.
        let marker = if data.is_entitlements_only() {
            None
        } else {
            Some(as_of)
        };
        let applied = self
            .store
            .apply_resync_patch(project_id, user_id, &patch, as_of, marker, mode)
            .await?;
        Ok(SyncedUser {
            user_id: user_id.to_owned(),
            patch,
            applied,
            entitlements_only: data.is_entitlements_only(),
        })
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
        let connection = self.connection(project_id).await?;
        let customer = self
            .client
            .get_customer(&connection.api_key, &connection.rc_project, customer_id)
            .await?;
        Ok(customer.map(|c| c.id))
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

/// What RevenueCat said about a user, and when we asked.
struct FetchedUser {
    data: CustomerData,
    catalog: Arc<Catalog>,
    as_of: i64,
}
