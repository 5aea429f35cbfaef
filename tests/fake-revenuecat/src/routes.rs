//! Request dispatch for `/v2` (and hand-off of `/_fake` to `admin.rs`).
//!
//! Order of checks for a `/v2` request: latency, authentication (401), injected faults,
//! project access (403), rate limit (429), then the endpoint itself. Every `/v2` request is
//! logged with its final status.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::Instant;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::errors::{RcError, Reply};
use super::log::LoggedRequest;
use super::query::{parse_query, Query};
use super::rate_limit::{Decision, RateLimitDomain};
use super::render;
use super::state::Store;
use super::{admin, lock, webhooks, Shared};

pub(crate) async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let path = req.uri().path().to_string();
    if path == "/_fake" || path.starts_with("/_fake/") {
        return admin::handle(&req, &body, &shared);
    }
    let at = Instant::now();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let raw_segments: Vec<&str> = path.split('/').skip(1).collect();
    let domain = domain_of(&raw_segments);
    let bearer = bearer_key(&req);

    let latency = lock(&shared.faults).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let resp = match handle_v2(
        &req,
        &body,
        &shared,
        &raw_segments,
        domain,
        bearer.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => e.response(),
    };
    lock(&shared.log).push(LoggedRequest {
        at,
        ms_since_start: at.duration_since(shared.started).as_millis() as u64,
        method: req.method().to_string(),
        path_and_query,
        api_key_hint: bearer.map(|k| k.chars().take(4).collect()),
        status: resp.status().as_u16(),
        domain,
    });
    resp
}

/// The bearer key of `Authorization: Bearer <key>`; `None` when missing or another scheme.
fn bearer_key(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get("authorization")?.to_str().ok()?.trim();
    let (scheme, key) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// The rate-limiting domain of a `/v2/...` path (raw segments, `v2` first).
pub(crate) fn domain_of(segs: &[&str]) -> Option<RateLimitDomain> {
    match segs {
        ["v2", "projects"] => Some(RateLimitDomain::ProjectConfiguration),
        ["v2", "projects", _, "customers", ..] => Some(RateLimitDomain::CustomerInformation),
        ["v2", "projects", _, "entitlements" | "products" | "integrations" | "apps" | "offerings", ..] => {
            Some(RateLimitDomain::ProjectConfiguration)
        }
        _ => None,
    }
}

fn decode(seg: &str) -> Result<String, RcError> {
    percent_decode_str(seg)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| RcError::parameter("path", "Path is not valid UTF-8"))
}

/// `limit` as RevenueCat validates it: default 20, an integer in `1..=max`.
fn page_limit(q: &Query, max: u32) -> Result<usize, RcError> {
    match &q.limit {
        None => Ok(20.min(max as usize).max(1)),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 1 => Err(RcError::parameter(
                "limit",
                "limit must be greater than or equal to 1",
            )),
            Ok(n) if n > max as i64 => Err(RcError::parameter(
                "limit",
                format!("limit must be less than or equal to {max}"),
            )),
            Ok(n) => Ok(n as usize),
            Err(_) => Err(RcError::parameter("limit", "limit must be an integer")),
        },
    }
}

fn ok_json(v: Value) -> Reply {
    Ok(HttpResponse::Ok().json(v))
}

fn method_not_allowed() -> RcError {
    let mut e = RcError::invalid_request("Method not allowed for this path");
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e
}

