//! The PostgreSQL backend.

use std::sync::Arc;

use cairn_core::store::Store;
use cairn_core::Result;

use crate::StoreConfig;

/// Opens a PostgreSQL store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    let _ = config;
    unimplemented!("PostgreSQL backend in progress")
}
