//! MLflow's schema declares one executable directive, `@component(name: String!)` on queries
//! and mutations, which its UI puts on every operation to name the page asking. It changes
//! nothing in the answer. The dynamic schema cannot declare executable directives, so the
//! directive is cut out of the operation's text (found through the parsed document, so that a
//! `@component` inside a string is left alone) before execution.

use async_graphql::parser::Pos;
use async_graphql::parser::types::ExecutableDocument;

/// The directive's name, as MLflow declares it.
pub const NAME: &str = "component";

/// `query` without the `@component(...)` directives of its operations.
pub fn strip(query: &str, doc: &ExecutableDocument) -> String {
    let mut starts: Vec<usize> = doc
        .operations
        .iter()
        .flat_map(|(_, op)| op.node.directives.iter())
        .filter(|d| d.node.name.node.as_str() == NAME)
        .filter_map(|d| offset(query, d.pos))
        .collect();
    if starts.is_empty() {
        return query.to_owned();
    }
    starts.sort_unstable();
    let mut out = String::with_capacity(query.len());
    let mut copied = 0;
    for start in starts {
        out.push_str(&query[copied..start]);
        copied = directive_end(query, start);
    }
    out.push_str(&query[copied..]);
    out
}

/// The byte offset of a 1-based line and column (columns count characters).
fn offset(text: &str, pos: Pos) -> Option<usize> {
    let line_start = if pos.line <= 1 { 0 } else { text.match_indices('\n').nth(pos.line - 2).map(|(i, _)| i + 1)? };
    let rest = &text[line_start..];
    let within = rest.char_indices().nth(pos.column.saturating_sub(1)).map(|(i, _)| i)?;
    Some(line_start + within)
}

/// Where the directive starting at `start` (its `@`) ends: after its name and its argument
/// list, whose strings may hold parentheses.
fn directive_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = start + 1 + NAME.len();
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) != Some(&b'(') {
        return start + 1 + NAME.len();
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check(query: &str, expected: &str) {
        let doc = parse_query(query).unwrap();
        assert_eq!(strip(query, &doc), expected);
    }

    #[test]
    fn operation_directives_are_cut_and_strings_kept() {
        check("query q @component(name: \"A (b)\") { f }", "query q  { f }");
        check(
            "query q\n  @component(name: \"x\")\n{ f(s: \"@component(\") }",
            "query q\n  \n{ f(s: \"@component(\") }",
        );
        check("{ f }", "{ f }");
        check("mutation m @component(name: \"é\") { g }", "mutation m  { g }");
    }
}
