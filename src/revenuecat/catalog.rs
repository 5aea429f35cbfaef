//! The project configuration a mapping needs: entitlement and product names by opaque id.

use std::collections::HashMap;

use super::model::{Entitlement, Product, ProductType};

/// What the mapping needs to know about a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    pub store_identifier: String,
    /// ISO-8601 subscription duration (`P1M`), `None` for one-time products.
    pub duration: Option<String>,
    pub product_type: ProductType,
}

/// Entitlement `lookup_key` and product `store_identifier` by RevenueCat id. Fetched once per
/// run (project configuration budget is only 60 requests/min) and shared by every customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    entitlement_lookup_keys: HashMap<String, String>,
    products: HashMap<String, CatalogProduct>,
}

impl Catalog {
    pub fn new(entitlements: &[Entitlement], products: &[Product]) -> Self {
        Self {
            entitlement_lookup_keys: entitlements
                .iter()
                .map(|entitlement| (entitlement.id.clone(), entitlement.lookup_key.clone()))
                .collect(),
            products: products
                .iter()
                .map(|product| {
                    let entry = CatalogProduct {
                        store_identifier: product.store_identifier.clone(),
                        duration: product
                            .subscription
                            .as_ref()
                            .and_then(|subscription| subscription.duration.clone()),
                        product_type: product.product_type.clone(),
                    };
                    (product.id.clone(), entry)
                })
                .collect(),
        }
    }

    pub fn entitlement_lookup_key(&self, entitlement_id: &str) -> Option<&str> {
        self.entitlement_lookup_keys
            .get(entitlement_id)
            .map(String::as_str)
            .filter(|key| !key.is_empty())
    }

    pub fn product(&self, product_id: &str) -> Option<&CatalogProduct> {
        self.products.get(product_id)
    }

    pub fn is_empty(&self) -> bool {
        self.entitlement_lookup_keys.is_empty() && self.products.is_empty()
    }
}
