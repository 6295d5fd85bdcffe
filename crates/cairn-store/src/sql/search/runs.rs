//! `runs/search` as one SQL statement, with the semantics of MLflow's SQL store
//! (`_search_runs`, `_get_sqlalchemy_filter_clauses`, `_get_orderby_clauses`).
//!
//! The statement selects `run_pk`s from `runs`, narrowed by experiment and lifecycle stage (the
//! `runs_by_experiment` index) and by one condition per filter clause: a column comparison for
//! attributes, an `EXISTS` probe on the child table's primary key for params, tags and metrics.
//! Each param, tag or metric order key is a `LEFT JOIN` on the same primary keys, so runs
//! without that key stay in the result and sort last.

use cairn_core::model::{Page, SortValue, ViewType};
use cairn_core::search::{Attribute, Comparison, Entity, Op, OrderBy, Value};
use cairn_core::store::RunQuery;
use cairn_core::validation::RUN_NAME_TAG;
use cairn_core::{Error, Result};

use super::query::{Query, first_ints, page, unsupported};
use crate::sql::common::parse_experiment_id;
use crate::sql::db::{Db, Dialect, SqlValue};

/// Returns the `run_pk`s of one page of runs matching `q`, in order.
pub fn search(db: &mut dyn Db, q: &RunQuery) -> Result<Page<i64>> {
    let Some((query, terms)) = statement(db, q)? else { return Ok(Page::new(Vec::new(), None)) };
    let rows = db.query(&query.sql, &query.params)?;
    let max = usize::try_from(q.max_results).unwrap_or(usize::MAX);
    let last_key = match rows.get(max.wrapping_sub(1)) {
        Some(row) if rows.len() > max => Some(sort_key(&terms, row)?),
        _ => None,
    };
    let keys = rows
        .iter()
        .map(|row| Ok(row.first().ok_or_else(|| Error::internal("search query returned an empty row"))?.int()?))
        .collect::<Result<Vec<i64>>>()?;
    let mut page = page(keys, q.max_results, q.offset);
    page.next_after = last_key.filter(|_| page.next_offset.is_some());
    Ok(page)
}

/// The sort key a row of [`statement`] carries after its `run_pk`.
fn sort_key(terms: &[Term], row: &crate::sql::db::Row) -> Result<Vec<SortValue>> {
    if row.len() != terms.len() + 1 {
        return Err(Error::internal("search query returned a row without its sort key"));
    }
    terms
        .iter()
        .zip(&row[1..])
        .map(|(term, value)| {
            Ok(match (value, term.kind) {
                (SqlValue::Null, _) => SortValue::Null,
                (value, Kind::Int) => SortValue::Int(value.int()?),
                (value, Kind::Real) => SortValue::Real(value.real()?),
                (value, Kind::Text) => SortValue::Text(value.text()?.to_owned()),
            })
        })
        .collect()
}

/// The statement that finds one page of `q` (each row a `run_pk` and its sort key) and the
/// ORDER BY terms of that key, or `None` when no experiment is searched.
pub(super) fn statement(db: &mut dyn Db, q: &RunQuery) -> Result<Option<(Query, Vec<Term>)>> {
    let experiment_ids = q.experiment_ids.iter().map(|id| parse_experiment_id(id)).collect::<Result<Vec<_>>>()?;
    if experiment_ids.is_empty() {
        return Ok(None);
    }
    reject_duplicate_keys(&q.order_by)?;

    let filters_a_metric = q.filter.clauses.iter().any(|c| matches!(c.entity, Entity::Metric(_)));
    let value_index = filters_a_metric && may_use_value_index(db, experiment_ids.len())?;
    let mut joins = Query::new(db.dialect());
    let (terms, metric_joins) = order_joins(&mut joins, &q.order_by, &q.filter.clauses)?;
    // The sort key is selected before the joins that compute it are written, and placeholders
    // are numbered in order of appearance, so the joins are built aside (their binds first) and
    // appended after the select list, which binds nothing.
    let mut query = Query::new(db.dialect());
    let columns: Vec<&str> = terms.iter().map(|t| t.expr.as_str()).collect();
    query.push(&format!("SELECT r.run_pk, {} FROM runs r", columns.join(", ")));
    query.push(&joins.sql);
    query.params = joins.params;

    let ids = query.bind_list(experiment_ids.into_iter().map(SqlValue::Int));
    query.push(&format!(" WHERE r.experiment_id IN ({ids})"));
    if let Some(stage) = stage(q.view) {
        let stage = query.bind(stage);
        query.push(&format!(" AND r.lifecycle_stage = {stage}"));
    }
    for clause in &q.filter.clauses {
        let condition = condition(&mut query, clause, &metric_joins, value_index)?;
        query.push(" AND ");
        query.push(&condition);
    }

    let offset = match &q.after {
        Some(after) => {
            let condition = seek(&mut query, &terms, after)?;
            query.push(" AND ");
            query.push(&condition);
            0
        }
        None => q.offset,
    };

    let order: Vec<String> = terms.iter().map(Term::order_by).collect();
    query.push(" ORDER BY ");
    query.push(&order.join(", "));
    query.push_page(q.max_results, offset);
    Ok(Some((query, terms)))
}

