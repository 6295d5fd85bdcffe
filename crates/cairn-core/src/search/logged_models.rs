//! The rules of `logged-models/search` (MLflow's `search_logged_model_utils`): clauses on
//! attributes, `metrics.<key>`, `params.<key>` and `tags.<key>`, joined by `AND`, and order keys
//! that are attributes or metrics.
//!
//! MLflow parses these filters with its own small parser rather than the run grammar: the entity
//! type must be one of four lowercase prefixes, a bare name is an attribute (with the aliases
//! `creation_time`, `creation_timestamp` and `last_updated_timestamp`), numeric entities take
//! the six comparison operators and everything else the string operators. Inputs MLflow fails
//! on with an internal error (an unknown attribute, a non-numeric metric value) are refused here
//! as invalid parameters.

use super::grammar::{RawClause, RawOp, clauses};
use super::lexer::Tok;
use super::terms::{list_value, number_value, py_set, split_name, trim_backticks};
use super::{Op, Value};
use crate::{Error, Result};

/// A column of a logged model that filters and orderings may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelAttribute {
    ModelId,
    ExperimentId,
    Name,
    ArtifactLocation,
    CreationTime,
    LastUpdatedTime,
    Status,
    StatusMessage,
    ModelType,
    SourceRunId,
}

impl LoggedModelAttribute {
    /// Whether the attribute holds a time (compared as a number).
    pub fn is_numeric(self) -> bool {
        matches!(self, LoggedModelAttribute::CreationTime | LoggedModelAttribute::LastUpdatedTime)
    }
}

/// Attribute names as MLflow spells them (its column names), then its aliases.
const ATTRIBUTES: &[(&str, LoggedModelAttribute)] = &[
    ("model_id", LoggedModelAttribute::ModelId),
    ("experiment_id", LoggedModelAttribute::ExperimentId),
    ("name", LoggedModelAttribute::Name),
    ("artifact_location", LoggedModelAttribute::ArtifactLocation),
    ("creation_timestamp_ms", LoggedModelAttribute::CreationTime),
    ("last_updated_timestamp_ms", LoggedModelAttribute::LastUpdatedTime),
    ("status", LoggedModelAttribute::Status),
    ("status_message", LoggedModelAttribute::StatusMessage),
    ("model_type", LoggedModelAttribute::ModelType),
    ("source_run_id", LoggedModelAttribute::SourceRunId),
];

/// MLflow's `SqlLoggedModel.ALIASES`, which apply to bare names only.
const ALIASES: &[(&str, &str)] = &[
    ("creation_time", "creation_timestamp_ms"),
    ("creation_timestamp", "creation_timestamp_ms"),
    ("last_updated_timestamp", "last_updated_timestamp_ms"),
];

/// What a logged-model clause or order key refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedModelField {
    Attribute(LoggedModelAttribute),
    /// `metrics.<key>`: any point of that metric logged for the model.
    Metric(String),
    Param(String),
    Tag(String),
}

impl LoggedModelField {
    fn is_numeric(&self) -> bool {
        match self {
            LoggedModelField::Metric(_) => true,
            LoggedModelField::Attribute(a) => a.is_numeric(),
            LoggedModelField::Param(_) | LoggedModelField::Tag(_) => false,
        }
    }
}

/// One `<field> <op> <value>` clause of a logged-model filter. Numeric fields compare with
/// [`Value::Num`]; the others with [`Value::Str`], or [`Value::List`] for `IN` and `NOT IN`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModelComparison {
    pub field: LoggedModelField,
    pub op: Op,
    pub value: Value,
}

/// A parsed logged-model filter: all comparisons must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggedModelFilter {
    pub clauses: Vec<LoggedModelComparison>,
}

const NUMERIC_OPS: &[Op] = &[Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne];
const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

/// Parses a `logged-models/search` filter string. An empty or blank string is the empty filter.
pub fn parse_logged_model_filter(input: &str) -> Result<LoggedModelFilter> {
    let clauses = clauses(input)?.iter().map(comparison).collect::<Result<_>>()?;
    Ok(LoggedModelFilter { clauses })
}

