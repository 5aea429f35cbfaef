//! The HTTP layer's error: every failure becomes `{"error": "..."}` with the right status.
//! Server faults answer an opaque 500 and log the full cause chain.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::store::StoreError;

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
            other => ApiError::Internal(other.into()),
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
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        HttpResponse::build(self.status_code()).json(Value::Object(body))
    }
}
