//! MLflow's search grammar: filter strings and ORDER BY clauses, parsed into an AST.
//!
//! Backends compile the AST to parameterised SQL; nothing from a filter string is ever pasted
//! into a query. The grammar is a conjunction (`AND`) of comparisons `<entity> <op> <value>`.
//!
//! What is accepted, and the error messages for what is not, follow MLflow 3.17.2
//! (`mlflow/utils/search_utils.py` and the checks its SQL store makes before querying), so a
//! filter that MLflow's server rejects is rejected here too, with a message close to MLflow's.
//! The parsing is split in three steps: `lexer` cuts the text into tokens, `grammar` groups
//! them into raw clauses (`<name> <operator> <value token>`) and order keys, and `runs` and
//! `experiments` apply each search's rules on entities, values and operators.
//! Every step is iterative and slices only at character boundaries, so no input can make the
//! parser panic or recurse deeply.

mod experiments;
mod grammar;
pub use grammar::MAX_CLAUSES;
mod lexer;
mod list;
mod logged_models;
mod registry;
mod runs;
mod terms;
#[cfg(test)]
mod tests;

pub use logged_models::{
    LoggedModelAttribute, LoggedModelComparison, LoggedModelField, LoggedModelFilter, parse_logged_model_filter,
    parse_logged_model_order_field,
};

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
    /// `datasets.<field>`: `name`, `digest` or `context` of a dataset the run used.
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
    /// Experiment search: `creation_time`; registry searches: `creation_timestamp`.
    CreationTime,
    /// Experiment search: `last_update_time`; registry searches: `last_updated_timestamp`.
    LastUpdateTime,
    /// Model-version search: `version_number`.
    VersionNumber,
    /// Model-version search: `source_path` (the version's source URI).
    SourcePath,
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
    /// `<key> IS NULL`: the run or experiment has no such param or tag.
    IsNull,
    /// `<key> IS NOT NULL`: the run or experiment has such a param or tag.
    IsNotNull,
}

impl Op {
    /// MLflow's spelling, as used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

/// The right-hand side of a comparison. Which variant goes with which entity and operator is
/// settled by the parser: metrics and time attributes compare with [`Value::Num`], `IN` and
/// `NOT IN` with [`Value::List`], `IS [NOT] NULL` with [`Value::Null`], the rest with
/// [`Value::Str`]. String values are the text between the quotes, verbatim (MLflow does not
/// undo escapes such as `''` or `\'`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// A number; for experiment time attributes always a whole number.
    Num(f64),
    /// The strings of an `IN (…)` list; never empty.
    List(Vec<String>),
    /// No right-hand side (`IS NULL`, `IS NOT NULL`).
    Null,
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
    grammar::clauses(input)?.iter().map(runs::comparison).collect::<Result<_>>().map(|clauses| Filter { clauses })
}

/// Parses a `runs/search` order_by entry such as `metrics.rmse DESC`.
pub fn parse_run_order_by(input: &str) -> Result<OrderBy> {
    let (name, ascending) = grammar::order_key(input)?;
    Ok(OrderBy { entity: runs::order_entity(&name)?, ascending })
}

/// Parses an `experiments/search` filter string. An empty or blank string is the empty filter.
pub fn parse_experiment_filter(input: &str) -> Result<Filter> {
    grammar::clauses(input)?
        .iter()
        .map(experiments::comparison)
        .collect::<Result<_>>()
        .map(|clauses| Filter { clauses })
}

/// Parses an `experiments/search` order_by entry such as `creation_time DESC`.
pub fn parse_experiment_order_by(input: &str) -> Result<OrderBy> {
    let (name, ascending) = grammar::order_key(input)?;
    Ok(OrderBy { entity: experiments::order_entity(&name)?, ascending })
}

/// Parses a `registered-models/search` filter string (`name` and `tags.<key>`).
pub fn parse_registered_model_filter(input: &str) -> Result<Filter> {
    grammar::clauses(input)?
        .iter()
        .map(|raw| registry::comparison(raw, registry::Search::Models))
        .collect::<Result<_>>()
        .map(|clauses| Filter { clauses })
}

/// Parses one `registered-models/search` order_by entry such as `timestamp DESC`.
pub fn parse_registered_model_order_by(input: &str) -> Result<OrderBy> {
    let (name, ascending) = grammar::order_key(input)?;
    Ok(OrderBy { entity: registry::model_order_entity(&name)?, ascending })
}

/// Parses a `registered-models/search` order_by list, refusing a field named twice.
pub fn parse_registered_model_order_by_list(inputs: &[&str]) -> Result<Vec<OrderBy>> {
    let keys = inputs.iter().map(|s| parse_registered_model_order_by(s)).collect::<Result<Vec<_>>>()?;
    registry::reject_duplicates(&keys, inputs)?;
    Ok(keys)
}

/// Parses a `model-versions/search` filter string (`name`, `run_id`, `source_path`,
/// `version_number`, `tags.<key>`).
pub fn parse_model_version_filter(input: &str) -> Result<Filter> {
    grammar::clauses(input)?
        .iter()
        .map(|raw| registry::comparison(raw, registry::Search::Versions))
        .collect::<Result<_>>()
        .map(|clauses| Filter { clauses })
}

/// Parses one `model-versions/search` order_by entry such as `version_number DESC`.
pub fn parse_model_version_order_by(input: &str) -> Result<OrderBy> {
    let (name, ascending) = grammar::order_key(input)?;
    Ok(OrderBy { entity: registry::version_order_entity(&name)?, ascending })
}

/// Parses a `model-versions/search` order_by list, refusing a field named twice.
pub fn parse_model_version_order_by_list(inputs: &[&str]) -> Result<Vec<OrderBy>> {
    let keys = inputs.iter().map(|s| parse_model_version_order_by(s)).collect::<Result<Vec<_>>>()?;
    registry::reject_duplicates(&keys, inputs)?;
    Ok(keys)
}
