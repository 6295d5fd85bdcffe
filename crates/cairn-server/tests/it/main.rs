//! Integration tests: the whole router driven in-process over a real SQLite store, plus one
//! test over a real socket.

mod artifacts;
mod common;
mod errors;
mod experiments;
mod metrics;
mod native;
mod runs;
mod socket;