fn handle_v2(
    req: &HttpRequest,
    body: &web::Bytes,
    shared: &Shared,
    raw: &[&str],
    domain: Option<RateLimitDomain>,
    bearer: Option<&str>,
) -> Reply {
    if raw.first() != Some(&"v2") {
        return Err(RcError::not_found("Resource not found"));
    }
    // 1. authentication
    let key = bearer.ok_or_else(|| {
        RcError::authentication(
            "Missing or malformed Authorization header, expected 'Bearer <API key>'",
        )
    })?;
    let key_project = lock(&shared.keys)
        .get(key)
        .cloned()
        .ok_or_else(|| RcError::authentication("Invalid API key"))?;

    // 2. injected faults
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    if let Some(status) = lock(&shared.faults).take(pq) {
        return Err(RcError::for_status(status));
    }

    let segs: Vec<String> = raw[1..]
        .iter()
        .map(|s| decode(s))
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segs.iter().map(|s| s.as_str()).collect();

    // 3. project access
    if let ["projects", project, ..] = segs.as_slice() {
        if *project != key_project {
            return Err(RcError::authorization());
        }
        if *project != shared.project_id {
            return Err(RcError::not_found("Project not found"));
        }
    }

    // 4. rate limit
    let mut usage_headers = None;
    if let Some(d) = domain {
        match lock(&shared.limiter).check(key, d, Instant::now()) {
            Decision::Allowed { usage, limit } => usage_headers = Some((usage, limit)),
            Decision::Limited {
                usage,
                limit,
                retry_after_secs,
            } => {
                let mut r = RcError::rate_limited(retry_after_secs).response();
                add_rate_headers(&mut r, usage, limit);
                return Ok(r);
            }
        }
    }

    // 5. endpoint
    let mut resp = match route(req, body, shared, &segs) {
        Ok(r) => r,
        Err(e) => e.response(),
    };
    if let Some((usage, limit)) = usage_headers {
        add_rate_headers(&mut resp, usage, limit);
    }
    Ok(resp)
}

fn add_rate_headers(resp: &mut HttpResponse, usage: u32, limit: u32) {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("revenuecat-rate-limit-current-usage"),
        HeaderValue::from(usage),
    );
    h.insert(
        HeaderName::from_static("revenuecat-rate-limit-current-limit"),
        HeaderValue::from(limit),
    );
}

fn route(req: &HttpRequest, body: &web::Bytes, shared: &Shared, segs: &[&str]) -> Reply {
    let m = req.method();
    let get = m == Method::GET;
    let q = parse_query(req);
    let max = shared.max_page_limit.load(Ordering::Relaxed);
    let store = shared.state.lock();
    match segs {
        ["projects"] if get => list_projects(&store, &q, max),
        ["projects", _] if get => match &store.project {
            Some(p) => ok_json(render::project(p)),
            None => Err(RcError::not_found("Project not found")),
        },
        ["projects", _, "customers"] if get => {
            let with_ents = shared
                .list_customers_includes_entitlements
                .load(Ordering::Relaxed);
            list_customers(&store, &q, max, with_ents)
        }
        ["projects", _, "customers", id] if get => get_customer(&store, id, &q),
        ["projects", _, "customers", id, sub] if get => customer_sub_list(&store, id, sub, &q, max),
        ["projects", _, "entitlements"] if get => {
            let limit = page_limit(&q, max)?;
            let (items, next) = render::page(
                &store.entitlements,
                |e| e.id.as_str(),
                q.starting_after.as_deref(),
                limit,
            );
            let expand = q
                .expand
                .iter()
                .any(|e| e == "items.product" || e == "products");
            let items = items
                .iter()
                .map(|e| render::entitlement(&store, e, expand))
                .collect();
            let url = format!("{}/entitlements", render::project_base(store.project_id()));
            ok_json(render::list(&url, items, next, limit))
        }
        ["projects", _, "entitlements", id] if get => match store.entitlement(id) {
            Some(e) => ok_json(render::entitlement(&store, e, false)),
            None => Err(RcError::not_found("Entitlement not found")),
        },
        ["projects", _, "products"] if get => {
            let limit = page_limit(&q, max)?;
            let (items, next) = render::page(
                &store.products,
                |p| p.id.as_str(),
                q.starting_after.as_deref(),
                limit,
            );
            let items = items.iter().map(render::product).collect();
            let url = format!("{}/products", render::project_base(store.project_id()));
            ok_json(render::list(&url, items, next, limit))
        }
        ["projects", _, "products", id] if get => match store.product(id) {
            Some(p) => ok_json(render::product(p)),
            None => Err(RcError::not_found("Product not found")),
        },
        ["projects", _, "integrations", "webhooks"] => {
            drop(store);
            match *m {
                Method::GET => webhooks::list(shared, &q, page_limit(&q, max)?),
                Method::POST => webhooks::create(req, body, shared),
                _ => Err(method_not_allowed()),
            }
        }
        ["projects", _, "integrations", "webhooks", id] => {
            drop(store);
            match *m {
                Method::GET => webhooks::get(shared, id),
                Method::POST => webhooks::update(req, body, shared, id),
                Method::DELETE => webhooks::delete(shared, id),
                _ => Err(method_not_allowed()),
            }
        }
        ["projects"]
        | ["projects", _]
        | ["projects", _, "customers" | "entitlements" | "products", ..] => {
            Err(method_not_allowed())
        }
        _ => Err(RcError::not_found("Resource not found")),
    }
}

