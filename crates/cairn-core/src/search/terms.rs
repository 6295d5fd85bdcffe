//! Reading names and value tokens the way MLflow does; shared by the run and experiment rules.

use super::lexer::{Name, Tok};
use super::list::parse_list;
use crate::{Error, Result};

/// `true` when `s` is at least two characters long and starts and ends with `quote`.
fn is_quoted(s: &str, quote: char) -> bool {
    s.len() >= 2 && s.starts_with(quote) && s.ends_with(quote)
}

/// Drops the first and last character (both ASCII quotes, checked by the caller).
fn trim_ends(s: &str) -> &str {
    &s[1..s.len() - 1]
}

/// Removes surrounding backquotes, if any.
pub(super) fn trim_backticks(s: &str) -> &str {
    if is_quoted(s, '`') { trim_ends(s) } else { s }
}

/// Removes surrounding single or double quotes, if any.
fn strip_quotes(s: &str) -> &str {
    if is_quoted(s, '\'') || is_quoted(s, '"') { trim_ends(s) } else { s }
}

/// Splits a name into its entity type (the first segment, as written; `None` for an undotted
/// name) and its key, with quotes and then backquotes removed from the key, as MLflow's
/// `_get_identifier` does: `metrics.loss` is `(Some("metrics"), "loss")`, ``tags.`a.b` `` is
/// `(Some("tags"), "a.b")` and `status` is `(None, "status")`.
pub(super) fn split_name<'a>(name: &Name<'a>) -> (Option<&'a str>, &'a str) {
    match name.rest {
        Some(rest) => (Some(name.first), trim_backticks(strip_quotes(rest))),
        None => (None, trim_backticks(strip_quotes(name.raw))),
    }
}

/// Whom a value belongs to, for MLflow's "Expected a quoted string value for …" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Param,
    Tag,
    Attribute,
    Dataset,
}

/// A quoted string value: a single- or double-quoted literal, or a name that is entirely quoted.
/// Numbers, lists and keywords are rejected with MLflow's messages.
pub(super) fn string_value(tok: &Tok<'_>, owner: Owner) -> Result<String> {
    match tok {
        Tok::Str { inner, .. } => Ok((*inner).to_owned()),
        Tok::Name(Name { raw, .. }) => {
            if is_quoted(raw, '\'') || is_quoted(raw, '"') {
                Ok(trim_ends(raw).to_owned())
            } else {
                Err(Error::invalid(format!(
                    "Parameter value is either not quoted or unidentified quote types used for string \
                     value {raw}. Use either single or double quotes."
                )))
            }
        }
        other => Err(Error::invalid(match owner {
            Owner::Param => {
                format!("Expected a quoted string value for parameter (e.g. 'my-value'). Got value {}", other.text())
            }
            Owner::Tag => {
                format!("Expected a quoted string value for tag (e.g. 'my-value'). Got value {}", other.text())
            }
            Owner::Attribute => format!("Expected a quoted string value for attributes. Got value {}", other.text()),
            Owner::Dataset => {
                format!("Expected a quoted string value for dataset attributes. Got value {}", other.text())
            }
        })),
    }
}

/// A numeric literal's value and whether it was written as an integer; `None` for any other
/// token (the caller words the error).
pub(super) fn number_value(tok: &Tok<'_>) -> Option<(f64, bool)> {
    match tok {
        // The lexer only produces digit strings Rust's float parser accepts; the fallback is
        // unreachable but keeps this total.
        Tok::Num { raw, integer } => raw.parse::<f64>().ok().map(|v| (v, *integer)),
        _ => None,
    }
}

/// The strings of an `IN` list.
pub(super) fn list_value(tok: &Tok<'_>) -> Option<Result<Vec<String>>> {
    match tok {
        Tok::Group(raw) => Some(parse_list(raw)),
        _ => None,
    }
}

/// A set of names rendered the way MLflow's messages render Python sets, in a stable order.
pub(super) fn py_set(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_like_mlflow() {
        let check = |raw: &str, expected: (Option<&str>, &str)| {
            let toks = super::super::lexer::tokenize(raw);
            let name = match toks.first() {
                Some(Tok::Name(n)) => *n,
                other => panic!("{raw}: {other:?}"),
            };
            assert_eq!(split_name(&name), expected, "{raw}");
        };
        check("metrics.loss", (Some("metrics"), "loss"));
        check("metrics.a.b", (Some("metrics"), "a.b"));
        check("tags.`a.b`", (Some("tags"), "a.b"));
        check("tags.\"a b\"", (Some("tags"), "a b"));
        check("tags.'a b'", (Some("tags"), "a b"));
        check("`metrics`.x", (Some("`metrics`"), "x"));
        check("`run name`", (None, "run name"));
        check("metrics.", (Some("metrics"), ""));
        check("metrics.``", (Some("metrics"), ""));
    }
}
