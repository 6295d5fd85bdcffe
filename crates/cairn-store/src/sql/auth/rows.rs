//! The stored rows of access control, how they are read, and their audit after-images.

use cairn_core::Result;
use cairn_core::audit::{Change, entity, sha256_hex};
use cairn_core::auth::{
    ApiToken, Grant, Permission, ResourceType, Role, RoleAssignment, RolePermission, TokenScope, User,
};
use serde_json::{Value, json};

use crate::sql::db::{Row, SqlValue};

fn take(it: &mut impl Iterator<Item = SqlValue>) -> SqlValue {
    it.next().unwrap_or(SqlValue::Null)
}

fn opt_text(v: SqlValue) -> Result<Option<String>> {
    match v {
        SqlValue::Null => Ok(None),
        v => Ok(Some(v.into_text()?)),
    }
}

/// `auth_users`.
pub const USER_COLUMNS: &str = "user_id, username, password_hash, is_admin, created_at";

pub fn user(row: Row) -> Result<User> {
    let mut it = row.into_iter();
    Ok(User {
        id: take(&mut it).int()?,
        username: take(&mut it).into_text()?,
        password_hash: take(&mut it).into_text()?,
        is_admin: take(&mut it).int()? != 0,
        created_at: take(&mut it).int()?,
    })
}

pub fn user_change(user: &User) -> Change {
    let image = json!({
        "username": user.username,
        "password_hash_digest": sha256_hex(user.password_hash.as_bytes()),
        "is_admin": user.is_admin,
        "created_at": user.created_at,
    });
    Change { entity: entity::AUTH_USER, id: user.id.to_string(), after: Some(image) }
}

/// `auth_roles`.
pub const ROLE_COLUMNS: &str = "role_id, workspace, name, description";

/// A role without its permissions (they are read separately).
pub fn role(row: Row) -> Result<Role> {
    let mut it = row.into_iter();
    Ok(Role {
        id: take(&mut it).int()?,
        workspace: take(&mut it).into_text()?,
        name: take(&mut it).into_text()?,
        description: opt_text(take(&mut it))?,
        permissions: Vec::new(),
    })
}

pub fn role_change(role: &Role) -> Change {
    let image = json!({ "workspace": role.workspace, "name": role.name, "description": role.description });
    Change { entity: entity::AUTH_ROLE, id: role.id.to_string(), after: Some(image) }
}

/// `auth_role_permissions`.
pub const ROLE_PERMISSION_COLUMNS: &str = "role_permission_id, role_id, resource_type, resource_pattern, permission";

pub fn role_permission(row: Row) -> Result<RolePermission> {
    let mut it = row.into_iter();
    Ok(RolePermission {
        id: take(&mut it).int()?,
        role_id: take(&mut it).int()?,
        resource_type: ResourceType::parse(take(&mut it).text()?)?,
        resource_pattern: take(&mut it).into_text()?,
        permission: Permission::parse(take(&mut it).text()?)?,
    })
}

pub fn role_permission_change(p: &RolePermission) -> Change {
    let image = json!({
        "role_id": p.role_id,
        "resource_type": p.resource_type.as_str(),
        "resource_pattern": p.resource_pattern,
        "permission": p.permission.as_str(),
    });
    Change { entity: entity::AUTH_ROLE_PERMISSION, id: p.id.to_string(), after: Some(image) }
}

/// `auth_role_assignments`.
pub const ASSIGNMENT_COLUMNS: &str = "assignment_id, user_id, role_id";

pub fn assignment(row: Row) -> Result<RoleAssignment> {
    let mut it = row.into_iter();
    Ok(RoleAssignment { id: take(&mut it).int()?, user_id: take(&mut it).int()?, role_id: take(&mut it).int()? })
}

pub fn assignment_change(a: &RoleAssignment) -> Change {
    let image = json!({ "user_id": a.user_id, "role_id": a.role_id });
    Change { entity: entity::AUTH_ROLE_ASSIGNMENT, id: a.id.to_string(), after: Some(image) }
}

/// `auth_grants`.
pub const GRANT_COLUMNS: &str = "user_id, resource_type, resource_id, permission";

pub fn grant(row: Row) -> Result<Grant> {
    let mut it = row.into_iter();
    Ok(Grant {
        user_id: take(&mut it).int()?,
        resource_type: ResourceType::parse(take(&mut it).text()?)?,
        resource_id: take(&mut it).into_text()?,
        permission: Permission::parse(take(&mut it).text()?)?,
    })
}

pub fn grant_id(user_id: i64, resource_type: ResourceType, resource_id: &str) -> String {
    format!("{user_id}/{}/{resource_id}", resource_type.as_str())
}

pub fn grant_change(g: &Grant) -> Change {
    let image = json!({
        "user_id": g.user_id,
        "resource_type": g.resource_type.as_str(),
        "resource_id": g.resource_id,
        "permission": g.permission.as_str(),
    });
    Change { entity: entity::AUTH_GRANT, id: grant_id(g.user_id, g.resource_type, &g.resource_id), after: Some(image) }
}

/// `auth_tokens`, with the last use joined from `auth_token_use`.
pub const TOKEN_COLUMNS: &str = "t.token_id, t.user_id, t.scope, t.secret_digest, t.created_at, t.expires_at, \
                                 t.revoked_at, u.last_used_at";
/// The table expression [`TOKEN_COLUMNS`] reads from.
pub const TOKEN_FROM: &str = "auth_tokens t LEFT JOIN auth_token_use u ON u.token_id = t.token_id";

pub fn token(row: Row) -> Result<ApiToken> {
    let mut it = row.into_iter();
    Ok(ApiToken {
        id: take(&mut it).into_text()?,
        user_id: take(&mut it).int()?,
        scope: TokenScope::parse(take(&mut it).text()?)?,
        secret_digest: take(&mut it).into_text()?,
        created_at: take(&mut it).int()?,
        expires_at: take(&mut it).opt_int()?,
        revoked_at: take(&mut it).opt_int()?,
        last_used_at: take(&mut it).opt_int()?,
    })
}

pub fn token_change(t: &ApiToken) -> Change {
    let image: Value = json!({
        "user_id": t.user_id,
        "scope": t.scope.as_string(),
        "secret_digest": t.secret_digest,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    });
    Change { entity: entity::AUTH_TOKEN, id: t.id.clone(), after: Some(image) }
}

/// The audit change recording that the entity of `change` was removed.
pub fn removed(change: Change) -> Change {
    Change { after: None, ..change }
}