/// Parses the `field_name` of a `logged-models/search` order key: an attribute or
/// `metrics.<key>`.
pub fn parse_logged_model_order_field(field_name: &str) -> Result<LoggedModelField> {
    if let Some((entity, key)) = field_name.split_once('.') {
        if entity != "metrics" {
            return Err(Error::invalid(format!(
                "Invalid order by field name: {field_name}. Only metrics are supported."
            )));
        }
        return Ok(LoggedModelField::Metric(key.to_owned()));
    }
    attribute(resolve_alias(field_name))
        .map(LoggedModelField::Attribute)
        .ok_or_else(|| Error::invalid(format!("Invalid order by field name: {field_name}")))
}

fn resolve_alias(name: &str) -> &str {
    ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, column)| column)
}

fn attribute(name: &str) -> Option<LoggedModelAttribute> {
    ATTRIBUTES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// Resolves a clause's name. A dotted name needs one of MLflow's four lowercase entity types.
fn field(raw: &RawClause<'_>) -> Result<LoggedModelField> {
    let (prefix, key) = split_name(&raw.name);
    let Some(prefix) = prefix else {
        let name = trim_backticks(resolve_alias(key));
        return attribute(name).map(LoggedModelField::Attribute).ok_or_else(|| unknown_attribute(name));
    };
    match prefix {
        "metrics" => Ok(LoggedModelField::Metric(key.to_owned())),
        "params" => Ok(LoggedModelField::Param(key.to_owned())),
        "tags" => Ok(LoggedModelField::Tag(key.to_owned())),
        "attributes" => attribute(key).map(LoggedModelField::Attribute).ok_or_else(|| unknown_attribute(key)),
        other if !other.is_empty() && other.bytes().all(|b| b.is_ascii_lowercase()) => Err(Error::invalid(format!(
            "Invalid entity type: '{other}'. Expected one of ['attributes', 'metrics', 'params', 'tags']."
        ))),
        // MLflow takes such a name for an attribute, which does not exist.
        _ => Err(unknown_attribute(raw.name.raw)),
    }
}

fn unknown_attribute(name: &str) -> Error {
    let names: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
    Error::invalid(format!("Invalid attribute key '{name}' specified. Valid keys are '{}'", py_set(&names)))
}

/// How MLflow names a field in messages (`metrics.loss`, `attributes.name`).
fn display(field: &LoggedModelField) -> String {
    match field {
        LoggedModelField::Metric(k) => format!("metrics.{k}"),
        LoggedModelField::Param(k) => format!("params.{k}"),
        LoggedModelField::Tag(k) => format!("tags.{k}"),
        LoggedModelField::Attribute(a) => {
            let name = ATTRIBUTES.iter().find(|(_, x)| x == a).map_or("?", |(n, _)| *n);
            format!("attributes.{name}")
        }
    }
}

fn comparison(raw: &RawClause<'_>) -> Result<LoggedModelComparison> {
    let field = field(raw)?;
    let allowed = if field.is_numeric() { NUMERIC_OPS } else { STRING_OPS };
    let op = match &raw.op {
        RawOp::Known(op) if allowed.contains(op) => *op,
        RawOp::Known(op) => return Err(bad_operator(&field, op.as_str(), allowed)),
        RawOp::Unknown(s) => return Err(bad_operator(&field, &s.to_uppercase(), allowed)),
    };
    // `IS NULL` never reaches here: neither operator list has it.
    let Some(tok) = &raw.value else { return Err(bad_operator(&field, "IS NULL", allowed)) };
    let value = if field.is_numeric() {
        let (v, _) = number_value(tok).ok_or_else(|| {
            Error::invalid(format!("Expected a numeric value for {}. Found {}", display(&field), tok.text()))
        })?;
        Value::Num(v)
    } else if matches!(op, Op::In | Op::NotIn) {
        match list_value(tok) {
            Some(list) => Value::List(list?),
            None => return Err(list_expected(&field, op)),
        }
    } else {
        match tok {
            Tok::Str { inner, .. } => Value::Str((*inner).to_owned()),
            other => {
                return Err(Error::invalid(format!(
                    "Expected a quoted string value for {}. Found {}",
                    display(&field),
                    other.text()
                )));
            }
        }
    };
    Ok(LoggedModelComparison { field, op, value })
}

fn bad_operator(field: &LoggedModelField, op: &str, allowed: &[Op]) -> Error {
    let listed: Vec<String> = allowed.iter().map(|o| format!("'{}'", o.as_str())).collect();
    Error::invalid(format!(
        "Invalid comparison operator for {}: '{op}'. Expected one of ({}).",
        display(field),
        listed.join(", ")
    ))
}

fn list_expected(field: &LoggedModelField, op: Op) -> Error {
    Error::invalid(format!("{} {} needs a parenthesised list of quoted strings", display(field), op.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(filter: &str) -> LoggedModelComparison {
        let mut parsed = parse_logged_model_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(parsed.clauses.len(), 1, "{filter}");
        parsed.clauses.remove(0)
    }

    fn err(filter: &str) -> String {
        parse_logged_model_filter(filter).expect_err(filter).to_string()
    }

    #[test]
    fn fields_resolve_like_mlflow() {
        assert_eq!(one("name = 'm'").field, LoggedModelField::Attribute(LoggedModelAttribute::Name));
        assert_eq!(
            one("attributes.model_type = 'x'").field,
            LoggedModelField::Attribute(LoggedModelAttribute::ModelType)
        );
        assert_eq!(one("creation_time > 5").field, LoggedModelField::Attribute(LoggedModelAttribute::CreationTime));
        assert_eq!(one("metrics.`acc` >= 0.5").field, LoggedModelField::Metric("acc".into()));
        assert_eq!(one("params.lr = '0.1'").field, LoggedModelField::Param("lr".into()));
        assert_eq!(one("tags.`a.b` LIKE 'x%'").field, LoggedModelField::Tag("a.b".into()));
    }

    #[test]
    fn values_follow_the_field() {
        assert_eq!(one("metrics.acc > 0.9").value, Value::Num(0.9));
        assert_eq!(one("name IN ('a', 'b')").value, Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(one("params.p != 'x'").value, Value::Str("x".into()));
        let both = parse_logged_model_filter("metrics.a > 1 AND tags.t = 'v'").unwrap();
        assert_eq!(both.clauses.len(), 2);
        assert!(parse_logged_model_filter("  ").unwrap().clauses.is_empty());
    }

    #[test]
    fn mistakes_are_invalid_parameters() {
        assert_eq!(
            err("metrics.acc LIKE 'x'"),
            "Invalid comparison operator for metrics.acc: 'LIKE'. Expected one of ('<', '<=', '>', '>=', '=', '!=')."
        );
        assert_eq!(
            err("name > 'x'"),
            "Invalid comparison operator for attributes.name: '>'. Expected one of ('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN')."
        );
        assert!(err("foo.bar = 'x'").starts_with("Invalid entity type: 'foo'."));
        assert!(err("nope = 'x'").starts_with("Invalid attribute key 'nope'"));
        assert!(err("metrics.acc > 'high'").starts_with("Expected a numeric value for metrics.acc"));
        assert!(err("name = 5").starts_with("Expected a quoted string value for attributes.name"));
        assert!(err("name IN 'a'").starts_with("Invalid clause"));
        assert!(err("params.p IS NULL").starts_with("Invalid comparison operator for params.p: 'IS NULL'"));
        assert!(err("name = 'a' OR name = 'b'").starts_with("Invalid clause"));
    }

    #[test]
    fn order_fields() {
        assert_eq!(
            parse_logged_model_order_field("creation_timestamp").unwrap(),
            LoggedModelField::Attribute(LoggedModelAttribute::CreationTime)
        );
        assert_eq!(parse_logged_model_order_field("metrics.acc").unwrap(), LoggedModelField::Metric("acc".into()));
        assert_eq!(
            parse_logged_model_order_field("params.x").unwrap_err().to_string(),
            "Invalid order by field name: params.x. Only metrics are supported."
        );
        assert_eq!(
            parse_logged_model_order_field("bogus").unwrap_err().to_string(),
            "Invalid order by field name: bogus"
        );
    }
}
