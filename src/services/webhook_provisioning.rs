//! The webhook that points RevenueCat at rcsync (seed 000 is RevenueCat's API for it): created,
//! or an existing one reused, when the integration is created or restored; updated when its
//! secret rotates; removed when the integration is deleted; shown as RevenueCat reports it.
//!
//! Decisions, documented once:
//! - One webhook per integration. The webhook rcsync manages is the one pointing at the
//!   integration's webhook URL, the id rcsync stored preferred. A webhook already pointing there
//!   is updated and reused, never duplicated: a restore after a delete whose removal failed, a
//!   webhook configured by hand, a create RevenueCat processed but whose answer was lost.
//! - Provisioning sets every field (name, url, `authorization_header`, environment null = both,
//!   event types null = all, app null = all apps), so a reused webhook ends up exactly like a
//!   created one and stays subscribed to event types RevenueCat adds later.
//! - RevenueCat failing (refusal, 4xx, 5xx, network, timeout) never fails the integration:
//!   the outcome says why provisioning did not happen and the manual `webhook_setup` values
//!   still work. Each request's RevenueCat work is bounded by the RevenueCat deadline
//!   (`RCSYNC_RC_DEADLINE_SECS`), counted from the start of the request.
//! - Removal deletes only the webhook rcsync manages, and only while it still points at
//!   rcsync: one somebody re-pointed elsewhere is left in place and forgotten.
//! - Every call goes through the one RevenueCat client (Project Configuration budget, 60/min).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;
use url::Url;

use super::revenuecat_sync::{RevenueCatSync, SyncError};
use crate::crypto::secret_digest;
use crate::domain::integration::{
    webhook_url, Integration, ProvisionedWebhook, WebhookHeaderStatus, REVENUECAT,
};
use crate::revenuecat::model::{
    NewWebhookIntegration, WebhookIntegration, WebhookIntegrationUpdate,
};
use crate::revenuecat::{Priority, RevenueCatClient, RevenueCatError};
use crate::store::{Store, StoreError};

/// Why the RevenueCat webhook could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("RevenueCat integration is not configured for this project")]
    NotConfigured,
    #[error(
        "RevenueCat has no webhook pointing at this integration: rotate the webhook secret to \
         provision one, or configure it in RevenueCat with a fresh webhook_setup"
    )]
    NoWebhook,
    /// RevenueCat refused, failed or did not answer in time.
    #[error(transparent)]
    RevenueCat(SyncError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What provisioning achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioning {
    /// RevenueCat's webhook `webhook_id` now sends the new secret's header.
    Provisioned { webhook_id: String },
    /// It does not: configure RevenueCat by hand with `webhook_setup`.
    NotProvisioned(ProvisioningFailure),
}

/// Why RevenueCat did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningFailure {
    /// RevenueCat's own message where it answered, else what went wrong.
    pub reason: String,
    /// RevenueCat's HTTP status, when it answered.
    pub revenuecat_status: Option<u16>,
}

impl ProvisioningFailure {
    fn of(error: &SyncError) -> Self {
        match error {
            SyncError::KeyRejected { status, message } => Self {
                reason: match status {
                    Some(status) => format!("RevenueCat refused the request ({status}): {message}"),
                    None => format!("RevenueCat refused the request: {message}"),
                },
                revenuecat_status: *status,
            },
            SyncError::Upstream(error) => Self {
                reason: error.to_string(),
                revenuecat_status: error.status(),
            },
            other => Self {
                reason: other.to_string(),
                revenuecat_status: None,
            },
        }
    }
}

/// What became of the managed webhook when its integration was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub webhook_id: String,
    /// `Ok`: gone from RevenueCat (or already gone).
    pub outcome: Result<(), ProvisioningFailure>,
}

/// The webhook as RevenueCat reports it, and what rcsync knows about it.
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub webhook: WebhookIntegration,
    /// Whether it is the webhook rcsync provisioned for this integration.
    pub managed: bool,
    /// Whether it points at this integration's webhook URL.
    pub url_matches: bool,
    /// The header rcsync last set on it, against the secrets accepted now.
    pub header: WebhookHeaderStatus,
}

impl WebhookView {
    /// Whether RevenueCat's deliveries through it reach this integration and are accepted.
    pub fn points_to_rcsync(&self) -> bool {
        self.url_matches && self.header.is_accepted()
    }
}

/// Where an integration's webhook lives at RevenueCat.
struct Target {
    api_key: SecretString,
    rc_project: String,
    url: String,
    name: String,
    known_id: Option<String>,
}

