//! Leases: one process at a time does a job that must not run twice (emitting OpenLineage events
//! from the audit log, say), and the next one takes over where it stopped. A lease has a name, a
//! holder that renews it before it expires, and a cursor, the position the job reached, which
//! outlives holders. A holder that dies simply stops renewing; after `ttl` another may take it.

use async_trait::async_trait;

use crate::Result;
use crate::model::Millis;

/// A lease as its holder sees it on taking or renewing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    /// Where the job got to, as last recorded by any holder; `None` if it never ran.
    pub cursor: Option<i64>,
}

/// Leases kept in the metadata store that every process shares.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes lease `name` for `holder`, or renews it, for `ttl` milliseconds from now. `None`
    /// while another holder's lease is live.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Millis) -> Result<Option<LeaseState>>;

    /// Records `cursor` for lease `name` and renews it for `ttl` milliseconds; `false`, recording
    /// nothing, unless `holder` still holds a live lease (it expired and another holder may have
    /// taken over).
    async fn advance_lease(&self, name: &str, holder: &str, cursor: i64, ttl: Millis) -> Result<bool>;

    /// Gives the lease up early, keeping its cursor, so another holder need not wait for `ttl`.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}
