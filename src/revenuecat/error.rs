//! Errors of the RevenueCat client.

/// Why a RevenueCat call failed (after the retries the policy allows). `Clone` so callers that
/// shared one single-flight fetch each get its error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RevenueCatError {
    /// 401/403: the key is wrong, revoked, or lacks a permission. Callers answer 400
    /// "RevenueCat rejected the API key: {message}".
    #[error("RevenueCat rejected the API key ({status}): {message}")]
    Unauthorized { status: u16, message: String },

    /// 404 where the resource is required (optional lookups return `Ok(None)` instead).
    #[error("RevenueCat resource not found: {message}")]
    NotFound { message: String },

    /// Any other non-retryable answer (400, 409, 422...), with RevenueCat's own message.
    #[error("RevenueCat API error {status}: {message}")]
    Api {
        status: u16,
        message: String,
        error_type: Option<String>,
        param: Option<String>,
    },

    /// The request could not be sent or the answer not read (DNS, TLS, reset, timeout).
    #[error("RevenueCat transport error: {0}")]
    Transport(String),

    /// A 2xx answer we could not parse.
    #[error("could not decode RevenueCat response: {0}")]
    Decode(String),

    /// Retryable failures (5xx, timeouts, 429s) outlasted the retry budget.
    #[error("RevenueCat request failed after {attempts} attempts: {last_error}")]
    RetriesExhausted {
        attempts: u32,
        last_status: Option<u16>,
        last_error: String,
    },

    /// A request we refuse to make (e.g. a `next_page` pointing at another host, a paging loop).
    #[error("invalid RevenueCat request: {0}")]
    InvalidRequest(String),
}

impl RevenueCatError {
    /// The HTTP status behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Api { status, .. } => Some(*status),
            Self::NotFound { .. } => Some(404),
            Self::RetriesExhausted { last_status, .. } => *last_status,
            Self::Transport(_) | Self::Decode(_) | Self::InvalidRequest(_) => None,
        }
    }

    /// A human-readable reason (RevenueCat's `message` when it sent one).
    pub fn message(&self) -> String {
        match self {
            Self::Unauthorized { message, .. }
            | Self::NotFound { message }
            | Self::Api { message, .. } => message.clone(),
            Self::RetriesExhausted { last_error, .. } => last_error.clone(),
            Self::Transport(message) | Self::Decode(message) | Self::InvalidRequest(message) => {
                message.clone()
            }
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// Whether RevenueCat (or the network) was unavailable rather than the request being wrong:
    /// callers answer 502 for these.
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            Self::Transport(_) | Self::RetriesExhausted { .. } | Self::Decode(_)
        )
    }
}
