//! Access control over SQL: users, roles, role permissions and assignments, direct grants and
//! API tokens. [`rows`] reads rows and builds their audit after-images, [`reads`] the queries,
//! [`writes`] the audited write requests.

pub mod reads;
pub mod rows;
pub mod writes;

use async_trait::async_trait;
use cairn_core::Result;
use cairn_core::audit::Verifier;
use cairn_core::auth::{
    ApiToken, AuthData, AuthStore, NewToken, NewUser, Permission, ResourceType, Role, RoleAssignment, RolePermission,
    RoleUpdate, User,
};
use cairn_core::model::{Actor, Millis};

use crate::sql::SqlStore;
use crate::sql::db::{Db, SqlValue};

/// Hands the verifier every access-control row as stored (called from `audit::verify`). Token
/// last-use times are not audited and not checked.
pub fn verify_live(db: &mut dyn Db, verifier: &mut Verifier) -> Result<()> {
    let data = reads::all(db)?;
    for user in &data.users {
        let c = rows::user_change(user);
        verifier.live_entity(c.entity, &c.id, &c.after.unwrap_or_default());
    }
    for role in &data.roles {
        let c = rows::role_change(role);
        verifier.live_entity(c.entity, &c.id, &c.after.unwrap_or_default());
        for p in &role.permissions {
            let c = rows::role_permission_change(p);
            verifier.live_entity(c.entity, &c.id, &c.after.unwrap_or_default());
        }
    }
    // Permissions of a role that no longer exists are rows the log cannot explain either.
    for p in reads::role_permissions(db)?.iter().filter(|p| !data.roles.iter().any(|r| r.id == p.role_id)) {
        let c = rows::role_permission_change(p);
        verifier.live_entity(c.entity, &c.id, &c.after.unwrap_or_default());
    }
    let changes = data
        .assignments
        .iter()
        .map(rows::assignment_change)
        .chain(data.grants.iter().map(rows::grant_change))
        .chain(data.tokens.iter().map(rows::token_change));
    for c in changes {
        verifier.live_entity(c.entity, &c.id, &c.after.unwrap_or_default());
    }
    Ok(())
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn auth_data(&self) -> Result<AuthData> {
        self.read_consistent(reads::all).await
    }

    async fn create_user(&self, actor: &Actor, user: NewUser) -> Result<User> {
        cairn_core::auth::validate_username(&user.username)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::create_user(db, tx, &actor, &user)).await
    }

    async fn set_password(&self, actor: &Actor, username: &str, password_hash: &str) -> Result<()> {
        let (actor, username, hash) = (actor.clone(), username.to_owned(), password_hash.to_owned());
        self.writer.write(move |db, tx| writes::update_user(db, tx, &actor, &username, Some(&hash), None)).await
    }

    async fn set_admin(&self, actor: &Actor, username: &str, is_admin: bool) -> Result<()> {
        let (actor, username) = (actor.clone(), username.to_owned());
        self.writer.write(move |db, tx| writes::update_user(db, tx, &actor, &username, None, Some(is_admin))).await
    }

    async fn delete_user(&self, actor: &Actor, username: &str) -> Result<()> {
        let (actor, username) = (actor.clone(), username.to_owned());
        self.writer.write(move |db, tx| writes::delete_user(db, tx, &actor, &username)).await
    }

    async fn create_role(&self, actor: &Actor, workspace: &str, name: &str, description: Option<&str>) -> Result<Role> {
        let (actor, workspace, name) = (actor.clone(), workspace.to_owned(), name.to_owned());
        let description = description.map(str::to_owned);
        self.writer
            .write(move |db, tx| writes::create_role(db, tx, &actor, &workspace, &name, description.as_deref()))
            .await
    }

    async fn update_role(&self, actor: &Actor, role_id: i64, update: RoleUpdate) -> Result<Role> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::update_role(db, tx, &actor, role_id, &update)).await
    }

    async fn delete_role(&self, actor: &Actor, role_id: i64) -> Result<()> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::delete_role(db, tx, &actor, role_id)).await
    }

    async fn add_role_permission(
        &self,
        actor: &Actor,
        role_id: i64,
        resource_type: ResourceType,
        resource_pattern: &str,
        permission: Permission,
    ) -> Result<RolePermission> {
        let (actor, pattern) = (actor.clone(), resource_pattern.to_owned());
        self.writer
            .write(move |db, tx| {
                writes::add_role_permission(db, tx, &actor, role_id, resource_type, &pattern, permission)
            })
            .await
    }

    async fn update_role_permission(&self, actor: &Actor, id: i64, permission: Permission) -> Result<RolePermission> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::update_role_permission(db, tx, &actor, id, permission)).await
    }

    async fn remove_role_permission(&self, actor: &Actor, id: i64) -> Result<()> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::remove_role_permission(db, tx, &actor, id)).await
    }

    async fn assign_role(&self, actor: &Actor, username: &str, role_id: i64) -> Result<RoleAssignment> {
        let (actor, username) = (actor.clone(), username.to_owned());
        self.writer.write(move |db, tx| writes::assign_role(db, tx, &actor, &username, role_id)).await
    }

    async fn unassign_role(&self, actor: &Actor, username: &str, role_id: i64) -> Result<()> {
        let (actor, username) = (actor.clone(), username.to_owned());
        self.writer.write(move |db, tx| writes::unassign_role(db, tx, &actor, &username, role_id)).await
    }

    async fn grant(
        &self,
        actor: &Actor,
        username: &str,
        resource_type: ResourceType,
        resource_id: &str,
        permission: Permission,
    ) -> Result<()> {
        let (actor, username, id) = (actor.clone(), username.to_owned(), resource_id.to_owned());
        self.writer.write(move |db, tx| writes::grant(db, tx, &actor, &username, resource_type, &id, permission)).await
    }

    async fn revoke(
        &self,
        actor: &Actor,
        username: &str,
        resource_type: ResourceType,
        resource_id: &str,
    ) -> Result<()> {
        let (actor, username, id) = (actor.clone(), username.to_owned(), resource_id.to_owned());
        self.writer.write(move |db, tx| writes::revoke(db, tx, &actor, &username, resource_type, &id)).await
    }

    async fn create_token(&self, actor: &Actor, token: NewToken) -> Result<ApiToken> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::create_token(db, tx, &actor, &token)).await
    }

    async fn revoke_token(&self, actor: &Actor, token_id: &str) -> Result<()> {
        let (actor, id) = (actor.clone(), token_id.to_owned());
        self.writer.write(move |db, tx| writes::revoke_token(db, tx, &actor, &id)).await
    }

    async fn touch_token(&self, token_id: &str, at: Millis) -> Result<()> {
        let id = token_id.to_owned();
        self.writer.write(move |db, _tx| writes::touch_token(db, &id, at)).await
    }

    async fn run_experiment(&self, run_id: &str) -> Result<Option<String>> {
        let run_id = run_id.to_owned();
        self.read(move |db| {
            let rows = db.query("SELECT experiment_id FROM runs WHERE run_id = $1", &[run_id.as_str().into()])?;
            match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
                Some(SqlValue::Int(id)) => Ok(Some(id.to_string())),
                Some(other) => Ok(Some(other.into_text()?)),
                None => Ok(None),
            }
        })
        .await
    }
}
