//! `logged-models/search` as one SQL statement, with the semantics of MLflow's SQL store
//! (`_apply_filter_string_datasets_search_logged_models`, `_apply_order_by_search_logged_models`).
//!
//! Candidates are the live models of the given experiments (`logged_models_by_experiment`).
//! An attribute clause is a column comparison; a param or tag clause an `EXISTS` probe on the
//! child table's primary key; a metric clause holds when *any* point of that metric (on the
//! requested datasets, if any) satisfies it, as in MLflow. A metric order key sorts by the
//! model's latest point of the metric (newest timestamp, then step, then run id), missing
//! values last; ties fall back to newest first, then model id.

use cairn_core::Result;
use cairn_core::logged_models::{DatasetFilter, LoggedModelQuery};
use cairn_core::model::{LifecycleStage, Page};
use cairn_core::search::{LoggedModelAttribute, LoggedModelComparison, LoggedModelField, Op, Value};

use super::query::{Query, first_ints, page, sql_op, unsupported};
use crate::sql::common::parse_experiment_id;
use crate::sql::db::{Db, SqlValue};

/// Returns the `model_pk`s of one page of models matching `q`, in order.
pub fn search(db: &mut dyn Db, q: &LoggedModelQuery) -> Result<Page<i64>> {
    let experiment_ids = q.experiment_ids.iter().map(|id| parse_experiment_id(id)).collect::<Result<Vec<_>>>()?;
    if experiment_ids.is_empty() {
        return Ok(Page::new(Vec::new(), None));
    }
    let mut query = Query::new(db.dialect());
    query.push("SELECT m.model_pk FROM logged_models m");
    let order = order_joins(&mut query, q)?;

    let ids = query.bind_list(experiment_ids.into_iter().map(SqlValue::Int));
    let active = query.bind(LifecycleStage::Active.as_str());
    query.push(&format!(" WHERE m.experiment_id IN ({ids}) AND m.lifecycle_stage = {active}"));
    let mut has_metric_clause = false;
    for clause in &q.filter.clauses {
        has_metric_clause |= matches!(clause.field, LoggedModelField::Metric(_));
        let condition = condition(&mut query, clause, &q.datasets)?;
        query.push(" AND ");
        query.push(&condition);
    }
    if !q.datasets.is_empty() && !has_metric_clause {
        // Without metric clauses, the datasets keep the models with any metric on one of them.
        let on = datasets_condition(&mut query, "l", &q.datasets);
        query.push(&format!(
            " AND EXISTS (SELECT 1 FROM logged_model_metrics l WHERE l.model_pk = m.model_pk AND {on})"
        ));
    }
    query.push(" ORDER BY ");
    query.push(&order.join(", "));
    query.push_page(q.max_results, q.offset);

    let rows = db.query(&query.sql, &query.params)?;
    Ok(page(first_ints(rows)?, q.max_results, q.offset))
}

/// The column of an attribute, and whether it holds text.
fn column(attribute: LoggedModelAttribute) -> (&'static str, bool) {
    match attribute {
        LoggedModelAttribute::ModelId => ("m.model_id", true),
        // Stored as an integer, compared as the string MLflow's wire carries.
        LoggedModelAttribute::ExperimentId => ("CAST(m.experiment_id AS TEXT)", true),
        LoggedModelAttribute::Name => ("m.name", true),
        LoggedModelAttribute::ArtifactLocation => ("m.artifact_location", true),
        LoggedModelAttribute::CreationTime => ("m.creation_time", false),
        LoggedModelAttribute::LastUpdatedTime => ("m.last_updated_time", false),
        LoggedModelAttribute::Status => ("m.status", true),
        LoggedModelAttribute::StatusMessage => ("m.status_message", true),
        LoggedModelAttribute::ModelType => ("m.model_type", true),
        LoggedModelAttribute::SourceRunId => ("m.source_run_id", true),
    }
}

/// `(alias.dataset_name = … [AND alias.dataset_digest = …]) OR …` for the requested datasets.
fn datasets_condition(query: &mut Query, alias: &str, datasets: &[DatasetFilter]) -> String {
    let terms: Vec<String> = datasets
        .iter()
        .map(|d| {
            let name = query.bind(d.name.as_str());
            match &d.digest {
                Some(digest) => {
                    let digest = query.bind(digest.as_str());
                    format!("({alias}.dataset_name = {name} AND {alias}.dataset_digest = {digest})")
                }
                None => format!("{alias}.dataset_name = {name}"),
            }
        })
        .collect();
    format!("({})", terms.join(" OR "))
}

/// A string or list comparison of the text `column`.
fn text_or_list(query: &mut Query, column: &str, clause: &LoggedModelComparison) -> Result<String> {
    match &clause.value {
        Value::Str(s) => query.text_condition(column, clause.op, s),
        Value::List(values) => query.list_condition(column, clause.op, values),
        _ => Err(unsupported(clause.op, "a logged-model string field")),
    }
}

