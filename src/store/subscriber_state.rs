//! Writing RevenueCat-derived `rc_*` properties onto app users, with the ordering marker
//! (`rc_event_timestamp_ms`) that keeps older information from overwriting newer.

use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{postgres, sqlite, with_writer, Dialect, Store, StoreError};
use crate::domain::app_user::PropertyPatch;
use crate::timestamp::now_ms;

/// A patch as a JSON merge patch: `Some` sets, `None` becomes `null` (removes).
pub(crate) fn patch_to_json(patch: &PropertyPatch) -> Map<String, Value> {
    patch
        .iter()
        .map(|(key, value)| {
            let json = value
                .as_ref()
                .map_or(Value::Null, |v| Value::String(v.clone()));
            (key.clone(), json)
        })
        .collect()
}

/// How a resync result meets what is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Always write (an admin asked for RevenueCat's state now).
    Always,
    /// Write only if nothing newer than `as_of_ms` was applied since (background resyncs).
    UnlessNewer,
}

impl Store {
    /// Merges `patch` into the user's properties (creating a non-anonymous user if needed)
    /// and raises the user's ordering marker to `marker_ms` (if given). Returns false when `UnlessNewer`
    /// found a newer event already applied, in which case nothing was written.
    pub async fn apply_resync_patch(
        &self,
        project_id: &str,
        user_id: &str,
        patch: &PropertyPatch,
        as_of_ms: i64,
        marker_ms: Option<i64>,
        mode: ApplyMode,
    ) -> Result<bool, StoreError> {
        let (new_properties, merge, greatest) = match self.dialect() {
            Dialect::Sqlite => (
                sqlite::NEW_PROPERTIES,
                sqlite::MERGE_PROPERTIES,
                sqlite::GREATEST,
            ),
            Dialect::Postgres => (
                postgres::NEW_PROPERTIES,
                postgres::MERGE_PROPERTIES,
                postgres::GREATEST,
            ),
        };
        let guard = match mode {
            ApplyMode::Always => "",
            ApplyMode::UnlessNewer => {
                " WHERE app_users.rc_event_timestamp_ms IS NULL OR app_users.rc_event_timestamp_ms <= $7"
            }
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, updated_at, rc_event_timestamp_ms) \
             VALUES ($1, $2, $3, {new_properties}, $6, $6, $8) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET \
                 properties = {merge}, \
                 updated_at = $6, \
                 rc_event_timestamp_ms = {greatest}(COALESCE(app_users.rc_event_timestamp_ms, 0), COALESCE($8, 0)){guard}"
        ));
        let json = Json(patch_to_json(patch));
        let affected = with_writer!(self, pool => {
            sqlx::query(sql)
                .bind(project_id)
                .bind(user_id)
                .bind(false)
                .bind(&json)
                .bind(&json)
                .bind(now_ms())
                .bind(as_of_ms)
                .bind(marker_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(affected > 0)
    }
}
