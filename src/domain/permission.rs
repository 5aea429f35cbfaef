//! Permissions an API key can hold, and what a JWT role implies.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    IntegrationsRead,
    IntegrationsWrite,
    JobsRead,
    JobsWrite,
    UsersRead,
    UsersWrite,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::IntegrationsRead,
        Permission::IntegrationsWrite,
        Permission::JobsRead,
        Permission::JobsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::IntegrationsRead => "integrations:read",
            Permission::IntegrationsWrite => "integrations:write",
            Permission::JobsRead => "jobs:read",
            Permission::JobsWrite => "jobs:write",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
        }
    }

    /// Writes need the admin or owner role when the caller is a JWT user.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Permission::IntegrationsWrite | Permission::JobsWrite | Permission::UsersWrite
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown permission `{0}` (expected one of: integrations:read, integrations:write, jobs:read, jobs:write, users:read, users:write)")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// Parses a comma-separated permission list as stored and as typed on the CLI.
pub fn parse_permission_list(list: &str) -> Result<Vec<Permission>, UnknownPermission> {
    let mut permissions: Vec<Permission> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Permission::from_str)
        .collect::<Result<_, _>>()?;
    permissions.sort();
    permissions.dedup();
    Ok(permissions)
}

pub fn format_permission_list(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A team role carried by a UI-issued JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn allows(self, permission: Permission) -> bool {
        !permission.is_write() || matches!(self, Role::Owner | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trips() {
        let parsed = parse_permission_list("users:read, integrations:write,users:read").unwrap();
        assert_eq!(
            format_permission_list(&parsed),
            "integrations:write,users:read"
        );
        assert!(parse_permission_list("users:delete").is_err());
    }

    #[test]
    fn members_only_read() {
        assert!(Role::Member.allows(Permission::UsersRead));
        assert!(!Role::Member.allows(Permission::IntegrationsWrite));
        assert!(Role::Admin.allows(Permission::IntegrationsWrite));
    }
}
