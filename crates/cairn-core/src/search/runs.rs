//! The rules of `runs/search`: which entity types, attribute names, value types and operators
//! a clause or an order key may use, checked in the order MLflow checks them (name, then value,
//! then operator) so that a clause with several faults gets MLflow's message.

use super::grammar::{RawClause, RawOp};
use super::lexer::{Name, Tok};
use super::terms::{Owner, list_value, number_value, py_set, split_name, string_value, trim_backticks};
use super::{Attribute, Comparison, Entity, Op, Value};
use crate::{Error, Result};

/// The entity types, after MLflow's aliases are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl Kind {
    /// MLflow's canonical name of the type, as its messages show it.
    fn as_str(self) -> &'static str {
        match self {
            Kind::Metric => "metric",
            Kind::Param => "parameter",
            Kind::Tag => "tag",
            Kind::Attribute => "attribute",
            Kind::Dataset => "dataset",
        }
    }

    /// Resolves an entity-type prefix (`metrics`, `param`, `` `tags` ``, …). Case matters.
    fn parse(prefix: &str) -> Result<Kind> {
        match trim_backticks(prefix) {
            "metric" | "metrics" => Ok(Kind::Metric),
            "parameter" | "parameters" | "param" | "params" => Ok(Kind::Param),
            "tag" | "tags" => Ok(Kind::Tag),
            "attribute" | "attributes" | "attr" | "run" => Ok(Kind::Attribute),
            "dataset" | "datasets" => Ok(Kind::Dataset),
            other => Err(Error::invalid(format!(
                "Invalid entity type '{other}'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
            ))),
        }
    }
}

/// Attribute names a filter may use, with MLflow's aliases (`created`, `Run name`, …).
const FILTER_ATTRIBUTES: &[(&str, Attribute)] = &[
    ("artifact_uri", Attribute::ArtifactUri),
    ("created", Attribute::StartTime),
    ("Created", Attribute::StartTime),
    ("end_time", Attribute::EndTime),
    ("run_id", Attribute::RunId),
    ("run_name", Attribute::RunName),
    ("run name", Attribute::RunName),
    ("Run name", Attribute::RunName),
    ("Run Name", Attribute::RunName),
    ("start_time", Attribute::StartTime),
    ("status", Attribute::Status),
    ("user_id", Attribute::UserId),
];

/// Attribute names an order key may use: the same but for the spelled-out `run name` aliases.
const ORDER_ATTRIBUTES: &[(&str, Attribute)] = &[
    ("artifact_uri", Attribute::ArtifactUri),
    ("created", Attribute::StartTime),
    ("Created", Attribute::StartTime),
    ("end_time", Attribute::EndTime),
    ("run_id", Attribute::RunId),
    ("run_name", Attribute::RunName),
    ("start_time", Attribute::StartTime),
    ("status", Attribute::Status),
    ("user_id", Attribute::UserId),
];

const DATASET_FIELDS: [&str; 3] = ["name", "digest", "context"];

const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
const KEY_VALUE_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::IsNull, Op::IsNotNull];
const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

fn is_numeric(attribute: Attribute) -> bool {
    matches!(attribute, Attribute::StartTime | Attribute::EndTime)
}

/// Resolves a name to its entity; `attributes` lists the attribute names allowed.
fn entity(name: &Name<'_>, attributes: &[(&str, Attribute)]) -> Result<(Kind, Entity)> {
    let (prefix, key) = split_name(name);
    let kind = prefix.map_or(Ok(Kind::Attribute), Kind::parse)?;
    let entity = match kind {
        Kind::Metric => Entity::Metric(key.to_owned()),
        Kind::Param => Entity::Param(key.to_owned()),
        Kind::Tag => Entity::Tag(key.to_owned()),
        Kind::Attribute => match attributes.iter().find(|(n, _)| *n == key) {
            Some((_, attribute)) => Entity::Attribute(*attribute),
            None => {
                let names: Vec<&str> = attributes.iter().map(|(n, _)| *n).collect();
                return Err(Error::invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are '{}'",
                    py_set(&names)
                )));
            }
        },
        Kind::Dataset if DATASET_FIELDS.contains(&key) => Entity::Dataset(key.to_owned()),
        Kind::Dataset => {
            return Err(Error::invalid(format!(
                "Invalid dataset key '{key}' specified. Valid keys are '{}'",
                py_set(&DATASET_FIELDS)
            )));
        }
    };
    Ok((kind, entity))
}

