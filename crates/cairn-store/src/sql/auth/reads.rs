//! Reading access-control rows.

use cairn_core::auth::{ApiToken, AuthData, Grant, Role, RoleAssignment, RolePermission, User};
use cairn_core::{Error, Result};

use crate::sql::auth::rows;
use crate::sql::db::Db;

pub fn users(db: &mut dyn Db) -> Result<Vec<User>> {
    let sql = format!("SELECT {} FROM auth_users ORDER BY user_id", rows::USER_COLUMNS);
    db.query(&sql, &[])?.into_iter().map(rows::user).collect()
}

pub fn user_by_name(db: &mut dyn Db, username: &str) -> Result<User> {
    let sql = format!("SELECT {} FROM auth_users WHERE username = $1", rows::USER_COLUMNS);
    db.query(&sql, &[username.into()])?
        .into_iter()
        .next()
        .map(rows::user)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("User with username={username} not found")))
}

pub fn role_permissions(db: &mut dyn Db) -> Result<Vec<RolePermission>> {
    let sql =
        format!("SELECT {} FROM auth_role_permissions ORDER BY role_permission_id", rows::ROLE_PERMISSION_COLUMNS);
    db.query(&sql, &[])?.into_iter().map(rows::role_permission).collect()
}

pub fn role_permission(db: &mut dyn Db, id: i64) -> Result<RolePermission> {
    let sql =
        format!("SELECT {} FROM auth_role_permissions WHERE role_permission_id = $1", rows::ROLE_PERMISSION_COLUMNS);
    db.query(&sql, &[id.into()])?
        .into_iter()
        .next()
        .map(rows::role_permission)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("Role permission with id={id} not found")))
}

/// Roles with their permissions.
pub fn roles(db: &mut dyn Db) -> Result<Vec<Role>> {
    let sql = format!("SELECT {} FROM auth_roles ORDER BY role_id", rows::ROLE_COLUMNS);
    let mut roles: Vec<Role> = db.query(&sql, &[])?.into_iter().map(rows::role).collect::<Result<_>>()?;
    for p in role_permissions(db)? {
        if let Some(role) = roles.iter_mut().find(|r| r.id == p.role_id) {
            role.permissions.push(p);
        }
    }
    Ok(roles)
}

/// One role with its permissions.
pub fn role(db: &mut dyn Db, role_id: i64) -> Result<Role> {
    let sql = format!("SELECT {} FROM auth_roles WHERE role_id = $1", rows::ROLE_COLUMNS);
    let mut role = db
        .query(&sql, &[role_id.into()])?
        .into_iter()
        .next()
        .map(rows::role)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("Role with id={role_id} not found")))?;
    let sql = format!(
        "SELECT {} FROM auth_role_permissions WHERE role_id = $1 ORDER BY role_permission_id",
        rows::ROLE_PERMISSION_COLUMNS
    );
    role.permissions =
        db.query(&sql, &[role_id.into()])?.into_iter().map(rows::role_permission).collect::<Result<_>>()?;
    Ok(role)
}

pub fn assignments(db: &mut dyn Db) -> Result<Vec<RoleAssignment>> {
    let sql = format!("SELECT {} FROM auth_role_assignments ORDER BY assignment_id", rows::ASSIGNMENT_COLUMNS);
    db.query(&sql, &[])?.into_iter().map(rows::assignment).collect()
}

pub fn grants(db: &mut dyn Db) -> Result<Vec<Grant>> {
    let sql = format!("SELECT {} FROM auth_grants ORDER BY user_id, resource_type, resource_id", rows::GRANT_COLUMNS);
    db.query(&sql, &[])?.into_iter().map(rows::grant).collect()
}

pub fn tokens(db: &mut dyn Db) -> Result<Vec<ApiToken>> {
    let sql = format!("SELECT {} FROM {} ORDER BY t.created_at, t.token_id", rows::TOKEN_COLUMNS, rows::TOKEN_FROM);
    db.query(&sql, &[])?.into_iter().map(rows::token).collect()
}

pub fn token(db: &mut dyn Db, token_id: &str) -> Result<ApiToken> {
    let sql = format!("SELECT {} FROM {} WHERE t.token_id = $1", rows::TOKEN_COLUMNS, rows::TOKEN_FROM);
    db.query(&sql, &[token_id.into()])?
        .into_iter()
        .next()
        .map(rows::token)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("Token '{token_id}' not found")))
}

/// Everything, for the server's in-memory copy. Call inside one read snapshot.
pub fn all(db: &mut dyn Db) -> Result<AuthData> {
    Ok(AuthData {
        users: users(db)?,
        roles: roles(db)?,
        assignments: assignments(db)?,
        grants: grants(db)?,
        tokens: tokens(db)?,
    })
}
