//! Higher-level fetches: everything a resync needs, in as few calls as the API allows.

use secrecy::SecretString;

use super::RevenueCatClient;
use crate::revenuecat::catalog::Catalog;
use crate::revenuecat::customer_data::{CustomerData, FetchPlan};
use crate::revenuecat::error::RevenueCatError;
use crate::revenuecat::model::{Entitlement, ListPage, Purchase, Subscription};
use crate::revenuecat::rate_limiter::RateLimitDomain::CustomerInformation;

impl RevenueCatClient {
    /// Fetches one customer for [`crate::revenuecat::mapping::map_customer`]:
    /// 1. `GET customer` (active entitlements inline; the returned id is canonical),
    /// 2. `/subscriptions` of the canonical id,
    /// 3. `/purchases` when [`FetchPlan::needs_purchases`] says so: for every customer while
    ///    revenue is tracked, otherwise only when an active entitlement is not granted by an
    ///    access-giving subscription (lifetime purchase or grant).
    ///
    /// Every embedded list that is only a first page (a non-null `next_page`) is followed
    /// verbatim to its end: the customer's `active_entitlements` and each subscription's and
    /// purchase's `entitlements` (which decide what a subscription explains). Complete lists
    /// cost nothing extra.
    ///
    /// `Ok(None)`: RevenueCat does not know the customer. If `/subscriptions` (or `/purchases`)
    /// still fails after retries, the data is returned without it (entitlements-only fallback,
    /// see [`CustomerData::is_entitlements_only`]) rather than failing the user; a rejected key
    /// is always an error.
    pub async fn fetch_customer_data(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
        plan: FetchPlan,
    ) -> Result<Option<CustomerData>, RevenueCatError> {
        let Some(customer) = self.get_customer(key, project_id, customer_id).await? else {
            return Ok(None);
        };
        let canonical_id = customer.id.clone();
        let active_entitlements = match customer.active_entitlements {
            Some(first_page) => {
                self.rest_of_list(key, CustomerInformation, first_page)
                    .await?
            }
            // Not inlined (older API / proxy): one extra call keeps the result exact.
            None => {
                self.list_active_entitlements(key, project_id, &canonical_id)
                    .await?
            }
        };

        let subscriptions = match self
            .subscriptions_with_entitlements(key, project_id, &canonical_id)
            .await
        {
            Ok(subscriptions) => Some(subscriptions),
            Err(error) if error.is_unauthorized() => return Err(error),
            Err(error) => {
                tracing::warn!(error = %error, "subscriptions unavailable, entitlements-only fallback");
                None
            }
        };
        let mut data = CustomerData {
            customer_id: canonical_id,
            active_entitlements,
            subscriptions,
            purchases: None,
            plan,
        };
        if plan.needs_purchases(&data) {
            data.purchases = match self
                .purchases_with_entitlements(key, project_id, &data.customer_id)
                .await
            {
                Ok(purchases) => Some(purchases),
                Err(error) if error.is_unauthorized() => return Err(error),
                Err(error) => {
                    tracing::warn!(error = %error, "purchases unavailable");
                    None
                }
            };
        }
        Ok(Some(data))
    }

    /// `/subscriptions` with each subscription's embedded `entitlements` complete.
    async fn subscriptions_with_entitlements(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, RevenueCatError> {
        let mut subscriptions = self
            .list_subscriptions(key, project_id, customer_id)
            .await?;
        self.complete_each(key, subscriptions.iter_mut().map(|s| &mut s.entitlements))
            .await?;
        Ok(subscriptions)
    }

    /// `/purchases` with each purchase's embedded `entitlements` complete.
    async fn purchases_with_entitlements(
        &self,
        key: &SecretString,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Purchase>, RevenueCatError> {
        let mut purchases = self.list_purchases(key, project_id, customer_id).await?;
        self.complete_each(key, purchases.iter_mut().map(|p| &mut p.entitlements))
            .await?;
        Ok(purchases)
    }

    /// [`Self::complete_entitlements`] for each list, one after the other.
    async fn complete_each(
        &self,
        key: &SecretString,
        lists: impl Iterator<Item = &mut Option<ListPage<Entitlement>>> + Send,
    ) -> Result<(), RevenueCatError> {
        for list in lists {
            self.complete_entitlements(key, list).await?;
        }
        Ok(())
    }

    /// Follows an embedded `entitlements` first page to its end (nothing to do when complete).
    async fn complete_entitlements(
        &self,
        key: &SecretString,
        list: &mut Option<ListPage<Entitlement>>,
    ) -> Result<(), RevenueCatError> {
        let Some(page) = list.as_mut().filter(|page| page.next_page().is_some()) else {
            return Ok(());
        };
        let url = page.url.take();
        let first = std::mem::take(page);
        let items = self.rest_of_list(key, CustomerInformation, first).await?;
        *page = ListPage {
            items,
            next_page: None,
            url,
        };
        Ok(())
    }

    /// Entitlements and products of a project (project configuration budget): fetch once per
    /// run and share across customers.
    pub async fn fetch_catalog(
        &self,
        key: &SecretString,
        project_id: &str,
    ) -> Result<Catalog, RevenueCatError> {
        let entitlements = self.list_entitlements(key, project_id).await?;
        let products = self.list_products(key, project_id).await?;
        Ok(Catalog::new(&entitlements, &products))
    }
}
