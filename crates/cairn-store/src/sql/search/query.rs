//! Building one search statement: SQL text with numbered placeholders, the values bound to
//! them, and the comparisons both searches share.

use cairn_core::search::Op;
use cairn_core::{Error, Result};

use crate::sql::db::{Dialect, SqlValue};

/// Lists longer than this are bound as one JSON array (see [`Query::bind_list`]).
const MAX_INLINE_LIST: usize = 64;

/// A statement under construction. Values are bound as the text is written, so placeholders
/// are numbered in ascending order of first appearance, as the `Db` trait requires.
#[derive(Debug)]
pub(super) struct Query {
    pub dialect: Dialect,
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Query {
    pub fn new(dialect: Dialect) -> Self {
        Query { dialect, sql: String::with_capacity(512), params: Vec::new() }
    }

    /// Appends SQL text written by this crate (never user input).
    pub fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Binds `value` and returns its placeholder.
    pub fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    /// Binds a list for `IN (…)` and returns what goes between the parentheses.
    ///
    /// A short list binds one placeholder per value, which keeps index lookups on the column. A
    /// long one (`search_runs` over every experiment, a generated `run_id IN (…)`) would exceed
    /// the backends' limits on bound variables (32,766 in SQLite) and on expression size, so it
    /// is bound as one JSON array that the database unpacks. Every value of a list has the same
    /// type, text or integer.
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = SqlValue>) -> String {
        let values: Vec<SqlValue> = values.into_iter().collect();
        if values.len() <= MAX_INLINE_LIST {
            let placeholders: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
            return placeholders.join(", ");
        }
        let integers = values.iter().all(|v| matches!(v, SqlValue::Int(_)));
        let array: Vec<serde_json::Value> = values
            .into_iter()
            .map(|v| match v {
                SqlValue::Int(i) => serde_json::Value::from(i),
                SqlValue::Text(s) => serde_json::Value::from(s),
                SqlValue::Real(f) => serde_json::Value::from(f),
                SqlValue::Null => serde_json::Value::Null,
                // Search binds no bytes; hex keeps the list well-formed should one appear.
                SqlValue::Blob(b) => serde_json::Value::from(hex::encode(b)),
            })
            .collect();
        let placeholder = self.bind(serde_json::Value::Array(array).to_string());
        match (self.dialect, integers) {
            (Dialect::Sqlite, _) => format!("SELECT value FROM json_each({placeholder})"),
            (Dialect::Postgres, true) => {
                format!("SELECT CAST(jsonb_array_elements_text(CAST({placeholder}::text AS jsonb)) AS bigint)")
            }
            (Dialect::Postgres, false) => {
                format!("SELECT jsonb_array_elements_text(CAST({placeholder}::text AS jsonb))")
            }
        }
    }

    /// `column` as an ORDER BY key. PostgreSQL sorts text by the database's collation, which is
    /// usually language-aware; `"C"` sorts by code point, as SQLite and MLflow's file store do,
    /// so both backends return the same order.
    pub fn text_order_key(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("{column} COLLATE \"C\""),
        }
    }

    /// A condition comparing the text `column` with a string value under `op`.
    ///
    /// `LIKE` is case-sensitive and `ILIKE` is not, on both backends, and neither knows an
    /// escape character (a backslash is an ordinary character, as in MLflow on SQLite and in its
    /// file store). SQLite's own `LIKE` ignores ASCII case, so a case-sensitive `LIKE` is
    /// translated to the equivalent `GLOB` pattern, and SQLite's `LIKE` serves as `ILIKE`.
    pub fn text_condition(&mut self, column: &str, op: Op, value: &str) -> Result<String> {
        let condition = match (op, self.dialect) {
            (Op::Eq, _) => format!("{column} = {}", self.bind(value)),
            (Op::Ne, _) => format!("{column} != {}", self.bind(value)),
            (Op::Like, Dialect::Sqlite) => format!("{column} GLOB {}", self.bind(like_to_glob(value))),
            (Op::Like, Dialect::Postgres) => format!("{column} LIKE {} ESCAPE ''", self.bind(value)),
            (Op::ILike, Dialect::Sqlite) => format!("{column} LIKE {}", self.bind(value)),
            (Op::ILike, Dialect::Postgres) => format!("{column} ILIKE {} ESCAPE ''", self.bind(value)),
            (other, _) => return Err(unsupported(other, "a string value")),
        };
        Ok(condition)
    }

    /// A condition testing the text `column` against a list (`IN` / `NOT IN`).
    pub fn list_condition(&mut self, column: &str, op: Op, values: &[String]) -> Result<String> {
        let keyword = match op {
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            other => return Err(unsupported(other, "a list")),
        };
        let placeholders = self.bind_list(values.iter().map(|v| SqlValue::Text(v.clone())));
        Ok(format!("{column} {keyword} ({placeholders})"))
    }

    /// A condition comparing the integer `column` with a number that may have a fraction
    /// (`start_time > 1.5`). The comparison is rewritten to an exact integer one (`> 1.5` is
    /// `> 1`, `>= 1.5` is `>= 2`, `= 1.5` holds for no integer), so the bound value is always an
    /// integer and an index on the column stays usable. NULL columns compare false, as in SQL.
    pub fn integer_condition(&mut self, column: &str, op: Op, value: f64) -> Result<String> {
        // `as` saturates, so ±infinity and huge values become i64::MIN / i64::MAX, which every
        // stored time compares with the same way.
        let exact = value.fract() == 0.0 && value.abs() < 9.0e18;
        let (sql_op, bound) = match op {
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge if exact => (sql_op(op), value as i64),
            Op::Gt => (">", value.floor() as i64),
            Op::Ge => (">=", value.ceil() as i64),
            Op::Lt => ("<", value.ceil() as i64),
            Op::Le => ("<=", value.floor() as i64),
            Op::Eq => return Ok("1 = 0".to_owned()),
            Op::Ne => return Ok(format!("{column} IS NOT NULL")),
            other => return Err(unsupported(other, "a number")),
        };
        Ok(format!("{column} {sql_op} {}", self.bind(bound)))
    }

    /// Appends `LIMIT max_results + 1 OFFSET offset`: one row more than the page, to learn
    /// whether another page exists.
    pub fn push_page(&mut self, max_results: u64, offset: u64) {
        let limit = i64::try_from(max_results.saturating_add(1)).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (limit, offset) = (self.bind(limit), self.bind(offset));
        self.push(&format!(" LIMIT {limit} OFFSET {offset}"));
    }
}

