//! The fake's mutable data: one project, its catalog, its customers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::model::*;

/// Everything the fake serves. Customers are kept in id order (the order `GET .../customers`
/// pages through); `aliases` maps every non-canonical id to its canonical customer id.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub project: Option<ProjectRecord>,
    pub app_id: String,
    pub products: Vec<ProductRecord>,
    pub entitlements: Vec<EntitlementRecord>,
    pub customers: BTreeMap<String, CustomerRecord>,
    /// alias id -> canonical customer id.
    pub aliases: HashMap<String, String>,
    pub webhooks: BTreeMap<String, WebhookIntegrationRecord>,
    pub(crate) id_counter: u64,
}

impl Store {
    pub fn new(project_id: &str) -> Self {
        Store {
            project: Some(ProjectRecord {
                id: project_id.to_string(),
                name: "Fake RevenueCat Project".into(),
                created_at: 1_658_399_423_658,
            }),
            app_id: "app1a2b3c4d".into(),
            ..Default::default()
        }
    }

    pub fn project_id(&self) -> &str {
        self.project.as_ref().map(|p| p.id.as_str()).unwrap_or("")
    }

    /// The canonical id for `id` (itself when it is a customer, its owner when it is an alias).
    pub fn resolve(&self, id: &str) -> Option<&str> {
        if let Some((k, _)) = self.customers.get_key_value(id) {
            return Some(k.as_str());
        }
        self.aliases.get(id).map(|s| s.as_str())
    }

    pub fn customer(&self, id: &str) -> Option<&CustomerRecord> {
        let canonical = self.resolve(id)?.to_string();
        self.customers.get(&canonical)
    }

    pub fn customer_mut(&mut self, id: &str) -> Option<&mut CustomerRecord> {
        let canonical = self.resolve(id)?.to_string();
        self.customers.get_mut(&canonical)
    }

    /// Insert or replace a customer. Its `aliases` entries (other than its own id) are
    /// registered as aliases pointing at it.
    pub fn upsert_customer(&mut self, customer: CustomerRecord) {
        for alias in &customer.aliases {
            if alias.id != customer.id {
                self.aliases.insert(alias.id.clone(), customer.id.clone());
            }
        }
        self.aliases.remove(&customer.id);
        self.customers.insert(customer.id.clone(), customer);
    }

    pub fn remove_customer(&mut self, id: &str) -> Option<CustomerRecord> {
        let canonical = self.resolve(id)?.to_string();
        let c = self.customers.remove(&canonical)?;
        self.aliases.retain(|_, v| *v != canonical);
        Some(c)
    }

    /// Make `alias` (e.g. an `$RCAnonymousID:...`) resolve to `canonical_id`, like RevenueCat
    /// does after an SDK `logIn` merged the anonymous customer into the real one. A customer
    /// stored under `alias` is merged into the canonical one.
    pub fn add_alias(&mut self, canonical_id: &str, alias: &str, created_at: i64) -> bool {
        if !self.customers.contains_key(canonical_id) || alias == canonical_id {
            return false;
        }
        if let Some(old) = self.customers.remove(alias) {
            let c = self.customers.get_mut(canonical_id).expect("checked");
            c.subscriptions.extend(old.subscriptions);
            c.purchases.extend(old.purchases);
            c.active_entitlements.extend(old.active_entitlements);
            c.first_seen_at = c.first_seen_at.min(old.first_seen_at);
        }
        let c = self.customers.get_mut(canonical_id).expect("checked");
        if !c.aliases.iter().any(|a| a.id == alias) {
            c.aliases.push(AliasRecord {
                id: alias.to_string(),
                created_at,
            });
        }
        self.aliases
            .insert(alias.to_string(), canonical_id.to_string());
        true
    }

    pub fn add_subscription(&mut self, customer_id: &str, sub: SubscriptionRecord) -> bool {
        match self.customer_mut(customer_id) {
            Some(c) => {
                c.subscriptions.retain(|s| s.id != sub.id);
                c.subscriptions.push(sub);
                true
            }
            None => false,
        }
    }

