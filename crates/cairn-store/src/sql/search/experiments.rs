//! `experiments/search` as one SQL statement, with the semantics of MLflow's SQL store
//! (`_search_experiments`, `_get_search_experiments_filter_clauses`,
//! `_get_search_experiments_order_by_clauses`).

use cairn_core::model::Page;
use cairn_core::search::{Attribute, Comparison, Entity, Op, OrderBy, Value};
use cairn_core::store::ExperimentQuery;
use cairn_core::{Error, Result};

use super::query::{Query, first_ints, page, unsupported};
use super::runs::stage;
use crate::sql::db::{Db, SqlValue};

/// Returns the ids of one page of experiments matching `q`, in order.
pub fn search(db: &mut dyn Db, q: &ExperimentQuery) -> Result<Page<i64>> {
    let mut query = Query::new(db.dialect());
    query.push("SELECT e.experiment_id FROM experiments e WHERE 1 = 1");
    if let Some(stage) = stage(q.view) {
        let stage = query.bind(stage);
        query.push(&format!(" AND e.lifecycle_stage = {stage}"));
    }
    for clause in &q.filter.clauses {
        let condition = condition(&mut query, clause)?;
        query.push(" AND ");
        query.push(&condition);
    }
    query.push(" ORDER BY ");
    let order = order_terms(&query, &q.order_by)?;
    query.push(&order.join(", "));
    query.push_page(q.max_results, q.offset);

    let rows = db.query(&query.sql, &query.params)?;
    Ok(page(first_ints(rows)?, q.max_results, q.offset))
}

/// The `experiments` column of an attribute; run-only attributes have none.
fn column(attribute: Attribute) -> Result<&'static str> {
    match attribute {
        Attribute::Name => Ok("e.name"),
        Attribute::ExperimentId => Ok("e.experiment_id"),
        Attribute::CreationTime => Ok("e.creation_time"),
        Attribute::LastUpdateTime => Ok("e.last_update_time"),
        Attribute::LifecycleStage => Ok("e.lifecycle_stage"),
        other => Err(Error::invalid(format!("Invalid attribute key '{other:?}' for an experiment search"))),
    }
}

/// The parser has checked the ids; a bad one here is a caller bypassing it.
fn id(s: &str) -> Result<i64> {
    s.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("Invalid experiment ID '{s}'. Experiment ID must be a valid integer.")))
}

fn condition(query: &mut Query, clause: &Comparison) -> Result<String> {
    match (&clause.entity, &clause.value) {
        (Entity::Attribute(Attribute::ExperimentId), Value::Str(s)) => {
            let op = match clause.op {
                Op::Eq => "=",
                Op::Ne => "!=",
                other => return Err(unsupported(other, "experiment_id")),
            };
            Ok(format!("e.experiment_id {op} {}", query.bind(id(s)?)))
        }
        (Entity::Attribute(Attribute::ExperimentId), Value::List(ids)) => {
            let keyword = match clause.op {
                Op::In => "IN",
                Op::NotIn => "NOT IN",
                other => return Err(unsupported(other, "a list")),
            };
            let ids = ids.iter().map(|s| id(s).map(SqlValue::Int)).collect::<Result<Vec<_>>>()?;
            Ok(format!("e.experiment_id {keyword} ({})", query.bind_list(ids)))
        }
        (Entity::Attribute(attribute), Value::Num(v)) => query.integer_condition(column(*attribute)?, clause.op, *v),
        (Entity::Attribute(attribute), Value::Str(s)) => query.text_condition(column(*attribute)?, clause.op, s),
        (Entity::Tag(key), value) => {
            let key = query.bind(key.as_str());
            let probe =
                format!("SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = {key}");
            match (value, clause.op) {
                (Value::Null, Op::IsNull) => Ok(format!("NOT EXISTS ({probe})")),
                (Value::Null, Op::IsNotNull) => Ok(format!("EXISTS ({probe})")),
                (Value::Str(s), op) => Ok(format!("EXISTS ({probe} AND {})", query.text_condition("t.value", op, s)?)),
                (_, op) => Err(unsupported(op, "an experiment tag")),
            }
        }
        (entity, _) => Err(Error::invalid(format!("Invalid search expression type '{entity:?}'"))),
    }
}

/// ORDER BY terms: the given keys (default `creation_time DESC, experiment_id ASC`), then
/// `experiment_id DESC` unless already a key. The columns are NOT NULL, so no null ordering is
/// needed.
fn order_terms(query: &Query, order_by: &[OrderBy]) -> Result<Vec<String>> {
    let default = [
        OrderBy { entity: Entity::Attribute(Attribute::CreationTime), ascending: false },
        OrderBy { entity: Entity::Attribute(Attribute::ExperimentId), ascending: true },
    ];
    let keys = if order_by.is_empty() { &default[..] } else { order_by };
    let mut terms = Vec::with_capacity(keys.len() + 1);
    for key in keys {
        let Entity::Attribute(attribute) = key.entity else {
            return Err(Error::invalid("Invalid order_by entity: tag"));
        };
        let column = column(attribute)?;
        let sorted = if attribute == Attribute::Name { query.text_order_key(column) } else { column.to_owned() };
        terms.push(format!("{sorted}{}", if key.ascending { " ASC" } else { " DESC" }));
    }
    if !keys.iter().any(|k| k.entity == Entity::Attribute(Attribute::ExperimentId)) {
        terms.push("e.experiment_id DESC".to_owned());
    }
    Ok(terms)
}
