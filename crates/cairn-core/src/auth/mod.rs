//! Access control's domain: permission levels, users, roles, grants and API tokens, the rule
//! that decides what a user may do ([`AuthData::permission`]), and the [`AuthStore`] trait that
//! keeps them. Password hashing and request authentication live in the server; this module
//! only ever sees hashes and digests.

mod model;
mod permission;
mod resolve;
mod store;

pub use model::{
    ApiToken, AuthData, Grant, NewToken, NewUser, RESERVED_NAMES, Role, RoleAssignment, RolePermission, TokenScope,
    User, validate_username,
};
pub use permission::{Permission, ResourceType};
pub use store::{AuthStore, RoleUpdate};
