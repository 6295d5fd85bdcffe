//! The rules of `registered-models/search` and `model-versions/search`, checked in the order
//! MLflow's parser (`SearchModelUtils`, `SearchModelVersionUtils`) and then its SQL store check
//! them, with their messages.
//!
//! Registered models filter on `name` (`=`, `!=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`) and tags
//! (`=`, `!=`, `LIKE`, `ILIKE`). Model versions add `run_id` (lists too), `source_path` and
//! `version_number` (numeric comparisons). Only `attribute`, `tag` and `tags` prefixes exist.

use super::grammar::{RawClause, RawOp};
use super::lexer::{Name, Tok};
use super::terms::{Owner, list_value, number_value, py_set, split_name, string_value};
use super::{Attribute, Comparison, Entity, Op, OrderBy, Value};
use crate::{Error, Result};

/// Which search a clause belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Search {
    Models,
    Versions,
}

impl Search {
    fn attributes(self) -> &'static [(&'static str, Attribute)] {
        match self {
            Search::Models => &[("name", Attribute::Name)],
            Search::Versions => &[
                ("name", Attribute::Name),
                ("run_id", Attribute::RunId),
                ("source_path", Attribute::SourcePath),
                ("version_number", Attribute::VersionNumber),
            ],
        }
    }

    /// Attributes that may be compared with a list (`IN`, `NOT IN`).
    fn list_attributes(self) -> &'static [&'static str] {
        match self {
            Search::Models => &["name"],
            Search::Versions => &["name", "run_id"],
        }
    }
}

const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];
const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
const TAG_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike];

fn entity(name: &Name<'_>, search: Search) -> Result<Entity> {
    let (prefix, key) = split_name(name);
    match prefix {
        None | Some("attribute") => {
            let attributes = search.attributes();
            match attributes.iter().find(|(n, _)| *n == key) {
                Some((_, attribute)) => Ok(Entity::Attribute(*attribute)),
                None => {
                    let names: Vec<&str> = attributes.iter().map(|(n, _)| *n).collect();
                    Err(Error::invalid(format!(
                        "Invalid attribute key '{key}' specified. Valid keys are '{}'",
                        py_set(&names)
                    )))
                }
            }
        }
        Some("tag" | "tags") => Ok(Entity::Tag(key.to_owned())),
        Some(other) => Err(Error::invalid(format!(
            "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
        ))),
    }
}

fn spelled(op: &RawOp) -> String {
    match op {
        RawOp::Known(op) => op.as_str().to_owned(),
        RawOp::Unknown(s) => s.to_uppercase(),
    }
}

fn allowed(op: &RawOp, ops: &[Op]) -> Option<Op> {
    match op {
        RawOp::Known(op) if ops.contains(op) => Some(*op),
        _ => None,
    }
}

