//! Webhook integrations: `GET|POST /projects/{p}/integrations/webhooks`,
//! `GET|POST|DELETE /projects/{p}/integrations/webhooks/{id}`.
//!
//! As RevenueCat: create and update are both `POST`; `authorization_header` is write-only;
//! `event_types` are lower case; `environment` is `production`, `sandbox` or null (both);
//! unknown body fields are rejected with 400 `parameter_error`; the list clamps `limit` to
//! 1–100 instead of rejecting it (RevenueCat's reference for this endpoint says so).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::errors::RcError;
use super::errors::Reply;
use super::knobs::ListKnobs;
use super::model::WebhookIntegrationRecord;
use super::query::Query;
use super::render;
use super::routes::{page_of, paging};
use super::Shared;

/// Event types a webhook integration can subscribe to (lower case, as the API takes them).
pub const EVENT_TYPES: &[&str] = &[
    "initial_purchase",
    "renewal",
    "cancellation",
    "uncancellation",
    "non_renewing_purchase",
    "subscription_paused",
    "expiration",
    "billing_issue",
    "product_change",
    "transfer",
    "subscriber_alias",
    "subscription_extended",
    "temporary_entitlement_grant",
    "refund_reversed",
    "invoice_issuance",
    "virtual_currency_transaction",
    "experiment_enrollment",
    "test",
];

const FIELDS: &[&str] = &[
    "name",
    "url",
    "authorization_header",
    "environment",
    "event_types",
    "app_id",
];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn not_found(id: &str) -> RcError {
    RcError::not_found(format!("Webhook integration {id} not found"))
}

fn parse_body(req: &HttpRequest, body: &web::Bytes) -> Result<Map<String, Value>, RcError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(RcError::invalid_request(
            "Content-Type not application/json",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| RcError::invalid_request(format!("Invalid JSON body: {e}")))?;
    let Value::Object(m) = v else {
        return Err(RcError::invalid_request("Body must be a JSON object"));
    };
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(RcError::parameter(k, format!("Unknown field '{k}'")));
    }
    Ok(m)
}

fn string_field(
    m: &Map<String, Value>,
    k: &str,
    nullable: bool,
) -> Result<Option<Option<String>>, RcError> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1500 => Ok(Some(Some(s.clone()))),
        Some(_) => Err(RcError::parameter(
            k,
            format!(
                "{k} must be a non-empty string{}",
                if nullable { " or null" } else { "" }
            ),
        )),
    }
}

/// Apply the body's fields to `w` (validating each).
fn apply(m: &Map<String, Value>, w: &mut WebhookIntegrationRecord) -> Result<(), RcError> {
    if let Some(v) = string_field(m, "name", false)? {
        w.name = v.unwrap_or_default();
    }
    if let Some(v) = string_field(m, "url", false)? {
        let u = v.unwrap_or_default();
        match url::Url::parse(&u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => w.url = u,
            _ => return Err(RcError::parameter("url", "url must be a valid http(s) URL")),
        }
    }
    if let Some(v) = string_field(m, "authorization_header", true)? {
        w.authorization_header = v;
    }
    match m.get("environment") {
        None => {}
        Some(Value::Null) => w.environment = None,
        Some(Value::String(s)) if s == "production" || s == "sandbox" => {
            w.environment = Some(s.clone())
        }
        Some(_) => {
            return Err(RcError::parameter(
                "environment",
                "environment must be one of 'production', 'sandbox' or null",
            ))
        }
    }
    match m.get("event_types") {
        None => {}
        Some(Value::Null) => w.event_types = None,
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                match v.as_str() {
                    Some(s) if EVENT_TYPES.contains(&s) => out.push(s.to_string()),
                    _ => {
                        return Err(RcError::parameter(
                            "event_types",
                            format!(
                                "Invalid event type {v}; expected one of {}",
                                EVENT_TYPES.join(", ")
                            ),
                        ))
                    }
                }
            }
            w.event_types = Some(out);
        }
        Some(_) => {
            return Err(RcError::parameter(
                "event_types",
                "event_types must be an array or null",
            ))
        }
    }
    if let Some(v) = string_field(m, "app_id", true)? {
        w.app_id = v;
    }
    Ok(())
}

/// The range RevenueCat clamps this list's `limit` to.
const LIMIT_RANGE: std::ops::RangeInclusive<i64> = 1..=100;

/// `limit` clamped into [`LIMIT_RANGE`]; a value that is not an integer stays as it is (and
/// answers 400 like on every list).
fn clamped_limit(limit: &str) -> String {
    match limit.parse::<i64>() {
        Ok(n) => n
            .clamp(*LIMIT_RANGE.start(), *LIMIT_RANGE.end())
            .to_string(),
        Err(_) => limit.to_string(),
    }
}

pub(crate) fn list(shared: &Shared, q: &Query, lists: &ListKnobs) -> Reply {
    let q = Query {
        limit: q.limit.as_deref().map(clamped_limit),
        starting_after: q.starting_after.clone(),
        expand: Vec::new(),
    };
    let paging = &paging(&q, lists)?;
    let q = &q;
    let store = shared.state.lock();
    let all: Vec<&WebhookIntegrationRecord> = store.webhooks.values().collect();
    let pid = store.project_id();
    let url = format!("{}/integrations/webhooks", render::project_base(pid));
    let body = page_of(
        &url,
        &all,
        |w| w.id.as_str(),
        |w| render::webhook(pid, w),
        q,
        paging,
    );
    Ok(HttpResponse::Ok().json(body))
}

pub(crate) fn create(req: &HttpRequest, body: &web::Bytes, shared: &Shared) -> Reply {
    let m = parse_body(req, body)?;
    for k in ["name", "url"] {
        if !m.contains_key(k) {
            return Err(RcError::parameter(k, format!("{k} is required")));
        }
    }
    let mut store = shared.state.lock();
    let mut w = WebhookIntegrationRecord {
        id: String::new(),
        name: String::new(),
        url: String::new(),
        authorization_header: None,
        environment: None,
        event_types: None,
        app_id: None,
        created_at: now_ms(),
    };
    apply(&m, &mut w)?;
    w.id = store.next_id("wh");
    let out = render::webhook(store.project_id(), &w);
    store.webhooks.insert(w.id.clone(), w);
    Ok(HttpResponse::Created().json(out))
}

pub(crate) fn get(shared: &Shared, id: &str) -> Reply {
    let store = shared.state.lock();
    let w = store.webhooks.get(id).ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(render::webhook(store.project_id(), w)))
}

pub(crate) fn update(req: &HttpRequest, body: &web::Bytes, shared: &Shared, id: &str) -> Reply {
    let m = parse_body(req, body)?;
    let mut store = shared.state.lock();
    let pid = store.project_id().to_string();
    let w = store.webhooks.get_mut(id).ok_or_else(|| not_found(id))?;
    let mut updated = w.clone();
    apply(&m, &mut updated)?;
    *w = updated;
    Ok(HttpResponse::Ok().json(render::webhook(&pid, w)))
}

pub(crate) fn delete(shared: &Shared, id: &str) -> Reply {
    let mut store = shared.state.lock();
    store.webhooks.remove(id).ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(json!({
        "object": "webhook_integration",
        "id": id,
        "deleted_at": now_ms(),
    })))
}
