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
//! - `GET /_fake/config` — project id, key hints, limits, dataset summary

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::faults::FaultRule;
use super::rate_limit::RateLimitDomain;
use super::{lock, Shared};
use std::sync::atomic::Ordering;

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
                HttpResponse::Ok().json(json!({"ok": true}))
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
                HttpResponse::Ok().json(json!({"ok": true}))
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
                HttpResponse::Ok().json(json!({"ok": true}))
            }
            Err(e) => bad(e),
        },
        (Method::DELETE, "/_fake/rate_limit") => {
            lock(&shared.limiter).reset();
            HttpResponse::NoContent().finish()
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
                "max_page_limit": shared.max_page_limit.load(Ordering::Relaxed),
                "list_customers_includes_entitlements":
                    shared.list_customers_includes_entitlements.load(Ordering::Relaxed),
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
