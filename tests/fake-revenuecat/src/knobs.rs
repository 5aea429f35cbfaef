//! The switchable behaviours of list endpoints and 429 answers, shared by every request.

use std::time::{Duration, SystemTime};

use actix_web::http::header::HttpDate;
use serde::{Deserialize, Serialize};

use super::render::ListStyle;

/// How list endpoints page and how list objects look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListKnobs {
    /// A `limit` above this answers 400 `parameter_error` (`param: limit`).
    pub max_page_limit: u32,
    /// Serve at most this many items per page whatever `limit` asked for, and page on; the
    /// `next_page` URL repeats the client's own `limit`, so nothing hints at the cap.
    pub page_cap: Option<usize>,
    /// Lists embedded in objects (a customer's `active_entitlements`, a subscription's or a
    /// purchase's `entitlements`) carry at most this many items, with a `next_page` that the
    /// fake serves; `None` embeds complete lists.
    pub embedded_page_size: Option<usize>,
    /// Leave the `next_page` key out of last pages instead of sending `null` (RevenueCat's
    /// reference allows both).
    pub omit_next_page_on_last: bool,
    /// Serve `active_entitlements` in list-customers items, which RevenueCat's reference says
    /// they do not carry.
    pub list_customers_includes_entitlements: bool,
    /// Leave `active_entitlements` out of "Get a customer" (an older API or a proxy that drops
    /// it): a client must then ask `/customers/{id}/active_entitlements` itself.
    pub customer_omits_active_entitlements: bool,
}

impl Default for ListKnobs {
    fn default() -> Self {
        ListKnobs {
            max_page_limit: 100,
            page_cap: None,
            embedded_page_size: None,
            omit_next_page_on_last: false,
            list_customers_includes_entitlements: false,
            customer_omits_active_entitlements: false,
        }
    }
}

impl ListKnobs {
    pub(crate) fn style(&self) -> ListStyle {
        ListStyle {
            omit_next_page_on_last: self.omit_next_page_on_last,
            embedded_page_size: self.embedded_page_size,
        }
    }
}

/// The form of the `Retry-After` header of a 429.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterFormat {
    /// Whole seconds, as RevenueCat sends it.
    #[default]
    Seconds,
    /// An IMF-fixdate (RFC 7231 §7.1.1.1), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    HttpDate,
}

/// How 429 answers tell the client to wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryAfterKnobs {
    pub format: RetryAfterFormat,
    /// Announce this many seconds instead of the time until the window frees a slot.
    pub secs: Option<u64>,
}

impl RetryAfterKnobs {
    /// The wait to announce when the limiter computed `computed_secs`.
    pub fn secs(&self, computed_secs: u64) -> u64 {
        self.secs.unwrap_or(computed_secs)
    }

    /// The header value announcing `secs`. An HTTP-date is rounded up to the next whole
    /// second, so a client that waits until that date waits at least `secs`.
    pub fn header(&self, secs: u64, now: SystemTime) -> String {
        match self.format {
            RetryAfterFormat::Seconds => secs.to_string(),
            RetryAfterFormat::HttpDate => {
                let at = now + Duration::from_secs(secs);
                let whole = at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
                    .div_ceil(1_000_000_000) as u64;
                HttpDate::from(SystemTime::UNIX_EPOCH + Duration::from_secs(whole)).to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_is_imf_fixdate_rounded_up() {
        let knobs = RetryAfterKnobs {
            format: RetryAfterFormat::HttpDate,
            secs: None,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(784_111_777_300);
        assert_eq!(knobs.header(0, now), "Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(knobs.header(2, now), "Sun, 06 Nov 1994 08:49:40 GMT");
        let seconds = RetryAfterKnobs::default();
        assert_eq!(seconds.header(7, now), "7");
        assert_eq!(seconds.secs(3), 3);
        let fixed = RetryAfterKnobs {
            secs: Some(9),
            ..seconds
        };
        assert_eq!(fixed.secs(3), 9);
    }
}
