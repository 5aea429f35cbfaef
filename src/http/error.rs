//! The HTTP layer's error, and the one place service errors become status codes: every
//! failure is `{"error": "..."}` with the right status. Server faults answer an opaque 500 and
//! log the full cause chain.

use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::auth::AuthError;
use crate::services::event_log::EventLogError;
use crate::services::integrations::IntegrationError;
use crate::services::resync_runs::RunError;
use crate::services::revenuecat_sync::SyncError;
use crate::services::users::UsersError;
use crate::services::webhook_provisioning::ProvisioningError;
use crate::services::webhook_secrets::RotationError;
use crate::services::webhooks::WebhookError;
use crate::store::StoreError;

/// Every error answer: `{"error": "<human message>"}`, with extra fields where a route names
/// them (`existing_run_id` on a 409, `revenuecat_status` and `revenuecat_message` on a 502).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// What a 503 for contention asks the client to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409 with extra fields (e.g. `existing_run_id`).
    #[error("{message}")]
    Conflict {
        message: String,
        extra: Map<String, Value>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An upstream (RevenueCat) failure, reported with its status and message.
    #[error("{message}")]
    BadGateway {
        message: String,
        extra: Map<String, Value>,
    },
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 503 with `Retry-After`: contention that clears by itself (RevenueCat retries a webhook
    /// answered this way).
    #[error("{0}")]
    Busy(String),
    /// The client did not send its request body in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// An upstream (RevenueCat) did not answer within the request's deadline.
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            // An operator problem with a known remedy, not an opaque fault.
            StoreError::Crypto(e) => {
                tracing::error!(error = %e, "stored secret cannot be decrypted");
                ApiError::ServiceUnavailable(
                    "Stored integration secrets cannot be decrypted with the configured \
                     RCSYNC_MASTER_KEY: restore the original key, or delete and re-create the \
                     integration"
                        .into(),
                )
            }
            other if other.is_transient() => {
                tracing::warn!(error.cause_chain = ?other, "database contended");
                ApiError::Busy("The database is busy; retry shortly".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unauthenticated(message) => ApiError::Unauthorized(message.into()),
            AuthError::Forbidden(message) => ApiError::Forbidden(message),
            AuthError::NotFound(message) => ApiError::NotFound(message.into()),
            AuthError::Store(e) => e.into(),
        }
    }
}

/// A RevenueCat failure as a 502 carrying RevenueCat's status and message.
fn bad_gateway(message: String, status: Option<u16>, revenuecat_message: String) -> ApiError {
    let mut extra = Map::new();
    if let Some(status) = status {
        extra.insert("revenuecat_status".into(), json!(status));
    }
    extra.insert("revenuecat_message".into(), json!(revenuecat_message));
    ApiError::BadGateway { message, extra }
}

impl From<SyncError> for ApiError {
    fn from(err: SyncError) -> Self {
        match err {
            SyncError::NotConfigured | SyncError::SubscriberNotFound => {
                ApiError::NotFound(err.to_string())
            }
            SyncError::AnonymousUser => ApiError::BadRequest(err.to_string()),
            SyncError::ConcurrentChanges => ApiError::Busy(err.to_string()),
            SyncError::KeyRejected {
                status,
                ref message,
            } => bad_gateway(err.to_string(), status, message.clone()),
            SyncError::Upstream(ref source) => bad_gateway(
                format!("RevenueCat API error: {}", source.message()),
                source.status(),
                source.message(),
            ),
            SyncError::DeadlineExceeded(_) => ApiError::GatewayTimeout(err.to_string()),
            SyncError::Store(e) => e.into(),
        }
    }
}

/// A request body that could not be read: too slow (the body deadline), too large, or broken.
impl From<PayloadError> for ApiError {
    fn from(err: PayloadError) -> Self {
        match err {
            PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::RequestTimeout(e.to_string())
            }
            PayloadError::Overflow => ApiError::PayloadTooLarge("Request body is too large".into()),
            other => ApiError::BadRequest(format!("Could not read body: {other}")),
        }
    }
}

impl From<IntegrationError> for ApiError {
    fn from(err: IntegrationError) -> Self {
        match err {
            IntegrationError::InvalidConfig(_) | IntegrationError::CredentialsRejected(_) => {
                ApiError::BadRequest(err.to_string())
            }
            IntegrationError::NotFound => ApiError::NotFound(err.to_string()),
            IntegrationError::AlreadyExists(_) | IntegrationError::ConcurrentUpdate => {
                ApiError::conflict(err.to_string())
            }
            IntegrationError::Provider(e) => e.into(),
            IntegrationError::Store(e) => e.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::NotConfigured | WebhookError::ProjectGone => {
                ApiError::NotFound(err.to_string())
            }
            WebhookError::MissingAuthorization | WebhookError::InvalidAuthorization => {
                ApiError::Unauthorized(err.to_string())
            }
            WebhookError::InvalidPayload(message) => ApiError::BadRequest(message),
            WebhookError::Busy => ApiError::Busy(err.to_string()),
            WebhookError::CommitFailed => ApiError::Internal(err.into()),
            WebhookError::Store(e) => e.into(),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(err: RunError) -> Self {
        match err {
            RunError::NotConfigured | RunError::NotFound => ApiError::NotFound(err.to_string()),
            RunError::NotCancellable(_) => ApiError::BadRequest(err.to_string()),
            RunError::AlreadyActive {
                ref existing_run_id,
            } => {
                let mut extra = Map::new();
                extra.insert("existing_run_id".into(), json!(existing_run_id));
                ApiError::Conflict {
                    message: err.to_string(),
                    extra,
                }
            }
            RunError::Store(e) => e.into(),
        }
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(err: ProvisioningError) -> Self {
        match err {
            ProvisioningError::NotConfigured | ProvisioningError::NoWebhook => {
                ApiError::NotFound(err.to_string())
            }
            ProvisioningError::RevenueCat(e) => e.into(),
            ProvisioningError::Store(e) => e.into(),
        }
    }
}

impl From<RotationError> for ApiError {
    fn from(err: RotationError) -> Self {
        match err {
            RotationError::NotFound => ApiError::NotFound(err.to_string()),
            RotationError::InvalidGracePeriod => ApiError::BadRequest(err.to_string()),
            RotationError::ConcurrentUpdate => ApiError::conflict(err.to_string()),
            RotationError::Store(e) => e.into(),
        }
    }
}

impl From<EventLogError> for ApiError {
    fn from(err: EventLogError) -> Self {
        match err {
            EventLogError::NotFound | EventLogError::NotConfigured => {
                ApiError::NotFound(err.to_string())
            }
            EventLogError::Unreplayable(_) => ApiError::conflict(err.to_string()),
            EventLogError::Store(e) => e.into(),
        }
    }
}

impl From<UsersError> for ApiError {
    fn from(err: UsersError) -> Self {
        match err {
            UsersError::Invalid(e) => ApiError::BadRequest(e.to_string()),
            UsersError::Store(e) => e.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::ServiceUnavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = Map::new();
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error.cause_chain = ?cause, "request failed with a server fault");
                body.insert("error".into(), json!("Internal server error"));
            }
            ApiError::Conflict { message, extra } | ApiError::BadGateway { message, extra } => {
                body.insert("error".into(), json!(message));
                body.extend(extra.clone());
            }
            other => {
                body.insert("error".into(), json!(other.to_string()));
            }
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Busy(_) = self {
            response.insert_header((actix_web::http::header::RETRY_AFTER, BUSY_RETRY_AFTER_SECS));
        }
        response.json(Value::Object(body))
    }
}
