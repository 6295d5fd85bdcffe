//! The shape of a filter and of an order key, before any entity rules apply.
//!
//! A filter is a sequence of clauses `<name> <operator> [<value>]` separated by `AND`. Like
//! MLflow, stray `AND`s (leading, trailing, doubled) are ignored and two clauses side by side
//! are taken as a conjunction; anything else out of place (`OR`, parentheses around clauses, a
//! comment) is an "invalid clause".

use super::Op;
use super::lexer::{Kw, Name, Tok, tokenize};
pub(super) use crate::validation::py_repr_str as py_repr;
use crate::{Error, Result};

/// A comparison operator as written; MLflow reports unknown ones (`==`, `<>`, `NOT LIKE`) only
/// after it has checked the name and the value, so they are kept until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RawOp {
    Known(Op),
    Unknown(String),
}

/// One clause: what is compared, how, and the value token (`None` for `IS [NOT] NULL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawClause<'a> {
    pub name: Name<'a>,
    pub op: RawOp,
    pub value: Option<Tok<'a>>,
}

/// Splits a filter into raw clauses. A blank filter has none.
pub(super) fn clauses(input: &str) -> Result<Vec<RawClause<'_>>> {
    reject_nul(input)?;
    let toks = tokenize(input);
    if toks.contains(&Tok::Semicolon) {
        return Err(Error::invalid(format!(
            "Search filter contained multiple expression {}. Provide AND-ed expression list.",
            py_repr(input)
        )));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if matches!(toks[i], Tok::Kw(Kw::And, _)) {
            i += 1;
            continue;
        }
        let (clause, next) = clause(&toks, i)?;
        out.push(clause);
        if out.len() > MAX_CLAUSES {
            return Err(Error::invalid(format!(
                "Search filter has more than {MAX_CLAUSES} clauses; combine values with IN (...) or split the search"
            )));
        }
        i = next;
    }
    Ok(out)
}

/// Most clauses in one filter. Each becomes a condition of the statement, and databases limit
/// how deep an expression may nest (SQLite: 1,000); no hand-written filter comes near this.
pub const MAX_CLAUSES: usize = 200;

/// Parses the clause starting at `toks[start]`; returns it and the index after it.
fn clause<'a>(toks: &[Tok<'a>], start: usize) -> Result<(RawClause<'a>, usize)> {
    let at = |i: usize| toks.get(i).copied();
    let invalid = |end: usize| invalid_clause(&toks[start..end.min(toks.len())]);
    let name = match toks[start] {
        Tok::Name(name) => name,
        Tok::Str { quote: '"', raw, .. } => Name { raw, first: raw, rest: None },
        tok @ Tok::Str { .. } if matches!(at(start + 1), Some(Tok::Op(_) | Tok::Kw(Kw::Like | Kw::ILike, _))) => {
            return Err(Error::invalid(format!(
                "Invalid comparison clause. Expected 'Identifier' found '{}'",
                tok.text()
            )));
        }
        _ => return Err(invalid(start + 1)),
    };
    // The operator, and how many tokens it takes.
    let (op, op_len) = match (at(start + 1), at(start + 2), at(start + 3)) {
        (Some(Tok::Op(s)), _, _) => (known_op(s), 1),
        (Some(Tok::Kw(Kw::Like, _)), _, _) => (RawOp::Known(Op::Like), 1),
        (Some(Tok::Kw(Kw::ILike, _)), _, _) => (RawOp::Known(Op::ILike), 1),
        (Some(Tok::Kw(Kw::In, _)), _, _) => (RawOp::Known(Op::In), 1),
        (Some(Tok::Kw(Kw::Not, _)), Some(Tok::Kw(Kw::In, _)), _) => (RawOp::Known(Op::NotIn), 2),
        (Some(Tok::Kw(Kw::Not, _)), Some(Tok::Kw(kw @ (Kw::Like | Kw::ILike), _)), _) => {
            let word = if kw == Kw::Like { "NOT LIKE" } else { "NOT ILIKE" };
            (RawOp::Unknown(word.to_owned()), 2)
        }
        (Some(Tok::Kw(Kw::Is, _)), Some(Tok::Kw(Kw::Null, _)), _) => {
            return Ok((RawClause { name, op: RawOp::Known(Op::IsNull), value: None }, start + 3));
        }
        (Some(Tok::Kw(Kw::Is, _)), Some(Tok::Kw(Kw::Not, _)), Some(Tok::Kw(Kw::Null, _))) => {
            return Ok((RawClause { name, op: RawOp::Known(Op::IsNotNull), value: None }, start + 4));
        }
        _ => return Err(invalid(start + 2)),
    };
    let value_at = start + 1 + op_len;
    let value = match (&op, at(value_at)) {
        // `IN` takes a parenthesised list and nothing else.
        (RawOp::Known(Op::In | Op::NotIn), Some(tok @ Tok::Group(_))) => tok,
        (RawOp::Known(Op::In | Op::NotIn), _) => return Err(invalid(value_at + 1)),
        (_, Some(tok @ (Tok::Str { .. } | Tok::Num { .. } | Tok::Name(_) | Tok::Group(_) | Tok::Kw(..)))) => tok,
        _ => return Err(invalid(value_at + 1)),
    };
    Ok((RawClause { name, op, value: Some(value) }, value_at + 1))
}

fn known_op(s: &str) -> RawOp {
    match s {
        "=" => RawOp::Known(Op::Eq),
        "!=" => RawOp::Known(Op::Ne),
        "<" => RawOp::Known(Op::Lt),
        "<=" => RawOp::Known(Op::Le),
        ">" => RawOp::Known(Op::Gt),
        ">=" => RawOp::Known(Op::Ge),
        other => RawOp::Unknown(other.to_owned()),
    }
}

fn invalid_clause(toks: &[Tok<'_>]) -> Error {
    let listed: Vec<String> = toks.iter().map(|t| format!("'{}'", t.text())).collect();
    Error::invalid(format!("Invalid clause(s) in filter string: {}", listed.join(", ")))
}

/// Splits an order_by entry into its name and direction: `<name> [ASC|DESC]`, directions in any
/// case. Surrounding whitespace is ignored.
pub(super) fn order_key(input: &str) -> Result<(Name<'_>, bool)> {
    let unparsable = || Error::invalid(format!("Invalid order_by clause '{input}'. Could not be parsed."));
    reject_nul(input)?;
    let toks = tokenize(input);
    let name = match toks.first() {
        Some(Tok::Name(name)) => *name,
        Some(Tok::Str { quote: '"', raw, .. }) => Name { raw, first: raw, rest: None },
        _ => return Err(unparsable()),
    };
    let ascending = match &toks[1..] {
        [] => true,
        [Tok::Name(Name { raw, rest: None, .. })] => {
            if raw.eq_ignore_ascii_case("asc") {
                true
            } else if raw.eq_ignore_ascii_case("desc") {
                false
            } else {
                return Err(Error::invalid(format!("Invalid ordering key in order_by clause '{input}'.")));
            }
        }
        _ => return Err(unparsable()),
    };
    Ok((name, ascending))
}

/// PostgreSQL text cannot hold NUL, so a NUL in a search string could never be compared the same
/// way on both backends; it is refused up front instead of failing deep in one of them.
fn reject_nul(input: &str) -> Result<()> {
    if input.contains('\0') {
        return Err(Error::invalid("Search strings may not contain NUL characters."));
    }
    Ok(())
}
