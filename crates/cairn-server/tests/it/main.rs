//! Integration tests: the whole router driven in-process over a real SQLite store, plus one
//! test over a real socket.

mod artifacts;
mod auth;
mod auth_routes;
mod common;
mod errors;
mod experiments;
mod governance;
mod metrics;
mod native;
mod openlineage_out;
mod runs;
mod session;
mod socket;
mod ui;
