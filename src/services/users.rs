//! The platform's own writes to its users (`POST …/users`): validated, merged by user, and
//! written through the store's one property path in a single transaction.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::app_user::{PropertyPatch, UserInputError, UserUpsert};
use crate::store::users::{ChangeRule, UserChange};
use crate::store::{retry_transient_once, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error(transparent)]
    Invalid(#[from] UserInputError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One user's merged request: later entries of the same user override earlier ones.
struct Merged {
    patch: PropertyPatch,
    is_anonymous: Option<bool>,
}

/// Upserts a batch: all users are written or none. Entries are merged per user and written in
/// user-id order, so two concurrent batches with the same users cannot deadlock each other.
/// Returns how many distinct users were written.
pub async fn upsert_users(
    store: &Store,
    project_id: &str,
    users: &[UserUpsert],
) -> Result<usize, UsersError> {
    for (index, user) in users.iter().enumerate() {
        user.validate(index)?;
    }
    let mut merged: BTreeMap<&str, Merged> = BTreeMap::new();
    for user in users {
        let entry = merged.entry(&user.user_id).or_insert(Merged {
            patch: PropertyPatch::new(),
            is_anonymous: None,
        });
        for (key, value) in &user.properties {
            let value = match value {
                Value::String(s) => Some(s.clone()),
                _ => None,
            };
            entry.patch.insert(key.clone(), value);
        }
        if let Some(flag) = user.resolved_anonymous_flag() {
            entry.is_anonymous = Some(flag);
        }
    }
    let changes: Vec<UserChange<'_>> = merged
        .iter()
        .map(|(user_id, merged)| UserChange {
            user_id,
            patch: &merged.patch,
            rule: ChangeRule::Always {
                is_anonymous: merged.is_anonymous,
            },
            follow_up_at: None,
        })
        .collect();
    retry_transient_once(|| async {
        let mut tx = store.begin().await?;
        tx.change_properties(project_id, &changes).await?;
        tx.commit().await
    })
    .await?;
    Ok(changes.len())
}
