//! `registered-models/search` and `model-versions/search` as one SQL statement each, with the
//! semantics of MLflow's SQL registry store (`_get_search_registered_model_filter_query`,
//! `_get_search_model_versions_filter_clauses`, `_parse_search_*_order_by`).
//!
//! Attribute clauses compare columns; tag clauses probe the tag table's primary key with
//! `EXISTS`. As in MLflow, prompts (models tagged `mlflow.prompt.is_prompt = 'true'`) are left
//! out unless the filter asks for them through that tag.

use cairn_core::model::Page;
use cairn_core::registry::{ModelVersionQuery, RegisteredModelQuery};
use cairn_core::search::{Attribute, Comparison, Entity, Op, OrderBy, Value};
use cairn_core::{Error, Result};

use super::query::{Query, unsupported};
use crate::sql::db::{Db, Row};

/// The tag that marks a registered model (or its versions) as an MLflow prompt.
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Which search is being compiled: its tables, aliases and columns.
#[derive(Debug, Clone, Copy)]
enum Target {
    Models,
    Versions,
}

impl Target {
    fn column(self, attribute: Attribute) -> Result<&'static str> {
        match (self, attribute) {
            (_, Attribute::Name) => Ok("m.name"),
            (Target::Models, Attribute::CreationTime) => Ok("m.creation_time"),
            (Target::Models, Attribute::LastUpdateTime) => Ok("m.last_updated_time"),
            (Target::Versions, Attribute::CreationTime) => Ok("v.creation_time"),
            (Target::Versions, Attribute::LastUpdateTime) => Ok("v.last_updated_time"),
            (Target::Versions, Attribute::RunId) => Ok("v.run_id"),
            (Target::Versions, Attribute::SourcePath) => Ok("v.source"),
            (Target::Versions, Attribute::VersionNumber) => Ok("v.version"),
            (_, other) => Err(Error::invalid(format!("Invalid attribute name: {other:?}"))),
        }
    }

    /// The probe finding a tag row of the current model (or version) with key `key`.
    fn tag_probe(self, alias: &str, key: &str) -> String {
        match self {
            Target::Models => {
                format!(
                    "SELECT 1 FROM registered_model_tags {alias} WHERE {alias}.model_pk = m.model_pk AND {alias}.key = {key}"
                )
            }
            Target::Versions => format!(
                "SELECT 1 FROM model_version_tags {alias} WHERE {alias}.model_pk = v.model_pk \
                 AND {alias}.version = v.version AND {alias}.key = {key}"
            ),
        }
    }

    /// The probe finding the prompt tag anywhere on the current model: on the model itself, or
    /// (for versions, as MLflow joins on the model name) on any version of it.
    fn prompt_probe(self, key: &str, value: &str) -> String {
        match self {
            Target::Models => format!(
                "SELECT 1 FROM registered_model_tags p WHERE p.model_pk = m.model_pk AND p.key = {key} AND p.value = {value}"
            ),
            Target::Versions => format!(
                "SELECT 1 FROM model_version_tags p WHERE p.model_pk = v.model_pk AND p.key = {key} AND p.value = {value}"
            ),
        }
    }
}

/// Whether the filter asks for prompts (`is_prompt = 'true'` or `is_prompt != 'false'`).
fn queries_prompts(clauses: &[Comparison]) -> bool {
    clauses.iter().any(|c| match (&c.entity, c.op, &c.value) {
        (Entity::Tag(key), Op::Eq, Value::Str(v)) if key == IS_PROMPT_TAG => v.eq_ignore_ascii_case("true"),
        (Entity::Tag(key), Op::Ne, Value::Str(v)) if key == IS_PROMPT_TAG => v.eq_ignore_ascii_case("false"),
        _ => false,
    })
}

fn conditions(query: &mut Query, target: Target, clauses: &[Comparison]) -> Result<()> {
    let prompts = queries_prompts(clauses);
    for (i, clause) in clauses.iter().enumerate() {
        // Without a prompt query the prompt tag's own clauses are dropped, as MLflow drops them.
        if !prompts && matches!(&clause.entity, Entity::Tag(k) if k == IS_PROMPT_TAG) {
            continue;
        }
        let condition = match (&clause.entity, &clause.value) {
            (Entity::Attribute(attribute), Value::Num(n)) => {
                query.integer_condition(target.column(*attribute)?, clause.op, *n)?
            }
            (Entity::Attribute(attribute), Value::Str(s)) => {
                query.text_condition(target.column(*attribute)?, clause.op, s)?
            }
            (Entity::Attribute(attribute), Value::List(items)) => {
                query.list_condition(target.column(*attribute)?, clause.op, items)?
            }
            (Entity::Tag(key), Value::Str(s)) => {
                let key = query.bind(key.as_str());
                let alias = format!("t{i}");
                let probe = target.tag_probe(&alias, &key);
                format!("EXISTS ({probe} AND {})", query.text_condition(&format!("{alias}.value"), clause.op, s)?)
            }
            (_, _) => return Err(unsupported(clause.op, "a registry search")),
        };
        query.push(" AND ");
        query.push(&condition);
    }
    if !prompts {
        let (key, value) = (query.bind(IS_PROMPT_TAG), query.bind("true"));
        query.push(&format!(" AND NOT EXISTS ({})", target.prompt_probe(&key, &value)));
    }
    Ok(())
}