/// Provisions, updates, removes and describes the webhook. Cheap to clone.
#[derive(Clone)]
pub struct WebhookProvisioner {
    store: Store,
    sync: RevenueCatSync,
    public_url: Url,
    deadline: Duration,
    locks: Arc<ProjectLocks>,
}

/// One turn at a time per project. Holds only the projects someone is in or waiting for.
#[derive(Default)]
struct ProjectLocks(std::sync::Mutex<HashMap<String, Weak<Mutex<()>>>>);

impl ProjectLocks {
    async fn lock(&self, project_id: &str) -> OwnedMutexGuard<()> {
        let mutex = {
            let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(project_id).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(Mutex::new(()));
                    locks.insert(project_id.to_owned(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

impl WebhookProvisioner {
    /// Provisioning answers an admin waiting on an HTTP request: it takes its turn ahead of
    /// background work on the key's budget.
    fn client(&self) -> RevenueCatClient {
        self.sync.client().with_priority(Priority::Interactive)
    }

    /// `deadline`: how long one request's RevenueCat work may take (`RCSYNC_RC_DEADLINE_SECS`).
    pub fn new(store: Store, sync: RevenueCatSync, public_url: Url, deadline: Duration) -> Self {
        Self {
            store,
            sync,
            public_url,
            deadline,
            locks: Arc::default(),
        }
    }

    /// The URL RevenueCat calls for `project_id` (`RCSYNC_PUBLIC_URL` based).
    pub fn webhook_url(&self, project_id: &str) -> String {
        webhook_url(&self.public_url, REVENUECAT, project_id)
    }

    /// Makes RevenueCat send `secret` to the project's RevenueCat integration: updates the
    /// webhook pointing at it or creates one, then records which. Never fails: a failure is the
    /// outcome. `started`: when the request began (the deadline counts from there).
    ///
    /// Provisioning of one project is serialized in this process and uses the integration as
    /// it is once its turn comes: a secret a newer rotation already replaced, or an integration
    /// deleted meanwhile, is not provisioned, so RevenueCat never ends up holding a stale
    /// header and two concurrent requests never both create a webhook.
    pub async fn provision(
        &self,
        project_id: &str,
        secret: &SecretString,
        started: Instant,
    ) -> Provisioning {
        let digest = secret_digest(secret.expose_secret());
        let attempt = self.within(started, async {
            let turn = self.locks.lock(project_id).await;
            let integration = self
                .store
                .get_active_integration(project_id, REVENUECAT)
                .await?;
            let integration = match integration {
                None => {
                    return Ok(Err(
                        "The integration was deleted before RevenueCat was set up",
                    ))
                }
                Some(i) if i.webhook_secrets.current.as_deref() != Some(digest.as_str()) => {
                    return Ok(Err(
                        "A newer webhook secret replaced this one before RevenueCat was set up",
                    ));
                }
                Some(i) => i,
            };
            let target = self.target(&integration).await?;
            let existing = self.list(&target).await?;
            let ours = pick(&existing, &target, true).map(|w| w.id.clone());
            let webhook = self.put(&target, ours.as_deref(), secret).await?;
            Ok(Ok((turn, integration, webhook)))
        });
        let failure = match attempt.await {
            Ok(Ok((_turn, integration, webhook))) => {
                let provisioned = ProvisionedWebhook {
                    id: webhook.id.clone(),
                    secret_digest: Some(digest),
                };
                self.record(&integration.id, Some(&provisioned)).await;
                tracing::info!(
                    integration_id = %integration.id,
                    webhook_id = %webhook.id,
                    "RevenueCat webhook provisioned"
                );
                return Provisioning::Provisioned {
                    webhook_id: webhook.id,
                };
            }
            Ok(Err(stale)) => ProvisioningFailure {
                reason: stale.to_owned(),
                revenuecat_status: None,
            },
            Err(error) => ProvisioningFailure::of(&error),
        };
        tracing::warn!(
            %project_id,
            reason = %failure.reason,
            "RevenueCat webhook not provisioned; the manual setup applies"
        );
        Provisioning::NotProvisioned(failure)
    }

    /// Deletes the managed webhook of a just deleted integration; `None` when there is none.
    /// Waits for a provisioning of the project in flight, so a webhook it creates is removed
    /// too.
    pub async fn remove(&self, integration: &Integration) -> Option<Removal> {
        // Bounded by the deadline of the provisioning holding the turn, if any.
        let _turn = self.locks.lock(&integration.project_id).await;
        let managed = match self.store.provisioned_webhook(&integration.id).await {
            Ok(managed) => managed,
            Err(error) => {
                tracing::warn!(error.cause_chain = ?error, "provisioned webhook not re-read");
                integration.provisioned_webhook.clone()
            }
        }?;
        let attempt = self.within(Instant::now(), async {
            let target = self.target(integration).await?;
            let client = self.client();
            let key = &target.api_key;
            match client
                .get_webhook_integration(key, &target.rc_project, &managed.id)
                .await?
            {
                None => Ok(Ok(())),
                Some(webhook) if !same_url(&webhook.url, &target.url) => Ok(Err(format!(
                    "RevenueCat webhook {} now points at {}, not at rcsync; it was left in place",
                    webhook.id, webhook.url
                ))),
                Some(_) => match client
                    .delete_webhook_integration(key, &target.rc_project, &managed.id)
                    .await
                {
                    Ok(_) | Err(RevenueCatError::NotFound { .. }) => Ok(Ok(())),
                    Err(error) => Err(error.into()),
                },
            }
        });
        let outcome = match attempt.await {
            Ok(gone) => {
                // Gone, or no longer ours: either way rcsync manages nothing at RevenueCat now.
                self.record(&integration.id, None).await;
                gone.map_err(|reason| ProvisioningFailure {
                    reason,
                    revenuecat_status: None,
                })
            }
            Err(error) => {
                tracing::warn!(
                    integration_id = %integration.id,
                    webhook_id = %managed.id,
                    error = %error,
                    "RevenueCat webhook not removed"
                );
                Err(ProvisioningFailure::of(&error))
            }
        };
        Some(Removal {
            webhook_id: managed.id,
            outcome,
        })
    }

    /// The webhook RevenueCat holds for the project's RevenueCat integration (enabled or not):
    /// the managed one, else one pointing at the integration's URL.
    pub async fn describe(&self, project_id: &str) -> Result<WebhookView, ProvisioningError> {
        let integration = &self
            .store
            .get_active_integration(project_id, REVENUECAT)
            .await?
            .ok_or(ProvisioningError::NotConfigured)?;
        let found = self
            .within(Instant::now(), async {
                let target = self.target(integration).await?;
                let existing = self.list(&target).await?;
                Ok(pick(&existing, &target, false)
                    .cloned()
                    .map(|w| (w, target)))
            })
            .await
            .map_err(ProvisioningError::RevenueCat)?;
        let (webhook, target) = found.ok_or(ProvisioningError::NoWebhook)?;
        Ok(WebhookView {
            managed: target.known_id.as_deref() == Some(webhook.id.as_str()),
            url_matches: same_url(&webhook.url, &target.url),
            header: integration.webhook_header_status(&webhook.id, self.store.now_ms()),
            webhook,
        })
    }

    async fn target(&self, integration: &Integration) -> Result<Target, SyncError> {
        let api_key = integration
            .config
            .get("api_key")
            .map(|key| SecretString::from(key.to_owned()))
            .ok_or(SyncError::NotConfigured)?;
        let rc_project = match &integration.provider_project_id {
            Some(project) => project.clone(),
            None => self.sync.resolve_project(&self.client(), &api_key).await?,
        };
        Ok(Target {
            api_key,
            rc_project,
            url: self.webhook_url(&integration.project_id),
            name: format!("rcsync ({})", integration.project_id),
            known_id: integration
                .provisioned_webhook
                .as_ref()
                .map(|w| w.id.clone()),
        })
    }

    async fn list(&self, target: &Target) -> Result<Vec<WebhookIntegration>, SyncError> {
        Ok(self
            .client()
            .list_webhook_integrations(&target.api_key, &target.rc_project)
            .await?)
    }

    /// Updates webhook `existing` to point at the integration with `secret`, or creates one.
    async fn put(
        &self,
        target: &Target,
        existing: Option<&str>,
        secret: &SecretString,
    ) -> Result<WebhookIntegration, SyncError> {
        let header = SecretString::from(format!("Bearer {}", secret.expose_secret()));
        let client = self.client();
        let webhook = match existing {
            Some(id) => {
                let update = WebhookIntegrationUpdate {
                    name: Some(target.name.clone()),
                    url: Some(target.url.clone()),
                    authorization_header: Some(Some(header)),
                    environment: Some(None),
                    event_types: Some(None),
                    app_id: Some(None),
                };
                client
                    .update_webhook_integration(&target.api_key, &target.rc_project, id, &update)
                    .await?
            }
            None => {
                let new = NewWebhookIntegration {
                    name: target.name.clone(),
                    url: target.url.clone(),
                    authorization_header: Some(header),
                    environment: None,
                    event_types: None,
                    app_id: None,
                };
                client
                    .create_webhook_integration(&target.api_key, &target.rc_project, &new)
                    .await?
            }
        };
        Ok(webhook)
    }

    /// Stores what rcsync manages at RevenueCat. A failure is logged, not returned: RevenueCat
    /// already holds the webhook, and the next provisioning finds it by its URL.
    async fn record(&self, integration_id: &str, webhook: Option<&ProvisionedWebhook>) {
        if let Err(error) = self
            .store
            .record_provisioned_webhook(integration_id, webhook)
            .await
        {
            tracing::error!(
                %integration_id,
                error.cause_chain = ?error,
                "could not record the RevenueCat webhook"
            );
        }
    }

    /// `work` within what is left of the deadline of a request that began at `started`; past
    /// it the work is dropped, which also gives up its place in the pacer.
    async fn within<T>(
        &self,
        started: Instant,
        work: impl Future<Output = Result<T, SyncError>>,
    ) -> Result<T, SyncError> {
        let remaining = self.deadline.saturating_sub(started.elapsed());
        tokio::time::timeout(remaining, work)
            .await
            .map_err(|_| SyncError::DeadlineExceeded(self.deadline))?
    }
}

/// The webhook of `target` among `webhooks`: the stored one first, then any pointing at the
/// target's URL. With `url_only`, the stored one counts only while it still points there.
fn pick<'a>(
    webhooks: &'a [WebhookIntegration],
    target: &Target,
    url_only: bool,
) -> Option<&'a WebhookIntegration> {
    let points_here = |w: &&WebhookIntegration| same_url(&w.url, &target.url);
    let stored = webhooks
        .iter()
        .filter(|w| target.known_id.as_deref() == Some(w.id.as_str()))
        .find(|w| !url_only || points_here(w));
    stored.or_else(|| webhooks.iter().find(points_here))
}

/// URLs as RevenueCat may echo them: a trailing slash makes no difference.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(id: &str, url: &str) -> WebhookIntegration {
        WebhookIntegration {
            id: id.into(),
            project_id: None,
            name: "n".into(),
            url: url.into(),
            environment: None,
            event_types: None,
            app_id: None,
            created_at: None,
        }
    }

    fn target(known_id: Option<&str>) -> Target {
        Target {
            api_key: SecretString::from("sk_x"),
            rc_project: "proj".into(),
            url: "https://rcsync.example/v1/webhooks/revenuecat/p1".into(),
            name: "rcsync (p1)".into(),
            known_id: known_id.map(str::to_owned),
        }
    }

    #[test]
    fn the_stored_webhook_wins_then_any_pointing_at_the_url() {
        let ours = "https://rcsync.example/v1/webhooks/revenuecat/p1";
        let list = [
            webhook("wh_other", "https://elsewhere.example/hook"),
            webhook("wh_manual", &format!("{ours}/")),
            webhook("wh_stored", ours),
        ];
        let id = |w: Option<&WebhookIntegration>| w.map(|w| w.id.clone());
        assert_eq!(
            id(pick(&list, &target(Some("wh_stored")), true)),
            Some("wh_stored".into())
        );
        assert_eq!(
            id(pick(&list, &target(None), true)),
            Some("wh_manual".into())
        );
        assert_eq!(
            id(pick(&list, &target(Some("wh_gone")), true)),
            Some("wh_manual".into())
        );
        // Re-pointed elsewhere: shown, but not reused.
        assert_eq!(
            id(pick(&list, &target(Some("wh_other")), false)),
            Some("wh_other".into())
        );
        assert_eq!(
            id(pick(&list, &target(Some("wh_other")), true)),
            Some("wh_manual".into())
        );
        assert_eq!(id(pick(&list[..1], &target(None), true)), None);
    }

    #[test]
    fn failures_keep_revenuecats_status_and_message() {
        let refused = SyncError::KeyRejected {
            status: Some(403),
            message: "missing permission".into(),
        };
        let failure = ProvisioningFailure::of(&refused);
        assert_eq!(failure.revenuecat_status, Some(403));
        assert_eq!(
            failure.reason,
            "RevenueCat refused the request (403): missing permission"
        );
        let late = ProvisioningFailure::of(&SyncError::DeadlineExceeded(Duration::from_secs(2)));
        assert_eq!(late.revenuecat_status, None);
        assert_eq!(
            late.reason,
            "RevenueCat did not answer within 2 s; try again later"
        );
    }
}
