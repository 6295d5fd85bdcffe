//! The tokens of MLflow's search grammar.
//!
//! MLflow tokenises filters with `sqlparse`; this lexer reproduces the parts of that tokeniser the
//! grammar can reach (names, dotted names, quoted strings, numbers, comparison operators, a few
//! keywords, parenthesised lists) and turns everything else into [`Tok::Other`], which the parser
//! reports as an invalid clause. Lexing never fails and never panics: it only slices the input at
//! character boundaries it has found.

/// The keywords the filter grammar gives a meaning to (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    Like,
    ILike,
}

impl Kw {
    fn from_word(word: &str) -> Option<Kw> {
        const KEYWORDS: [(&str, Kw); 8] = [
            ("AND", Kw::And),
            ("OR", Kw::Or),
            ("NOT", Kw::Not),
            ("IN", Kw::In),
            ("IS", Kw::Is),
            ("NULL", Kw::Null),
            ("LIKE", Kw::Like),
            ("ILIKE", Kw::ILike),
        ];
        KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(word)).map(|(_, kw)| *kw)
    }
}

/// A name, possibly dotted: `status`, `metrics.loss`, ``tags.`a b` ``, `params."x.y"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Name<'a> {
    /// The whole name as written.
    pub raw: &'a str,
    /// The first segment as written (quotes included).
    pub first: &'a str,
    /// Everything after the first dot, as written; `None` for an undotted name.
    pub rest: Option<&'a str>,
}

/// One token; every variant borrows its text from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    /// A bare or dotted name.
    Name(Name<'a>),
    /// A quoted string. `inner` is the text between the quotes, verbatim: MLflow strips the
    /// quotes but does not undo escapes, so neither do we.
    Str { quote: char, inner: &'a str, raw: &'a str },
    /// A numeric literal; `integer` when it has neither a fraction nor an exponent.
    Num { raw: &'a str, integer: bool },
    /// A run of comparison characters (`=`, `!=`, `<=`, but also `==` or `<>`, which the parser
    /// rejects with MLflow's "invalid comparator" message).
    Op(&'a str),
    /// A keyword, with its spelling.
    Kw(Kw, &'a str),
    /// A parenthesised group, parentheses included.
    Group(&'a str),
    /// A `;` statement separator.
    Semicolon,
    /// Anything the grammar has no use for (including an unterminated quote, which swallows the
    /// rest of the input).
    Other(&'a str),
}

impl<'a> Tok<'a> {
    /// The token's text as written.
    pub fn text(&self) -> &'a str {
        match *self {
            Tok::Name(n) => n.raw,
            Tok::Str { raw, .. } | Tok::Num { raw, .. } | Tok::Group(raw) | Tok::Other(raw) => raw,
            Tok::Op(s) | Tok::Kw(_, s) => s,
            Tok::Semicolon => ";",
        }
    }
}

/// Splits `input` into tokens, skipping whitespace.
pub(super) fn tokenize(input: &str) -> Vec<Tok<'_>> {
    let mut lexer = Lexer { src: input, pos: 0 };
    let mut out = Vec::new();
    while let Some(tok) = lexer.next_token() {
        out.push(tok);
    }
    out
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next_token(&mut self) -> Option<Tok<'a>> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let c = self.peek()?;
        let tok = match c {
            '(' => self.group(),
            '\'' => match scan_quoted(self.src.as_bytes(), start, b'\'', true) {
                Some(end) => {
                    self.pos = end;
                    Tok::Str { quote: '\'', inner: &self.src[start + 1..end - 1], raw: &self.src[start..end] }
                }
                None => self.swallow_from(start),
            },
            '"' | '`' => match self.name() {
                Some(Tok::Name(n)) if c == '"' && n.rest.is_none() => {
                    Tok::Str { quote: '"', inner: &n.raw[1..n.raw.len() - 1], raw: n.raw }
                }
                Some(tok) => tok,
                None => self.swallow_from(start),
            },
            ';' => {
                self.pos += 1;
                Tok::Semicolon
            }
            '<' | '>' | '=' | '~' | '!' => {
                let len = rest_len(&self.src[start..], |c| matches!(c, '<' | '>' | '=' | '~' | '!'));
                self.pos += len;
                Tok::Op(&self.src[start..start + len])
            }
            _ => {
                if let Some((len, integer)) = number_len(&self.src[start..]) {
                    self.pos += len;
                    Tok::Num { raw: &self.src[start..start + len], integer }
                } else if is_word_char(c) {
                    match self.name() {
                        Some(tok) => tok,
                        None => self.swallow_from(start),
                    }
                } else {
                    self.pos += c.len_utf8();
                    Tok::Other(&self.src[start..self.pos])
                }
            }
        };
        Some(tok)
    }

    /// An unterminated quote: the rest of the input cannot be tokenised meaningfully.
    fn swallow_from(&mut self, start: usize) -> Tok<'a> {
        self.pos = self.src.len();
        Tok::Other(&self.src[start..])
    }

    /// Scans one name segment at `self.pos`; returns whether one was found. A segment after a dot
    /// may be empty (MLflow accepts `metrics.` as the metric with the empty key).
    fn segment(&mut self, after_dot: bool) -> Option<bool> {
        let bytes = self.src.as_bytes();
        match self.peek() {
            Some('`') => {
                self.pos = scan_quoted(bytes, self.pos, b'`', false)?;
            }
            Some('"') => {
                self.pos = scan_quoted(bytes, self.pos, b'"', true)?;
            }
            Some('\'') if after_dot => {
                self.pos = scan_quoted(bytes, self.pos, b'\'', true)?;
            }
            Some(c) if is_word_char(c) => {
                self.pos += rest_len(&self.src[self.pos..], is_word_char);
            }
            _ => return Some(false),
        }
        Some(true)
    }

    /// Scans a bare or dotted name. `None` means a quote inside it is unterminated.
    fn name(&mut self) -> Option<Tok<'a>> {
        let start = self.pos;
        self.segment(false)?;
        let first_end = self.pos;
        while self.peek() == Some('.') {
            self.pos += 1;
            if !self.segment(true)? {
                break;
            }
        }
        let raw = &self.src[start..self.pos];
        let first = &self.src[start..first_end];
        let rest = (self.pos > first_end).then(|| &self.src[first_end + 1..self.pos]);
        if rest.is_none()
            && let Some(kw) = Kw::from_word(raw)
        {
            return Some(Tok::Kw(kw, raw));
        }
        Some(Tok::Name(Name { raw, first, rest }))
    }

    /// A parenthesised group up to its matching `)`, skipping quoted text. An unbalanced group
    /// swallows the rest of the input as [`Tok::Other`].
    fn group(&mut self) -> Tok<'a> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut depth = 0usize;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos = i + 1;
                        return Tok::Group(&self.src[start..self.pos]);
                    }
                }
                q @ (b'\'' | b'"') => match scan_quoted(bytes, i, q, true) {
                    Some(end) => {
                        i = end;
                        continue;
                    }
                    None => break,
                },
                _ => {}
            }
            i += 1;
        }
        self.swallow_from(start)
    }
}

