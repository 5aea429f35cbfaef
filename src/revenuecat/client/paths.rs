//! Building request URLs: encoded path segments, and `next_page` cursors taken verbatim.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

use crate::revenuecat::error::RevenueCatError;

/// Everything but RFC 3986 "unreserved" characters is encoded, so `$RCAnonymousID:abc`
/// becomes `%24RCAnonymousID%3Aabc` and an id can never inject `/`, `?` or `#`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// `base` + encoded `segments` + query.
pub(super) fn endpoint_url(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Url {
    let mut path = base.path().trim_end_matches('/').to_owned();
    for segment in segments {
        path.push('/');
        path.push_str(&encode_path_segment(segment));
    }
    let mut url = base.clone();
    // `set_path` keeps existing `%XX` escapes as they are.
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
    }
    url
}

/// Resolves a `next_page` (`/v2/projects/...?starting_after=...`) against the base URL's
/// origin *without* re-encoding it: RevenueCat built the cursor, and re-encoding it breaks on
/// ids like `$RCAnonymousID:...` (a known integration looped forever that way). A cursor that
/// points at another origin is refused so the API key is never sent elsewhere.
pub(super) fn next_page_url(base: &Url, next_page: &str) -> Result<Url, RevenueCatError> {
    let url = base.join(next_page).map_err(|error| {
        RevenueCatError::InvalidRequest(format!("unusable next_page {next_page:?}: {error}"))
    })?;
    if url.origin() != base.origin() {
        return Err(RevenueCatError::InvalidRequest(format!(
            "next_page {next_page:?} points outside {}",
            base.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:9999/v2").unwrap()
    }

    #[test]
    fn segments_are_fully_encoded() {
        assert_eq!(
            encode_path_segment("$RCAnonymousID:abc"),
            "%24RCAnonymousID%3Aabc"
        );
        assert_eq!(encode_path_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(encode_path_segment("user-1_x.y~z"), "user-1_x.y~z");
        let url = endpoint_url(
            &base(),
            &[
                "projects",
                "p1",
                "customers",
                "$RCAnonymousID:abc",
                "subscriptions",
            ],
            &[("limit", "100".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9999/v2/projects/p1/customers/%24RCAnonymousID%3Aabc/subscriptions?limit=100"
        );
    }

    #[test]
    fn trailing_slash_in_base_is_fine() {
        let base = Url::parse("https://api.revenuecat.com/v2/").unwrap();
        assert_eq!(
            endpoint_url(&base, &["projects"], &[]).as_str(),
            "https://api.revenuecat.com/v2/projects"
        );
    }

    #[test]
    fn next_page_is_used_verbatim() {
        for next in [
            "/v2/projects/p1/customers?starting_after=$RCAnonymousID:abc&limit=2",
            "/v2/projects/p1/customers?starting_after=%24RCAnonymousID%3Aabc",
        ] {
            let url = next_page_url(&base(), next).unwrap();
            let target = format!("{}?{}", url.path(), url.query().unwrap_or_default());
            assert_eq!(target, next);
        }
    }

    #[test]
    fn next_page_on_another_origin_is_refused() {
        assert!(next_page_url(&base(), "https://evil.example/v2/x").is_err());
        assert!(next_page_url(&base(), "http://127.0.0.1:9999/v2/x").is_ok());
    }
}
