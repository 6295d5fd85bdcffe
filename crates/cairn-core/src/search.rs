//! MLflow's search grammar: filter strings and ORDER BY clauses, parsed into an AST.
//!
//! Backends compile the AST to parameterised SQL; nothing from a filter string is ever pasted
//! into a query. The grammar is a conjunction (`AND`) of comparisons `<entity> <op> <value>`.

use crate::Result;

/// What a comparison or an ordering refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// `metrics.<key>`: the run's latest value of that metric.
    Metric(String),
    /// `params.<key>`.
    Param(String),
    /// `tags.<key>`.
    Tag(String),
    /// `attributes.<name>` (or a bare attribute name): a column of the run or experiment.
    Attribute(Attribute),
    /// `datasets.<field>` (name, digest, context) — used once dataset inputs exist.
    Dataset(String),
}

/// Run and experiment attributes that filters and orderings may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    RunId,
    RunName,
    Status,
    StartTime,
    EndTime,
    ArtifactUri,
    UserId,
    LifecycleStage,
    ExperimentId,
    /// Experiment search: `name`.
    Name,
    /// Experiment search: `creation_time`.
    CreationTime,
    /// Experiment search: `last_update_time`.
    LastUpdateTime,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    /// `IS NULL` / `IS NOT NULL` are not MLflow grammar; reserved.
    IsNull,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    List(Vec<String>),
}

/// One `<entity> <op> <value>` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: Entity,
    pub op: Op,
    pub value: Value,
}

/// A parsed filter: all comparisons must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Comparison>,
}

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub ascending: bool,
}

/// Parses a `runs/search` filter string. An empty or blank string is the empty filter.
pub fn parse_run_filter(input: &str) -> Result<Filter> {
    let _ = input;
    unimplemented!("filter parser lands with the search module")
}

/// Parses a `runs/search` order_by entry such as `metrics.rmse DESC`.
pub fn parse_run_order_by(input: &str) -> Result<OrderBy> {
    let _ = input;
    unimplemented!("order-by parser lands with the search module")
}

/// Parses an `experiments/search` filter string.
pub fn parse_experiment_filter(input: &str) -> Result<Filter> {
    let _ = input;
    unimplemented!("filter parser lands with the search module")
}

/// Parses an `experiments/search` order_by entry.
pub fn parse_experiment_order_by(input: &str) -> Result<OrderBy> {
    let _ = input;
    unimplemented!("order-by parser lands with the search module")
}