/// What a sort key term holds, so that a value from a page token binds as the same type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Int,
    Real,
    Text,
}

/// One ORDER BY term of a run search.
#[derive(Debug, Clone)]
pub(super) struct Term {
    expr: String,
    descending: bool,
    kind: Kind,
    /// Whether rows can hold NULL here (a missing param, tag, metric or start time).
    nullable: bool,
    /// `NULLS LAST` written out; otherwise the database's own placement applies.
    explicit_nulls_last: bool,
}

impl Term {
    fn new(expr: String, descending: bool, kind: Kind, nullable: bool) -> Self {
        Term { expr, descending, kind, nullable, explicit_nulls_last: false }
    }

    fn order_by(&self) -> String {
        let direction = if self.descending { " DESC" } else { "" };
        let nulls = if self.explicit_nulls_last { " NULLS LAST" } else { "" };
        format!("{}{direction}{nulls}", self.expr)
    }

    /// Whether NULLs come after every value in this term's order: SQLite puts NULL below every
    /// value, PostgreSQL above.
    fn nulls_last(&self, dialect: Dialect) -> bool {
        self.explicit_nulls_last
            || match dialect {
                Dialect::Sqlite => self.descending,
                Dialect::Postgres => !self.descending,
            }
    }
}

/// The condition "the row sorts after `after`" for the ORDER BY `terms`: the rows of the next
/// page, found by key rather than by counting the rows before it, so that a late page costs what
/// the first does, and rows written meanwhile neither repeat nor get skipped across pages.
///
/// It is the lexicographic comparison written out (equal on the first i terms and after on the
/// next, for each i), NULL-aware per term. When the first term holds no NULLs, the same bound is
/// also written as a plain range on it, which an index on that term can start from. A key of
/// another shape than `terms` (a token from another search) is refused.
fn seek(query: &mut Query, terms: &[Term], after: &[SortValue]) -> Result<String> {
    if after.len() != terms.len() {
        return Err(foreign_token());
    }
    let dialect = query.dialect;
    let mut disjuncts = Vec::with_capacity(terms.len());
    for (i, (term, value)) in terms.iter().zip(after).enumerate() {
        let mut parts = Vec::with_capacity(i + 1);
        for (earlier, earlier_value) in terms[..i].iter().zip(after) {
            parts.push(match bind_key(query, earlier, earlier_value)? {
                None => format!("{} IS NULL", earlier.expr),
                Some(p) => format!("{} = {p}", earlier.expr),
            });
        }
        let (op, nulls_last) = (if term.descending { "<" } else { ">" }, term.nulls_last(dialect));
        match bind_key(query, term, value)? {
            None if nulls_last => continue,
            None => parts.push(format!("{} IS NOT NULL", term.expr)),
            Some(p) if term.nullable && nulls_last => {
                parts.push(format!("({e} {op} {p} OR {e} IS NULL)", e = term.expr));
            }
            Some(p) => parts.push(format!("{} {op} {p}", term.expr)),
        }
        disjuncts.push(format!("({})", parts.join(" AND ")));
    }
    if disjuncts.is_empty() {
        return Ok("1 = 0".to_owned());
    }
    let mut condition = format!("({})", disjuncts.join(" OR "));
    if let (Some(first), Some(value)) = (terms.first(), after.first())
        && !first.nullable
        && let Some(p) = bind_key(query, first, value)?
    {
        let op = if first.descending { "<=" } else { ">=" };
        condition = format!("{} {op} {p} AND {condition}", first.expr);
    }
    Ok(condition)
}

/// Binds one value of a page token's sort key for `term`; `None` for a NULL the term may hold.
fn bind_key(query: &mut Query, term: &Term, value: &SortValue) -> Result<Option<String>> {
    Ok(match (value, term.kind) {
        (SortValue::Null, _) if term.nullable => None,
        (SortValue::Int(i), Kind::Int) => Some(query.bind(*i)),
        (SortValue::Real(f), Kind::Real) if !f.is_nan() => Some(query.bind(*f)),
        (SortValue::Text(t), Kind::Text) => Some(query.bind(t.as_str())),
        _ => return Err(foreign_token()),
    })
}

