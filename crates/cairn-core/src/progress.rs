//! Progress of long work (verifying the audit log or the blobs of a large store, collecting
//! garbage): the work reports phases and units done, and asks whether it should stop. What is
//! shown, and how stopping is requested, is the caller's business (a terminal bar and Ctrl-C in
//! the CLI, nothing in the server).

/// Where long work reports how far it got.
pub trait Progress: Send + Sync {
    /// A new phase of `total` units, or of an unknown number.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `units` more of the current phase are done.
    fn advance(&self, units: u64);
    /// Whether the caller asked the work to stop; it then stops at the next safe point.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress that nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _units: u64) {}
}
