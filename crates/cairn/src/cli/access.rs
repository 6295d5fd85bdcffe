//! `cairn users`, `cairn tokens` and `cairn permissions`: access control, worked on the store
//! directly (as `cairn audit` and `cairn gc` do), so the first admin can be made, a forgotten
//! password reset and a leaked token revoked without a running server. A running server sees a
//! change within seconds. Every change is on the audit chain under the actor `cairn-cli`.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use cairn_core::auth::{AuthData, NewToken, NewUser, Permission, ResourceType, TokenScope};
use cairn_core::model::Actor;
use cairn_core::store::Store;
use cairn_server::auth::secrets::{generate_password, generate_token, hash_password};
use cairn_server::gc::parse_duration;

use super::StoreArgs;

/// `cairn users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password is read from standard input with `--password-stdin`, else one
    /// is generated and printed once.
    Add {
        username: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password (from standard input with `--password-stdin`, else generated).
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a user with their grants, role assignments and tokens.
    Delete {
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `cairn tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user and print it once (use it as `MLFLOW_TRACKING_TOKEN`).
    Create {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// `read`, `write` (the default) or `predictions:DEPLOYMENT`.
        #[arg(long, default_value = "write", value_parser = parse_scope)]
        scope: TokenScope,
        /// Lifetime, e.g. `30d`; without it the token lasts until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens with their scope, expiry, revocation and last use.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id (`tok_…`).
    Revoke {
        token_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `cairn permissions ...`
#[derive(Debug, Subcommand)]
pub enum PermissionsCommand {
    /// Grant a user a level (READ, USE, EDIT, MANAGE, DENY) on an experiment id or registered
    /// model name (or `*`).
    Grant {
        username: String,
        /// `experiment` or `registered_model`.
        resource_type: String,
        resource_id: String,
        permission: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a user's direct grant on a resource.
    Revoke {
        username: String,
        resource_type: String,
        resource_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a user's grants, roles and admin flag.
    Show {
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_scope(text: &str) -> Result<TokenScope, String> {
    TokenScope::parse(text).map_err(|e| e.to_string())
}

fn actor() -> Actor {
    Actor("cairn-cli".to_owned())
}

async fn open(store: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    cairn_store::open(&store.store_config()).await.context("cannot open the store")
}

/// Opens the store, runs `work` on it, closes the store whatever happened.
async fn with_store<F, T>(args: &StoreArgs, work: impl FnOnce(Arc<dyn Store>) -> F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let store = open(args).await?;
    let result = work(store.clone()).await;
    store.close().await.context("closing the store")?;
    result
}

/// The password from standard input, or a generated one (and whether it was generated).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

fn millis_text(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), cairn_core::time::format_instant)
}

fn username_of(data: &AuthData, id: i64) -> String {
    data.user_by_id(id).map_or_else(|| format!("#{id}"), |u| u.username.clone())
}

pub async fn users(command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add { username, admin, password_stdin, store } => {
            cairn_core::auth::validate_username(&username)?;
            let (password, generated) = password(password_stdin)?;
            let password_hash = hash_password(&password)?;
            with_store(&store, |s| async move {
                s.create_user(&actor(), NewUser { username: username.clone(), password_hash, is_admin: admin }).await?;
                if generated {
                    println!("created user '{username}' with password {password} (shown only now)");
                } else {
                    println!("created user '{username}'");
                }
                Ok(())
            })
            .await?;
        }
        UsersCommand::List { store } => {
            let data = with_store(&store, |s| async move { Ok(s.auth_data().await?) }).await?;
            for user in &data.users {
                let admin = if user.is_admin { "admin" } else { "-" };
                println!("{}\t{}\t{admin}\t{}", user.id, user.username, millis_text(Some(user.created_at)));
            }
        }
        UsersCommand::Passwd { username, password_stdin, store } => {
            let (password, generated) = password(password_stdin)?;
            let hash = hash_password(&password)?;
            with_store(&store, |s| async move { Ok(s.set_password(&actor(), &username, &hash).await?) }).await?;
            if generated {
                println!("new password {password} (shown only now)");
            }
        }
        UsersCommand::Delete { username, store } => {
            with_store(&store, |s| async move { Ok(s.delete_user(&actor(), &username).await?) }).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tokens(command: TokensCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokensCommand::Create { user, scope, expires, store } => {
            let generated = generate_token()?;
            let expires_at = expires.map(|d| cairn_server::auth::now_millis() + d.as_millis() as i64);
            let new = NewToken {
                id: generated.id.clone(),
                username: user,
                scope,
                secret_digest: generated.digest.clone(),
                expires_at,
            };
            with_store(&store, |s| async move { Ok(s.create_token(&actor(), new).await?) }).await?;
            // The token alone on standard output, so `$(cairn tokens create ...)` captures it.
            println!("{}", generated.token);
            eprintln!("token {} created; it is shown only now", generated.id);
        }
        TokensCommand::List { store } => {
            let data = with_store(&store, |s| async move { Ok(s.auth_data().await?) }).await?;
            println!("id\tuser\tscope\tcreated\texpires\trevoked\tlast_used");
            for t in &data.tokens {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    username_of(&data, t.user_id),
                    t.scope.as_string(),
                    millis_text(Some(t.created_at)),
                    millis_text(t.expires_at),
                    millis_text(t.revoked_at),
                    millis_text(t.last_used_at)
                );
            }
        }
        TokensCommand::Revoke { token_id, store } => {
            with_store(&store, |s| async move { Ok(s.revoke_token(&actor(), &token_id).await?) }).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn permissions(command: PermissionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PermissionsCommand::Grant { username, resource_type, resource_id, permission, store } => {
            let kind = ResourceType::parse(&resource_type)?;
            kind.check_pattern(&resource_id)?;
            let permission = Permission::parse(&permission.to_ascii_uppercase())?;
            kind.check_grantable(permission)?;
            with_store(
                &store,
                |s| async move { Ok(s.grant(&actor(), &username, kind, &resource_id, permission).await?) },
            )
            .await?;
        }
        PermissionsCommand::Revoke { username, resource_type, resource_id, store } => {
            let kind = ResourceType::parse(&resource_type)?;
            with_store(&store, |s| async move { Ok(s.revoke(&actor(), &username, kind, &resource_id).await?) }).await?;
        }
        PermissionsCommand::Show { username, store } => {
            let data = with_store(&store, |s| async move { Ok(s.auth_data().await?) }).await?;
            let user = data.user(&username).with_context(|| format!("no user named '{username}'"))?;
            println!("user {} (id {}){}", user.username, user.id, if user.is_admin { ", admin" } else { "" });
            for g in data.grants.iter().filter(|g| g.user_id == user.id) {
                println!("grant\t{}\t{}\t{}", g.resource_type.as_str(), g.resource_id, g.permission.as_str());
            }
            for a in data.assignments.iter().filter(|a| a.user_id == user.id) {
                let Some(role) = data.roles.iter().find(|r| r.id == a.role_id) else { continue };
                for p in &role.permissions {
                    println!(
                        "role {}\t{}\t{}\t{}",
                        role.name,
                        p.resource_type.as_str(),
                        p.resource_pattern,
                        p.permission.as_str()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
