//! Request dispatch for `/v2` (and hand-off of `/_fake` to `admin.rs`).
//!
//! Before a `/v2` request is looked at, it waits while its path is unreachable (and is then
//! dropped unprocessed), while a hold matches it, and for the added latency. Then the checks run in this order: authentication
//! (401), project access (403), key permission (403), rate limit (429), injected faults, and
//! the endpoint itself. So an injected fault counts against the rate-limit window like any
//! other answer, and a full window answers 429 before a fault is spent. Every answered `/v2`
//! request is logged with its final status.

use std::ops::Bound;
use std::time::Instant;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::errors::{RcError, Reply, RetryAfterSent};
use super::knobs::{ListKnobs, RetryAfterKnobs};
use super::log::LoggedRequest;
use super::query::{parse_query, Query};
use super::rate_limit::{Decision, RateLimitDomain};
use super::render::{self, ListStyle};
use super::state::Store;
use super::{admin, lock, permissions, webhooks, Shared};

pub(crate) async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let path = req.uri().path().to_string();
    if path == "/_fake" || path.starts_with("/_fake/") {
        return admin::handle(&req, &body, &shared);
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    if shared.network.wait_while_unreachable(&path_and_query).await {
        // Only a client that outwaited the outage reads this; nothing was processed.
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Connection", "close"))
            .finish();
    }
    shared.network.wait_if_held(&path_and_query).await;
    let latency = lock(&shared.faults).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let at = Instant::now();
    let raw_segments: Vec<&str> = path.split('/').skip(1).collect();
    let domain = domain_of(&raw_segments);
    let bearer = bearer_key(&req);
    let retry_after = *lock(&shared.retry_after);
    let request = V2Request {
        req: &req,
        body: &body,
        raw: &raw_segments,
        domain,
        bearer: bearer.as_deref(),
        at,
        retry_after: &retry_after,
    };
    let resp = match handle_v2(&request, &shared) {
        Ok(r) => r,
        Err(e) => e.response_with(&retry_after),
    };
    let sent = resp.extensions().get::<RetryAfterSent>().cloned();
    lock(&shared.log).push(LoggedRequest {
        at,
        ms_since_start: at.duration_since(shared.started).as_millis() as u64,
        method: req.method().to_string(),
        path_and_query,
        api_key_hint: bearer.map(|k| k.chars().take(4).collect()),
        status: resp.status().as_u16(),
        domain,
        retry_after_secs: sent.as_ref().map(|s| s.secs),
        retry_after: sent.map(|s| s.header),
    });
    resp
}

/// What `handle_v2` needs to know about one request.
struct V2Request<'a> {
    req: &'a HttpRequest,
    body: &'a web::Bytes,
    /// Raw (still percent-encoded) path segments, `v2` first.
    raw: &'a [&'a str],
    domain: Option<RateLimitDomain>,
    bearer: Option<&'a str>,
    at: Instant,
    retry_after: &'a RetryAfterKnobs,
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
        ["v2", "projects", _, "customers" | "subscriptions" | "purchases", ..] => {
            Some(RateLimitDomain::CustomerInformation)
        }
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

/// Page sizes of one list request: the items served (at most the silent cap) and the
/// `limit` repeated in `next_page` (the client's own).
pub(crate) struct Paging {
    pub served: usize,
    pub requested: usize,
    pub style: ListStyle,
}

pub(crate) fn paging(q: &Query, lists: &ListKnobs) -> Result<Paging, RcError> {
    let requested = page_limit(q, lists.max_page_limit)?;
    let served = lists
        .page_cap
        .map_or(requested, |cap| cap.clamp(1, requested));
    Ok(Paging {
        served,
        requested,
        style: lists.style(),
    })
}

/// One page of `items` (in stored order) after `starting_after`, as a list object.
pub(crate) fn page_of<T>(
    url: &str,
    items: &[T],
    id: impl Fn(&T) -> &str,
    render: impl Fn(&T) -> Value,
    q: &Query,
    p: &Paging,
) -> Value {
    let (page, next) = render::page(items, id, q.starting_after.as_deref(), p.served);
    let items = page.iter().map(render).collect();
    render::list(url, items, next, p.requested, &p.style)
}

fn ok_json(v: Value) -> Reply {
    Ok(HttpResponse::Ok().json(v))
}

fn method_not_allowed() -> RcError {
    let mut e = RcError::invalid_request("Method not allowed for this path");
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e
}

