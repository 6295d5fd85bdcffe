//! Whether this server wants new requests, as a load balancer asks it.
//!
//! `/health` says the process is alive; `/ready` adds whether it should be sent traffic: the
//! store answers and the server is not shutting down. On SIGTERM a server first turns not-ready
//! and keeps serving for the drain delay, so the balancer's health checks move traffic elsewhere
//! before the listener closes; only then does it stop accepting and finish what is in flight.

use std::sync::atomic::{AtomicBool, Ordering};

/// The draining flag, shared by the `/ready` route and the shutdown sequence.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// From now on `/ready` answers 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
