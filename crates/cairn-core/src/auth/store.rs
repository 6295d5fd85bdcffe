//! The access-control store. Every change is one audited event on the same hash chain as the
//! tracking data; the one exception is a token's last use, an operational timestamp that is
//! written at most once a minute per token and left out of the chain.

use async_trait::async_trait;

use crate::Result;
use crate::auth::{
    ApiToken, AuthData, NewToken, NewUser, Permission, ResourceType, Role, RoleAssignment, RolePermission, User,
};
use crate::model::{Actor, Millis};

/// A change to a role's name or description; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Users, roles, grants and tokens.
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Every access-control row, read in one snapshot.
    async fn auth_data(&self) -> Result<AuthData>;

    /// Creates a user; a taken name is `AlreadyExists`.
    async fn create_user(&self, actor: &Actor, user: NewUser) -> Result<User>;
    /// Replaces a user's password hash.
    async fn set_password(&self, actor: &Actor, username: &str, password_hash: &str) -> Result<()>;
    /// Makes a user an admin or not.
    async fn set_admin(&self, actor: &Actor, username: &str, is_admin: bool) -> Result<()>;
    /// Deletes a user with their grants, role assignments and tokens.
    async fn delete_user(&self, actor: &Actor, username: &str) -> Result<()>;

    /// Creates a role in a workspace; a taken name there is `AlreadyExists`.
    async fn create_role(&self, actor: &Actor, workspace: &str, name: &str, description: Option<&str>) -> Result<Role>;
    /// Renames a role or changes its description.
    async fn update_role(&self, actor: &Actor, role_id: i64, update: RoleUpdate) -> Result<Role>;
    /// Deletes a role with its permissions and assignments.
    async fn delete_role(&self, actor: &Actor, role_id: i64) -> Result<()>;
    /// Adds a permission to a role.
    async fn add_role_permission(
        &self,
        actor: &Actor,
        role_id: i64,
        resource_type: ResourceType,
        resource_pattern: &str,
        permission: Permission,
    ) -> Result<RolePermission>;
    /// Changes the level of a role permission.
    async fn update_role_permission(&self, actor: &Actor, id: i64, permission: Permission) -> Result<RolePermission>;
    /// Removes a role permission.
    async fn remove_role_permission(&self, actor: &Actor, id: i64) -> Result<()>;
    /// Assigns a role to a user; assigning it twice is `AlreadyExists`.
    async fn assign_role(&self, actor: &Actor, username: &str, role_id: i64) -> Result<RoleAssignment>;
    /// Takes a role from a user.
    async fn unassign_role(&self, actor: &Actor, username: &str, role_id: i64) -> Result<()>;

    /// Grants a user a level on one resource (or `*`), replacing an earlier grant there.
    async fn grant(
        &self,
        actor: &Actor,
        username: &str,
        resource_type: ResourceType,
        resource_id: &str,
        permission: Permission,
    ) -> Result<()>;
    /// Removes a user's direct grant on a resource; `NotFound` if there is none.
    async fn revoke(&self, actor: &Actor, username: &str, resource_type: ResourceType, resource_id: &str)
    -> Result<()>;

    /// Stores a new token (its secret digest only).
    async fn create_token(&self, actor: &Actor, token: NewToken) -> Result<ApiToken>;
    /// Revokes a token; revoking one twice is a no-op that is not audited again.
    async fn revoke_token(&self, actor: &Actor, token_id: &str) -> Result<()>;
    /// Records that a token authenticated a request at `at` (not audited, see the module).
    async fn touch_token(&self, token_id: &str, at: Millis) -> Result<()>;

    /// The experiment a run belongs to, if the run exists. Runs never move, so callers may
    /// remember the answer.
    async fn run_experiment(&self, run_id: &str) -> Result<Option<String>>;
}
