//! MLflow's basic-auth API, as `mlflow.server.get_app_client("basic-auth")` calls it: users,
//! roles, role permissions and assignments, and per-user grants. Routes, JSON shapes and error
//! codes follow MLflow 3.17; they are served under MLflow's four prefixes. Who may call what:
//! the route table says admin-only or [`Rule::Handler`](super::routes::Rule::Handler), and
//! the handlers of the latter check self-or-admin or MANAGE on the resource themselves.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{Method, Uri};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::auth::{AuthData, NewUser, Permission, ResourceType, Role, RolePermission, RoleUpdate, User};

use super::authorize::denied;
use super::secrets::{hash_password, verify_password};
use super::{Auth, Principal};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The routes under every prefix MLflow serves them at.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/users/create", post(create_user))
        .route("/users/get", get(get_user))
        .route("/users/current", get(current_user))
        .route("/users/list", get(list_users))
        .route("/users/update-password", patch(update_password))
        .route("/users/update-admin", patch(update_admin))
        .route("/users/delete", delete(delete_user))
        .route("/users/permissions/grant", post(grant))
        .route("/users/permissions/revoke", post(revoke))
        .route("/users/permissions/get", get(get_permission))
        .route("/users/roles/list", get(user_roles))
        .route("/roles/create", post(create_role))
        .route("/roles/get", get(get_role))
        .route("/roles/list", get(list_roles))
        .route("/roles/update", patch(update_role))
        .route("/roles/delete", delete(delete_role))
        .route("/roles/permissions/add", post(add_role_permission))
        .route("/roles/permissions/remove", delete(remove_role_permission))
        .route("/roles/permissions/list", get(list_role_permissions))
        .route("/roles/permissions/update", patch(update_role_permission))
        .route("/roles/assign", post(assign_role))
        .route("/roles/unassign", delete(unassign_role))
        .route("/roles/users/list", get(role_users));
    ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/3.0/mlflow"]
        .into_iter()
        .fold(Router::new(), |router, prefix| router.nest(prefix, routes.clone()))
}

/// A request's fields as MLflow's auth app reads them: the query for `GET`, the JSON body for
/// `POST` and `PATCH`, and for `DELETE` the body when it has one, else the query.
struct Fields(Map<String, Value>);

impl Fields {
    fn read(method: &Method, uri: &Uri, body: &Bytes) -> ApiResult<Self> {
        if *method == Method::GET || (*method == Method::DELETE && body.iter().all(u8::is_ascii_whitespace)) {
            let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
                .map_err(|e| ApiError::invalid(format!("The query string is not valid: {}", e.body_text())))?
                .0;
            return Ok(Fields(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            _ if body.is_empty() => Ok(Fields(Map::new())),
            _ => Err(ApiError::invalid("The request body must be a JSON object")),
        }
    }

    fn str(&self, key: &str) -> ApiResult<String> {
        match self.0.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(ApiError::invalid(format!("Missing value for required parameter '{key}'."))),
        }
    }

    fn opt_str(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    fn int(&self, key: &str) -> ApiResult<i64> {
        let text = self.str(key)?;
        text.parse().map_err(|_| ApiError::invalid(format!("Invalid value '{text}' for parameter '{key}'")))
    }

    fn bool(&self, key: &str) -> ApiResult<bool> {
        match self.0.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(ApiError::invalid(format!("Missing value for required parameter '{key}'."))),
        }
    }
}

/// The access-control state, or the error of a server that has it off.
fn auth(state: &AppState) -> ApiResult<Arc<Auth>> {
    state.auth.clone().ok_or_else(|| ApiError::invalid("Access control is off on this server (--auth none)"))
}

/// Everything a handler needs: the state, the signed-in caller, the fields, a fresh snapshot.
struct Call {
    auth: Arc<Auth>,
    principal: Principal,
    fields: Fields,
    data: Arc<AuthData>,
}

impl Call {
    fn parts(self) -> (Arc<Auth>, Principal, Fields, Arc<AuthData>) {
        (self.auth, self.principal, self.fields, self.data)
    }
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = auth(state)?;
        let principal =
            request.extensions().get::<Principal>().cloned().ok_or_else(|| ApiError::invalid("Not signed in"))?;
        let method = request.method().clone();
        let uri = request.uri().clone();
        let body = Bytes::from_request(request, state).await.map_err(crate::extract::body_rejection)?;
        let fields = Fields::read(&method, &uri, &body)?;
        let data = auth.data().await?;
        Ok(Call { auth, principal, fields, data })
    }
}

fn user_json(user: &User) -> Value {
    json!({ "id": user.id, "username": user.username, "is_admin": user.is_admin })
}

fn find_user<'a>(data: &'a AuthData, username: &str) -> ApiResult<&'a User> {
    data.user(username)
        .ok_or_else(|| ApiError::from(cairn_core::Error::not_found(format!("User with username={username} not found"))))
}

