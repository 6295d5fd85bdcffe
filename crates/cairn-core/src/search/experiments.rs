//! The rules of `experiments/search`: only attributes (`name`, `experiment_id`,
//! `creation_time`, `last_update_time`) and tags, each with its own operators, checked in the
//! order MLflow checks them.

use super::grammar::{RawClause, RawOp};
use super::lexer::{Name, Tok};
use super::runs::checked_op;
use super::terms::{Owner, list_value, number_value, py_set, split_name, string_value};
use super::{Attribute, Comparison, Entity, Op, Value};
use crate::{Error, Result};

const ATTRIBUTES: &[(&str, Attribute)] = &[
    ("name", Attribute::Name),
    ("experiment_id", Attribute::ExperimentId),
    ("creation_time", Attribute::CreationTime),
    ("last_update_time", Attribute::LastUpdateTime),
];

const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

/// Resolves a name: undotted names are attributes; a prefix must be exactly `attribute`, `tag`
/// or `tags` (MLflow accepts none of the run search's other aliases here).
fn entity(name: &Name<'_>) -> Result<Entity> {
    let (prefix, key) = split_name(name);
    match prefix {
        None | Some("attribute") => match ATTRIBUTES.iter().find(|(n, _)| *n == key) {
            Some((_, attribute)) => Ok(Entity::Attribute(*attribute)),
            None => {
                let names: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
                Err(Error::invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are '{}'",
                    py_set(&names)
                )))
            }
        },
        Some("tag" | "tags") => Ok(Entity::Tag(key.to_owned())),
        Some(other) => Err(Error::invalid(format!(
            "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
        ))),
    }
}

/// Checks one clause of an experiment filter and turns it into a [`Comparison`].
pub(super) fn comparison(raw: &RawClause<'_>) -> Result<Comparison> {
    let entity = entity(&raw.name)?;
    let key = split_name(&raw.name).1;
    let Some(tok) = &raw.value else {
        if !matches!(entity, Entity::Tag(_)) {
            return Err(Error::invalid(format!(
                "IS NULL / IS NOT NULL is only supported for tags, not for attribute '{key}'"
            )));
        }
        let op = match raw.op {
            RawOp::Known(op) => op,
            RawOp::Unknown(_) => Op::IsNull,
        };
        return Ok(Comparison { entity, op, value: Value::Null });
    };
    let attribute = match entity {
        Entity::Tag(_) => {
            let value = Value::Str(string_value(tok, Owner::Tag)?);
            return match raw.op {
                RawOp::Known(op @ (Op::Eq | Op::Ne | Op::Like | Op::ILike)) => Ok(Comparison { entity, op, value }),
                RawOp::Known(op) => Err(Error::invalid(format!("Invalid comparator for tag: {}", op.as_str()))),
                RawOp::Unknown(ref s) => Err(Error::invalid(format!("Invalid comparator for tag: {s}"))),
            };
        }
        Entity::Attribute(attribute) => attribute,
        // `entity()` makes only tags and attributes.
        _ => return Err(Error::internal("unexpected entity in an experiment filter")),
    };
    match attribute {
        Attribute::CreationTime | Attribute::LastUpdateTime => {
            let (v, integer) = number_value(tok).ok_or_else(|| {
                Error::invalid(format!(
                    "Expected numeric value type for numeric attribute: {key}. Found {}",
                    tok.text()
                ))
            })?;
            let op = checked_op(&raw.op, NUMERIC_OPS)?;
            // Times are integer columns; MLflow refuses a fractional (or exponent) literal.
            if !integer {
                return Err(Error::invalid(format!("Invalid value for numeric attribute '{key}': '{}'", tok.text())));
            }
            Ok(Comparison { entity, op, value: Value::Num(v) })
        }
        Attribute::ExperimentId => {
            let value = match list_value(tok) {
                Some(list) => Value::List(list?.iter().map(|id| experiment_id(id)).collect::<Result<_>>()?),
                None => Value::Str(experiment_id(&string_value(tok, Owner::Attribute)?)?),
            };
            let op = match raw.op {
                RawOp::Known(op @ (Op::Eq | Op::Ne | Op::In | Op::NotIn)) => op,
                RawOp::Known(op) => {
                    return Err(Error::invalid(format!("Invalid comparator for experiment_id: {}", op.as_str())));
                }
                RawOp::Unknown(ref s) => {
                    return Err(Error::invalid(format!("Invalid comparator for experiment_id: {s}")));
                }
            };
            if matches!(value, Value::List(_)) != matches!(op, Op::In | Op::NotIn) {
                return Err(Error::invalid(format!(
                    "Invalid comparator '{}' for experiment_id: a list of values needs IN or NOT IN, \
                     and IN or NOT IN needs a list of values",
                    op.as_str()
                )));
            }
            Ok(Comparison { entity, op, value })
        }
        _ => {
            if matches!(tok, Tok::Group(_)) {
                return Err(Error::invalid(
                    "Only ['experiment_id'] attributes support comparison with a list of quoted string values.",
                ));
            }
            let value = Value::Str(string_value(tok, Owner::Attribute)?);
            match checked_op(&raw.op, STRING_OPS)? {
                op @ (Op::Eq | Op::Ne | Op::Like | Op::ILike) => Ok(Comparison { entity, op, value }),
                op => Err(Error::invalid(format!("Invalid comparator for string attribute: {}", op.as_str()))),
            }
        }
    }
}

/// An experiment id as MLflow's `int()` reads it (surrounding blanks and a sign allowed),
/// normalised to its decimal form.
fn experiment_id(id: &str) -> Result<String> {
    id.trim()
        .parse::<i64>()
        .map(|n| n.to_string())
        .map_err(|_| Error::invalid(format!("Invalid experiment ID '{id}'. Experiment ID must be a valid integer.")))
}

/// Resolves an experiment order key: attributes only.
pub(super) fn order_entity(name: &Name<'_>) -> Result<Entity> {
    match entity(name)? {
        Entity::Attribute(attribute) => Ok(Entity::Attribute(attribute)),
        _ => Err(Error::invalid("Invalid order_by entity: tag")),
    }
}