/// The SQL condition of one filter clause.
fn condition(query: &mut Query, clause: &LoggedModelComparison, datasets: &[DatasetFilter]) -> Result<String> {
    match &clause.field {
        LoggedModelField::Attribute(attribute) => {
            let (column, is_text) = column(*attribute);
            match (&clause.value, is_text) {
                (Value::Num(v), false) => query.integer_condition(column, clause.op, *v),
                (_, true) => text_or_list(query, column, clause),
                _ => Err(unsupported(clause.op, "a logged-model attribute")),
            }
        }
        LoggedModelField::Param(key) | LoggedModelField::Tag(key) => {
            let table = if matches!(clause.field, LoggedModelField::Param(_)) {
                "logged_model_params"
            } else {
                "logged_model_tags"
            };
            let key = query.bind(key.as_str());
            let test = text_or_list(query, "kv.value", clause)?;
            // `table` is one of two constants above.
            Ok(format!(
                "EXISTS (SELECT 1 FROM {table} kv WHERE kv.model_pk = m.model_pk AND kv.key = {key} AND {test})"
            ))
        }
        LoggedModelField::Metric(key) => {
            let Value::Num(value) = clause.value else { return Err(unsupported(clause.op, "a metric")) };
            if !matches!(clause.op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) {
                return Err(unsupported(clause.op, "a metric"));
            }
            let key = query.bind(key.as_str());
            let value = query.bind(value);
            let op = sql_op(clause.op);
            // NaN is stored as 0 with `is_nan` set; it satisfies `!=` and nothing else.
            let test = if clause.op == Op::Ne {
                format!("(l.value {op} {value} OR l.is_nan = 1)")
            } else {
                format!("l.value {op} {value} AND l.is_nan = 0")
            };
            let on = if datasets.is_empty() {
                String::new()
            } else {
                format!(" AND {}", datasets_condition(query, "l", datasets))
            };
            Ok(format!(
                "EXISTS (SELECT 1 FROM logged_model_metrics l WHERE l.model_pk = m.model_pk AND l.key = {key} \
                 AND {test}{on})"
            ))
        }
    }
}

/// Writes one `LEFT JOIN` per metric order key and returns the ORDER BY terms with MLflow's
/// tie-breakers (`creation_timestamp DESC`, then `model_id`, unless ordered by already).
fn order_joins(query: &mut Query, q: &LoggedModelQuery) -> Result<Vec<String>> {
    let mut terms = Vec::with_capacity(q.order_by.len() * 2 + 2);
    let (mut has_creation, mut has_id) = (false, false);
    for (i, key) in q.order_by.iter().enumerate() {
        let direction = if key.ascending { "" } else { " DESC" };
        match &key.field {
            LoggedModelField::Attribute(attribute) => {
                has_creation |= *attribute == LoggedModelAttribute::CreationTime;
                has_id |= *attribute == LoggedModelAttribute::ModelId;
                let (column, is_text) = column(*attribute);
                let sorted = if is_text { query.text_order_key(column) } else { column.to_owned() };
                terms.push(format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END"));
                terms.push(format!("{sorted}{direction}"));
            }
            LoggedModelField::Metric(metric) => {
                let alias = format!("o{i}");
                let k = query.bind(metric.as_str());
                let on = match &key.dataset {
                    Some(d) => format!(" AND {}", datasets_condition(query, "l", std::slice::from_ref(d))),
                    None => String::new(),
                };
                let run_order = query.text_order_key("r.run_id");
                query.push(&format!(
                    " LEFT JOIN (SELECT ranked.model_pk, ranked.value, ranked.is_nan FROM (\
                       SELECT l.model_pk, l.value, l.is_nan, ROW_NUMBER() OVER (PARTITION BY l.model_pk \
                         ORDER BY l.timestamp DESC, l.step DESC, {run_order}) AS position \
                       FROM logged_model_metrics l LEFT JOIN runs r ON r.run_pk = l.run_pk \
                       WHERE l.key = {k}{on}) ranked WHERE ranked.position = 1) {alias} \
                     ON {alias}.model_pk = m.model_pk"
                ));
                terms.push(format!("CASE WHEN {alias}.is_nan = 1 THEN 1 WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"));
                terms.push(format!("{alias}.value{direction}"));
            }
            LoggedModelField::Param(_) | LoggedModelField::Tag(_) => {
                return Err(cairn_core::Error::invalid("Invalid order by field name. Only metrics are supported."));
            }
        }
    }
    if !has_creation {
        terms.push("m.creation_time DESC".to_owned());
    }
    if !has_id {
        terms.push(query.text_order_key("m.model_id"));
    }
    Ok(terms)
}