fn self_or_admin(principal: &Principal, username: &str) -> ApiResult<()> {
    if principal.is_admin || principal.username == username {
        Ok(())
    } else {
        Err(denied("Permission denied: only an admin or the user themselves may do this"))
    }
}

async fn hash(password: String) -> ApiResult<String> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| cairn_core::Error::internal(format!("hashing a password: {e}")))??)
}

async fn create_user(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let (Ok(username), Ok(password)) = (fields.str("username"), fields.str("password")) else {
        return Err(ApiError::invalid("Username and password cannot be empty."));
    };
    cairn_core::auth::validate_username(&username)?;
    let password_hash = hash(password).await?;
    let user = auth.store.create_user(&principal.actor(), NewUser { username, password_hash, is_admin: false }).await?;
    auth.reload().await?;
    Ok(Json(json!({ "user": user_json(&user) })))
}

async fn get_user(call: Call) -> ApiResult<Json<Value>> {
    let (_, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    self_or_admin(&principal, &username)?;
    Ok(Json(json!({ "user": user_json(find_user(&data, &username)?) })))
}

async fn current_user(call: Call) -> ApiResult<Json<Value>> {
    let (_, principal, _, data) = call.parts();
    Ok(Json(json!({ "user": user_json(find_user(&data, &principal.username)?) })))
}

async fn list_users(call: Call) -> ApiResult<Json<Value>> {
    let (_, _, _, data) = call.parts();
    Ok(Json(json!({ "users": data.users.iter().map(user_json).collect::<Vec<_>>() })))
}

async fn update_password(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    let password = fields.str("password")?;
    self_or_admin(&principal, &username)?;
    let user = find_user(&data, &username)?;
    if principal.username == username {
        // Changing one's own password asks for the current one, so that a borrowed session or
        // a leaked token cannot lock the owner out.
        let current = fields
            .opt_str("current_password")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::invalid("Current password is required when changing your own password."))?;
        let hash_now = user.password_hash.clone();
        let check = current.clone();
        let matches = tokio::task::spawn_blocking(move || verify_password(&check, &hash_now)).await.unwrap_or(false);
        if !matches {
            return Err(ApiError::invalid("Current password does not match."));
        }
        if current == password {
            return Err(ApiError::invalid("New password must differ from the current password."));
        }
    }
    let password_hash = hash(password).await?;
    auth.store.set_password(&principal.actor(), &username, &password_hash).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn update_admin(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let username = fields.str("username")?;
    auth.store.set_admin(&principal.actor(), &username, fields.bool("is_admin")?).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn delete_user(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let username = fields.str("username")?;
    if username == principal.username {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            crate::error::ErrorCode::BadRequest,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        ));
    }
    auth.store.delete_user(&principal.actor(), &username).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

/// The resource a grant names, checked, and whether the caller may change grants on it: an
/// admin, or a user who manages the resource (workspace grants are for admins only).
fn grant_target(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    fields: &Fields,
) -> ApiResult<(ResourceType, String)> {
    let kind = ResourceType::parse(&fields.str("resource_type")?)?;
    let id = fields.str("resource_id")?;
    kind.check_pattern(&id)?;
    let manages = kind != ResourceType::Workspace
        && id != "*"
        && auth.permission(data, principal, kind, &id).allows(Permission::Manage);
    if principal.is_admin || manages {
        Ok((kind, id))
    } else {
        Err(denied(format!("Permission denied: changing grants on {} {id} needs MANAGE", kind.as_str())))
    }
}

async fn grant(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    find_user(&data, &username)?;
    let (kind, id) = grant_target(&auth, &data, &principal, &fields)?;
    let permission = Permission::parse(&fields.str("permission")?)?;
    kind.check_grantable(permission)?;
    auth.store.grant(&principal.actor(), &username, kind, &id, permission).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn revoke(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    find_user(&data, &username)?;
    let (kind, id) = grant_target(&auth, &data, &principal, &fields)?;
    auth.store.revoke(&principal.actor(), &username, kind, &id).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn get_permission(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    self_or_admin(&principal, &username)?;
    let user = find_user(&data, &username)?;
    let kind = ResourceType::parse(&fields.str("resource_type")?)?;
    let id = fields.str("resource_id")?;
    let permission = data.permission(user, kind, &id, auth.default_permission);
    // MLflow's `allowed` is its `can_use`: USE or more; READ alone does not count.
    Ok(Json(json!({ "allowed": permission.allows(Permission::Use), "permission": permission.as_str() })))
}

fn role_permission_json(p: &RolePermission) -> Value {
    json!({
        "id": p.id,
        "role_id": p.role_id,
        "resource_type": p.resource_type.as_str(),
        "resource_pattern": p.resource_pattern,
        "permission": p.permission.as_str(),
    })
}

fn role_json(role: &Role) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "workspace": role.workspace,
        "description": role.description,
        "permissions": role.permissions.iter().map(role_permission_json).collect::<Vec<_>>(),
    })
}

