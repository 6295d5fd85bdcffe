//! Cairn's domain core.
//!
//! Everything here is pure: domain types, MLflow-compatible validation rules, the search-filter
//! grammar, the storage traits and the audit hash chain. No module in this crate performs I/O,
//! speaks HTTP or knows SQL; backends and the HTTP layer depend on it, never the other way round.

pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod lease;
pub mod lineage;
pub mod logged_models;
pub mod model;
pub mod progress;
pub mod registry;
pub mod sampling;
pub mod search;
pub mod store;
pub mod time;
pub mod validation;

pub use error::{Error, Result};
