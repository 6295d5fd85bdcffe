//! Access-control writes, run by the writer: each one audited event with the after-image of
//! every row it wrote or removed.

use cairn_core::audit::{Change, Payload};
use cairn_core::auth::{
    ApiToken, Grant, NewToken, NewUser, Permission, ResourceType, Role, RoleAssignment, RolePermission, RoleUpdate,
    User, validate_username,
};
use cairn_core::model::{Actor, Millis};
use cairn_core::{Error, Result};

use crate::sql::audit::NewEvent;
use crate::sql::auth::{reads, rows};
use crate::sql::common::next_id;
use crate::sql::db::Db;
use crate::sql::writer::WriteTx;

fn audit(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    action: &str,
    first: &Change,
    changes: Vec<Change>,
) -> Result<()> {
    let (entity_type, entity_id) = (first.entity, first.id.clone());
    let event = NewEvent { actor: &actor.0, action, entity_type, entity_id: &entity_id, payload: Payload::of(changes) };
    tx.append(db, event)
}

pub fn create_user(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewUser) -> Result<User> {
    validate_username(&new.username)?;
    if !db.query("SELECT 1 FROM auth_users WHERE username = $1", &[new.username.as_str().into()])?.is_empty() {
        return Err(Error::AlreadyExists(format!("User '{}' already exists", new.username)));
    }
    let user = User {
        id: next_id(db, "auth_users", "user_id", 1)?,
        username: new.username.clone(),
        is_admin: new.is_admin,
        password_hash: new.password_hash.clone(),
        created_at: tx.now(),
    };
    db.execute(
        "INSERT INTO auth_users (user_id, username, password_hash, is_admin, created_at, seq) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            user.id.into(),
            user.username.as_str().into(),
            user.password_hash.as_str().into(),
            i64::from(user.is_admin).into(),
            user.created_at.into(),
            tx.seq().into(),
        ],
    )?;
    let change = rows::user_change(&user);
    audit(db, tx, actor, "create_user", &change, vec![change.clone()])?;
    Ok(user)
}

/// Rewrites a user's password hash or admin flag.
pub fn update_user(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    username: &str,
    password_hash: Option<&str>,
    is_admin: Option<bool>,
) -> Result<()> {
    let mut user = reads::user_by_name(db, username)?;
    if let Some(hash) = password_hash {
        user.password_hash = hash.to_owned();
    }
    if let Some(admin) = is_admin {
        user.is_admin = admin;
    }
    db.execute(
        "UPDATE auth_users SET password_hash = $1, is_admin = $2, seq = $3 WHERE user_id = $4",
        &[user.password_hash.as_str().into(), i64::from(user.is_admin).into(), tx.seq().into(), user.id.into()],
    )?;
    let action = if password_hash.is_some() { "update_user_password" } else { "update_user_admin" };
    let change = rows::user_change(&user);
    audit(db, tx, actor, action, &change, vec![change.clone()])
}

pub fn delete_user(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, username: &str) -> Result<()> {
    let user = reads::user_by_name(db, username)?;
    let first = rows::removed(rows::user_change(&user));
    let mut changes = vec![first.clone()];
    for g in reads::grants(db)?.iter().filter(|g| g.user_id == user.id) {
        changes.push(rows::removed(rows::grant_change(g)));
    }
    for a in reads::assignments(db)?.iter().filter(|a| a.user_id == user.id) {
        changes.push(rows::removed(rows::assignment_change(a)));
    }
    for t in reads::tokens(db)?.iter().filter(|t| t.user_id == user.id) {
        changes.push(rows::removed(rows::token_change(t)));
    }
    for table in ["auth_grants", "auth_role_assignments", "auth_users"] {
        // `table` is one of three constants.
        db.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[user.id.into()])?;
    }
    db.execute(
        "DELETE FROM auth_token_use WHERE token_id IN (SELECT token_id FROM auth_tokens WHERE user_id = $1)",
        &[user.id.into()],
    )?;
    db.execute("DELETE FROM auth_tokens WHERE user_id = $1", &[user.id.into()])?;
    audit(db, tx, actor, "delete_user", &first, changes)
}

fn check_role_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("Role name must not be empty"));
    }
    Ok(())
}

fn role_name_taken(db: &mut dyn Db, workspace: &str, name: &str, except: i64) -> Result<bool> {
    let rows = db.query(
        "SELECT 1 FROM auth_roles WHERE workspace = $1 AND name = $2 AND role_id <> $3",
        &[workspace.into(), name.into(), except.into()],
    )?;
    Ok(!rows.is_empty())
}