fn find_role(data: &AuthData, id: i64) -> ApiResult<&Role> {
    data.roles
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::from(cairn_core::Error::not_found(format!("Role with id={id} not found"))))
}

async fn create_role(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let workspace = fields.opt_str("workspace").filter(|w| !w.is_empty()).unwrap_or_else(|| "default".to_owned());
    let name = fields.str("name")?;
    let description = fields.opt_str("description");
    let role = auth.store.create_role(&principal.actor(), &workspace, &name, description.as_deref()).await?;
    auth.reload().await?;
    Ok(Json(json!({ "role": role_json(&role) })))
}

async fn get_role(call: Call) -> ApiResult<Json<Value>> {
    let (_, _, fields, data) = call.parts();
    Ok(Json(json!({ "role": role_json(find_role(&data, fields.int("role_id")?)?) })))
}

async fn list_roles(call: Call) -> ApiResult<Json<Value>> {
    let (_, _, fields, data) = call.parts();
    let workspace = fields.opt_str("workspace");
    let roles: Vec<Value> =
        data.roles.iter().filter(|r| workspace.as_ref().is_none_or(|w| &r.workspace == w)).map(role_json).collect();
    Ok(Json(json!({ "roles": roles })))
}

async fn update_role(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let update = RoleUpdate { name: fields.opt_str("name"), description: fields.opt_str("description") };
    let role = auth.store.update_role(&principal.actor(), fields.int("role_id")?, update).await?;
    let data = auth.reload().await?;
    Ok(Json(json!({ "role": role_json(find_role(&data, role.id)?) })))
}

async fn delete_role(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    auth.store.delete_role(&principal.actor(), fields.int("role_id")?).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn add_role_permission(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let kind = ResourceType::parse(&fields.str("resource_type")?)?;
    let pattern = fields.str("resource_pattern")?;
    kind.check_pattern(&pattern)?;
    let permission = Permission::parse(&fields.str("permission")?)?;
    kind.check_grantable(permission)?;
    let added =
        auth.store.add_role_permission(&principal.actor(), fields.int("role_id")?, kind, &pattern, permission).await?;
    auth.reload().await?;
    Ok(Json(json!({ "role_permission": role_permission_json(&added) })))
}

async fn remove_role_permission(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    auth.store.remove_role_permission(&principal.actor(), fields.int("role_permission_id")?).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn list_role_permissions(call: Call) -> ApiResult<Json<Value>> {
    let (_, _, fields, data) = call.parts();
    let role = find_role(&data, fields.int("role_id")?)?;
    Ok(Json(json!({ "role_permissions": role.permissions.iter().map(role_permission_json).collect::<Vec<_>>() })))
}

async fn update_role_permission(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, data) = call.parts();
    let id = fields.int("role_permission_id")?;
    let permission = Permission::parse(&fields.str("permission")?)?;
    if let Some(existing) = data.roles.iter().flat_map(|r| &r.permissions).find(|p| p.id == id) {
        existing.resource_type.check_grantable(permission)?;
    }
    let updated = auth.store.update_role_permission(&principal.actor(), id, permission).await?;
    auth.reload().await?;
    Ok(Json(json!({ "role_permission": role_permission_json(&updated) })))
}

async fn assign_role(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    let a = auth.store.assign_role(&principal.actor(), &fields.str("username")?, fields.int("role_id")?).await?;
    auth.reload().await?;
    Ok(Json(json!({ "assignment": { "id": a.id, "user_id": a.user_id, "role_id": a.role_id } })))
}

async fn unassign_role(call: Call) -> ApiResult<Json<Value>> {
    let (auth, principal, fields, _) = call.parts();
    auth.store.unassign_role(&principal.actor(), &fields.str("username")?, fields.int("role_id")?).await?;
    auth.reload().await?;
    Ok(Json(json!({})))
}

async fn user_roles(call: Call) -> ApiResult<Json<Value>> {
    let (_, principal, fields, data) = call.parts();
    let username = fields.str("username")?;
    self_or_admin(&principal, &username)?;
    let user = find_user(&data, &username)?;
    let roles: Vec<Value> = data
        .assignments
        .iter()
        .filter(|a| a.user_id == user.id)
        .filter_map(|a| data.roles.iter().find(|r| r.id == a.role_id))
        .map(role_json)
        .collect();
    Ok(Json(json!({ "roles": roles })))
}

async fn role_users(call: Call) -> ApiResult<Json<Value>> {
    let (_, _, fields, data) = call.parts();
    let role = find_role(&data, fields.int("role_id")?)?;
    let assignments: Vec<Value> = data
        .assignments
        .iter()
        .filter(|a| a.role_id == role.id)
        .map(|a| json!({ "id": a.id, "user_id": a.user_id, "role_id": a.role_id }))
        .collect();
    Ok(Json(json!({ "assignments": assignments })))
}
