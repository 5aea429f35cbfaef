use serde::{Deserialize, Serialize};

/// RevenueCat's error object:
/// `{"object":"error","type":...,"message":...,"param":...,"doc_url":...,"retryable":...,"backoff_ms":...}`.
/// Every field is optional here because we parse it from any non-2xx body, including proxies'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub doc_url: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
    #[serde(default, deserialize_with = "crate::revenuecat::lenient::opt_i64")]
    pub backoff_ms: Option<i64>,
}

impl ApiErrorBody {
    /// Parses an error body; a body that is not RevenueCat's JSON yields an empty object.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}
