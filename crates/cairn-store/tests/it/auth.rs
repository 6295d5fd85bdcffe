//! Access control on every backend: users, roles, grants and tokens are stored, cascade on
//! delete, decide permissions, and every change is on the audit chain that verification checks.

use std::sync::Arc;

use cairn_core::Error;
use cairn_core::auth::{NewToken, NewUser, Permission, ResourceType, RoleUpdate, TokenScope};
use cairn_core::model::Actor;
use cairn_core::registry::NewRegisteredModel;
use cairn_core::store::Store;

/// Generates one `#[tokio::test]` per access-control case for a backend fixture.
macro_rules! auth_cases {
    ($fixture:ident) => {
        $crate::auth::auth_cases!(@each $fixture;
            users_lifecycle_and_cascade,
            roles_permissions_and_assignments,
            grants_decide_permissions,
            grants_follow_a_renamed_model_and_go_with_a_deleted_one,
            tokens_expire_revoke_and_record_use,
        );
    };
    (@each $fixture:ident; $($case:ident),* $(,)?) => {
        mod auth_cases {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _guard) = super::$fixture().await;
                    $crate::auth::$case(store.clone()).await;
                    store.close().await.expect("close");
                }
            )*
        }
    };
}
pub(crate) use auth_cases;

fn admin() -> Actor {
    Actor("root".to_owned())
}

fn new_user(name: &str) -> NewUser {
    NewUser { username: name.to_owned(), password_hash: format!("$argon2id$v=19$fake-{name}"), is_admin: false }
}

async fn assert_verifies(store: &Arc<dyn Store>) {
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

pub async fn users_lifecycle_and_cascade(store: Arc<dyn Store>) {
    let alice = store.create_user(&admin(), new_user("alice")).await.unwrap();
    assert!(!alice.is_admin);
    assert!(matches!(store.create_user(&admin(), new_user("alice")).await, Err(Error::AlreadyExists(_))));
    assert!(matches!(store.create_user(&admin(), new_user("anonymous")).await, Err(Error::InvalidParameter(_))));
    store.create_user(&admin(), new_user("bob")).await.unwrap();

    store.set_password(&admin(), "alice", "$argon2id$v=19$new").await.unwrap();
    store.set_admin(&admin(), "alice", true).await.unwrap();
    let data = store.auth_data().await.unwrap();
    let stored = data.user("alice").unwrap();
    assert_eq!((stored.password_hash.as_str(), stored.is_admin), ("$argon2id$v=19$new", true));
    assert!(matches!(store.set_admin(&admin(), "nobody", true).await, Err(Error::NotFound(_))));

    store.grant(&admin(), "bob", ResourceType::Experiment, "1", Permission::Edit).await.unwrap();
    let role = store.create_role(&admin(), "default", "ml", None).await.unwrap();
    store.assign_role(&admin(), "bob", role.id).await.unwrap();
    let token = NewToken {
        id: "tok_00000000000000b0".into(),
        username: "bob".into(),
        scope: TokenScope::Read,
        secret_digest: "d".repeat(64),
        expires_at: None,
    };
    store.create_token(&admin(), token).await.unwrap();
    store.touch_token("tok_00000000000000b0", 5).await.unwrap();
    store.delete_user(&admin(), "bob").await.unwrap();
    let data = store.auth_data().await.unwrap();
    assert!(data.user("bob").is_none());
    assert!(data.grants.is_empty() && data.assignments.is_empty() && data.tokens.is_empty(), "{data:?}");
    assert_eq!(data.roles.len(), 1, "the role itself stays");

    let events = store.audit_events(0, 1000).await.unwrap();
    let actions: Vec<&str> = events.iter().filter(|e| e.actor == "root").map(|e| e.action.as_str()).collect();
    for action in ["create_user", "update_user_password", "update_user_admin", "grant_permission", "delete_user"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert!(events.iter().all(|e| !e.payload.contains("fake-alice")), "password hashes stay out of the log");
    assert_verifies(&store).await;
}

pub async fn roles_permissions_and_assignments(store: Arc<dyn Store>) {
    store.create_user(&admin(), new_user("carol")).await.unwrap();
    let role = store.create_role(&admin(), "default", "readers", Some("read all")).await.unwrap();
    assert!(matches!(store.create_role(&admin(), "default", "readers", None).await, Err(Error::AlreadyExists(_))));
    let p =
        store.add_role_permission(&admin(), role.id, ResourceType::Experiment, "*", Permission::Read).await.unwrap();
    assert!(matches!(
        store.add_role_permission(&admin(), role.id, ResourceType::Workspace, "*", Permission::Read).await,
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        store.add_role_permission(&admin(), 999, ResourceType::Experiment, "*", Permission::Read).await,
        Err(Error::NotFound(_))
    ));
    let p = store.update_role_permission(&admin(), p.id, Permission::Edit).await.unwrap();
    assert_eq!(p.permission, Permission::Edit);
    let renamed = store
        .update_role(&admin(), role.id, RoleUpdate { name: Some("editors".into()), description: None })
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.description.as_deref()), ("editors", Some("read all")));
    let a = store.assign_role(&admin(), "carol", role.id).await.unwrap();
    assert!(matches!(store.assign_role(&admin(), "carol", role.id).await, Err(Error::AlreadyExists(_))));

    let data = store.auth_data().await.unwrap();
    assert_eq!(data.roles[0].permissions, vec![p.clone()]);
    assert_eq!(data.assignments, vec![a]);
    let carol = data.user("carol").unwrap();
    assert_eq!(data.permission(carol, ResourceType::Experiment, "5", Permission::NoPermissions), Permission::Edit);

    store.unassign_role(&admin(), "carol", role.id).await.unwrap();
    assert!(matches!(store.unassign_role(&admin(), "carol", role.id).await, Err(Error::NotFound(_))));
    store.assign_role(&admin(), "carol", role.id).await.unwrap();
    store.delete_role(&admin(), role.id).await.unwrap();
    let data = store.auth_data().await.unwrap();
    assert!(data.roles.is_empty() && data.assignments.is_empty());
    assert!(matches!(store.remove_role_permission(&admin(), p.id).await, Err(Error::NotFound(_))));
    assert_verifies(&store).await;
}