fn order_terms(query: &Query, target: Target, keys: &[OrderBy]) -> Result<String> {
    let mut terms = Vec::with_capacity(keys.len() + 2);
    for key in keys {
        let Entity::Attribute(attribute) = key.entity else {
            return Err(Error::invalid("Invalid order_by entity: tag"));
        };
        let column = target.column(attribute)?;
        let sorted = if attribute == Attribute::Name { query.text_order_key(column) } else { column.to_owned() };
        terms.push(format!("{sorted}{}", if key.ascending { " ASC" } else { " DESC" }));
    }
    let has = |a: Attribute| keys.iter().any(|k| k.entity == Entity::Attribute(a));
    if !has(Attribute::Name) {
        terms.push(format!("{} ASC", query.text_order_key("m.name")));
    }
    if matches!(target, Target::Versions) && !has(Attribute::VersionNumber) {
        terms.push("v.version DESC".to_owned());
    }
    Ok(terms.join(", "))
}

/// Turns fetched rows (up to one more than the page) into a page.
fn page<T>(mut items: Vec<T>, max_results: u64, offset: u64) -> Page<T> {
    let max = usize::try_from(max_results).unwrap_or(usize::MAX);
    let more = items.len() > max;
    items.truncate(max);
    let next_offset = (more && max_results > 0).then(|| offset.saturating_add(max_results));
    Page::new(items, next_offset)
}

fn ints(row: Row) -> Result<Vec<i64>> {
    row.iter().map(|v| Ok(v.int()?)).collect()
}

/// The `model_pk`s of one page of registered models matching `q`, in order. Without an
/// order_by, models sort by name.
pub fn search_registered_models(db: &mut dyn Db, q: &RegisteredModelQuery) -> Result<Page<i64>> {
    let mut query = Query::new(db.dialect());
    query.push("SELECT m.model_pk FROM registered_models m WHERE 1 = 1");
    conditions(&mut query, Target::Models, &q.filter.clauses)?;
    query.push(" ORDER BY ");
    let order = order_terms(&query, Target::Models, &q.order_by)?;
    query.push(&order);
    query.push_page(q.max_results, q.offset);
    let rows = db.query(&query.sql, &query.params)?;
    let pks = rows.into_iter().map(|row| Ok(ints(row)?.first().copied().unwrap_or_default())).collect::<Result<_>>()?;
    Ok(page(pks, q.max_results, q.offset))
}

/// The `(model_pk, version)`s of one page of model versions matching `q`, in order. Without an
/// order_by, versions sort by last update (newest first), then name, then version (highest
/// first), as in MLflow.
pub fn search_model_versions(db: &mut dyn Db, q: &ModelVersionQuery) -> Result<Page<(i64, i64)>> {
    let default = [OrderBy { entity: Entity::Attribute(Attribute::LastUpdateTime), ascending: false }];
    let keys = if q.order_by.is_empty() { &default[..] } else { &q.order_by[..] };
    let mut query = Query::new(db.dialect());
    query.push("SELECT v.model_pk, v.version FROM model_versions v JOIN registered_models m ON m.model_pk = v.model_pk WHERE 1 = 1");
    conditions(&mut query, Target::Versions, &q.filter.clauses)?;
    query.push(" ORDER BY ");
    let order = order_terms(&query, Target::Versions, keys)?;
    query.push(&order);
    query.push_page(q.max_results, q.offset);
    let rows = db.query(&query.sql, &query.params)?;
    let keys = rows
        .into_iter()
        .map(|row| match ints(row)?.as_slice() {
            [pk, version] => Ok((*pk, *version)),
            _ => Err(Error::internal("version search returned a row of the wrong width")),
        })
        .collect::<Result<_>>()?;
    Ok(page(keys, q.max_results, q.offset))
}

#[cfg(test)]
mod tests {
    use cairn_core::search::{parse_model_version_filter, parse_registered_model_filter};

    use super::*;
    use crate::sql::db::{Dialect, SqlValue};

    fn compiled(target: Target, filter: &str) -> (String, Vec<SqlValue>) {
        let clauses = match target {
            Target::Models => parse_registered_model_filter(filter),
            Target::Versions => parse_model_version_filter(filter),
        }
        .unwrap()
        .clauses;
        let mut query = Query::new(Dialect::Postgres);
        conditions(&mut query, target, &clauses).unwrap();
        (query.sql, query.params)
    }

    #[test]
    fn filter_values_are_bound_never_pasted() {
        let (sql, params) = compiled(Target::Models, "name LIKE '%x''; DROP TABLE y' AND tags.k = 'v'");
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(params.contains(&SqlValue::Text("v".into())));
        assert!(sql.contains("NOT EXISTS"), "prompts are excluded: {sql}");
    }

    #[test]
    fn prompt_queries_keep_prompts() {
        let (sql, _) = compiled(Target::Versions, "tags.`mlflow.prompt.is_prompt` = 'true'");
        assert!(!sql.contains("NOT EXISTS"), "{sql}");
        let (sql, params) =
            compiled(Target::Versions, "tags.`mlflow.prompt.is_prompt` = 'false' AND run_id IN ('a', 'b')");
        assert!(sql.contains("NOT EXISTS") && sql.contains("v.run_id IN"), "{sql}");
        assert!(!params.contains(&SqlValue::Text("false".into())), "the prompt clause is dropped: {params:?}");
    }
}
