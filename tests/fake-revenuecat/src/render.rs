//! JSON rendering of stored records as RevenueCat API v2 objects, and list envelopes.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::model::*;
use super::state::Store;

/// Characters kept verbatim in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode one path segment (`$RCAnonymousID:ab` -> `%24RCAnonymousID%3Aab`).
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encode one query value (same set as a path segment, so `+`, `&`, `=`, `$`, `:`
/// and spaces are all escaped).
pub fn encode_query_value(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `/v2/projects/{p}`.
pub fn project_base(project_id: &str) -> String {
    format!("/v2/projects/{}", encode_segment(project_id))
}

/// `/v2/projects/{p}/customers/{id}`.
pub fn customer_base(project_id: &str, customer_id: &str) -> String {
    format!(
        "{}/customers/{}",
        project_base(project_id),
        encode_segment(customer_id)
    )
}

/// A RevenueCat list object. `next_after` is the id of the last item when more items follow.
pub fn list(url: &str, items: Vec<Value>, next_after: Option<&str>, limit: usize) -> Value {
    let next_page = match next_after {
        Some(id) => Value::String(format!(
            "{url}?starting_after={}&limit={limit}",
            encode_query_value(id)
        )),
        None => Value::Null,
    };
    json!({"object": "list", "items": items, "next_page": next_page, "url": url})
}

/// A complete embedded list (no further page).
pub fn full_list(url: &str, items: Vec<Value>) -> Value {
    json!({"object": "list", "items": items, "next_page": null, "url": url})
}

/// Page through `items` (in their stored order) the way RevenueCat does: the items after the
/// one whose id is `starting_after` (none if that id is unknown), at most `limit` of them.
/// Returns the page and, if more items follow, the id of the page's last item.
pub fn page<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    starting_after: Option<&str>,
    limit: usize,
) -> (&'a [T], Option<&'a str>) {
    let start = match starting_after {
        None => 0,
        Some(after) => match items.iter().position(|x| id(x) == after) {
            Some(i) => i + 1,
            None => items.len(),
        },
    };
    let end = (start + limit).min(items.len());
    let slice = &items[start..end];
    let next = if end < items.len() && !slice.is_empty() {
        Some(id(&slice[slice.len() - 1]))
    } else {
        None
    };
    (slice, next)
}

pub fn project(p: &ProjectRecord) -> Value {
    json!({"object": "project", "id": p.id, "name": p.name, "created_at": p.created_at})
}

pub fn product(p: &ProductRecord) -> Value {
    let mut m = Map::new();
    m.insert("object".into(), json!("product"));
    m.insert("id".into(), json!(p.id));
    m.insert("store_identifier".into(), json!(p.store_identifier));
    m.insert("type".into(), json!(p.product_type));
    if p.product_type == "subscription" {
        m.insert(
            "subscription".into(),
            json!({
                "duration": p.duration,
                "grace_period_duration": p.grace_period_duration,
                "trial_duration": p.trial_duration,
            }),
        );
    } else {
        m.insert("one_time".into(), json!({"is_consumable": p.is_consumable}));
    }
    m.insert("created_at".into(), json!(p.created_at));
    m.insert("app_id".into(), json!(p.app_id));
    m.insert("display_name".into(), json!(p.display_name));
    Value::Object(m)
}

pub fn entitlement(store: &Store, e: &EntitlementRecord, expand_products: bool) -> Value {
    let pid = store.project_id();
    let mut v = json!({
        "object": "entitlement",
        "project_id": pid,
        "id": e.id,
        "lookup_key": e.lookup_key,
        "display_name": e.display_name,
        "created_at": e.created_at,
    });
    if expand_products {
        let items = e
            .product_ids
            .iter()
            .filter_map(|id| store.product(id))
            .map(product)
            .collect();
        let url = format!(
            "{}/entitlements/{}/products",
            project_base(pid),
            encode_segment(&e.id)
        );
        v["products"] = full_list(&url, items);
    }
    v
}

fn entitlement_list(store: &Store, ids: &[String], url: String) -> Value {
    let items = ids
        .iter()
        .filter_map(|id| store.entitlement(id))
        .map(|e| entitlement(store, e, false))
        .collect();
    full_list(&url, items)
}

pub fn active_entitlement(a: &ActiveEntitlementRecord) -> Value {
    json!({
        "object": "customer.active_entitlement",
        "entitlement_id": a.entitlement_id,
        "expires_at": a.expires_at,
    })
}

pub fn alias(a: &AliasRecord) -> Value {
    json!({"object": "customer.alias", "id": a.id, "created_at": a.created_at})
}

pub fn attribute(a: &AttributeRecord) -> Value {
    json!({
        "object": "customer.attribute",
        "name": a.name,
        "value": a.value,
        "updated_at": a.updated_at,
    })
}

/// All aliases of a customer, its own id first (as RevenueCat lists it).
pub fn aliases_of(c: &CustomerRecord) -> Vec<AliasRecord> {
    let mut out = Vec::with_capacity(c.aliases.len() + 1);
    if !c.aliases.iter().any(|a| a.id == c.id) {
        out.push(AliasRecord {
            id: c.id.clone(),
            created_at: c.first_seen_at,
        });
    }
    out.extend(c.aliases.iter().cloned());
    out
}

/// A `customer`. `with_entitlements`: add `active_entitlements` (the "Get a customer" shape);
/// `with_attributes`: add `attributes` (`?expand=attributes`).
pub fn customer(
    store: &Store,
    c: &CustomerRecord,
    with_entitlements: bool,
    with_attributes: bool,
) -> Value {
    let pid = store.project_id();
    let mut m = Map::new();
    m.insert("object".into(), json!("customer"));
    m.insert("id".into(), json!(c.id));
    m.insert("project_id".into(), json!(pid));
    m.insert("first_seen_at".into(), json!(c.first_seen_at));
    m.insert("last_seen_at".into(), json!(c.last_seen_at));
    m.insert(
        "last_seen_app_version".into(),
        json!(c.last_seen_app_version),
    );
    m.insert("last_seen_country".into(), json!(c.last_seen_country));
    m.insert("last_seen_platform".into(), json!(c.last_seen_platform));
    m.insert(
        "last_seen_platform_version".into(),
        json!(c.last_seen_platform_version),
    );
    let base = customer_base(pid, &c.id);
    if with_entitlements {
        let items = c
            .active_entitlements
            .iter()
            .map(active_entitlement)
            .collect();
        m.insert(
            "active_entitlements".into(),
            full_list(&format!("{base}/active_entitlements"), items),
        );
    }
    m.insert(
        "experiment".into(),
        match &c.experiment {
            Some(e) => json!({
                "object": "experiment_enrollment",
                "id": e.id,
                "name": e.name,
                "variant": e.variant,
            }),
            None => Value::Null,
        },
    );
    if with_attributes {
        let items = c.attributes.iter().map(attribute).collect();
        m.insert(
            "attributes".into(),
            full_list(&format!("{base}/attributes"), items),
        );
    }
    Value::Object(m)
}

pub fn subscription(store: &Store, s: &SubscriptionRecord) -> Value {
    let pid = store.project_id();
    let ents_url = format!(
        "{}/subscriptions/{}/entitlements",
        project_base(pid),
        encode_segment(&s.id)
    );
    let pending_changes = match &s.pending_change_product_id {
        Some(id) => match store.product(id) {
            Some(p) => json!({"product": product(p)}),
            None => Value::Null,
        },
        None => Value::Null,
    };
    json!({
        "object": "subscription",
        "id": s.id,
        "customer_id": s.customer_id,
        "original_customer_id": s.original_customer_id,
        "product_id": s.product_id,
        "starts_at": s.starts_at,
        "current_period_starts_at": s.current_period_starts_at,
        "current_period_ends_at": s.current_period_ends_at,
        "ends_at": s.ends_at,
        "gives_access": s.gives_access,
        "pending_payment": s.pending_payment,
        "auto_renewal_status": s.auto_renewal_status,
        "status": s.status,
        "total_revenue_in_usd": s.total_revenue_in_usd,
        "presented_offering_id": s.presented_offering_id,
        "entitlements": entitlement_list(store, &s.entitlement_ids, ents_url),
        "environment": s.environment,
        "store": s.store,
        "store_subscription_identifier": s.store_subscription_identifier,
        "ownership": s.ownership,
        "pending_changes": pending_changes,
        "country": s.country,
        "management_url": s.management_url,
    })
}

pub fn purchase(store: &Store, p: &PurchaseRecord) -> Value {
    let pid = store.project_id();
    let ents_url = format!(
        "{}/purchases/{}/entitlements",
        project_base(pid),
        encode_segment(&p.id)
    );
    json!({
        "object": "purchase",
        "id": p.id,
        "customer_id": p.customer_id,
        "original_customer_id": p.original_customer_id,
        "product_id": p.product_id,
        "purchased_at": p.purchased_at,
        "revenue_in_usd": p.revenue_in_usd,
        "quantity": p.quantity,
        "status": p.status,
        "presented_offering_id": p.presented_offering_id,
        "entitlements": entitlement_list(store, &p.entitlement_ids, ents_url),
        "environment": p.environment,
        "store": p.store,
        "store_purchase_identifier": p.store_purchase_identifier,
        "ownership": p.ownership,
        "country": p.country,
    })
}

/// A `webhook_integration`; `authorization_header` is write-only and never rendered.
pub fn webhook(project_id: &str, w: &WebhookIntegrationRecord) -> Value {
    json!({
        "object": "webhook_integration",
        "id": w.id,
        "project_id": project_id,
        "name": w.name,
        "url": w.url,
        "environment": w.environment,
        "event_types": w.event_types,
        "app_id": w.app_id,
        "created_at": w.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_over_a_slice() {
        let v: Vec<String> = (0..5).map(|i| format!("i{i}")).collect();
        let (p, n) = page(&v, |s| s.as_str(), None, 2);
        assert_eq!(p, &v[0..2]);
        assert_eq!(n, Some("i1"));
        let (p, n) = page(&v, |s| s.as_str(), Some("i3"), 2);
        assert_eq!(p, &v[4..5]);
        assert_eq!(n, None);
        let (p, n) = page(&v, |s| s.as_str(), Some("i1"), 3);
        assert_eq!(p, &v[2..5]);
        assert_eq!(n, None);
        let (p, _) = page(&v, |s| s.as_str(), Some("nope"), 3);
        assert!(p.is_empty());
    }

    #[test]
    fn encodes_anonymous_ids() {
        assert_eq!(
            encode_segment("$RCAnonymousID:ab12"),
            "%24RCAnonymousID%3Aab12"
        );
        let l = list("/v2/x", vec![], Some("$RCAnonymousID:a b+c"), 5);
        assert_eq!(
            l["next_page"],
            "/v2/x?starting_after=%24RCAnonymousID%3Aa%20b%2Bc&limit=5"
        );
    }
}