pub async fn grants_decide_permissions(store: Arc<dyn Store>) {
    store.create_user(&admin(), new_user("dave")).await.unwrap();
    let exp = ResourceType::Experiment;
    store.grant(&admin(), "dave", exp, "1", Permission::Read).await.unwrap();
    store.grant(&admin(), "dave", exp, "1", Permission::Manage).await.unwrap();
    store.grant(&admin(), "dave", ResourceType::RegisteredModel, "churn", Permission::Deny).await.unwrap();
    assert!(matches!(
        store.grant(&admin(), "dave", exp, "1", Permission::NoPermissions).await,
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(store.grant(&admin(), "nobody", exp, "1", Permission::Read).await, Err(Error::NotFound(_))));
    let data = store.auth_data().await.unwrap();
    assert_eq!(data.grants.len(), 2, "a second grant on the same resource replaces the first");
    let dave = data.user("dave").unwrap();
    assert_eq!(data.permission(dave, exp, "1", Permission::Read), Permission::Manage);
    assert_eq!(data.permission(dave, exp, "2", Permission::Read), Permission::Read);
    let model = ResourceType::RegisteredModel;
    assert_eq!(data.permission(dave, model, "churn", Permission::Read), Permission::Deny);

    store.revoke(&admin(), "dave", exp, "1").await.unwrap();
    assert!(matches!(store.revoke(&admin(), "dave", exp, "1").await, Err(Error::NotFound(_))));
    let data = store.auth_data().await.unwrap();
    assert_eq!(data.permission(data.user("dave").unwrap(), exp, "1", Permission::Read), Permission::Read);
    assert_verifies(&store).await;
}

pub async fn grants_follow_a_renamed_model_and_go_with_a_deleted_one(store: Arc<dyn Store>) {
    let model = ResourceType::RegisteredModel;
    let new_model = |name: &str| NewRegisteredModel { name: name.to_owned(), ..NewRegisteredModel::default() };
    store.create_user(&admin(), new_user("fay")).await.unwrap();
    store.create_user(&admin(), new_user("gus")).await.unwrap();
    store.create_registered_model(&admin(), new_model("churn")).await.unwrap();
    store.grant(&admin(), "fay", model, "churn", Permission::Edit).await.unwrap();
    store.grant(&admin(), "gus", model, "churn", Permission::Deny).await.unwrap();
    // Left from a deleted model of the new name: it must not reach the renamed model.
    store.grant(&admin(), "gus", model, "churn-v2", Permission::Manage).await.unwrap();
    let role = store.create_role(&admin(), "default", "churners", None).await.unwrap();
    store.add_role_permission(&admin(), role.id, model, "churn", Permission::Read).await.unwrap();
    let everything = store.add_role_permission(&admin(), role.id, model, "*", Permission::Read).await.unwrap();

    store.rename_registered_model(&admin(), "churn", "churn-v2").await.unwrap();
    let data = store.auth_data().await.unwrap();
    let (fay, gus) = (data.user("fay").unwrap(), data.user("gus").unwrap());
    assert_eq!(data.permission(fay, model, "churn-v2", Permission::Read), Permission::Edit);
    assert_eq!(data.permission(gus, model, "churn-v2", Permission::Read), Permission::Deny, "the veto moved too");
    assert_eq!(data.permission(fay, model, "churn", Permission::NoPermissions), Permission::NoPermissions);
    assert!(data.grants.iter().all(|g| g.resource_id == "churn-v2"), "{:?}", data.grants);
    let patterns: Vec<&str> = data.roles[0].permissions.iter().map(|p| p.resource_pattern.as_str()).collect();
    assert_eq!(patterns, ["churn-v2", "*"], "an exact-name role permission follows, a pattern stays");
    let events = store.audit_events(0, 10_000).await.unwrap();
    let rename = events.iter().rev().find(|e| e.action == "rename_registered_model").expect("the rename's event");
    let grant_changes = rename.payload.matches(&format!("\"{}\"", cairn_core::audit::entity::AUTH_GRANT)).count();
    assert_eq!(grant_changes, 5, "the stale grant's removal, and each moved grant's removal and addition");

    store.delete_registered_model(&admin(), "churn-v2").await.unwrap();
    let data = store.auth_data().await.unwrap();
    assert!(data.grants.is_empty(), "{:?}", data.grants);
    assert_eq!(data.roles[0].permissions.iter().map(|p| p.id).collect::<Vec<_>>(), [everything.id]);
    store.create_registered_model(&admin(), new_model("churn-v2")).await.unwrap();
    let gus = data.user("gus").unwrap();
    assert_eq!(
        data.permission(gus, model, "churn-v2", Permission::Read),
        Permission::Read,
        "a new model starts afresh"
    );
    assert_verifies(&store).await;
}

pub async fn tokens_expire_revoke_and_record_use(store: Arc<dyn Store>) {
    store.create_user(&admin(), new_user("erin")).await.unwrap();
    let token = |id: &str, scope: TokenScope, expires_at: Option<i64>| NewToken {
        id: id.into(),
        username: "erin".into(),
        scope,
        secret_digest: "a".repeat(64),
        expires_at,
    };
    let past = token("tok_0000000000000001", TokenScope::Write, Some(1));
    assert!(matches!(store.create_token(&admin(), past).await, Err(Error::InvalidParameter(_))));
    let serving = TokenScope::Predictions("churn-api".into());
    let t = store.create_token(&admin(), token("tok_0000000000000002", serving.clone(), None)).await.unwrap();
    assert_eq!((&t.scope, t.last_used_at, t.revoked_at), (&serving, None, None));
    assert!(t.is_live(i64::MAX));

    store.touch_token("tok_0000000000000002", 1_000).await.unwrap();
    store.touch_token("tok_0000000000000002", 2_000).await.unwrap();
    store.touch_token("tok_unknown", 2_000).await.unwrap();
    store.revoke_token(&admin(), "tok_0000000000000002").await.unwrap();
    store.revoke_token(&admin(), "tok_0000000000000002").await.unwrap();
    assert!(matches!(store.revoke_token(&admin(), "tok_unknown").await, Err(Error::NotFound(_))));
    let data = store.auth_data().await.unwrap();
    assert_eq!(data.tokens.len(), 1);
    let stored = &data.tokens[0];
    assert_eq!(stored.last_used_at, Some(2_000));
    assert!(stored.revoked_at.is_some() && !stored.is_live(i64::MAX));
    let revocations = store.audit_events(0, 1000).await.unwrap().iter().filter(|e| e.action == "revoke_token").count();
    assert_eq!(revocations, 1, "a second revocation changes nothing and is not audited");
    assert_verifies(&store).await;
}
