//! App users: the platform's user records that receive `rc_*` properties.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::timestamp::serde_iso;

/// Prefix of the ids the RevenueCat SDK generates before the app identifies the user.
pub const ANONYMOUS_PREFIX: &str = "$RCAnonymousID:";
pub const MAX_USER_ID_LEN: usize = 512;
pub const MAX_PROPERTY_KEY_LEN: usize = 128;
pub const MAX_PROPERTY_VALUE_LEN: usize = 8192;

/// PostgreSQL cannot store U+0000 in TEXT or JSONB; such input is refused up front on both
/// backends so they behave alike.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

pub fn is_anonymous_id(user_id: &str) -> bool {
    user_id.starts_with(ANONYMOUS_PREFIX)
}

/// Property changes for one user: `Some(v)` sets the key, `None` removes it, and keys absent
/// from the map are left untouched.
pub type PropertyPatch = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Serialize)]
pub struct AppUser {
    pub user_id: String,
    pub project_id: String,
    pub is_anonymous: bool,
    pub properties: Map<String, Value>,
    #[serde(with = "serde_iso")]
    pub created_at: i64,
    #[serde(with = "serde_iso")]
    pub updated_at: i64,
}

/// One user of a bulk upsert. `properties` is a merge patch: a string sets the key, `null`
/// removes it, absent keys are kept.
#[derive(Debug, Clone)]
pub struct UserUpsert {
    pub user_id: String,
    /// `None` keeps the stored flag (or derives it from the id for a new user).
    pub is_anonymous: Option<bool>,
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserInputError {
    #[error("users[{0}].user_id must be a non-empty string of at most 512 characters")]
    BadUserId(usize),
    #[error("users[{0}].properties.{1}: property values must be strings (without NUL characters) or null")]
    BadPropertyValue(usize, String),
    #[error("users[{0}].properties: keys must be 1 to 128 characters")]
    BadPropertyKey(usize),
    #[error("users[{0}].properties.{1}: value longer than 8192 characters")]
    PropertyTooLong(usize, String),
}

impl UserUpsert {
    pub fn validate(&self, index: usize) -> Result<(), UserInputError> {
        if self.user_id.is_empty() || self.user_id.len() > MAX_USER_ID_LEN || has_nul(&self.user_id)
        {
            return Err(UserInputError::BadUserId(index));
        }
        for (key, value) in &self.properties {
            if key.is_empty() || key.len() > MAX_PROPERTY_KEY_LEN || has_nul(key) {
                return Err(UserInputError::BadPropertyKey(index));
            }
            match value {
                Value::Null => {}
                Value::String(s) if has_nul(s) => {
                    return Err(UserInputError::BadPropertyValue(index, key.clone()))
                }
                Value::String(s) if s.len() <= MAX_PROPERTY_VALUE_LEN => {}
                Value::String(_) => {
                    return Err(UserInputError::PropertyTooLong(index, key.clone()))
                }
                _ => return Err(UserInputError::BadPropertyValue(index, key.clone())),
            }
        }
        Ok(())
    }

    /// Anonymous ids are anonymous whatever the caller says; others may be flagged explicitly.
    pub fn resolved_anonymous_flag(&self) -> Option<bool> {
        if is_anonymous_id(&self.user_id) {
            Some(true)
        } else {
            self.is_anonymous
        }
    }
}
