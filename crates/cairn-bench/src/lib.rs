//! A load generator for any server that speaks MLflow's REST API, plus the storage engine's own
//! limit (`raw-sqlite`).
//!
//! The Python `mlflow` client spends milliseconds of its own CPU per call, so through it no server
//! can look faster than the client. These subcommands drive the server over plain HTTP from Rust
//! instead, so that what they measure is the server. Every subcommand prints one JSON object per
//! line on stdout, which `bench/harness.py` folds into the results.

pub mod client;
pub mod data;
pub mod history;
pub mod ingest;
pub mod large;
pub mod lineage;
pub mod raw_postgres;
pub mod raw_sqlite;
pub mod report;
pub mod search;