fn foreign_token() -> Error {
    Error::invalid("Invalid page token: it does not belong to this search (filter or order changed)")
}

/// Whether a metric comparison may start from the `latest_metrics_by_value` index (migration
/// 0013) rather than from the runs of the searched experiments (see [`metric_condition`]). The index pays when the search
/// spans much of the store (a metric filter across all experiments reads only the value range,
/// not every run); for a few experiments among many, the range holds mostly other experiments'
/// runs, and probing the searched runs is far cheaper (10 ms against 400 ms for one experiment
/// of a hundred with 100,000 runs). PostgreSQL's planner weighs this from the statistics
/// autovacuum keeps. SQLite's would need `ANALYZE`, whose sampled statistics misjudge a
/// low-cardinality key column and whose full pass would stall the writer on a large store (and
/// without statistics it starts from the index even for one experiment), so the choice is made
/// here, from the share of experiments searched: with runs spread over
/// experiments, a quarter of them is about SQLite's own guess of a range's selectivity.
fn may_use_value_index(db: &mut dyn Db, searched: usize) -> Result<bool> {
    if db.dialect() == Dialect::Postgres {
        return Ok(true);
    }
    let total = first_ints(db.query("SELECT count(*) FROM experiments", &[])?)?.first().copied().unwrap_or(0);
    Ok(searched.saturating_mul(4) >= usize::try_from(total).unwrap_or(usize::MAX))
}

/// The lifecycle stage a view shows, or `None` for all of them.
pub(super) fn stage(view: ViewType) -> Option<&'static str> {
    match view {
        ViewType::ActiveOnly => Some("active"),
        ViewType::DeletedOnly => Some("deleted"),
        ViewType::All => None,
    }
}

/// MLflow refuses an order_by list that names the same field twice (`created` and
/// `start_time` are the same field).
fn reject_duplicate_keys(order_by: &[OrderBy]) -> Result<()> {
    for (i, key) in order_by.iter().enumerate() {
        if order_by[..i].iter().any(|earlier| earlier.entity == key.entity) {
            let field = match &key.entity {
                Entity::Metric(k) => format!("metrics.{k}"),
                Entity::Param(k) => format!("params.{k}"),
                Entity::Tag(k) => format!("tags.{k}"),
                Entity::Dataset(k) => format!("datasets.{k}"),
                Entity::Attribute(a) => format!("attributes.{}", column(*a)?.trim_start_matches("r.")),
            };
            return Err(Error::invalid(format!("`order_by` contains duplicate fields: {field}")));
        }
    }
    Ok(())
}

/// The `runs` column of an attribute. Experiment-only attributes have none.
fn column(attribute: Attribute) -> Result<&'static str> {
    Ok(match attribute {
        Attribute::RunId => "r.run_id",
        Attribute::RunName => "r.name",
        Attribute::Status => "r.status",
        Attribute::StartTime => "r.start_time",
        Attribute::EndTime => "r.end_time",
        Attribute::ArtifactUri => "r.artifact_uri",
        Attribute::UserId => "r.user_id",
        Attribute::LifecycleStage => "r.lifecycle_stage",
        Attribute::ExperimentId => "r.experiment_id",
        Attribute::Name
        | Attribute::CreationTime
        | Attribute::LastUpdateTime
        | Attribute::VersionNumber
        | Attribute::SourcePath => {
            return Err(Error::invalid(format!("Invalid attribute key '{attribute:?}' for a run search")));
        }
    })
}

fn is_integer_column(attribute: Attribute) -> bool {
    matches!(attribute, Attribute::StartTime | Attribute::EndTime | Attribute::ExperimentId)
}

/// The metrics an ORDER BY key has joined, as (metric name, table alias).
type MetricJoins = Vec<(String, String)>;

