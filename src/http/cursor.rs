//! Opaque page cursors: what a list handler needs to resume, base64url-encoded so clients
//! treat it as a token. Garbage in a cursor is a 400, never a 500.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as CURSOR_B64;
use base64::Engine;

use super::error::ApiError;
use crate::domain::app_user::has_nul;

pub fn encode(text: &str) -> String {
    CURSOR_B64.encode(text)
}

/// The text inside a cursor; 400 unless it is one [`encode`] could have made.
pub fn decode(cursor: &str) -> Result<String, ApiError> {
    CURSOR_B64
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| !has_nul(text))
        .ok_or_else(invalid)
}

pub fn invalid() -> ApiError {
    ApiError::BadRequest("Invalid cursor".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_400() {
        assert_eq!(decode(&encode("user:1")).unwrap(), "user:1");
        assert!(decode("!!!").is_err());
        assert!(decode(&CURSOR_B64.encode([0xff, 0xfe])).is_err());
        assert!(decode(&encode("a\0b")).is_err());
    }
}
