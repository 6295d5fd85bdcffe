//! Domain records: experiments, runs and what runs log.
//!
//! Times are milliseconds since the Unix epoch, as in MLflow. Identifiers are strings on the
//! outside (MLflow's wire format); backends may use integer surrogates inside.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Whether an entity is live or tombstoned. Deleted entities keep their rows and can be restored
/// until garbage collection purges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(LifecycleStage::Active),
            "deleted" => Ok(LifecycleStage::Deleted),
            other => Err(Error::invalid(format!("unknown lifecycle stage '{other}'"))),
        }
    }
}

/// Which lifecycle stages a search returns (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// Parses MLflow's spelling (`ACTIVE_ONLY`, `DELETED_ONLY`, `ALL`) or its enum number.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ACTIVE_ONLY" | "1" => Ok(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Ok(ViewType::DeletedOnly),
            "ALL" | "3" => Ok(ViewType::All),
            other => Err(Error::invalid(format!("Invalid view type '{other}'"))),
        }
    }
    /// Whether an entity in `stage` is visible under this view.
    pub fn includes(self, stage: LifecycleStage) -> bool {
        match self {
            ViewType::ActiveOnly => stage == LifecycleStage::Active,
            ViewType::DeletedOnly => stage == LifecycleStage::Deleted,
            ViewType::All => true,
        }
    }
}

/// A run's execution status (MLflow's `RunStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
    /// Parses MLflow's spelling or its enum number.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "RUNNING" | "1" => Ok(RunStatus::Running),
            "SCHEDULED" | "2" => Ok(RunStatus::Scheduled),
            "FINISHED" | "3" => Ok(RunStatus::Finished),
            "FAILED" | "4" => Ok(RunStatus::Failed),
            "KILLED" | "5" => Ok(RunStatus::Killed),
            other => Err(Error::invalid(format!("Invalid run status '{other}'"))),
        }
    }
    /// Whether the run has ended.
    pub fn is_terminated(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Killed)
    }
}

/// A key/value string pair: experiment tags, run tags, params.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl KeyValue {
    /// Builds a pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue { key: key.into(), value: value.into() }
    }
}

/// One metric observation. `value` may be NaN or ±infinity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub value: f64,
    pub timestamp: Millis,
    pub step: i64,
}

/// A metric observation with its key, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: Millis,
    pub step: i64,
}

/// A metric observation tagged with the run it belongs to (bulk history queries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetric {
    pub run_id: String,
    pub metric: Metric,
}

/// An experiment with its tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: LifecycleStage,
    pub creation_time: Millis,
    pub last_update_time: Millis,
    pub tags: Vec<KeyValue>,
}

/// What a caller supplies to create an experiment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewExperiment {
    pub name: String,
    /// Where the experiment's artifacts go; `None` means under the server's artifact root.
    pub artifact_location: Option<String>,
    pub tags: Vec<KeyValue>,
}

/// A run's metadata (MLflow's `RunInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

/// A run with its data: latest value of each metric, params and tags, and what it consumed
/// and produced (datasets and logged models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub info: RunInfo,
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub inputs: crate::logged_models::RunInputs,
    #[serde(default)]
    pub outputs: crate::logged_models::RunOutputs,
}

/// What a caller supplies to create a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRun {
    /// The id the caller chose, for a run created offline and synced later (32 lowercase hex
    /// digits, the shape of the ids the store picks); `None` lets the store pick one.
    pub run_id: Option<String>,
    pub experiment_id: String,
    pub user_id: String,
    pub run_name: Option<String>,
    pub start_time: Option<Millis>,
    pub tags: Vec<KeyValue>,
}

/// A change to a run's metadata; `None` fields are left as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunUpdate {
    pub run_id: String,
    pub status: Option<RunStatus>,
    pub end_time: Option<Millis>,
    pub run_name: Option<String>,
}

/// Everything one `log-batch` call (or one of its single-item cousins) writes to a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

/// Who performs a mutation; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(pub String);

impl Actor {
    /// The actor used when a request carries no identity.
    pub fn anonymous() -> Self {
        Actor("anonymous".to_owned())
    }

    /// The actor a client names for itself, if the name is acceptable: no control characters
    /// (a tab or newline would let one audit line print as two, an escape sequence would rewrite
    /// the terminal), at most 256 characters, and none of the names the server uses for its own
    /// actions, which a client must not be able to act under.
    pub fn claimed(name: &str) -> crate::Result<Self> {
        if name.chars().any(char::is_control) {
            return Err(crate::Error::invalid("The user name contains control characters, which are not allowed"));
        }
        if name.chars().count() > MAX_ACTOR_NAME_CHARS {
            return Err(crate::Error::invalid(format!(
                "The user name is longer than {MAX_ACTOR_NAME_CHARS} characters"
            )));
        }
        if RESERVED_ACTORS.iter().any(|reserved| reserved.eq_ignore_ascii_case(name.trim())) {
            return Err(crate::Error::invalid(format!(
                "The user name '{name}' is reserved for the server's own actions"
            )));
        }
        Ok(Actor(name.to_owned()))
    }
}

#[cfg(test)]
mod actor_tests {
    use super::*;

    #[test]
    fn claimed_names_cannot_forge_lines_or_act_as_the_server() {
        assert_eq!(Actor::claimed("alice@corp.example").unwrap().0, "alice@corp.example");
        assert_eq!(Actor::claimed("Zoë Ng").unwrap().0, "Zoë Ng");
        for bad in ["a\tb", "a\nb", "a\rb", "\u{1b}[2J", "nul\0", "del\u{7f}", "c1\u{9b}"] {
            let e = Actor::claimed(bad).unwrap_err();
            assert!(e.to_string().contains("control characters"), "{bad:?}: {e}");
        }
        for reserved in ["cairn", "cairn-gc", "anonymous", "Anonymous", " cairn "] {
            assert!(Actor::claimed(reserved).unwrap_err().to_string().contains("reserved"), "{reserved}");
        }
        assert!(Actor::claimed(&"x".repeat(257)).is_err() && Actor::claimed(&"x".repeat(256)).is_ok());
    }
}

/// Names the server records its own actions under: the default experiment's creation, garbage
/// collection, requests without an identity.
pub const RESERVED_ACTORS: [&str; 3] = ["cairn", "cairn-gc", "anonymous"];

/// The longest user name a client may claim.
pub const MAX_ACTOR_NAME_CHARS: usize = 256;

/// One page of results and the offset where the next page starts, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_offset: Option<u64>,
    /// For a search that pages by key (`runs/search`), the sort key of the page's last item when
    /// another page follows: the next page starts after it instead of counting `next_offset`
    /// rows again.
    pub next_after: Option<Vec<SortValue>>,
}

impl<T> Page<T> {
    /// A page that continues, if at all, at an offset.
    pub fn new(items: Vec<T>, next_offset: Option<u64>) -> Self {
        Page { items, next_offset, next_after: None }
    }

    /// The same page position with other items (the hydrated rows of a page of keys).
    pub fn with_items<U>(self, items: Vec<U>) -> Page<U> {
        Page { items, next_offset: self.next_offset, next_after: self.next_after }
    }
}

/// One value of a search's sort key, as the store's ORDER BY computes it.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}