/// The SQL condition of one filter clause.
fn condition(
    query: &mut Query,
    clause: &Comparison,
    metric_joins: &[(String, String)],
    value_index: bool,
) -> Result<String> {
    match &clause.entity {
        Entity::Attribute(Attribute::RunName) => {
            // MLflow matches `run_name` against the `mlflow.runName` tag, not the name column.
            key_value_condition(query, "run_tags", RUN_NAME_TAG, clause)
        }
        Entity::Attribute(attribute) => {
            let column = column(*attribute)?;
            match &clause.value {
                Value::Num(v) if is_integer_column(*attribute) => query.integer_condition(column, clause.op, *v),
                Value::Str(s) => query.text_condition(column, clause.op, s),
                Value::List(values) => query.list_condition(column, clause.op, values),
                _ => Err(unsupported(clause.op, "this attribute")),
            }
        }
        Entity::Param(key) => key_value_condition(query, "params", key, clause),
        Entity::Tag(key) => key_value_condition(query, "run_tags", key, clause),
        Entity::Metric(key) => {
            let joined = metric_joins.iter().find(|(name, _)| name == key).map(|(_, alias)| alias.as_str());
            metric_condition(query, key, clause, joined, value_index)
        }
        Entity::Dataset(field) => dataset_condition(query, field, clause),
    }
}

/// A clause on the datasets a run used: `name` and `digest` compare the dataset, `context` the
/// input's `mlflow.data.context` tag. As in MLflow, a run without such a dataset (or tag)
/// matches no clause, not even `!=`.
fn dataset_condition(query: &mut Query, field: &str, clause: &Comparison) -> Result<String> {
    let column = match field {
        "name" => "d.name",
        "digest" => "d.digest",
        "context" => "t.value",
        other => return Err(Error::internal(format!("search: unknown dataset field '{other}'"))),
    };
    let context = if field == "context" {
        let key = query.bind(DATASET_CONTEXT_TAG);
        format!(" JOIN run_input_tags t ON t.run_pk = i.run_pk AND t.dataset_pk = i.dataset_pk AND t.key = {key}")
    } else {
        String::new()
    };
    let test = match &clause.value {
        Value::Str(s) => query.text_condition(column, clause.op, s)?,
        Value::List(values) => query.list_condition(column, clause.op, values)?,
        _ => return Err(unsupported(clause.op, "a dataset field")),
    };
    Ok(format!(
        "EXISTS (SELECT 1 FROM run_dataset_inputs i JOIN datasets d ON d.dataset_pk = i.dataset_pk{context} \
         WHERE i.run_pk = r.run_pk AND {test})"
    ))
}

/// The input tag naming what a dataset was used for (training, validation, ...).
const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

/// A clause on a params or run_tags row (`table` is one of those two constants): one primary-key
/// probe per candidate run.
fn key_value_condition(query: &mut Query, table: &str, key: &str, clause: &Comparison) -> Result<String> {
    let key = query.bind(key);
    let probe = format!("SELECT 1 FROM {table} kv WHERE kv.run_pk = r.run_pk AND kv.key = {key}");
    match (&clause.value, clause.op) {
        (Value::Null, Op::IsNull) => Ok(format!("NOT EXISTS ({probe})")),
        (Value::Null, Op::IsNotNull) => Ok(format!("EXISTS ({probe})")),
        (Value::Str(value), op) => {
            let test = query.text_condition("kv.value", op, value)?;
            Ok(format!("EXISTS ({probe} AND {test})"))
        }
        (_, op) => Err(unsupported(op, "a param or tag")),
    }
}

/// A clause on a run's latest metric value. NaN is stored as `0` with `is_nan` set; as in
/// MLflow (and IEEE arithmetic), NaN satisfies `!=` and nothing else.
///
/// When an ORDER BY key has already joined the same metric (`joined`, its alias), the clause
/// tests that row instead of probing the table again: a run without the metric has NULLs there,
/// which fail every comparison just as the probe finds nothing. Filtering and ordering on one
/// metric is the usual search ("the best runs with accuracy over x"); over 5,000 runs the
/// statement took about a fifth less time without the second probe.
///
/// The value index is partial (`WHERE is_nan = 0`), and a query may use it only where its own
/// condition says `is_nan = 0` in those words. Without `value_index` (see
/// [`may_use_value_index`]) the condition says `+is_nan = 0`, the same test in other words, so
/// the plan starts from the searched runs.
fn metric_condition(
    query: &mut Query,
    key: &str,
    clause: &Comparison,
    joined: Option<&str>,
    value_index: bool,
) -> Result<String> {
    let Value::Num(value) = clause.value else { return Err(unsupported(clause.op, "a metric")) };
    if !matches!(clause.op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) {
        return Err(unsupported(clause.op, "a metric"));
    }
    let value = query.bind(value);
    let op = super::query::sql_op(clause.op);
    let row = joined.unwrap_or("lm");
    let test = if clause.op == Op::Ne {
        format!("({row}.value {op} {value} OR {row}.is_nan = 1)")
    } else {
        let plus = if value_index { "" } else { "+" };
        format!("({row}.value {op} {value} AND {plus}{row}.is_nan = 0)")
    };
    if joined.is_some() {
        return Ok(test);
    }
    let key = query.bind(key);
    Ok(format!(
        "EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_pk = r.run_pk \
         AND lm.key_id = (SELECT key_id FROM metric_keys WHERE key = {key}) AND {test})"
    ))
}

