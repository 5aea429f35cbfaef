//! RevenueCat's error object (`components/schemas/Error`) and the statuses that carry it.

use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::knobs::RetryAfterKnobs;

/// What a fake endpoint answers: a response, or a RevenueCat error object.
pub(crate) type Reply = Result<HttpResponse, RcError>;

/// One RevenueCat error answer.
#[derive(Debug, Clone)]
pub struct RcError {
    pub status: StatusCode,
    /// `parameter_error`, `resource_missing`, `rate_limit_error`, ...
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub retryable: bool,
    pub backoff_ms: Option<u64>,
    /// `Retry-After` header (seconds), for 429s.
    pub retry_after_secs: Option<u64>,
}

impl RcError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        RcError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind,
            message: message.into(),
            param: None,
            retryable: false,
            backoff_ms: None,
            retry_after_secs: None,
        }
    }

    pub fn authentication(message: &str) -> Self {
        Self::new(401, "authentication_error", message)
    }

    pub fn authorization() -> Self {
        Self::new(
            403,
            "authorization_error",
            "You're not authorized to access this resource",
        )
    }

    /// 403 for a key that lacks `permission`. The type, status and `doc_url` are RevenueCat's
    /// documented ones; the message wording is the fake's own.
    pub fn missing_permission(permission: &str) -> Self {
        Self::new(
            403,
            "authorization_error",
            format!(
                "The API key is missing the permission required for this request: {permission}"
            ),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "resource_missing", message)
    }

    pub fn parameter(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "parameter_error", message);
        e.param = Some(param.to_string());
        e
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(429, "rate_limit_error", "Rate limit exceeded");
        e.retryable = true;
        e.backoff_ms = Some(retry_after_secs * 1000);
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// The error RevenueCat would send with an arbitrary `status` (used by fault injection).
    pub fn for_status(status: u16) -> Self {
        match status {
            400 => Self::invalid_request("Injected bad request"),
            401 => Self::authentication("Invalid API key"),
            403 => Self::authorization(),
            404 => Self::not_found("Resource not found"),
            409 => Self::new(409, "resource_already_exists", "Resource already exists"),
            422 => Self::new(
                422,
                "unprocessable_entity_error",
                "Request is not able to be processed",
            ),
            423 => {
                let mut e = Self::new(
                    423,
                    "resource_locked_error",
                    "The resource is currently being modified by a concurrent request",
                );
                e.retryable = true;
                e.backoff_ms = Some(1000);
                e
            }
            429 => Self::rate_limited(1),
            s => {
                let mut e = Self::new(s, "server_error", "There was an internal server error");
                e.retryable = s >= 500;
                if e.retryable {
                    e.backoff_ms = Some(1000);
                }
                e
            }
        }
    }

    pub fn doc_url(&self) -> String {
        format!("https://errors.rev.cat/{}", self.kind.replace('_', "-"))
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("object".into(), json!("error"));
        m.insert("type".into(), json!(self.kind));
        if let Some(p) = &self.param {
            m.insert("param".into(), json!(p));
        }
        m.insert("message".into(), json!(self.message));
        m.insert("retryable".into(), json!(self.retryable));
        m.insert("doc_url".into(), json!(self.doc_url()));
        if let Some(b) = self.backoff_ms {
            m.insert("backoff_ms".into(), json!(b));
        }
        Value::Object(m)
    }

    /// The answer with `Retry-After` in seconds (see [`Self::response_with`]).
    pub fn response(&self) -> HttpResponse {
        self.response_with(&RetryAfterKnobs::default())
    }

    /// The answer; a 429 announces its wait as `knobs` say, in the `Retry-After` header and
    /// in `backoff_ms`, and records it in the response for the request log.
    pub fn response_with(&self, knobs: &RetryAfterKnobs) -> HttpResponse {
        let Some(computed) = self.retry_after_secs else {
            return HttpResponse::build(self.status).json(self.body());
        };
        let secs = knobs.secs(computed);
        let header = knobs.header(secs, SystemTime::now());
        let mut announced = self.clone();
        announced.backoff_ms = Some(secs * 1000);
        let mut resp = HttpResponse::build(self.status)
            .insert_header(("Retry-After", header.clone()))
            .json(announced.body());
        resp.extensions_mut()
            .insert(RetryAfterSent { secs, header });
        resp
    }
}

/// The wait a 429 announced, carried from the endpoint to the request log.
#[derive(Debug, Clone)]
pub(crate) struct RetryAfterSent {
    pub secs: u64,
    pub header: String,
}
