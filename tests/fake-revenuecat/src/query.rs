//! The query parameters the fake understands.

use actix_web::HttpRequest;

/// Query parameters relevant to the fake.
pub(crate) struct Query {
    pub limit: Option<String>,
    pub starting_after: Option<String>,
    pub expand: Vec<String>,
}

pub(crate) fn parse_query(req: &HttpRequest) -> Query {
    let mut q = Query {
        limit: None,
        starting_after: None,
        expand: Vec::new(),
    };
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "limit" => q.limit = Some(v.into_owned()),
            "starting_after" => q.starting_after = Some(v.into_owned()),
            "expand" | "expand[]" => q.expand.extend(v.split(',').map(|s| s.trim().to_string())),
            _ => {}
        }
    }
    q
}
