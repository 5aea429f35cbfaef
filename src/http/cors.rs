//! Browser clients (DESIGN §2): a UI served from one of `RCSYNC_CORS_ORIGINS` may call the API
//! with a bearer JWT. Preflights are answered; no other origin gets CORS headers, so browsers
//! on other sites cannot read answers. No cookies are involved, so credentials mode stays off.

use actix_cors::Cors;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::Method;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allowed_headers([AUTHORIZATION, CONTENT_TYPE])
        .expose_headers(["retry-after"])
        .max_age(PREFLIGHT_MAX_AGE_SECS)
        // Another origin is simply not given CORS headers (its browser then hides the answer);
        // a non-browser client that happens to send `Origin` is served as usual.
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