pub fn create_role(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    workspace: &str,
    name: &str,
    description: Option<&str>,
) -> Result<Role> {
    check_role_name(name)?;
    if workspace.is_empty() {
        return Err(Error::invalid("Workspace must not be empty"));
    }
    if role_name_taken(db, workspace, name, -1)? {
        return Err(Error::AlreadyExists(format!("Role '{name}' already exists in workspace '{workspace}'")));
    }
    let role = Role {
        id: next_id(db, "auth_roles", "role_id", 1)?,
        name: name.to_owned(),
        workspace: workspace.to_owned(),
        description: description.map(str::to_owned),
        permissions: Vec::new(),
    };
    db.execute(
        "INSERT INTO auth_roles (role_id, workspace, name, description, seq) VALUES ($1, $2, $3, $4, $5)",
        &[role.id.into(), workspace.into(), name.into(), role.description.clone().into(), tx.seq().into()],
    )?;
    let change = rows::role_change(&role);
    audit(db, tx, actor, "create_role", &change, vec![change.clone()])?;
    Ok(role)
}

pub fn update_role(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    role_id: i64,
    update: &RoleUpdate,
) -> Result<Role> {
    let mut role = reads::role(db, role_id)?;
    if let Some(name) = &update.name {
        check_role_name(name)?;
        if role_name_taken(db, &role.workspace, name, role_id)? {
            return Err(Error::AlreadyExists(format!(
                "Role '{name}' already exists in workspace '{}'",
                role.workspace
            )));
        }
        role.name = name.clone();
    }
    if let Some(description) = &update.description {
        role.description = Some(description.clone());
    }
    db.execute(
        "UPDATE auth_roles SET name = $1, description = $2, seq = $3 WHERE role_id = $4",
        &[role.name.as_str().into(), role.description.clone().into(), tx.seq().into(), role_id.into()],
    )?;
    let change = rows::role_change(&role);
    audit(db, tx, actor, "update_role", &change, vec![change.clone()])?;
    Ok(role)
}

pub fn delete_role(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, role_id: i64) -> Result<()> {
    let role = reads::role(db, role_id)?;
    let first = rows::removed(rows::role_change(&role));
    let mut changes = vec![first.clone()];
    for p in &role.permissions {
        changes.push(rows::removed(rows::role_permission_change(p)));
    }
    for a in reads::assignments(db)?.iter().filter(|a| a.role_id == role_id) {
        changes.push(rows::removed(rows::assignment_change(a)));
    }
    for table in ["auth_role_permissions", "auth_role_assignments", "auth_roles"] {
        // `table` is one of three constants.
        db.execute(&format!("DELETE FROM {table} WHERE role_id = $1"), &[role_id.into()])?;
    }
    audit(db, tx, actor, "delete_role", &first, changes)
}

pub fn add_role_permission(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    role_id: i64,
    resource_type: ResourceType,
    pattern: &str,
    permission: Permission,
) -> Result<RolePermission> {
    resource_type.check_grantable(permission)?;
    resource_type.check_pattern(pattern)?;
    reads::role(db, role_id)?;
    let existing = db.query(
        "SELECT 1 FROM auth_role_permissions WHERE role_id = $1 AND resource_type = $2 AND resource_pattern = $3",
        &[role_id.into(), resource_type.as_str().into(), pattern.into()],
    )?;
    if !existing.is_empty() {
        return Err(Error::AlreadyExists(format!(
            "Role {role_id} already has a permission on {} '{pattern}'",
            resource_type.as_str()
        )));
    }
    let p = RolePermission {
        id: next_id(db, "auth_role_permissions", "role_permission_id", 1)?,
        role_id,
        resource_type,
        resource_pattern: pattern.to_owned(),
        permission,
    };
    db.execute(
        "INSERT INTO auth_role_permissions (role_permission_id, role_id, resource_type, resource_pattern, permission, seq) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[p.id.into(), role_id.into(), resource_type.as_str().into(), pattern.into(), permission.as_str().into(), tx.seq().into()],
    )?;
    let change = rows::role_permission_change(&p);
    audit(db, tx, actor, "add_role_permission", &change, vec![change.clone()])?;
    Ok(p)
}

pub fn update_role_permission(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    id: i64,
    permission: Permission,
) -> Result<RolePermission> {
    let mut p = reads::role_permission(db, id)?;
    p.resource_type.check_grantable(permission)?;
    p.permission = permission;
    db.execute(
        "UPDATE auth_role_permissions SET permission = $1, seq = $2 WHERE role_permission_id = $3",
        &[permission.as_str().into(), tx.seq().into(), id.into()],
    )?;
    let change = rows::role_permission_change(&p);
    audit(db, tx, actor, "update_role_permission", &change, vec![change.clone()])?;
    Ok(p)
}

