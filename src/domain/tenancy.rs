//! Teams, projects and API keys: who owns what.

use serde::Serialize;

use super::permission::Permission;
use crate::timestamp::serde_iso;

#[derive(Debug, Clone, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(with = "serde_iso")]
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: String,
    pub team_id: String,
    pub name: String,
    #[serde(with = "serde_iso")]
    pub created_at: i64,
}

/// A stored API key: never the key itself, only its digest and a display prefix.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub key_prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub permissions: Vec<Permission>,
    #[serde(with = "serde_iso")]
    pub created_at: i64,
    #[serde(with = "serde_iso::option")]
    pub last_used_at: Option<i64>,
    #[serde(with = "serde_iso::option")]
    pub revoked_at: Option<i64>,
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