fn list_projects(store: &Store, q: &Query, max: u32) -> Reply {
    let limit = page_limit(q, max)?;
    let projects: Vec<_> = store.project.iter().cloned().collect();
    let (items, next) = render::page(
        &projects,
        |p| p.id.as_str(),
        q.starting_after.as_deref(),
        limit,
    );
    let items = items.iter().map(render::project).collect();
    ok_json(render::list("/v2/projects", items, next, limit))
}

fn list_customers(store: &Store, q: &Query, max: u32, with_ents: bool) -> Reply {
    let limit = page_limit(q, max)?;
    let range: Box<dyn Iterator<Item = _>> = match q.starting_after.as_deref() {
        Some(after) => Box::new(
            store
                .customers
                .range::<str, _>((Bound::Excluded(after), Bound::Unbounded)),
        ),
        None => Box::new(store.customers.iter()),
    };
    let page: Vec<_> = range.take(limit + 1).map(|(_, c)| c).collect();
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let next = if more {
        page.last().map(|c| c.id.as_str())
    } else {
        None
    };
    let items = page
        .iter()
        .map(|c| render::customer(store, c, with_ents, false))
        .collect();
    let url = format!("{}/customers", render::project_base(store.project_id()));
    ok_json(render::list(&url, items, next, limit))
}

fn customer_not_found(id: &str) -> RcError {
    RcError::not_found(format!("Customer {id} not found"))
}

fn get_customer(store: &Store, id: &str, q: &Query) -> Reply {
    let c = store.customer(id).ok_or_else(|| customer_not_found(id))?;
    let attrs = q.expand.iter().any(|e| e == "attributes");
    ok_json(render::customer(store, c, true, attrs))
}

fn customer_sub_list(store: &Store, id: &str, sub: &str, q: &Query, max: u32) -> Reply {
    if !matches!(
        sub,
        "subscriptions" | "purchases" | "active_entitlements" | "aliases" | "attributes"
    ) {
        return Err(RcError::not_found("Resource not found"));
    }
    let limit = page_limit(q, max)?;
    let c = store.customer(id).ok_or_else(|| customer_not_found(id))?;
    let after = q.starting_after.as_deref();
    let url = format!("{}/{sub}", render::customer_base(store.project_id(), &c.id));
    let body = match sub {
        "subscriptions" => {
            let (items, next) = render::page(&c.subscriptions, |s| s.id.as_str(), after, limit);
            let items = items
                .iter()
                .map(|s| render::subscription(store, s))
                .collect();
            render::list(&url, items, next, limit)
        }
        "purchases" => {
            let (items, next) = render::page(&c.purchases, |p| p.id.as_str(), after, limit);
            let items = items.iter().map(|p| render::purchase(store, p)).collect();
            render::list(&url, items, next, limit)
        }
        "active_entitlements" => {
            let (items, next) = render::page(
                &c.active_entitlements,
                |e| e.entitlement_id.as_str(),
                after,
                limit,
            );
            let items = items.iter().map(render::active_entitlement).collect();
            render::list(&url, items, next, limit)
        }
        "aliases" => {
            let all = render::aliases_of(c);
            let (items, next) = render::page(&all, |a| a.id.as_str(), after, limit);
            let items = items.iter().map(render::alias).collect();
            render::list(&url, items, next, limit)
        }
        _ => {
            let (items, next) = render::page(&c.attributes, |a| a.name.as_str(), after, limit);
            let items = items.iter().map(render::attribute).collect();
            render::list(&url, items, next, limit)
        }
    };
    ok_json(body)
}
