//! App users and their properties.

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};

use super::{postgres, sqlite, with_pool, with_writer, Dialect, Store, StoreError};
use crate::domain::app_user::{is_anonymous_id, AppUser, UserUpsert};
use crate::timestamp::now_ms;

#[derive(FromRow)]
struct AppUserRow {
    project_id: String,
    user_id: String,
    is_anonymous: bool,
    properties: Json<Map<String, Value>>,
    created_at: i64,
    updated_at: i64,
}

impl From<AppUserRow> for AppUser {
    fn from(row: AppUserRow) -> Self {
        AppUser {
            user_id: row.user_id,
            project_id: row.project_id,
            is_anonymous: row.is_anonymous,
            properties: row.properties.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "project_id, user_id, is_anonymous, properties, created_at, updated_at";

/// A page request for [`Store::list_users`].
pub struct UserQuery<'a> {
    pub project_id: &'a str,
    /// `property.<key>=<value>` filters, all of which must match.
    pub property_equals: &'a [(String, String)],
    /// Return users whose id sorts after this one.
    pub after_user_id: Option<&'a str>,
    pub limit: u32,
}

impl Store {
    fn upsert_user_sql(&self) -> sqlx::AssertSqlSafe<String> {
        let (new_properties, merge) = match self.dialect() {
            Dialect::Sqlite => (sqlite::NEW_PROPERTIES, sqlite::MERGE_PROPERTIES),
            Dialect::Postgres => (postgres::NEW_PROPERTIES, postgres::MERGE_PROPERTIES),
        };
        sqlx::AssertSqlSafe(format!(
            "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, updated_at) \
             VALUES ($1, $2, $3, {new_properties}, $6, $6) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET \
                 properties = {merge}, \
                 is_anonymous = COALESCE($7, app_users.is_anonymous), \
                 updated_at = $6"
        ))
    }

    /// Upserts a batch in one transaction: all users are written or none.
    pub async fn upsert_users(
        &self,
        project_id: &str,
        users: &[UserUpsert],
    ) -> Result<usize, StoreError> {
        let sql = self.upsert_user_sql();
        let now = now_ms();
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            for user in users {
                let explicit = user.resolved_anonymous_flag();
                let patch = Json(&user.properties);
                sqlx::query(sqlx::AssertSqlSafe(sql.0.clone()))
                    .bind(project_id)
                    .bind(&user.user_id)
                    .bind(explicit.unwrap_or_else(|| is_anonymous_id(&user.user_id)))
                    .bind(patch)
                    .bind(patch)
                    .bind(now)
                    .bind(explicit)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if StoreError::is_foreign_key_violation(&e) {
                            StoreError::MissingReference("project")
                        } else {
                            e.into()
                        }
                    })?;
            }
            tx.commit().await?;
        });
        Ok(users.len())
    }

    pub async fn get_user(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<AppUser>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM app_users WHERE project_id = $1 AND user_id = $2"
        ));
        let row: Option<AppUserRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(project_id).bind(user_id).fetch_optional(pool).await?
        });
        Ok(row.map(AppUser::from))
    }

    /// Users ordered by id, filtered by exact property values.
    pub async fn list_users(&self, query: UserQuery<'_>) -> Result<Vec<AppUser>, StoreError> {
        let dialect = self.dialect();
        let rows: Vec<AppUserRow> = with_pool!(self, pool => {
            let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM app_users WHERE project_id = "));
            qb.push_bind(query.project_id);
            for (key, value) in query.property_equals {
                match dialect {
                    Dialect::Sqlite => {
                        qb.push(" AND EXISTS (SELECT 1 FROM json_each(app_users.properties) p WHERE p.key = ");
                        qb.push_bind(key.as_str());
                        qb.push(" AND p.type = 'text' AND p.value = ");
                        qb.push_bind(value.as_str());
                        qb.push(")");
                    }
                    Dialect::Postgres => {
                        qb.push(" AND app_users.properties ->> ");
                        qb.push_bind(key.as_str());
                        qb.push(" = ");
                        qb.push_bind(value.as_str());
                    }
                }
            }
            if let Some(after) = query.after_user_id {
                qb.push(" AND user_id > ");
                qb.push_bind(after);
            }
            qb.push(" ORDER BY user_id LIMIT ");
            qb.push_bind(i64::from(query.limit));
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(AppUser::from).collect())
    }
}
