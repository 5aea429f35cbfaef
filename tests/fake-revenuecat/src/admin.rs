//! Test and demo controls outside the RevenueCat API, under `/_fake` (no authentication,
//! not logged, not rate limited):
//!
//! - `GET /_fake/requests` — the request log (JSON array); `DELETE /_fake/requests` clears it
//! - `GET /_fake/stats` — counts per status / domain, most accepted requests in any window
//! - `POST /_fake/faults` `{"fail_next": n, "status": 500, "path_contains": "/subscriptions"}`
//!   (`status` defaults to 500, `path_contains` optional); `DELETE /_fake/faults` clears them
//! - `POST /_fake/latency` `{"ms": n}`
//! - `POST /_fake/rate_limit` `{"domain": "customer_information", "per_minute": n}`
//!   (optional `"window_ms"`), `DELETE /_fake/rate_limit` empties the counters
//! - `POST /_fake/retry_after` `{"format": "seconds" | "http_date", "secs": n | null}` — how
//!   429s announce their wait (omitted fields: defaults)
//! - `GET|POST /_fake/lists` — the list knobs (`max_page_limit`, `page_cap`,
//!   `embedded_page_size`, `omit_next_page_on_last`, `list_customers_includes_entitlements`,
//!   `customer_omits_active_entitlements`);
//!   a POST sets them all, omitted ones to their defaults
//! - `POST /_fake/permissions` `{"revoke": "project_configuration:integrations:read_write"}`
//!   (optional `"key"`: only that key), `DELETE /_fake/permissions` restores every permission
//! - `POST /_fake/unreachable` `{"path_prefix": "/v2/projects/p/integrations"}`,
//!   `DELETE /_fake/unreachable`, `GET /_fake/unreachable` (prefixes and unanswered requests)
//! - `GET /_fake/webhook_integrations` — stored webhook integrations with their write-only
//!   `authorization_header`
//! - `GET /_fake/config` — project id, key hints, limits, knobs, dataset summary

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::faults::FaultRule;
use super::knobs::{ListKnobs, RetryAfterKnobs};
use super::rate_limit::RateLimitDomain;
use super::{lock, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    fail_next: u32,
    #[serde(default = "default_status")]
    status: u16,
    #[serde(default)]
    path_contains: Option<String>,
}

fn default_status() -> u16 {
    500
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitBody {
    domain: RateLimitDomain,
    per_minute: u32,
    #[serde(default)]
    window_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    revoke: String,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnreachableBody {
    path_prefix: String,
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(json!({"ok": true}))
}

fn bad(msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": msg.to_string()}))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &web::Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

pub(crate) fn handle(req: &HttpRequest, body: &web::Bytes, shared: &Shared) -> HttpResponse {
    let path = req.path().trim_end_matches('/');
    let m = req.method().clone();
    match (m, path) {
        (Method::GET, "/_fake/requests") => HttpResponse::Ok().json(&*lock(&shared.log)),
        (Method::DELETE, "/_fake/requests") => {
            lock(&shared.log).clear();
            HttpResponse::NoContent().finish()
        }
        (Method::GET, "/_fake/stats") => HttpResponse::Ok().json(shared.stats()),
        (Method::POST, "/_fake/faults") => match parse::<FaultBody>(body) {
            Ok(b) => {
                if b.fail_next > 0 {
                    lock(&shared.faults).rules.push(FaultRule {
                        remaining: b.fail_next,
                        status: b.status,
                        path_contains: b.path_contains,
                    });
                }
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::DELETE, "/_fake/faults") => {
            lock(&shared.faults).rules.clear();
            HttpResponse::NoContent().finish()
        }
        (Method::POST, "/_fake/latency") => match parse::<LatencyBody>(body) {
            Ok(b) => {
                lock(&shared.faults).latency = Duration::from_millis(b.ms);
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::POST, "/_fake/rate_limit") => match parse::<RateLimitBody>(body) {
            Ok(b) => {
                let mut l = lock(&shared.limiter);
                l.set_limit(b.domain, b.per_minute);
                if let Some(ms) = b.window_ms {
                    l.set_window(Duration::from_millis(ms.max(1)));
                }
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::DELETE, "/_fake/rate_limit") => {
            lock(&shared.limiter).reset();
            HttpResponse::NoContent().finish()
        }
        (Method::POST, "/_fake/retry_after") => match parse::<RetryAfterKnobs>(body) {
            Ok(k) => {
                *lock(&shared.retry_after) = k;
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::GET, "/_fake/lists") => HttpResponse::Ok().json(&*lock(&shared.lists)),
        (Method::POST, "/_fake/lists") => match parse::<ListKnobs>(body) {
            Ok(k) => {
                *lock(&shared.lists) = k;
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::POST, "/_fake/permissions") => match parse::<RevokeBody>(body) {
            Ok(b) => {
                lock(&shared.permissions).revoke(b.key.as_deref(), &b.revoke);
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::DELETE, "/_fake/permissions") => {
            lock(&shared.permissions).clear();
            HttpResponse::NoContent().finish()
        }
        (Method::POST, "/_fake/unreachable") => match parse::<UnreachableBody>(body) {
            Ok(b) => {
                shared.network.add_unreachable(&b.path_prefix);
                ok()
            }
            Err(e) => bad(e),
        },
        (Method::DELETE, "/_fake/unreachable") => {
            shared.network.clear_unreachable();
            HttpResponse::NoContent().finish()
        }
        (Method::GET, "/_fake/unreachable") => HttpResponse::Ok().json(json!({
            "path_prefixes": shared.network.unreachable_prefixes(),
            "unanswered": shared.network.unanswered(),
        })),
        (Method::GET, "/_fake/webhook_integrations") => {
            HttpResponse::Ok().json(shared.state.webhook_integrations())
        }
        (Method::GET, "/_fake/config") => {
            let l = lock(&shared.limiter);
            let keys: Vec<String> = lock(&shared.keys)
                .keys()
                .map(|k| k.chars().take(4).collect())
                .collect();
            HttpResponse::Ok().json(json!({
                "project_id": shared.project_id,
                "api_key_hints": keys,
                "customer_rate_limit": l.limit(RateLimitDomain::CustomerInformation),
                "config_rate_limit": l.limit(RateLimitDomain::ProjectConfiguration),
                "rate_limit_window_ms": l.window().as_millis() as u64,
                "lists": &*lock(&shared.lists),
                "retry_after": &*lock(&shared.retry_after),
                "permissions_revoked": lock(&shared.permissions).summary(),
                "customers": shared.state.customer_count(),
                "dataset": shared.dataset.as_ref().map(|(spec, summary)| json!({
                    "spec": spec,
                    "summary": summary,
                })),
            }))
        }
        _ => HttpResponse::NotFound().json(json!({"error": "unknown admin endpoint"})),
    }
}
