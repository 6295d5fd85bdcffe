//! The store logic shared by both backends, written once against the [`db::Db`] trait.
//!
//! [`SqlStore`] implements `cairn_core::store::Store`. Writes run on the [`writer`] thread in
//! group-committed transactions, each request in its own savepoint and with its audit event;
//! reads run on the [`pool`]. The entity modules ([`experiments`], [`runs`], [`batch`],
//! [`metrics`]) hold the SQL for one concept each; [`rows`] defines the stored rows and their
//! audit after-images, [`audit`] appends to and verifies the hash chain.

pub mod artifacts;
pub mod audit;
pub mod audit_blocks;
pub mod audit_codec;
pub mod auth;
pub mod batch;
pub mod blob_claims;
pub mod blocks;
pub mod common;
pub mod db;
pub mod experiments;
mod idempotency;
pub mod leases;
pub mod lineage;
pub mod logged_models;
pub mod metrics;
pub mod migrate;
pub mod names;
pub mod pool;
pub mod registry;
pub mod rows;
pub mod runs;
pub mod sampled;
pub mod search;
mod store;
pub mod writer;

pub use store::SqlStore;
