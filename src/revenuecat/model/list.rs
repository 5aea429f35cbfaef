use serde::{Deserialize, Serialize};

/// One page of a v2 list: `{"object":"list","items":[...],"next_page":...,"url":...}`.
///
/// `next_page` is `null` *or absent* on the last page (the reference says both), hence the
/// default. It is a path such as `/v2/projects/p/customers?starting_after=...` that must be
/// requested verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

impl<T> Default for ListPage<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            next_page: None,
            url: None,
        }
    }
}

impl<T> ListPage<T> {
    /// The next page to request, treating an empty string like the end of the list.
    pub fn next_page(&self) -> Option<&str> {
        self.next_page.as_deref().filter(|next| !next.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_may_be_null_or_absent() {
        let absent: ListPage<u8> =
            serde_json::from_str(r#"{"object":"list","items":[1]}"#).unwrap();
        assert_eq!(absent.next_page(), None);
        let null: ListPage<u8> =
            serde_json::from_str(r#"{"items":[],"next_page":null,"url":"/v2/x"}"#).unwrap();
        assert_eq!(null.next_page(), None);
        let more: ListPage<u8> =
            serde_json::from_str(r#"{"items":[],"next_page":"/v2/x?starting_after=a"}"#).unwrap();
        assert_eq!(more.next_page(), Some("/v2/x?starting_after=a"));
    }
}