pub fn remove_role_permission(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64) -> Result<()> {
    let p = reads::role_permission(db, id)?;
    db.execute("DELETE FROM auth_role_permissions WHERE role_permission_id = $1", &[id.into()])?;
    let change = rows::removed(rows::role_permission_change(&p));
    audit(db, tx, actor, "remove_role_permission", &change, vec![change.clone()])
}

pub fn assign_role(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    username: &str,
    role_id: i64,
) -> Result<RoleAssignment> {
    let user = reads::user_by_name(db, username)?;
    reads::role(db, role_id)?;
    if reads::assignments(db)?.iter().any(|a| a.user_id == user.id && a.role_id == role_id) {
        return Err(Error::AlreadyExists(format!("User '{username}' already has role {role_id}")));
    }
    let a = RoleAssignment { id: next_id(db, "auth_role_assignments", "assignment_id", 1)?, user_id: user.id, role_id };
    db.execute(
        "INSERT INTO auth_role_assignments (assignment_id, user_id, role_id, seq) VALUES ($1, $2, $3, $4)",
        &[a.id.into(), user.id.into(), role_id.into(), tx.seq().into()],
    )?;
    let change = rows::assignment_change(&a);
    audit(db, tx, actor, "assign_role", &change, vec![change.clone()])?;
    Ok(a)
}

pub fn unassign_role(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, username: &str, role_id: i64) -> Result<()> {
    let user = reads::user_by_name(db, username)?;
    let assignments = reads::assignments(db)?;
    let a = assignments
        .iter()
        .find(|a| a.user_id == user.id && a.role_id == role_id)
        .ok_or_else(|| Error::not_found(format!("User '{username}' does not have role {role_id}")))?;
    db.execute("DELETE FROM auth_role_assignments WHERE assignment_id = $1", &[a.id.into()])?;
    let change = rows::removed(rows::assignment_change(a));
    audit(db, tx, actor, "unassign_role", &change, vec![change.clone()])
}

pub fn grant(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    username: &str,
    resource_type: ResourceType,
    resource_id: &str,
    permission: Permission,
) -> Result<()> {
    if resource_type == ResourceType::Workspace {
        return Err(Error::invalid(
            "Direct grants name an experiment or a registered model; use a role for the workspace",
        ));
    }
    resource_type.check_grantable(permission)?;
    resource_type.check_pattern(resource_id)?;
    let user = reads::user_by_name(db, username)?;
    let g = Grant { user_id: user.id, resource_type, resource_id: resource_id.to_owned(), permission };
    db.execute(
        "DELETE FROM auth_grants WHERE user_id = $1 AND resource_type = $2 AND resource_id = $3",
        &[user.id.into(), resource_type.as_str().into(), resource_id.into()],
    )?;
    db.execute(
        "INSERT INTO auth_grants (user_id, resource_type, resource_id, permission, seq) VALUES ($1, $2, $3, $4, $5)",
        &[
            user.id.into(),
            resource_type.as_str().into(),
            resource_id.into(),
            permission.as_str().into(),
            tx.seq().into(),
        ],
    )?;
    let change = rows::grant_change(&g);
    audit(db, tx, actor, "grant_permission", &change, vec![change.clone()])
}

pub fn revoke(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    username: &str,
    resource_type: ResourceType,
    resource_id: &str,
) -> Result<()> {
    let user = reads::user_by_name(db, username)?;
    let grants = reads::grants(db)?;
    let g = grants
        .iter()
        .find(|g| g.user_id == user.id && g.resource_type == resource_type && g.resource_id == resource_id)
        .ok_or_else(|| {
            Error::not_found(format!(
                "User '{username}' has no direct permission on {} '{resource_id}'",
                resource_type.as_str()
            ))
        })?;
    db.execute(
        "DELETE FROM auth_grants WHERE user_id = $1 AND resource_type = $2 AND resource_id = $3",
        &[user.id.into(), resource_type.as_str().into(), resource_id.into()],
    )?;
    let change = rows::removed(rows::grant_change(g));
    audit(db, tx, actor, "revoke_permission", &change, vec![change.clone()])
}

