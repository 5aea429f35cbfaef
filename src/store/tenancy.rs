//! Teams, projects and API keys.

use sqlx::FromRow;

use super::{with_pool, with_writer, Store, StoreError};
use crate::domain::permission::{format_permission_list, parse_permission_list, Permission};
use crate::domain::tenancy::{ApiKey, Project, Team};

#[derive(FromRow)]
struct ApiKeyRow {
    id: String,
    team_id: String,
    name: String,
    key_prefix: String,
    key_hash: String,
    permissions: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        let permissions = parse_permission_list(&row.permissions)
            .map_err(|e| StoreError::Corrupt(format!("api key {}: {e}", row.id)))?;
        Ok(ApiKey {
            id: row.id,
            team_id: row.team_id,
            name: row.name,
            key_prefix: row.key_prefix,
            key_hash: row.key_hash,
            permissions,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

const API_KEY_COLUMNS: &str =
    "id, team_id, name, key_prefix, key_hash, permissions, created_at, last_used_at, revoked_at";

/// What the CLI asks to store; the key itself never reaches this layer.
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    pub permissions: &'a [Permission],
}

impl Store {
    pub async fn create_team(&self, id: &str, name: &str) -> Result<Team, StoreError> {
        let created_at = self.now_ms();
        let result = with_writer!(self, pool => {
            sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(created_at)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(_) => Ok(Team {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at,
            }),
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::AlreadyExists("team")),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create_project(
        &self,
        id: &str,
        team_id: &str,
        name: &str,
    ) -> Result<Project, StoreError> {
        let created_at = self.now_ms();
        let result = with_writer!(self, pool => {
            sqlx::query("INSERT INTO projects (id, team_id, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(team_id)
                .bind(name)
                .bind(created_at)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(_) => Ok(Project {
                id: id.to_owned(),
                team_id: team_id.to_owned(),
                name: name.to_owned(),
                created_at,
            }),
            Err(e) if StoreError::is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists("project"))
            }
            Err(e) if StoreError::is_foreign_key_violation(&e) => {
                Err(StoreError::MissingReference("team"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let row: Option<(String, String, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id, team_id, name, created_at FROM projects WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id, team_id, name, created_at)| Project {
            id,
            team_id,
            name,
            created_at,
        }))
    }

    pub async fn create_api_key(&self, key: NewApiKey<'_>) -> Result<ApiKey, StoreError> {
        let created_at = self.now_ms();
        let permissions = format_permission_list(key.permissions);
        let result = with_writer!(self, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, team_id, name, key_prefix, key_hash, permissions, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(key.id)
            .bind(key.team_id)
            .bind(key.name)
            .bind(key.key_prefix)
            .bind(key.key_hash)
            .bind(&permissions)
            .bind(created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => Ok(ApiKey {
                id: key.id.to_owned(),
                team_id: key.team_id.to_owned(),
                name: key.name.to_owned(),
                key_prefix: key.key_prefix.to_owned(),
                key_hash: key.key_hash.to_owned(),
                permissions: key.permissions.to_vec(),
                created_at,
                last_used_at: None,
                revoked_at: None,
            }),
            Err(e) if StoreError::is_foreign_key_violation(&e) => {
                Err(StoreError::MissingReference("team"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        ));
        let row: Option<ApiKeyRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(key_hash).fetch_optional(pool).await?
        });
        row.map(ApiKey::try_from).transpose()
    }

    pub async fn list_api_keys(&self, team_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE team_id = $1 ORDER BY created_at, id"
        ));
        let rows: Vec<ApiKeyRow> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(team_id).fetch_all(pool).await?
        });
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    /// Records use at most once a minute per key, so authenticated reads do not each take
    /// SQLite's write lock.
    pub async fn touch_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        const TOUCH_INTERVAL_MS: i64 = 60_000;
        let now = self.now_ms();
        if key
            .last_used_at
            .is_some_and(|t| now - t < TOUCH_INTERVAL_MS)
        {
            return Ok(());
        }
        with_writer!(self, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&key.id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Returns false when no active key has that id.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let result = with_writer!(self, pool => {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(self.now_ms())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(result > 0)
    }
}
