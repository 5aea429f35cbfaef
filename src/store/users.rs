//! App users and their properties, and the one path every change of a user's properties takes
//! (webhook events, single-user sync, resync jobs, the users API): [`Tx::change_properties`].
//!
//! It reads the rows it will change (locked on PostgreSQL, in user-id order so concurrent
//! batches cannot deadlock), decides each change under its [`ChangeRule`] in Rust, and writes
//! the results back in one statement, returning every user's properties before and after.
//! A batch of N changes costs a fixed handful of statements, not N.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};

use super::tx::on_tx;
use super::{with_pool, Dialect, Store, StoreError, Tx};
use crate::domain::app_user::{is_anonymous_id, AppUser, PropertyPatch};

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

/// The newest subscription event applied to a user: RevenueCat's `event_timestamp_ms` and the
/// event id (ties go to the larger id, bytewise). Only webhook events move it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventMarker {
    pub timestamp_ms: i64,
    pub event_id: String,
}

/// When a change may be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRule {
    /// The users API: always. `is_anonymous` overrides the stored flag when given.
    Always { is_anonymous: Option<bool> },
    /// A webhook event: only if it is newer than the user's marker, which then moves to it.
    NewerEvent(EventMarker),
    /// A resync: only if the marker is still the one read before RevenueCat was asked
    /// (compare-and-set), so an event applied meanwhile is never overwritten; the marker stays.
    MarkerUnchanged(Option<EventMarker>),
}

/// One requested change.
#[derive(Debug, Clone)]
pub struct UserChange<'a> {
    pub user_id: &'a str,
    pub patch: &'a PropertyPatch,
    pub rule: ChangeRule,
    /// Also request a resync of the user from RevenueCat, due then — whether or not the rule
    /// lets the patch through (a superseded event still asks for RevenueCat's word). A pending
    /// request is kept: later events of the user join it.
    pub follow_up_at: Option<i64>,
}

/// A user's properties around a change.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyChange {
    /// `None` when the change created the user.
    pub before: Option<Map<String, Value>>,
    pub after: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    Applied(PropertyChange),
    /// The rule refused it: a newer event is already applied (or, for a resync, one was
    /// applied since the fetch began). Nothing was written.
    Refused,
}

/// A page request for [`Store::list_users`].
pub struct UserQuery<'a> {
    pub project_id: &'a str,
    /// `property.<key>=<value>` filters, all of which must match.
    pub property_equals: &'a [(String, String)],
    /// Return users whose id sorts after this one.
    pub after_user_id: Option<&'a str>,
    pub limit: u32,
}

/// A user as the change path sees it.
struct Current {
    is_anonymous: bool,
    properties: Map<String, Value>,
    marker: Option<EventMarker>,
    resync_due_at: Option<i64>,
    created: bool,
    changed: bool,
}

#[derive(FromRow)]
struct CurrentRow {
    user_id: String,
    is_anonymous: bool,
    properties: Json<Map<String, Value>>,
    rc_event_timestamp_ms: Option<i64>,
    rc_event_id: Option<String>,
    resync_due_at: Option<i64>,
}

fn marker_of(timestamp_ms: Option<i64>, event_id: Option<String>) -> Option<EventMarker> {
    timestamp_ms.map(|timestamp_ms| EventMarker {
        timestamp_ms,
        event_id: event_id.unwrap_or_default(),
    })
}

impl Current {
    /// A user this transaction creates.
    fn created(is_anonymous: bool) -> Self {
        Current {
            is_anonymous,
            properties: Map::new(),
            marker: None,
            resync_due_at: None,
            created: true,
            changed: false,
        }
    }
}

/// `Some` sets a key, `None` removes it.
fn merge(properties: &mut Map<String, Value>, patch: &PropertyPatch) -> bool {
    let mut changed = false;
    for (key, value) in patch {
        let before = properties.get(key);
        match value {
            Some(v) if before.and_then(Value::as_str) != Some(v.as_str()) => {
                properties.insert(key.clone(), Value::String(v.clone()));
                changed = true;
            }
            None if before.is_some() => {
                properties.remove(key);
                changed = true;
            }
            _ => {}
        }
    }
    changed
}

