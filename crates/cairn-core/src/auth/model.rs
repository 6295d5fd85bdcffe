//! The stored shapes of access control: users, roles, their permissions and assignments, direct
//! grants and API tokens. Secrets appear only as digests or hashes, and `Debug` never shows them.

use crate::auth::{Permission, ResourceType};
use crate::model::Millis;
use crate::{Error, Result};

/// A user who can sign in. The password hash is the PHC string of an argon2id hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub password_hash: String,
    pub created_at: Millis,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

/// A user to create.
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser").field("username", &self.username).field("is_admin", &self.is_admin).finish()
    }
}

/// A named set of permissions that users are assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub description: Option<String>,
    pub permissions: Vec<RolePermission>,
}

/// One permission of a role: a level on the resources of a type matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePermission {
    pub id: i64,
    pub role_id: i64,
    pub resource_type: ResourceType,
    /// A resource id (experiment id, registered model name) or `*`.
    pub resource_pattern: String,
    pub permission: Permission,
}

/// A user's membership of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: i64,
    pub user_id: i64,
    pub role_id: i64,
}

/// A permission given to one user directly on one resource (or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_id: i64,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub permission: Permission,
}

/// What an API token may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Reads only, within what its user may read.
    Read,
    /// Everything its user may do.
    Write,
    /// Posting predictions for one deployment, and nothing else.
    Predictions(String),
}

impl TokenScope {
    /// The scope as written on the command line and stored.
    pub fn as_string(&self) -> String {
        match self {
            TokenScope::Read => "read".to_owned(),
            TokenScope::Write => "write".to_owned(),
            TokenScope::Predictions(deployment) => format!("predictions:{deployment}"),
        }
    }

    /// Parses `read`, `write` or `predictions:DEPLOYMENT`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "read" => Ok(TokenScope::Read),
            "write" => Ok(TokenScope::Write),
            other => match other.strip_prefix("predictions:") {
                Some(deployment) if !deployment.is_empty() => Ok(TokenScope::Predictions(deployment.to_owned())),
                _ => Err(Error::invalid(format!(
                    "Invalid token scope '{other}': use read, write or predictions:DEPLOYMENT"
                ))),
            },
        }
    }
}

/// An API token as stored: the secret itself is never kept, only its SHA-256 digest (the
/// secret is 256 random bits, so a slow hash would add nothing).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The public part of the token, `tok_` and 16 hex digits; also the audit actor.
    pub id: String,
    pub user_id: i64,
    pub scope: TokenScope,
    pub secret_digest: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// When the token last authenticated a request (kept to the minute, not audited).
    pub last_used_at: Option<Millis>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// Whether the token may authenticate a request at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub username: String,
    pub scope: TokenScope,
    pub secret_digest: String,
    pub expires_at: Option<Millis>,
}

/// Every access-control row, read in one snapshot. It is small (people, not runs), so the
/// server keeps a copy in memory and decides each request against it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthData {
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    pub assignments: Vec<RoleAssignment>,
    pub grants: Vec<Grant>,
    pub tokens: Vec<ApiToken>,
}

/// Checks a user name: not empty, no control characters, not one of the names Cairn's own
/// processes act under.
pub fn validate_username(username: &str) -> Result<()> {
    if username.is_empty() {
        return Err(Error::invalid("Username and password cannot be empty."));
    }
    if username.len() > 255 {
        return Err(Error::invalid("Username must be at most 255 characters"));
    }
    if username.chars().any(char::is_control) || username.contains(':') {
        return Err(Error::invalid("Username must not contain ':' or control characters"));
    }
    if RESERVED_NAMES.contains(&username) || username.starts_with("token:") {
        return Err(Error::invalid(format!("Username '{username}' is reserved")));
    }
    Ok(())
}

/// Actor names used by Cairn itself, which no user may take.
pub const RESERVED_NAMES: &[&str] = &["cairn", "cairn-gc", "anonymous"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        for s in ["read", "write", "predictions:churn-api"] {
            assert_eq!(TokenScope::parse(s).unwrap().as_string(), s);
        }
        assert!(TokenScope::parse("predictions:").is_err());
        assert!(TokenScope::parse("admin").is_err());
    }

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        assert!(validate_username("alice").is_ok());
        for bad in ["", "cairn", "anonymous", "a:b", "a\nb", "token:x"] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let user =
            User { id: 1, username: "a".into(), is_admin: false, password_hash: "$argon2id$x".into(), created_at: 0 };
        assert!(!format!("{user:?}").contains("argon2"));
    }
}