    pub fn add_purchase(&mut self, customer_id: &str, p: PurchaseRecord) -> bool {
        match self.customer_mut(customer_id) {
            Some(c) => {
                c.purchases.retain(|x| x.id != p.id);
                c.purchases.push(p);
                true
            }
            None => false,
        }
    }

    pub fn set_active_entitlements(
        &mut self,
        customer_id: &str,
        ents: Vec<ActiveEntitlementRecord>,
    ) -> bool {
        match self.customer_mut(customer_id) {
            Some(c) => {
                c.active_entitlements = ents;
                true
            }
            None => false,
        }
    }

    pub fn upsert_product(&mut self, p: ProductRecord) {
        self.products.retain(|x| x.id != p.id);
        self.products.push(p);
    }

    pub fn upsert_entitlement(&mut self, e: EntitlementRecord) {
        self.entitlements.retain(|x| x.id != e.id);
        self.entitlements.push(e);
    }

    pub fn product(&self, id: &str) -> Option<&ProductRecord> {
        self.products.iter().find(|p| p.id == id)
    }

    pub fn entitlement(&self, id: &str) -> Option<&EntitlementRecord> {
        self.entitlements.iter().find(|e| e.id == id)
    }

    /// The subscription `id` of whichever customer holds it (a scan: only the rarely used
    /// subscription-level endpoints need it).
    pub fn find_subscription(&self, id: &str) -> Option<&SubscriptionRecord> {
        self.customers
            .values()
            .flat_map(|c| c.subscriptions.iter())
            .find(|s| s.id == id)
    }

    /// The one-time purchase `id` of whichever customer holds it (a scan, like
    /// [`Self::find_subscription`]).
    pub fn find_purchase(&self, id: &str) -> Option<&PurchaseRecord> {
        self.customers
            .values()
            .flat_map(|c| c.purchases.iter())
            .find(|p| p.id == id)
    }

    /// A fresh id `<prefix><hex>`, unique within this store.
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.id_counter += 1;
        let mixed = self
            .id_counter
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17);
        format!("{prefix}{:012x}", mixed & 0xFFFF_FFFF_FFFF)
    }
}

/// Shared handle to the fake's [`Store`], for tests to read and mutate while the fake serves.
#[derive(Clone)]
pub struct StateHandle {
    pub(crate) inner: Arc<Mutex<Store>>,
}

impl StateHandle {
    pub(crate) fn new(store: Store) -> Self {
        StateHandle {
            inner: Arc::new(Mutex::new(store)),
        }
    }

    /// Lock the store. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` with the store locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn upsert_customer(&self, c: CustomerRecord) {
        self.lock().upsert_customer(c)
    }
    pub fn remove_customer(&self, id: &str) -> Option<CustomerRecord> {
        self.lock().remove_customer(id)
    }
    pub fn customer(&self, id: &str) -> Option<CustomerRecord> {
        self.lock().customer(id).cloned()
    }
    pub fn add_alias(&self, canonical_id: &str, alias: &str, created_at: i64) -> bool {
        self.lock().add_alias(canonical_id, alias, created_at)
    }
    pub fn add_subscription(&self, customer_id: &str, s: SubscriptionRecord) -> bool {
        self.lock().add_subscription(customer_id, s)
    }
    pub fn add_purchase(&self, customer_id: &str, p: PurchaseRecord) -> bool {
        self.lock().add_purchase(customer_id, p)
    }
    pub fn set_active_entitlements(
        &self,
        customer_id: &str,
        ents: Vec<ActiveEntitlementRecord>,
    ) -> bool {
        self.lock().set_active_entitlements(customer_id, ents)
    }
    pub fn upsert_product(&self, p: ProductRecord) {
        self.lock().upsert_product(p)
    }
    pub fn upsert_entitlement(&self, e: EntitlementRecord) {
        self.lock().upsert_entitlement(e)
    }
    pub fn customer_count(&self) -> usize {
        self.lock().customers.len()
    }
    pub fn webhook_integrations(&self) -> Vec<WebhookIntegrationRecord> {
        self.lock().webhooks.values().cloned().collect()
    }
    pub fn webhook_integration(&self, id: &str) -> Option<WebhookIntegrationRecord> {
        self.lock().webhooks.get(id).cloned()
    }
}