/// Length in bytes of the longest prefix of `s` whose characters satisfy `pred`.
fn rest_len(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices().find(|&(_, c)| !pred(c)).map_or(s.len(), |(i, _)| i)
}

/// Finds the end (one past the closing quote) of the quoted text opening at `open`, as
/// sqlparse's regular expressions `'(''|\\'|[^'])*'` (and likewise for `"`, and for backquotes
/// without the backslash escape) match it: a doubled quote or, when `backslash`, a
/// backslash-quote pair continues the text; a lone quote ends it. Like a backtracking regex
/// engine, it prefers to continue and backs up when the text never closes, so `'a\\'` is the
/// text `a\\`. The search is depth-first with memoised dead ends, hence linear, and iterative,
/// hence safe on inputs of any length. Quotes and backslashes are ASCII, so byte positions are
/// always character boundaries.
fn scan_quoted(s: &[u8], open: usize, q: u8, backslash: bool) -> Option<usize> {
    // Each frame is a position inside the text and the next alternative to try there:
    // 0 = doubled quote, 1 = backslash-quote, 2 = any other single byte, 3 = close here.
    let mut dead = std::collections::HashSet::new();
    let mut stack: Vec<(usize, u8)> = vec![(open + 1, 0)];
    while let Some(frame) = stack.last_mut() {
        let (p, alt) = *frame;
        frame.1 += 1;
        let at = |i: usize| s.get(i).copied();
        let next = match alt {
            0 if at(p) == Some(q) && at(p + 1) == Some(q) => Some(p + 2),
            1 if backslash && at(p) == Some(b'\\') && at(p + 1) == Some(q) => Some(p + 2),
            2 if at(p).is_some_and(|b| b != q) => Some(p + 1),
            3 if at(p) == Some(q) => return Some(p + 1),
            0..=2 => None,
            _ => {
                dead.insert(p);
                stack.pop();
                None
            }
        };
        if let Some(n) = next
            && !dead.contains(&n)
        {
            stack.push((n, 0));
        }
    }
    None
}