impl Tx {
    /// Applies `changes` to users of one project in order (several changes of one user apply
    /// one after the other), creating users that do not exist yet.
    pub async fn change_properties(
        &mut self,
        project_id: &str,
        changes: &[UserChange<'_>],
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut new_users: BTreeMap<&str, bool> = BTreeMap::new();
        for change in changes {
            let flag = match change.rule {
                _ if is_anonymous_id(change.user_id) => true,
                ChangeRule::Always {
                    is_anonymous: Some(flag),
                } => flag,
                _ => false,
            };
            new_users.entry(change.user_id).or_insert(flag);
        }
        let mut users = match self.dialect() {
            // The single writer excludes every other writer: read, then create what is
            // missing with the write-back.
            Dialect::Sqlite => {
                let mut users = self.lock_users(project_id, new_users.keys()).await?;
                for (user_id, is_anonymous) in &new_users {
                    users
                        .entry((*user_id).to_owned())
                        .or_insert_with(|| Current::created(*is_anonymous));
                }
                users
            }
            // Concurrent writers: create missing rows first so that every row can be locked.
            Dialect::Postgres => {
                let created = self.insert_missing_users(project_id, &new_users).await?;
                let mut users = self.lock_users(project_id, new_users.keys()).await?;
                for user_id in &created {
                    if let Some(user) = users.get_mut(user_id.as_str()) {
                        user.created = true;
                    }
                }
                users
            }
        };
        let outcomes = changes
            .iter()
            .map(|change| decide(&mut users, change))
            .collect();
        self.write_users(project_id, &users).await?;
        Ok(outcomes)
    }

    /// PostgreSQL: creates the users that do not exist (with no properties), so that every row
    /// can be locked; returns the ids it created.
    async fn insert_missing_users(
        &mut self,
        project_id: &str,
        users: &BTreeMap<&str, bool>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let now = self.now_ms();
        let ids: Vec<&str> = users.keys().copied().collect();
        let flags: Vec<bool> = users.values().copied().collect();
        let conn = self
            .postgres()
            .expect("inserting missing users first is PostgreSQL's path");
        let rows: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, updated_at) \
             SELECT $1, u.user_id, u.is_anonymous, '{}'::jsonb, $2, $2 \
             FROM UNNEST($3::text[], $4::bool[]) AS u(user_id, is_anonymous) \
             ON CONFLICT (project_id, user_id) DO NOTHING RETURNING user_id",
        )
        .bind(project_id)
        .bind(now)
        .bind(&ids)
        .bind(&flags)
        .fetch_all(conn)
        .await
        .map_err(missing_project)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The rows of `user_ids`, locked until commit on PostgreSQL (SQLite's single writer
    /// already excludes every other writer).
    async fn lock_users<'a>(
        &mut self,
        project_id: &str,
        user_ids: impl Iterator<Item = &'a &'a str>,
    ) -> Result<BTreeMap<String, Current>, StoreError> {
        const COLUMNS: &str =
            "user_id, is_anonymous, properties, rc_event_timestamp_ms, rc_event_id, resync_due_at";
        let rows: Vec<CurrentRow> = if let Some(conn) = self.postgres() {
            let ids: Vec<&str> = user_ids.copied().collect();
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM app_users WHERE project_id = $1 AND user_id = ANY($2) \
                 ORDER BY user_id FOR UPDATE"
            ));
            sqlx::query_as(sql)
                .bind(project_id)
                .bind(&ids)
                .fetch_all(conn)
                .await?
        } else {
            on_tx!(self, conn => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {COLUMNS} FROM app_users WHERE project_id = "
            ));
            qb.push_bind(project_id).push(" AND user_id IN (");
            let mut ids = qb.separated(", ");
            for user_id in user_ids {
                ids.push_bind(*user_id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *conn).await?
            })
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let current = Current {
                    is_anonymous: row.is_anonymous,
                    properties: row.properties.0,
                    marker: marker_of(row.rc_event_timestamp_ms, row.rc_event_id),
                    resync_due_at: row.resync_due_at,
                    created: false,
                    changed: false,
                };
                (row.user_id, current)
            })
            .collect())
    }

    /// Writes back every user a change touched, in one statement.
    async fn write_users(
        &mut self,
        project_id: &str,
        users: &BTreeMap<String, Current>,
    ) -> Result<(), StoreError> {
        let changed: Vec<(&String, &Current)> = users.iter().filter(|(_, u)| u.changed).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        if let Some(conn) = self.postgres() {
            let column = |f: &dyn Fn(&Current) -> Option<i64>| -> Vec<Option<i64>> {
                changed.iter().map(|(_, u)| f(u)).collect()
            };
            let ids: Vec<&str> = changed.iter().map(|(id, _)| id.as_str()).collect();
            let flags: Vec<bool> = changed.iter().map(|(_, u)| u.is_anonymous).collect();
            let properties: Vec<String> = changed
                .iter()
                .map(|(_, u)| Value::Object(u.properties.clone()).to_string())
                .collect();
            let marker_ids: Vec<Option<&str>> = changed
                .iter()
                .map(|(_, u)| u.marker.as_ref().map(|m| m.event_id.as_str()))
                .collect();
            sqlx::query(
                "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, \
                 updated_at, rc_event_timestamp_ms, rc_event_id, resync_due_at) \
                 SELECT $1, u.user_id, u.is_anonymous, u.properties::jsonb, $2, $2, u.ts, u.event_id, u.due \
                 FROM UNNEST($3::text[], $4::bool[], $5::text[], $6::int8[], $7::text[], $8::int8[]) \
                     AS u(user_id, is_anonymous, properties, ts, event_id, due) \
                 ON CONFLICT (project_id, user_id) DO UPDATE SET is_anonymous = excluded.is_anonymous, \
                 properties = excluded.properties, updated_at = excluded.updated_at, \
                 rc_event_timestamp_ms = excluded.rc_event_timestamp_ms, rc_event_id = excluded.rc_event_id, \
                 resync_due_at = excluded.resync_due_at",
            )
            .bind(project_id)
            .bind(now)
            .bind(&ids)
            .bind(&flags)
            .bind(&properties)
            .bind(column(&|u| u.marker.as_ref().map(|m| m.timestamp_ms)))
            .bind(&marker_ids)
            .bind(column(&|u| u.resync_due_at))
            .execute(conn)
            .await?;
            return Ok(());
        }
        on_tx!(self, conn => {
            let mut qb = QueryBuilder::new(
                "INSERT INTO app_users (project_id, user_id, is_anonymous, properties, created_at, \
                 updated_at, rc_event_timestamp_ms, rc_event_id, resync_due_at) ",
            );
            qb.push_values(&changed, |mut row, (user_id, user)| {
                row.push_bind(project_id)
                    .push_bind(user_id.as_str())
                    .push_bind(user.is_anonymous)
                    .push_bind(Json(&user.properties))
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(user.marker.as_ref().map(|m| m.timestamp_ms))
                    .push_bind(user.marker.as_ref().map(|m| m.event_id.as_str()))
                    .push_bind(user.resync_due_at);
            });
            // Every row exists and is locked: this is an update of all of them at once.
            qb.push(
                " ON CONFLICT (project_id, user_id) DO UPDATE SET is_anonymous = excluded.is_anonymous, \
                 properties = excluded.properties, updated_at = excluded.updated_at, \
                 rc_event_timestamp_ms = excluded.rc_event_timestamp_ms, rc_event_id = excluded.rc_event_id, \
                 resync_due_at = excluded.resync_due_at",
            );
            qb.build().execute(&mut *conn).await?;
        });
        Ok(())
    }
}