pub fn create_token(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewToken) -> Result<ApiToken> {
    let user = reads::user_by_name(db, &new.username)?;
    if new.expires_at.is_some_and(|t| t <= tx.now()) {
        return Err(Error::invalid("A token's expiry must be in the future"));
    }
    let token = ApiToken {
        id: new.id.clone(),
        user_id: user.id,
        scope: new.scope.clone(),
        secret_digest: new.secret_digest.clone(),
        created_at: tx.now(),
        expires_at: new.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    db.execute(
        "INSERT INTO auth_tokens (token_id, user_id, scope, secret_digest, created_at, expires_at, revoked_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            token.id.as_str().into(),
            user.id.into(),
            token.scope.as_string().into(),
            token.secret_digest.as_str().into(),
            token.created_at.into(),
            token.expires_at.into(),
            token.revoked_at.into(),
            tx.seq().into(),
        ],
    )?;
    let change = rows::token_change(&token);
    audit(db, tx, actor, "create_token", &change, vec![change.clone()])?;
    Ok(token)
}

pub fn revoke_token(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, token_id: &str) -> Result<()> {
    let mut token = reads::token(db, token_id)?;
    if token.revoked_at.is_some() {
        return Ok(());
    }
    token.revoked_at = Some(tx.now());
    db.execute(
        "UPDATE auth_tokens SET revoked_at = $1, seq = $2 WHERE token_id = $3",
        &[token.revoked_at.into(), tx.seq().into(), token_id.into()],
    )?;
    let change = rows::token_change(&token);
    audit(db, tx, actor, "revoke_token", &change, vec![change.clone()])
}

/// Records a token's last use; no audit event (see `auth_token_use` in the migration).
pub fn touch_token(db: &mut dyn Db, token_id: &str, at: Millis) -> Result<()> {
    if db.query("SELECT 1 FROM auth_tokens WHERE token_id = $1", &[token_id.into()])?.is_empty() {
        return Ok(());
    }
    db.execute("DELETE FROM auth_token_use WHERE token_id = $1", &[token_id.into()])?;
    db.execute("INSERT INTO auth_token_use (token_id, last_used_at) VALUES ($1, $2)", &[token_id.into(), at.into()])?;
    Ok(())
}

/// Moves the grants and exact-name role permissions on registered model `name` to `new_name`,
/// in the rename's transaction, as MLflow's auth app does: a model is granted by name, so
/// without this a rename would strip everyone but admins of their access, and whoever next
/// creates a model under the old name would inherit it. Whatever still named `new_name` (left
/// from a deleted model of that name) is replaced, so the renamed model keeps exactly the
/// access it had. Returns the audit changes, for the rename's event.
pub fn follow_model_rename(db: &mut dyn Db, seq: i64, name: &str, new_name: &str) -> Result<Vec<Change>> {
    let mut changes = drop_model_access(db, new_name)?;
    let model = ResourceType::RegisteredModel;
    for mut g in reads::grants(db)?.into_iter().filter(|g| g.resource_type == model && g.resource_id == name) {
        changes.push(rows::removed(rows::grant_change(&g)));
        g.resource_id = new_name.to_owned();
        db.execute(
            "UPDATE auth_grants SET resource_id = $1, seq = $2 WHERE user_id = $3 AND resource_type = $4 AND resource_id = $5",
            &[new_name.into(), seq.into(), g.user_id.into(), model.as_str().into(), name.into()],
        )?;
        changes.push(rows::grant_change(&g));
    }
    for mut p in
        reads::role_permissions(db)?.into_iter().filter(|p| p.resource_type == model && p.resource_pattern == name)
    {
        p.resource_pattern = new_name.to_owned();
        db.execute(
            "UPDATE auth_role_permissions SET resource_pattern = $1, seq = $2 WHERE role_permission_id = $3",
            &[new_name.into(), seq.into(), p.id.into()],
        )?;
        changes.push(rows::role_permission_change(&p));
    }
    Ok(changes)
}

/// Removes the grants and exact-name role permissions on registered model `name`, in its
/// deletion's transaction (as MLflow's auth app does): names are reused, and a new model under
/// the name must not inherit the access the old one gave. Returns the audit changes.
pub fn drop_model_access(db: &mut dyn Db, name: &str) -> Result<Vec<Change>> {
    let model = ResourceType::RegisteredModel;
    let mut changes = Vec::new();
    for g in reads::grants(db)?.iter().filter(|g| g.resource_type == model && g.resource_id == name) {
        changes.push(rows::removed(rows::grant_change(g)));
    }
    for p in reads::role_permissions(db)?.iter().filter(|p| p.resource_type == model && p.resource_pattern == name) {
        changes.push(rows::removed(rows::role_permission_change(p)));
    }
    if !changes.is_empty() {
        db.execute(
            "DELETE FROM auth_grants WHERE resource_type = $1 AND resource_id = $2",
            &[model.as_str().into(), name.into()],
        )?;
        db.execute(
            "DELETE FROM auth_role_permissions WHERE resource_type = $1 AND resource_pattern = $2",
            &[model.as_str().into(), name.into()],
        )?;
    }
    Ok(changes)
}
