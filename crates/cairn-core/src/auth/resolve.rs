//! Deciding what a user may do with a resource, from an [`AuthData`] snapshot.
//!
//! The rules are MLflow's: an admin may do everything; otherwise every grant that applies (the
//! user's direct grants and the permissions of the roles assigned to them, on the resource's id
//! or on `*`) is folded to the highest level, except that one `DENY` among them refuses
//! everything; with no grant at all, the server's default permission applies. A `MANAGE` on the
//! workspace slot makes a user manager of every resource, as MLflow's workspace admins are.

use crate::auth::{AuthData, Permission, ResourceType, User};

impl AuthData {
    /// The user with this name.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// The user with this id.
    pub fn user_by_id(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The permission `user` holds on the resource of `kind` named `id`.
    pub fn permission(&self, user: &User, kind: ResourceType, id: &str, default: Permission) -> Permission {
        if user.is_admin {
            return Permission::Manage;
        }
        let mut folded: Option<Permission> = None;
        let mut fold = |p: Permission| folded = Some(folded.map_or(p, |f| f.max(p)));
        let mut denied = false;
        for grant in self.grants.iter().filter(|g| g.user_id == user.id && g.resource_type == kind) {
            if grant.resource_id == id || grant.resource_id == "*" {
                denied |= grant.permission == Permission::Deny;
                fold(grant.permission);
            }
        }
        let role_ids = self.assignments.iter().filter(|a| a.user_id == user.id).map(|a| a.role_id);
        for role_id in role_ids {
            let Some(role) = self.roles.iter().find(|r| r.id == role_id) else { continue };
            for p in &role.permissions {
                let applies = (p.resource_type == kind && (p.resource_pattern == id || p.resource_pattern == "*"))
                    || (p.resource_type == ResourceType::Workspace && p.permission == Permission::Manage);
                if applies {
                    denied |= p.permission == Permission::Deny;
                    fold(p.permission);
                }
            }
        }
        if denied {
            return Permission::Deny;
        }
        folded.unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Grant, Role, RoleAssignment, RolePermission};

    fn user(id: i64, admin: bool) -> User {
        User { id, username: format!("u{id}"), is_admin: admin, password_hash: String::new(), created_at: 0 }
    }

    fn grant(user_id: i64, kind: ResourceType, id: &str, permission: Permission) -> Grant {
        Grant { user_id, resource_type: kind, resource_id: id.into(), permission }
    }

    fn data() -> AuthData {
        AuthData {
            users: vec![user(1, false), user(2, false), user(3, true)],
            grants: vec![
                grant(1, ResourceType::Experiment, "7", Permission::Edit),
                grant(1, ResourceType::Experiment, "*", Permission::Read),
                grant(2, ResourceType::Experiment, "7", Permission::Deny),
            ],
            roles: vec![Role {
                id: 10,
                name: "ml".into(),
                workspace: "default".into(),
                description: None,
                permissions: vec![RolePermission {
                    id: 1,
                    role_id: 10,
                    resource_type: ResourceType::Experiment,
                    resource_pattern: "*".into(),
                    permission: Permission::Manage,
                }],
            }],
            assignments: vec![RoleAssignment { id: 1, user_id: 2, role_id: 10 }],
            tokens: Vec::new(),
        }
    }

    #[test]
    fn grants_fold_to_the_highest_and_deny_vetoes() {
        let d = data();
        let (u1, u2, admin) = (&d.users[0], &d.users[1], &d.users[2]);
        let exp = ResourceType::Experiment;
        assert_eq!(d.permission(u1, exp, "7", Permission::Read), Permission::Edit);
        assert_eq!(d.permission(u1, exp, "8", Permission::NoPermissions), Permission::Read, "wildcard grant");
        assert_eq!(d.permission(u2, exp, "7", Permission::Read), Permission::Deny, "DENY beats the role's MANAGE");
        assert_eq!(d.permission(u2, exp, "8", Permission::Read), Permission::Manage, "from the role");
        assert_eq!(d.permission(admin, exp, "7", Permission::NoPermissions), Permission::Manage);
        let model = ResourceType::RegisteredModel;
        assert_eq!(d.permission(u1, model, "churn", Permission::Read), Permission::Read, "the default");
        assert_eq!(d.permission(u1, model, "churn", Permission::NoPermissions), Permission::NoPermissions);
    }
}
