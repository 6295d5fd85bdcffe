//! What the creates under a client-chosen id (`runs`, `logged_models`) share: a replay of the
//! same create answers the entity that exists, so an interrupted sync can run again, and the
//! same id in another experiment is refused.

use std::future::Future;

use cairn_core::Error;

use crate::error::{ApiError, ApiResult};

/// `created`, or, if the id was taken, the entity under it (read by `existing`) when it is in
/// `experiment_id`.
pub async fn created_or_existing<T>(
    created: cairn_core::Result<T>,
    existing: impl Future<Output = cairn_core::Result<T>>,
    experiment_of: impl Fn(&T) -> &str,
    experiment_id: &str,
) -> ApiResult<T> {
    match created {
        Ok(entity) => Ok(entity),
        Err(Error::AlreadyExists(message)) => {
            let entity = existing.await?;
            if experiment_of(&entity) != experiment_id {
                return Err(ApiError::from(Error::AlreadyExists(format!("{message} in another experiment"))));
            }
            Ok(entity)
        }
        Err(e) => Err(e.into()),
    }
}