/// The length of the numeric literal at the start of `s`, and whether it is an integer, using
/// sqlparse's three number patterns in its order: `-?\d+(\.\d+)?E-?\d+`, then
/// `-?(\d+\.\d*|\.\d+)` and `-?\d+`, the last two only when no letter or `_` follows (so `2and`
/// is a word, not a number).
fn number_len(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    let digits = |from: usize| b[from.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
    let sign = usize::from(b.first() == Some(&b'-'));
    let not_followed_by_letter = |end: usize| !s[end..].chars().next().is_some_and(|c| c == '_' || c.is_alphabetic());

    let int_digits = digits(sign);
    // Exponent form.
    if int_digits > 0 {
        let mut end = sign + int_digits;
        if b.get(end) == Some(&b'.') && digits(end + 1) > 0 {
            end += 1 + digits(end + 1);
        }
        if matches!(b.get(end), Some(b'e' | b'E')) {
            let exp_sign = usize::from(b.get(end + 1) == Some(&b'-'));
            let exp_digits = digits(end + 1 + exp_sign);
            if exp_digits > 0 {
                return Some((end + 1 + exp_sign + exp_digits, false));
            }
        }
    }
    // Fraction form.
    let frac_end = if int_digits > 0 && b.get(sign + int_digits) == Some(&b'.') {
        Some(sign + int_digits + 1 + digits(sign + int_digits + 1))
    } else if int_digits == 0 && b.get(sign) == Some(&b'.') && digits(sign + 1) > 0 {
        Some(sign + 1 + digits(sign + 1))
    } else {
        None
    };
    if let Some(end) = frac_end.filter(|&end| not_followed_by_letter(end)) {
        return Some((end, false));
    }
    // Integer form.
    let end = sign + int_digits;
    (int_digits > 0 && not_followed_by_letter(end)).then_some((end, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        tokenize(input).iter().map(|t| format!("{t:?}")).collect()
    }

    #[test]
    fn quoted_text_follows_sqlparse() {
        let check = |input: &str, expected: Option<usize>| {
            assert_eq!(scan_quoted(input.as_bytes(), 0, input.as_bytes()[0], true), expected, "{input}");
        };
        check("'abc'", Some(5));
        check("'it''s' x", Some(7));
        check("'a\\'b'", Some(6));
        check("'a\\\\'", Some(5));
        check("'a\\' and b = 'c'", Some(14));
        check("'unterminated", None);
        check("''", Some(2));
        check("'", None);
        check("\"a\"\"b\"", Some(6));
    }

    #[test]
    fn numbers_follow_sqlparse() {
        let check = |input: &str, expected: Option<(usize, bool)>| assert_eq!(number_len(input), expected, "{input}");
        check("12", Some((2, true)));
        check("-12 ", Some((3, true)));
        check("1.5", Some((3, false)));
        check("5.", Some((2, false)));
        check(".5", Some((2, false)));
        check("-.5", Some((3, false)));
        check("1E5", Some((3, false)));
        check("1.5e-3", Some((6, false)));
        check("1e+5", None);
        check("2and", None);
        check("1_000", None);
        check("-", None);
        check("-x", None);
        check(".", None);
    }

    #[test]
    fn names_keywords_and_groups() {
        assert_eq!(
            texts("metrics.`a b` >= -2 AND tags.\"x.y\" LIKE 'v%'"),
            vec![
                "Name(Name { raw: \"metrics.`a b`\", first: \"metrics\", rest: Some(\"`a b`\") })",
                "Op(\">=\")",
                "Num { raw: \"-2\", integer: true }",
                "Kw(And, \"AND\")",
                "Name(Name { raw: \"tags.\\\"x.y\\\"\", first: \"tags\", rest: Some(\"\\\"x.y\\\"\") })",
                "Kw(Like, \"LIKE\")",
                "Str { quote: '\\'', inner: \"v%\", raw: \"'v%'\" }",
            ]
        );
        assert_eq!(
            texts("run_id in ('a', ')')"),
            vec![
                "Name(Name { raw: \"run_id\", first: \"run_id\", rest: None })",
                "Kw(In, \"in\")",
                "Group(\"('a', ')')\")",
            ]
        );
        assert_eq!(
            texts("x = (('a')"),
            vec!["Name(Name { raw: \"x\", first: \"x\", rest: None })", "Op(\"=\")", "Other(\"(('a')\")",]
        );
        assert_eq!(texts("\"run_name\""), vec!["Str { quote: '\"', inner: \"run_name\", raw: \"\\\"run_name\\\"\" }"]);
        assert_eq!(texts("metrics.`p = 1"), vec!["Other(\"metrics.`p = 1\")"]);
    }
}