/// Decides one change against the user's current state, updating it when the rule allows.
fn decide(users: &mut BTreeMap<String, Current>, change: &UserChange<'_>) -> ChangeOutcome {
    let Some(user) = users.get_mut(change.user_id) else {
        // Every user was inserted or locked above; a missing row means it vanished (deleted
        // project): nothing to write.
        return ChangeOutcome::Refused;
    };
    if let (Some(at), None) = (change.follow_up_at, user.resync_due_at) {
        user.resync_due_at = Some(at);
        user.changed = true;
    }
    let allowed = match &change.rule {
        ChangeRule::Always { .. } => true,
        ChangeRule::NewerEvent(event) => user.marker.as_ref().is_none_or(|m| event > m),
        ChangeRule::MarkerUnchanged(expected) => user.marker == *expected,
    };
    if !allowed {
        return ChangeOutcome::Refused;
    }
    let before = (!user.created).then(|| user.properties.clone());
    let mut changed = merge(&mut user.properties, change.patch);
    match &change.rule {
        ChangeRule::NewerEvent(event) => {
            user.marker = Some(event.clone());
            changed = true;
        }
        ChangeRule::Always {
            is_anonymous: Some(flag),
        } if !is_anonymous_id(change.user_id) && user.is_anonymous != *flag => {
            user.is_anonymous = *flag;
            changed = true;
        }
        _ => {}
    }
    // A created user is written even without properties (its row already exists; `updated_at`
    // says when it was last touched).
    user.changed |= changed || user.created;
    // Later changes of the same user see this one's result as "before".
    user.created = false;
    ChangeOutcome::Applied(PropertyChange {
        before,
        after: user.properties.clone(),
    })
}