fn handle_v2(r: &V2Request<'_>, shared: &Shared) -> Reply {
    if r.raw.first() != Some(&"v2") {
        return Err(RcError::not_found("Resource not found"));
    }
    // 1. authentication
    let key = r.bearer.ok_or_else(|| {
        RcError::authentication(
            "Missing or malformed Authorization header, expected 'Bearer <API key>'",
        )
    })?;
    let key_project = lock(&shared.keys)
        .get(key)
        .cloned()
        .ok_or_else(|| RcError::authentication("Invalid API key"))?;

    let segs: Vec<String> = r.raw[1..]
        .iter()
        .map(|s| decode(s))
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segs.iter().map(|s| s.as_str()).collect();

    // 2. project access
    if let ["projects", project, ..] = segs.as_slice() {
        if *project != key_project {
            return Err(RcError::authorization());
        }
        if *project != shared.project_id {
            return Err(RcError::not_found("Project not found"));
        }
    }

    // 3. key permission
    if let Some(needed) = permissions::required(r.req.method(), &segs) {
        if lock(&shared.permissions).lacks(key, needed) {
            return Err(RcError::missing_permission(needed));
        }
    }

    // 4. rate limit
    let mut usage_headers = None;
    if let Some(d) = r.domain {
        match lock(&shared.limiter).check(key, d, r.at) {
            Decision::Allowed { usage, limit } => usage_headers = Some((usage, limit)),
            Decision::Limited {
                usage,
                limit,
                retry_after_secs,
            } => {
                let mut resp = RcError::rate_limited(retry_after_secs).response_with(r.retry_after);
                add_rate_headers(&mut resp, usage, limit);
                return Ok(resp);
            }
        }
    }

    // 5. injected faults
    let pq = r
        .req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("");
    if let Some(status) = lock(&shared.faults).take(pq) {
        return Err(RcError::for_status(status));
    }

    // 6. endpoint
    let mut resp = match route(r.req, r.body, shared, &segs) {
        Ok(resp) => resp,
        Err(e) => e.response_with(r.retry_after),
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
    let lists = lock(&shared.lists).clone();
    let style = lists.style();
    let store = shared.state.lock();
    match segs {
        ["projects"] if get => list_projects(&store, &q, &lists),
        ["projects", _] if get => match &store.project {
            Some(p) => ok_json(render::project(p)),
            None => Err(RcError::not_found("Project not found")),
        },
        ["projects", _, "customers"] if get => list_customers(&store, &q, &lists),
        ["projects", _, "customers", id] if get => get_customer(&store, id, &q, &lists),
        ["projects", _, "customers", id, sub] if get => {
            customer_sub_list(&store, id, sub, &q, &lists)
        }
        ["projects", _, "subscriptions", id] if get => match store.find_subscription(id) {
            Some(s) => ok_json(render::subscription(&store, s, &style)),
            None => Err(RcError::not_found(format!("Subscription {id} not found"))),
        },
        ["projects", _, "purchases", id] if get => match store.find_purchase(id) {
            Some(p) => ok_json(render::purchase(&store, p, &style)),
            None => Err(RcError::not_found(format!("Purchase {id} not found"))),
        },
        ["projects", _, owner @ ("subscriptions" | "purchases"), id, "entitlements"] if get => {
            owned_entitlements(&store, owner, id, &q, &lists)
        }
        ["projects", _, "entitlements"] if get => {
            let p = paging(&q, &lists)?;
            let expand = q
                .expand
                .iter()
                .any(|e| e == "items.product" || e == "products");
            let url = format!("{}/entitlements", render::project_base(store.project_id()));
            ok_json(page_of(
                &url,
                &store.entitlements,
                |e| e.id.as_str(),
                |e| render::entitlement(&store, e, expand, &style),
                &q,
                &p,
            ))
        }
        ["projects", _, "entitlements", id] if get => match store.entitlement(id) {
            Some(e) => ok_json(render::entitlement(&store, e, false, &style)),
            None => Err(RcError::not_found("Entitlement not found")),
        },
        ["projects", _, "products"] if get => {
            let p = paging(&q, &lists)?;
            let url = format!("{}/products", render::project_base(store.project_id()));
            ok_json(page_of(
                &url,
                &store.products,
                |p| p.id.as_str(),
                render::product,
                &q,
                &p,
            ))
        }
        ["projects", _, "products", id] if get => match store.product(id) {
            Some(p) => ok_json(render::product(p)),
            None => Err(RcError::not_found("Product not found")),
        },
        ["projects", _, "integrations", "webhooks"] => {
            drop(store);
            match *m {
                Method::GET => webhooks::list(shared, &q, &lists),
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
        | ["projects", _, "customers" | "entitlements" | "products" | "subscriptions" | "purchases", ..] => {
            Err(method_not_allowed())
        }
        _ => Err(RcError::not_found("Resource not found")),
    }
}

fn list_projects(store: &Store, q: &Query, lists: &ListKnobs) -> Reply {
    let p = paging(q, lists)?;
    let projects: Vec<_> = store.project.iter().cloned().collect();
    ok_json(page_of(
        "/v2/projects",
        &projects,
        |p| p.id.as_str(),
        render::project,
        q,
        &p,
    ))
}

/// Customers page in id order straight from the ordered map: a page costs O(log n + limit)
/// whatever its position, so paging a huge project is linear overall.
fn list_customers(store: &Store, q: &Query, lists: &ListKnobs) -> Reply {
    let p = paging(q, lists)?;
    let range: Box<dyn Iterator<Item = _>> = match q.starting_after.as_deref() {
        Some(after) => Box::new(
            store
                .customers
                .range::<str, _>((Bound::Excluded(after), Bound::Unbounded)),
        ),
        None => Box::new(store.customers.iter()),
    };
    let page: Vec<_> = range.take(p.served + 1).map(|(_, c)| c).collect();
    let more = page.len() > p.served;
    let page = &page[..page.len().min(p.served)];
    let next = if more {
        page.last().map(|c| c.id.as_str())
    } else {
        None
    };
    let with_ents = lists.list_customers_includes_entitlements;
    let items = page
        .iter()
        .map(|c| render::customer(store, c, with_ents, false, &p.style))
        .collect();
    let url = format!("{}/customers", render::project_base(store.project_id()));
    ok_json(render::list(&url, items, next, p.requested, &p.style))
}

fn customer_not_found(id: &str) -> RcError {
    RcError::not_found(format!("Customer {id} not found"))
}

fn get_customer(store: &Store, id: &str, q: &Query, lists: &ListKnobs) -> Reply {
    let c = store.customer(id).ok_or_else(|| customer_not_found(id))?;
    let attrs = q.expand.iter().any(|e| e == "attributes");
    let with_ents = !lists.customer_omits_active_entitlements;
    ok_json(render::customer(store, c, with_ents, attrs, &lists.style()))
}

fn customer_sub_list(store: &Store, id: &str, sub: &str, q: &Query, lists: &ListKnobs) -> Reply {
    if !matches!(
        sub,
        "subscriptions" | "purchases" | "active_entitlements" | "aliases" | "attributes"
    ) {
        return Err(RcError::not_found("Resource not found"));
    }
    let p = paging(q, lists)?;
    let c = store.customer(id).ok_or_else(|| customer_not_found(id))?;
    let url = format!("{}/{sub}", render::customer_base(store.project_id(), &c.id));
    let style = &p.style;
    let body = match sub {
        "subscriptions" => page_of(
            &url,
            &c.subscriptions,
            |s| s.id.as_str(),
            |s| render::subscription(store, s, style),
            q,
            &p,
        ),
        "purchases" => page_of(
            &url,
            &c.purchases,
            |x| x.id.as_str(),
            |x| render::purchase(store, x, style),
            q,
            &p,
        ),
        "active_entitlements" => page_of(
            &url,
            &c.active_entitlements,
            |e| e.entitlement_id.as_str(),
            render::active_entitlement,
            q,
            &p,
        ),
        "aliases" => page_of(
            &url,
            &render::aliases_of(c),
            |a| a.id.as_str(),
            render::alias,
            q,
            &p,
        ),
        _ => page_of(
            &url,
            &c.attributes,
            |a| a.name.as_str(),
            render::attribute,
            q,
            &p,
        ),
    };
    ok_json(body)
}

/// `GET .../subscriptions/{id}/entitlements` and `.../purchases/{id}/entitlements`: where the
/// `next_page` of an embedded `entitlements` list leads.
fn owned_entitlements(store: &Store, owner: &str, id: &str, q: &Query, lists: &ListKnobs) -> Reply {
    let ids = if owner == "subscriptions" {
        store.find_subscription(id).map(|s| &s.entitlement_ids)
    } else {
        store.find_purchase(id).map(|x| &x.entitlement_ids)
    };
    let ids = ids.ok_or_else(|| RcError::not_found(format!("Resource {id} not found")))?;
    let p = paging(q, lists)?;
    let url = render::owned_entitlements_url(store.project_id(), owner, id);
    let ents = render::resolve_entitlements(store, ids);
    ok_json(page_of(
        &url,
        &ents,
        |e| e.id.as_str(),
        |e| render::entitlement(store, e, false, &p.style),
        q,
        &p,
    ))
}