/// Checks one clause of a registry filter and turns it into a [`Comparison`].
pub(super) fn comparison(raw: &RawClause<'_>, search: Search) -> Result<Comparison> {
    let entity = entity(&raw.name, search)?;
    let key = split_name(&raw.name).1;
    let Some(tok) = &raw.value else {
        let what = if matches!(entity, Entity::Tag(_)) { "tag".to_owned() } else { "attribute".to_owned() };
        return Err(Error::invalid(format!("Invalid comparator for {what}: {}", spelled(&raw.op))));
    };
    if let Entity::Tag(_) = entity {
        let value = Value::Str(string_value(tok, Owner::Tag)?);
        let op = allowed(&raw.op, TAG_OPS)
            .ok_or_else(|| Error::invalid(format!("Invalid comparator for tag: {}", spelled(&raw.op))))?;
        return Ok(Comparison { entity, op, value });
    }
    let Entity::Attribute(attribute) = entity else {
        return Err(Error::internal("unexpected entity in a registry filter"));
    };
    // The value first, as MLflow's parser reads it.
    let value = match tok {
        Tok::Str { .. } | Tok::Name(_) => Value::Str(string_value(tok, Owner::Attribute)?),
        Tok::Group(_) => {
            if !search.list_attributes().contains(&key) {
                let mut listed: Vec<&str> = search.list_attributes().to_vec();
                listed.sort_unstable();
                let quoted: Vec<String> = listed.iter().map(|s| format!("'{s}'")).collect();
                return Err(Error::invalid(format!(
                    "Only [{}] attributes support comparison with a list of quoted string values.",
                    quoted.join(", ")
                )));
            }
            match list_value(tok) {
                Some(list) => Value::List(list?),
                None => return Err(Error::internal("a group token is a list")),
            }
        }
        Tok::Num { .. } if search == Search::Versions => {
            if attribute != Attribute::VersionNumber {
                return Err(Error::invalid(
                    "Only the '{'creation_timestamp', 'last_updated_timestamp', 'version_number'}' attributes \
                     support comparison with numeric values.",
                ));
            }
            let (v, _) = number_value(tok).ok_or_else(|| Error::internal("a number token has a value"))?;
            Value::Num(v)
        }
        other => {
            return Err(Error::invalid(format!(
                "Expected a quoted string value or a list of quoted string values for attributes. Got value {}",
                other.text()
            )));
        }
    };
    // Then the operator and the value's type, as MLflow's store checks them.
    if attribute == Attribute::VersionNumber {
        let op = allowed(&raw.op, NUMERIC_OPS)
            .ok_or_else(|| Error::invalid(format!("Invalid comparator for attribute {key}: {}", spelled(&raw.op))))?;
        let number = match (&value, tok) {
            (Value::Num(_), Tok::Num { integer: false, raw, .. }) => {
                return Err(Error::invalid(format!("Invalid value for numeric attribute '{key}': {raw}")));
            }
            (Value::Num(v), _) => *v,
            (Value::Str(s), _) => match s.trim().parse::<i64>() {
                Ok(v) => v as f64,
                Err(_) => {
                    return Err(Error::invalid(format!(
                        "Invalid value for numeric attribute '{key}': {}",
                        crate::validation::py_repr_str(s)
                    )));
                }
            },
            _ => return Err(Error::invalid(format!("Invalid value for numeric attribute '{key}'"))),
        };
        return Ok(Comparison { entity, op, value: Value::Num(number) });
    }
    let op = allowed(&raw.op, STRING_OPS)
        .filter(|op| !matches!(op, Op::In | Op::NotIn) || search.list_attributes().contains(&key))
        .ok_or_else(|| Error::invalid(format!("Invalid comparator for attribute: {}", spelled(&raw.op))))?;
    if matches!(value, Value::List(_)) != matches!(op, Op::In | Op::NotIn) {
        return Err(Error::invalid(format!(
            "Invalid comparator '{}' for {key}: a list of values needs IN or NOT IN, and IN or NOT IN needs a \
             list of values",
            op.as_str()
        )));
    }
    Ok(Comparison { entity, op, value })
}

/// Resolves a registered-model order key: `name`, `timestamp` or `last_updated_timestamp`
/// (both the last update time, as in MLflow's SQL store) and, as in MLflow's entity-level
/// search, `creation_timestamp`.
pub(super) fn model_order_entity(name: &Name<'_>) -> Result<Entity> {
    let attribute = match name.raw.trim() {
        "name" => Attribute::Name,
        "timestamp" | "last_updated_timestamp" => Attribute::LastUpdateTime,
        "creation_timestamp" => Attribute::CreationTime,
        other => {
            return Err(Error::invalid(format!(
                "Invalid order by key '{other}' specified. Valid keys are '{{'name', 'timestamp'}}'"
            )));
        }
    };
    Ok(Entity::Attribute(attribute))
}

/// Resolves a model-version order key: `name`, `version_number`, `creation_timestamp`,
/// `last_updated_timestamp`.
pub(super) fn version_order_entity(name: &Name<'_>) -> Result<Entity> {
    const KEYS: &[(&str, Attribute)] = &[
        ("name", Attribute::Name),
        ("version_number", Attribute::VersionNumber),
        ("creation_timestamp", Attribute::CreationTime),
        ("last_updated_timestamp", Attribute::LastUpdateTime),
    ];
    let (prefix, key) = split_name(name);
    if let Some(other) = prefix.filter(|p| !matches!(*p, "attribute" | "tag" | "tags")) {
        return Err(Error::invalid(format!(
            "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
        )));
    }
    match KEYS.iter().find(|(n, _)| *n == key) {
        Some((_, attribute)) if prefix.is_none() || prefix == Some("attribute") => Ok(Entity::Attribute(*attribute)),
        _ => {
            let names: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            Err(Error::invalid(format!("Invalid order by key '{key}' specified. Valid keys are {}", py_set(&names))))
        }
    }
}

/// Refuses an order_by list naming one field twice (`timestamp` and `last_updated_timestamp`
/// are one field).
pub(super) fn reject_duplicates(keys: &[OrderBy], inputs: &[&str]) -> Result<()> {
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].iter().any(|k| k.entity == key.entity) {
            let listed: Vec<String> = inputs.iter().map(|s| crate::validation::py_repr_str(s)).collect();
            return Err(Error::invalid(format!("`order_by` contains duplicate fields: [{}]", listed.join(", "))));
        }
    }
    Ok(())
}
