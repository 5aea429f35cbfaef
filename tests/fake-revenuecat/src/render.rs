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

/// How list objects are shaped (see [`crate::ListKnobs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStyle {
    pub omit_next_page_on_last: bool,
    pub embedded_page_size: Option<usize>,
}

/// A RevenueCat list object. `next_after` is the id of the last item when more items follow;
/// `limit` is the `limit` the `next_page` URL carries.
pub fn list(
    url: &str,
    items: Vec<Value>,
    next_after: Option<&str>,
    limit: usize,
    style: &ListStyle,
) -> Value {
    let mut m = Map::new();
    m.insert("object".into(), json!("list"));
    m.insert("items".into(), Value::Array(items));
    match next_after {
        Some(id) => {
            let next = format!(
                "{url}?starting_after={}&limit={limit}",
                encode_query_value(id)
            );
            m.insert("next_page".into(), Value::String(next));
        }
        None if style.omit_next_page_on_last => {}
        None => {
            m.insert("next_page".into(), Value::Null);
        }
    }
    m.insert("url".into(), json!(url));
    Value::Object(m)
}

/// A list embedded in an object: complete, or (with an embedded page size) its first items
/// and a `next_page` continuing at `url`, which the fake serves.
pub fn embedded<T>(
    url: &str,
    items: &[T],
    id: impl Fn(&T) -> &str,
    render: impl Fn(&T) -> Value,
    style: &ListStyle,
) -> Value {
    let limit = style.embedded_page_size.unwrap_or(items.len()).max(1);
    let (page, next) = page(items, id, None, limit);
    list(url, page.iter().map(render).collect(), next, limit, style)
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

pub fn entitlement(
    store: &Store,
    e: &EntitlementRecord,
    expand_products: bool,
    style: &ListStyle,
) -> Value {
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
        let n = e.product_ids.len();
        v["products"] = list(&url, items, None, n, style);
    }
    v
}

/// The catalog entitlements among `ids`, in the order given (unknown ids are skipped).
pub fn resolve_entitlements<'a>(store: &'a Store, ids: &[String]) -> Vec<&'a EntitlementRecord> {
    ids.iter().filter_map(|id| store.entitlement(id)).collect()
}

fn entitlement_list(store: &Store, ids: &[String], url: String, style: &ListStyle) -> Value {
    let ents = resolve_entitlements(store, ids);
    embedded(
        &url,
        &ents,
        |e| e.id.as_str(),
        |e| entitlement(store, e, false, style),
        style,
    )
}

/// `/v2/projects/{p}/subscriptions/{id}/entitlements` (or `purchases`).
pub fn owned_entitlements_url(project_id: &str, owner: &str, id: &str) -> String {
    format!(
        "{}/{owner}/{}/entitlements",
        project_base(project_id),
        encode_segment(id)
    )
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
    style: &ListStyle,
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
        m.insert(
            "active_entitlements".into(),
            embedded(
                &format!("{base}/active_entitlements"),
                &c.active_entitlements,
                |a| a.entitlement_id.as_str(),
                active_entitlement,
                style,
            ),
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
        m.insert(
            "attributes".into(),
            embedded(
                &format!("{base}/attributes"),
                &c.attributes,
                |a| a.name.as_str(),
                attribute,
                style,
            ),
        );
    }
    Value::Object(m)
}

pub fn subscription(store: &Store, s: &SubscriptionRecord, style: &ListStyle) -> Value {
    let pid = store.project_id();
    let ents_url = owned_entitlements_url(pid, "subscriptions", &s.id);
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
        "entitlements": entitlement_list(store, &s.entitlement_ids, ents_url, style),
        "environment": s.environment,
        "store": s.store,
        "store_subscription_identifier": s.store_subscription_identifier,
        "ownership": s.ownership,
        "pending_changes": pending_changes,
        "country": s.country,
        "management_url": s.management_url,
    })
}

pub fn purchase(store: &Store, p: &PurchaseRecord, style: &ListStyle) -> Value {
    let pid = store.project_id();
    let ents_url = owned_entitlements_url(pid, "purchases", &p.id);
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
        "entitlements": entitlement_list(store, &p.entitlement_ids, ents_url, style),
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
        let l = list(
            "/v2/x",
            vec![],
            Some("$RCAnonymousID:a b+c"),
            5,
            &ListStyle::default(),
        );
        assert_eq!(
            l["next_page"],
            "/v2/x?starting_after=%24RCAnonymousID%3Aa%20b%2Bc&limit=5"
        );
    }

    #[test]
    fn last_pages_send_null_or_omit_next_page() {
        let null = list("/v2/x", vec![], None, 5, &ListStyle::default());
        assert!(null["next_page"].is_null() && null.get("next_page").is_some());
        let omit = ListStyle {
            omit_next_page_on_last: true,
            ..Default::default()
        };
        assert!(list("/v2/x", vec![], None, 5, &omit)
            .get("next_page")
            .is_none());
    }

    #[test]
    fn embedded_lists_can_be_first_pages() {
        let ids = ["a", "b", "c"];
        let render = |s: &&str| json!(s);
        let full = embedded("/v2/l", &ids, |s| s, render, &ListStyle::default());
        assert_eq!(full["items"], json!(["a", "b", "c"]));
        assert!(full["next_page"].is_null());
        let paged = ListStyle {
            embedded_page_size: Some(2),
            ..Default::default()
        };
        let first = embedded("/v2/l", &ids, |s| s, render, &paged);
        assert_eq!(first["items"], json!(["a", "b"]));
        assert_eq!(first["next_page"], "/v2/l?starting_after=b&limit=2");
    }
}
