//! The value list of `IN (…)` / `NOT IN (…)`.
//!
//! MLflow evaluates the parenthesised text with Python's `ast.literal_eval`, so a list is a
//! Python tuple of string literals: single or double quotes, backslash escapes, adjacent
//! literals concatenated (`('a' 'b')` is `('ab',)`), an optional trailing comma, and a lone
//! string without a comma counts as a one-element list.

use crate::{Error, Result};

const ILL_FORMED: &str =
    "While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.";

/// Parses `group`, the list with its parentheses, into its strings.
pub(super) fn parse_list(group: &str) -> Result<Vec<String>> {
    let inner = group.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(|| Error::invalid(ILL_FORMED))?;
    let mut chars = inner.char_indices().peekable();
    let mut items = Vec::new();
    loop {
        skip_whitespace(&mut chars);
        let Some(&(_, c)) = chars.peek() else { break };
        if c != '\'' && c != '"' {
            return Err(not_a_string(group, c));
        }
        // One element: one or more adjacent string literals.
        let mut item = String::new();
        while let Some(&(_, q @ ('\'' | '"'))) = chars.peek() {
            chars.next();
            read_literal(&mut chars, q, &mut item)?;
            skip_whitespace(&mut chars);
        }
        items.push(item);
        match chars.next() {
            None => break,
            Some((_, ',')) => {}
            Some((_, c)) => return Err(not_a_string(group, c)),
        }
    }
    if items.is_empty() {
        return Err(Error::invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but got empty list",
        ));
    }
    Ok(items)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn skip_whitespace(chars: &mut Chars<'_>) {
    while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
}

/// Anything but a string where an element should be: a number or a nested tuple is a well-formed
/// literal of the wrong type, everything else is a syntax error.
fn not_a_string(group: &str, c: char) -> Error {
    if c.is_ascii_digit() || c == '-' || c == '(' || c == '.' {
        Error::invalid(format!(
            "While parsing a list in the query, expected string value, punctuation, or whitespace, \
             but got different type in list: {group}"
        ))
    } else {
        Error::invalid(ILL_FORMED)
    }
}

/// Reads one Python string literal after its opening quote `q`, appending its value to `out`.
fn read_literal(chars: &mut Chars<'_>, q: char, out: &mut String) -> Result<()> {
    loop {
        let Some((_, c)) = chars.next() else { return Err(Error::invalid(ILL_FORMED)) };
        match c {
            _ if c == q => return Ok(()),
            '\n' | '\r' => return Err(Error::invalid(ILL_FORMED)),
            '\\' => read_escape(chars, out)?,
            c => out.push(c),
        }
    }
}

/// Python's string escapes. An unknown escape keeps its backslash, as Python does.
fn read_escape(chars: &mut Chars<'_>, out: &mut String) -> Result<()> {
    let Some((_, c)) = chars.next() else { return Err(Error::invalid(ILL_FORMED)) };
    let simple = match c {
        '\n' => return Ok(()),
        '\\' => '\\',
        '\'' => '\'',
        '"' => '"',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        '0'..='7' => {
            let mut code = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.peek().and_then(|&(_, d)| d.to_digit(8)) {
                    Some(d) => {
                        code = code * 8 + d;
                        chars.next();
                    }
                    None => break,
                }
            }
            char::from_u32(code).ok_or_else(|| Error::invalid(ILL_FORMED))?
        }
        'x' => hex_escape(chars, 2)?,
        'u' => hex_escape(chars, 4)?,
        'U' => hex_escape(chars, 8)?,
        other => {
            out.push('\\');
            other
        }
    };
    out.push(simple);
    Ok(())
}

fn hex_escape(chars: &mut Chars<'_>, digits: usize) -> Result<char> {
    let mut code: u32 = 0;
    for _ in 0..digits {
        let digit = chars.next().and_then(|(_, d)| d.to_digit(16)).ok_or_else(|| Error::invalid(ILL_FORMED))?;
        code = code.checked_mul(16).and_then(|v| v.checked_add(digit)).ok_or_else(|| Error::invalid(ILL_FORMED))?;
    }
    // Lone surrogates are valid in Python strings but not in Rust ones.
    char::from_u32(code).ok_or_else(|| Error::invalid(ILL_FORMED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert_eq!(parse_list(input).unwrap(), expected, "{input}");
    }

    fn check_err(input: &str, needle: &str) {
        match parse_list(input) {
            Err(Error::InvalidParameter(m)) => assert!(m.contains(needle), "{input}: {m}"),
            other => panic!("{input}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn python_tuples_of_strings() {
        check("('a')", &["a"]);
        check("('a', \"b\")", &["a", "b"]);
        check("('a',)", &["a"]);
        check("( 'a' 'b' , 'c' )", &["ab", "c"]);
        check("('it\\'s', 'a\\\\b', '\\x41\\u00e9\\n', '\\q')", &["it's", "a\\b", "Aé\n", "\\q"]);
        check("('''a''')", &["a"]);
        check("('', \"\")", &["", ""]);
        check("('\\101')", &["A"]);
    }

    #[test]
    fn malformed_lists() {
        check_err("()", "empty list");
        check_err("(1)", "different type in list: (1)");
        check_err("(('a'))", "different type");
        check_err("('a',,)", "ill-formed");
        check_err("(,)", "ill-formed");
        check_err("('a' x)", "ill-formed");
        check_err("('a)", "ill-formed");
        check_err("('\\x4')", "ill-formed");
        check_err("('\\ud800')", "ill-formed");
        check_err("('a\nb')", "ill-formed");
        check_err("(a)", "ill-formed");
    }
}