/// Checks one clause of a run filter and turns it into a [`Comparison`].
pub(super) fn comparison(raw: &RawClause<'_>) -> Result<Comparison> {
    let (kind, entity) = entity(&raw.name, FILTER_ATTRIBUTES)?;
    let Some(tok) = &raw.value else {
        // `IS [NOT] NULL`: only params and tags can be absent.
        if !matches!(kind, Kind::Param | Kind::Tag) {
            return Err(Error::invalid(format!(
                "IS NULL / IS NOT NULL is only supported for tags and params, not for '{}' '{}'",
                kind.as_str(),
                split_name(&raw.name).1
            )));
        }
        let op = match raw.op {
            RawOp::Known(op) => op,
            RawOp::Unknown(_) => Op::IsNull,
        };
        return Ok(Comparison { entity, op, value: Value::Null });
    };
    let key = split_name(&raw.name).1;
    let (value, allowed) = match &entity {
        Entity::Metric(_) => {
            let (v, _) = number_value(tok).ok_or_else(|| {
                Error::invalid(format!("Expected numeric value type for metric. Found {}", tok.text()))
            })?;
            (Value::Num(v), NUMERIC_OPS)
        }
        Entity::Param(_) => (Value::Str(string_value(tok, Owner::Param)?), KEY_VALUE_OPS),
        Entity::Tag(_) => (Value::Str(string_value(tok, Owner::Tag)?), KEY_VALUE_OPS),
        Entity::Attribute(a) if is_numeric(*a) => {
            let (v, _) = number_value(tok).ok_or_else(|| {
                Error::invalid(format!(
                    "Expected numeric value type for numeric attribute: {key}. Found {}",
                    tok.text()
                ))
            })?;
            (Value::Num(v), NUMERIC_OPS)
        }
        Entity::Attribute(a) => (string_or_list(tok, *a == Attribute::RunId, Owner::Attribute)?, STRING_OPS),
        Entity::Dataset(_) => (string_or_list(tok, true, Owner::Dataset)?, STRING_OPS),
    };
    let op = checked_op(&raw.op, allowed)?;
    if matches!(value, Value::List(_)) != matches!(op, Op::In | Op::NotIn) {
        return Err(Error::invalid(format!(
            "Invalid comparator '{}' for {}: a list of values needs IN or NOT IN, and IN or NOT IN \
             needs a list of values",
            op.as_str(),
            raw.name.raw
        )));
    }
    Ok(Comparison { entity, op, value })
}

/// A string value, or a list where the attribute supports one.
fn string_or_list(tok: &Tok<'_>, list_ok: bool, owner: Owner) -> Result<Value> {
    if matches!(tok, Tok::Str { .. } | Tok::Name(_)) {
        return Ok(Value::Str(string_value(tok, owner)?));
    }
    match list_value(tok) {
        Some(_) if !list_ok => {
            Err(Error::invalid("Only ['run_id'] attributes support comparison with a list of quoted string values."))
        }
        Some(list) => Ok(Value::List(list?)),
        // Neither a string nor a list: this reports the value with the owner's message.
        None => string_value(tok, owner).map(Value::Str),
    }
}

/// The clause's operator if the entity allows it, else MLflow's "invalid comparator" error.
pub(super) fn checked_op(raw: &RawOp, allowed: &[Op]) -> Result<Op> {
    let spelled = match raw {
        RawOp::Known(op) if allowed.contains(op) => return Ok(*op),
        RawOp::Known(op) => op.as_str().to_owned(),
        RawOp::Unknown(s) => s.to_uppercase(),
    };
    let names: Vec<&str> = allowed.iter().map(|op| op.as_str()).collect();
    Err(Error::invalid(format!("Invalid comparator '{spelled}' not one of '{}'", py_set(&names))))
}

/// Resolves a run order key.
pub(super) fn order_entity(name: &Name<'_>) -> Result<Entity> {
    match entity(name, ORDER_ATTRIBUTES)? {
        (Kind::Dataset, _) => Err(Error::invalid("Invalid identifier type 'dataset'")),
        (_, entity) => Ok(entity),
    }
}