/// Whether some clause of `filter` holds only for runs whose latest `metric` is a number (not
/// NaN, not missing): every comparison does except `!=`, which NaN satisfies (see
/// [`metric_condition`]).
fn filter_requires_number(filter: &[Comparison], metric: &str) -> bool {
    filter.iter().any(|clause| {
        matches!(&clause.entity, Entity::Metric(key) if key == metric)
            && matches!(clause.value, Value::Num(_))
            && matches!(clause.op, Op::Eq | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    })
}

/// Writes one `LEFT JOIN` per param, tag or metric order key and returns the ORDER BY terms,
/// MLflow's tie-breakers (`start_time DESC`, unless ordered by already, then `run_id`)
/// included, and the joined metrics by name and alias. Every key sorts its missing values last
/// in either direction, and a metric sorts NaN after numbers and before missing values, as
/// MLflow's SQL store does.
///
/// A metric key that a filter clause already requires to be a number (see
/// [`filter_requires_number`]) is ordered by its value alone: every hit has the same rank
/// there, and without it the ORDER BY starts with the value column, so the value index can
/// deliver the rows in order and the statement stops after one page. Searching all 100
/// experiments of a 100,000-run store for `params.p00 = 'adam' AND metrics.acc > 0.9` ordered by
/// `metrics.acc DESC`, the first page took 81 ms with the rank term (SQLite sorts all 5,000 hits)
/// and 3 ms without it.
fn order_joins(query: &mut Query, order_by: &[OrderBy], filter: &[Comparison]) -> Result<(Vec<Term>, MetricJoins)> {
    let mut terms = Vec::with_capacity(order_by.len() * 2 + 2);
    let mut metric_joins = Vec::new();
    let rank = |expr: String| Term::new(expr, false, Kind::Int, false);
    for (i, key) in order_by.iter().enumerate() {
        let descending = !key.ascending;
        let alias = format!("o{i}");
        match &key.entity {
            Entity::Attribute(attribute) => {
                let column = column(*attribute)?;
                let (sorted, kind) = if is_integer_column(*attribute) {
                    (column.to_owned(), Kind::Int)
                } else {
                    (query.text_order_key(column), Kind::Text)
                };
                terms.push(rank(format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END")));
                terms.push(Term::new(sorted, descending, kind, true));
            }
            Entity::Metric(metric) => {
                let k = query.bind(metric.as_str());
                query.push(&format!(
                    " LEFT JOIN latest_metrics {alias} ON {alias}.run_pk = r.run_pk \
                     AND {alias}.key_id = (SELECT key_id FROM metric_keys WHERE key = {k})"
                ));
                let number = filter_requires_number(filter, metric);
                if !number {
                    terms.push(rank(format!(
                        "CASE WHEN {alias}.is_nan = 1 THEN 1 WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"
                    )));
                }
                terms.push(Term::new(format!("{alias}.value"), descending, Kind::Real, !number));
                metric_joins.push((metric.clone(), alias));
            }
            Entity::Param(k) | Entity::Tag(k) => {
                let table = if matches!(key.entity, Entity::Param(_)) { "params" } else { "run_tags" };
                let k = query.bind(k.as_str());
                query.push(&format!(" LEFT JOIN {table} {alias} ON {alias}.run_pk = r.run_pk AND {alias}.key = {k}"));
                let value = format!("{alias}.value");
                terms.push(rank(format!("CASE WHEN {value} IS NULL THEN 1 ELSE 0 END")));
                terms.push(Term::new(query.text_order_key(&value), descending, Kind::Text, true));
            }
            Entity::Dataset(_) => return Err(Error::invalid("Invalid identifier type 'dataset'")),
        }
    }
    if !order_by.iter().any(|k| k.entity == Entity::Attribute(Attribute::StartTime)) {
        // Explicit so that both backends agree: PostgreSQL would otherwise put NULLs first.
        let start_time = Term::new("r.start_time".to_owned(), true, Kind::Int, true);
        terms.push(Term { explicit_nulls_last: true, ..start_time });
    }
    terms.push(Term::new(query.text_order_key("r.run_id"), false, Kind::Text, false));
    Ok((terms, metric_joins))
}