fn missing_project(e: sqlx::Error) -> StoreError {
    if StoreError::is_foreign_key_violation(&e) {
        StoreError::MissingReference("project")
    } else {
        e.into()
    }
}

impl Store {
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

    /// The user's ordering marker (read before a resync asks RevenueCat).
    pub async fn event_marker(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<EventMarker>, StoreError> {
        let row: Option<(Option<i64>, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT rc_event_timestamp_ms, rc_event_id FROM app_users WHERE project_id = $1 AND user_id = $2",
            )
            .bind(project_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.and_then(|(timestamp_ms, event_id)| marker_of(timestamp_ms, event_id)))
    }

    /// Users that are not anonymous: the ones a full resync covers.
    pub async fn count_identified_users(&self, project_id: &str) -> Result<i64, StoreError> {
        let (count,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM app_users WHERE project_id = $1 AND is_anonymous = $2")
                .bind(project_id)
                .bind(false)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// The next `limit` identified user ids after `after`, in id order (keyset paging: a run
    /// streams the users instead of holding them all).
    pub async fn identified_user_ids(
        &self,
        project_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id FROM app_users WHERE project_id = $1 AND is_anonymous = $2 \
                 AND user_id > $3 ORDER BY user_id LIMIT $4",
            )
            .bind(project_id)
            .bind(false)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Which of `user_ids` the project has.
    pub async fn existing_user_ids(
        &self,
        project_id: &str,
        user_ids: &[&str],
    ) -> Result<BTreeSet<String>, StoreError> {
        if user_ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            let mut qb = QueryBuilder::new("SELECT user_id FROM app_users WHERE project_id = ");
            qb.push_bind(project_id).push(" AND user_id IN (");
            let mut list = qb.separated(", ");
            for user_id in user_ids {
                list.push_bind(*user_id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Follow-up resyncs a project has waiting: requested on user rows, or pending as resync
    /// rows (the backlog a full resync shows, and partly settles).
    pub async fn follow_up_backlog(&self, project_id: &str) -> Result<i64, StoreError> {
        let (count,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM app_users WHERE project_id = $1 AND resync_due_at IS NOT NULL) \
                      + (SELECT COUNT(*) FROM user_resyncs WHERE project_id = $1 AND status = 'pending')",
            )
            .bind(project_id)
            .fetch_one(pool)
            .await?
        });
        Ok(count)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(ts: i64, id: &str) -> EventMarker {
        EventMarker {
            timestamp_ms: ts,
            event_id: id.into(),
        }
    }

    #[test]
    fn markers_order_by_time_then_event_id_bytewise() {
        assert!(marker(2, "a") > marker(1, "z"));
        assert!(marker(1, "b") > marker(1, "a"));
        assert!(marker(1, "a") > marker(1, "B"), "bytewise, not case-folded");
    }

    #[test]
    fn merge_sets_removes_and_reports_changes() {
        let mut properties = Map::new();
        let patch: PropertyPatch = [("a".to_owned(), Some("1".to_owned()))].into();
        assert!(merge(&mut properties, &patch));
        assert!(!merge(&mut properties, &patch), "same value: no change");
        let remove: PropertyPatch = [("a".to_owned(), None), ("b".to_owned(), None)].into();
        assert!(merge(&mut properties, &remove));
        assert!(properties.is_empty());
    }
}
