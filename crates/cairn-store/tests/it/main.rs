//! The integration tests of cairn-store: one binary, one module per backend, and the
//! conformance suite every backend runs.

mod artifacts;
mod auth;
mod conformance;
mod leases;
mod lineage;
mod logged_models;
mod postgres;
mod progress;
mod registry;
mod sqlite;
