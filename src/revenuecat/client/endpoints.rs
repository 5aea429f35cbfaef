//! One method per RevenueCat endpoint rcsync uses.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use url::Url;

use super::paths::{endpoint_url, next_page_url};
use super::{decode, Call, Idempotency, RevenueCatClient};
use crate::revenuecat::error::RevenueCatError;
use crate::revenuecat::model::{
    Customer, CustomerEntitlement, DeletedObject, Entitlement, ListPage, NewWebhookIntegration,
    Product, Project, Purchase, Subscription, WebhookIntegration, WebhookIntegrationUpdate,
};
use crate::revenuecat::rate_limiter::RateLimitDomain::{
    self, CustomerInformation, ProjectConfiguration,
};

/// Guard against a server that keeps handing out pages (a loop we failed to detect).
const MAX_PAGES: usize = 100_000;

fn optional<T>(result: Result<T, RevenueCatError>) -> Result<Option<T>, RevenueCatError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(RevenueCatError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A 400 about the page size: RevenueCat declares no maximum `limit`, so survive one.
fn rejects_page_size(error: &RevenueCatError) -> bool {
    match error {
        RevenueCatError::Api {
            status: 400,
            param,
            message,
            ..
        } => param.as_deref() == Some("limit") || message.to_ascii_lowercase().contains("limit"),
        _ => false,
    }
}

impl RevenueCatClient {
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        endpoint_url(&self.inner.config.base_url, segments, query)
    }

    /// Every item of a list, following `next_page` verbatim until it is null/absent.
    async fn list_all<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        domain: RateLimitDomain,
        segments: &[&str],
    ) -> Result<Vec<T>, RevenueCatError> {
        let limit = self.inner.config.page_limit.to_string();
        let first = self.url(segments, &[("limit", limit)]);
        let first_page: ListPage<T> = match self.get_json(key, domain, first).await {
            Err(error) if rejects_page_size(&error) => {
                tracing::warn!(error = %error, "page size rejected, using RevenueCat's default");
                self.get_json(key, domain, self.url(segments, &[])).await?
            }
            other => other?,
        };
        self.rest_of_list(key, domain, first_page).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        idempotency: Idempotency,
    ) -> Result<T, RevenueCatError> {
        let call = Call {
            key,
            domain: ProjectConfiguration,
            method,
            url,
            body,
            idempotency,
        };
        decode(&self.execute(call).await?)
    }

    /// `GET /projects` (all pages).
    pub async fn list_projects(&self, key: &SecretString) -> Result<Vec<Project>, RevenueCatError> {
        self.list_all(key, ProjectConfiguration, &["projects"])
            .await
    }

    /// [`Self::list_projects`] for a key rcsync has not verified yet: paced by the process-wide
    /// key-check budget as well as the key's own, since anyone allowed to configure an
    /// integration can make up keys.
    pub async fn verify_key(&self, key: &SecretString) -> Result<Vec<Project>, RevenueCatError> {
        self.inner.limiter.acquire_key_check().await;
        self.list_projects(key).await
    }

    /// `GET /projects/{p}/customers/{id}`; `None` when RevenueCat does not know the customer.
    /// The returned `id` is canonical (aliases resolved).
    pub async fn get_customer(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Option<Customer>, RevenueCatError> {
        let url = self.url(&["projects", project_id, "customers", customer_id], &[]);
        optional(self.get_json(key, CustomerInformation, url).await)
    }

    /// One page of `GET /projects/{p}/customers`. With `next_page`, that path is requested
    /// verbatim (relative to the base URL's origin) and `limit` is not added again. A first
    /// page whose `limit` RevenueCat refuses is asked again without one (RevenueCat's default
    /// page size), whose `next_page` then carries on.
    pub async fn list_customers_page(
        &self,
        key: &SecretString,
        project_id: &str,
        limit: u32,
        next_page: Option<&str>,
    ) -> Result<ListPage<Customer>, RevenueCatError> {
        let segments = ["projects", project_id, "customers"];
        let url = match next_page {
            Some(next) => next_page_url(&self.inner.config.base_url, next)?,
            None => self.url(&segments, &[("limit", limit.to_string())]),
        };
        match self.get_json(key, CustomerInformation, url).await {
            Err(error) if next_page.is_none() && rejects_page_size(&error) => {
                tracing::warn!(error = %error, "page size rejected, using RevenueCat's default");
                let url = self.url(&segments, &[]);
                self.get_json(key, CustomerInformation, url).await
            }
            other => other,
        }
    }

    /// `GET /projects/{p}/customers/{id}/subscriptions` (all pages).
    pub async fn list_subscriptions(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "customers",
            customer_id,
            "subscriptions",
        ];
        self.list_all(key, CustomerInformation, &segments).await
    }

    /// `GET /projects/{p}/customers/{id}/purchases` (one-time purchases, all pages).
    pub async fn list_purchases(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Purchase>, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "customers",
            customer_id,
            "purchases",
        ];
        self.list_all(key, CustomerInformation, &segments).await
    }

    /// `GET /projects/{p}/customers/{id}/active_entitlements` (all pages).
    pub async fn list_active_entitlements(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<CustomerEntitlement>, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "customers",
            customer_id,
            "active_entitlements",
        ];
        self.list_all(key, CustomerInformation, &segments).await
    }

    /// Follows a list's `next_page` to the end (e.g. a customer's inline `active_entitlements`).
    pub(super) async fn rest_of_list<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        domain: RateLimitDomain,
        first_page: ListPage<T>,
    ) -> Result<Vec<T>, RevenueCatError> {
        let mut page = first_page;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let next = page.next_page().map(str::to_owned);
            items.append(&mut page.items);
            let Some(next) = next else {
                return Ok(items);
            };
            if !seen.insert(next.clone()) || seen.len() > MAX_PAGES {
                return Err(RevenueCatError::InvalidRequest(format!(
                    "RevenueCat paging does not end (next_page {next:?} repeated)"
                )));
            }
            let url = next_page_url(&self.inner.config.base_url, &next)?;
            page = self.get_json(key, domain, url).await?;
        }
    }

    /// `GET /projects/{p}/entitlements` (project configuration budget, all pages).
    pub async fn list_entitlements(
        &self,
        key: &SecretString,
        project_id: &str,
    ) -> Result<Vec<Entitlement>, RevenueCatError> {
        self.list_all(
            key,
            ProjectConfiguration,
            &["projects", project_id, "entitlements"],
        )
        .await
    }

    /// `GET /projects/{p}/products` (project configuration budget, all pages).
    pub async fn list_products(
        &self,
        key: &SecretString,
        project_id: &str,
    ) -> Result<Vec<Product>, RevenueCatError> {
        self.list_all(
            key,
            ProjectConfiguration,
            &["projects", project_id, "products"],
        )
        .await
    }

    /// `GET /projects/{p}/integrations/webhooks` (all pages).
    pub async fn list_webhook_integrations(
        &self,
        key: &SecretString,
        project_id: &str,
    ) -> Result<Vec<WebhookIntegration>, RevenueCatError> {
        let segments = ["projects", project_id, "integrations", "webhooks"];
        self.list_all(key, ProjectConfiguration, &segments).await
    }

    /// `POST /projects/{p}/integrations/webhooks`. Not retried when RevenueCat may have
    /// processed it (a retry could create a duplicate webhook).
    pub async fn create_webhook_integration(
        &self,
        key: &SecretString,
        project_id: &str,
        integration: &NewWebhookIntegration,
    ) -> Result<WebhookIntegration, RevenueCatError> {
        let url = self.url(&["projects", project_id, "integrations", "webhooks"], &[]);
        let body = to_body(integration)?;
        self.send_json(key, Method::POST, url, Some(body), Idempotency::SendOnce)
            .await
    }

    /// `GET /projects/{p}/integrations/webhooks/{id}`; `None` when it does not exist.
    pub async fn get_webhook_integration(
        &self,
        key: &SecretString,
        project_id: &str,
        webhook_integration_id: &str,
    ) -> Result<Option<WebhookIntegration>, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "integrations",
            "webhooks",
            webhook_integration_id,
        ];
        let url = self.url(&segments, &[]);
        optional(self.get_json(key, ProjectConfiguration, url).await)
    }

    /// `POST /projects/{p}/integrations/webhooks/{id}` (RevenueCat updates with POST, not
    /// PATCH). Setting the same fields twice is harmless, so it is retried like a GET.
    pub async fn update_webhook_integration(
        &self,
        key: &SecretString,
        project_id: &str,
        webhook_integration_id: &str,
        update: &WebhookIntegrationUpdate,
    ) -> Result<WebhookIntegration, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "integrations",
            "webhooks",
            webhook_integration_id,
        ];
        let url = self.url(&segments, &[]);
        let body = to_body(update)?;
        self.send_json(key, Method::POST, url, Some(body), Idempotency::Idempotent)
            .await
    }

    /// `DELETE /projects/{p}/integrations/webhooks/{id}`.
    pub async fn delete_webhook_integration(
        &self,
        key: &SecretString,
        project_id: &str,
        webhook_integration_id: &str,
    ) -> Result<DeletedObject, RevenueCatError> {
        let segments = [
            "projects",
            project_id,
            "integrations",
            "webhooks",
            webhook_integration_id,
        ];
        let url = self.url(&segments, &[]);
        self.send_json(key, Method::DELETE, url, None, Idempotency::Idempotent)
            .await
    }
}

fn to_body<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, RevenueCatError> {
    serde_json::to_value(value).map_err(|error| RevenueCatError::InvalidRequest(error.to_string()))
}