/// The SQL spelling of a numeric comparison operator.
pub(super) fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        _ => ">=",
    }
}

/// The parser never produces these combinations; reaching one is a bug, reported as such.
pub(super) fn unsupported(op: Op, what: &str) -> Error {
    Error::internal(format!("search: operator {} is not supported with {what}", op.as_str()))
}

/// Translates a LIKE pattern (`%`, `_`, no escape character) to a GLOB pattern (`*`, `?`),
/// bracketing GLOB's own special characters so that they match literally.
pub(super) fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// Turns a page of fetched keys (up to one more than asked for) into a [`Page`].
pub(super) fn page(mut keys: Vec<i64>, max_results: u64, offset: u64) -> cairn_core::model::Page<i64> {
    let max = usize::try_from(max_results).unwrap_or(usize::MAX);
    let more = keys.len() > max;
    keys.truncate(max);
    // A page of zero results would point at itself forever; such a page never has a successor.
    let next_offset = (more && max_results > 0).then(|| offset.saturating_add(max_results));
    cairn_core::model::Page::new(keys, next_offset)
}

/// Reads the single integer column of each row.
pub(super) fn first_ints(rows: Vec<crate::sql::db::Row>) -> Result<Vec<i64>> {
    rows.into_iter()
        .map(|row| Ok(row.first().ok_or_else(|| Error::internal("search query returned an empty row"))?.int()?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_become_glob_patterns() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob("*?[]"), "[*][?][[]]");
        assert_eq!(like_to_glob("\\%"), "\\*");
    }

    #[test]
    fn fractional_times_compare_exactly() {
        let check = |op: Op, v: f64, expected: &str| {
            let mut q = Query::new(Dialect::Sqlite);
            let sql = q.integer_condition("t", op, v).unwrap();
            let bound = q.params.first().map(|p| format!(" [{p:?}]")).unwrap_or_default();
            assert_eq!(format!("{sql}{bound}"), expected, "{op:?} {v}");
        };
        check(Op::Gt, 5.0, "t > $1 [Int(5)]");
        check(Op::Gt, 5.5, "t > $1 [Int(5)]");
        check(Op::Ge, 5.5, "t >= $1 [Int(6)]");
        check(Op::Lt, 5.5, "t < $1 [Int(6)]");
        check(Op::Le, 5.5, "t <= $1 [Int(5)]");
        check(Op::Le, -5.5, "t <= $1 [Int(-6)]");
        check(Op::Eq, 5.5, "1 = 0");
        check(Op::Ne, 5.5, "t IS NOT NULL");
        check(Op::Gt, f64::INFINITY, &format!("t > $1 [Int({})]", i64::MAX));
        check(Op::Lt, f64::NEG_INFINITY, &format!("t < $1 [Int({})]", i64::MIN));
    }

    #[test]
    fn pages_know_whether_more_rows_exist() {
        assert_eq!(page(vec![1, 2, 3], 2, 10).next_offset, Some(12));
        assert_eq!(page(vec![1, 2, 3], 2, 10).items, vec![1, 2]);
        assert_eq!(page(vec![1, 2], 2, 0).next_offset, None);
        assert_eq!(page(vec![1], 0, 0).next_offset, None);
    }
}
