//! App users: bulk upsert, get one, list with property filters and cursor paging.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::cursor;
use super::error::ApiError;
use super::extract::JsonObject;
use crate::auth::{authorize_project, Principal};
use crate::domain::app_user::{has_nul, UserUpsert};
use crate::domain::permission::Permission;
use crate::services::users as service;
use crate::store::users::UserQuery;
use crate::store::Store;

pub const MAX_USERS_PER_UPSERT: usize = 1000;
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;
const MAX_PROPERTY_FILTERS: usize = 10;
const PROPERTY_FILTER_PREFIX: &str = "property.";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertUsersRequest {
    users: Vec<UserInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserInput {
    user_id: String,
    is_anonymous: Option<bool>,
    #[serde(default)]
    properties: Map<String, Value>,
}

pub async fn upsert_users(
    principal: Principal,
    store: web::Data<Store>,
    path: web::Path<String>,
    body: JsonObject<UpsertUsersRequest>,
) -> Result<HttpResponse, ApiError> {
    let project = authorize_project(&principal, &store, &path, Permission::UsersWrite).await?;
    let count = body.0.users.len();
    if count == 0 || count > MAX_USERS_PER_UPSERT {
        return Err(ApiError::BadRequest(format!(
            "users must contain between 1 and {MAX_USERS_PER_UPSERT} entries (got {count})"
        )));
    }
    let users: Vec<UserUpsert> = body
        .0
        .users
        .into_iter()
        .map(|u| UserUpsert {
            user_id: u.user_id,
            is_anonymous: u.is_anonymous,
            properties: u.properties,
        })
        .collect();
    let upserted = service::upsert_users(&store, &project.id, &users).await?;
    Ok(HttpResponse::Ok().json(json!({ "upserted": upserted })))
}

pub async fn get_user(
    principal: Principal,
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, user_id) = path.into_inner();
    authorize_project(&principal, &store, &project_id, Permission::UsersRead).await?;
    if has_nul(&user_id) {
        return Err(ApiError::NotFound("User not found".into()));
    }
    let user = store
        .get_user(&project_id, &user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("User not found".into()))?;
    Ok(HttpResponse::Ok().json(user))
}

/// The list query: `cursor`, `limit` and any number of `property.<key>=<value>` filters.
struct ListUsersQuery {
    filters: Vec<(String, String)>,
    after_user_id: Option<String>,
    limit: u32,
}

fn parse_list_query(query_string: &str) -> Result<ListUsersQuery, ApiError> {
    let mut query = ListUsersQuery {
        filters: Vec::new(),
        after_user_id: None,
        limit: DEFAULT_PAGE_SIZE,
    };
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        match key.as_ref() {
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE_SIZE).contains(l))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit must be an integer between 1 and {MAX_PAGE_SIZE}"
                        ))
                    })?;
            }
            "cursor" if value.is_empty() => {}
            "cursor" => query.after_user_id = Some(cursor::decode(&value)?),
            other => match other.strip_prefix(PROPERTY_FILTER_PREFIX) {
                Some(property)
                    if !property.is_empty() && !has_nul(property) && !has_nul(&value) =>
                {
                    query
                        .filters
                        .push((property.to_owned(), value.into_owned()));
                }
                _ => {
                    return Err(ApiError::BadRequest(format!(
                    "Unknown query parameter: {other} (expected cursor, limit or property.<key>)"
                )))
                }
            },
        }
    }
    if query.filters.len() > MAX_PROPERTY_FILTERS {
        return Err(ApiError::BadRequest(format!(
            "At most {MAX_PROPERTY_FILTERS} property filters are allowed"
        )));
    }
    Ok(query)
}

pub async fn list_users(
    principal: Principal,
    store: web::Data<Store>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let project = authorize_project(&principal, &store, &path, Permission::UsersRead).await?;
    let query = parse_list_query(req.query_string())?;
    let mut users = store
        .list_users(UserQuery {
            project_id: &project.id,
            property_equals: &query.filters,
            after_user_id: query.after_user_id.as_deref(),
            limit: query.limit + 1,
        })
        .await?;
    let has_more = users.len() > query.limit as usize;
    users.truncate(query.limit as usize);
    let cursor = has_more
        .then(|| users.last().map(|u| cursor::encode(&u.user_id)))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "users": users,
        "cursor": cursor,
        "has_more": has_more,
    })))
}
