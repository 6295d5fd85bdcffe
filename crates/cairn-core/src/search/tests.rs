//! Table-driven tests of the public parsers. Expected outcomes were checked against MLflow
//! 3.17.2 (its parser plus the checks its SQL store makes before querying).

use super::*;
use crate::Error;

fn render_entity(e: &Entity) -> String {
    match e {
        Entity::Metric(k) => format!("metric({k})"),
        Entity::Param(k) => format!("param({k})"),
        Entity::Tag(k) => format!("tag({k})"),
        Entity::Attribute(a) => format!("{a:?}"),
        Entity::Dataset(k) => format!("dataset({k})"),
    }
}

fn render(filter: &Filter) -> String {
    let clauses: Vec<String> = filter
        .clauses
        .iter()
        .map(|c| {
            let value = match &c.value {
                Value::Str(s) => format!(" {s:?}"),
                Value::Num(n) => format!(" {n}"),
                Value::List(l) => format!(" {l:?}"),
                Value::Null => String::new(),
            };
            format!("{} {}{value}", render_entity(&c.entity), c.op.as_str())
        })
        .collect();
    clauses.join(" & ")
}

/// `expected` is the rendered filter, or `err: <substring of the message>`.
fn check_with(parse: fn(&str) -> Result<Filter>, input: &str, expected: &str) {
    let got = match parse(input) {
        Ok(filter) => render(&filter),
        Err(Error::InvalidParameter(m)) => format!("err: {m}"),
        Err(other) => panic!("{input:?}: unexpected error kind {other:?}"),
    };
    match expected.strip_prefix("err: ") {
        Some(needle) => {
            assert!(got.starts_with("err: ") && got.contains(needle), "{input:?}\n got: {got}\nwant: {expected}")
        }
        None => assert_eq!(got, expected, "{input:?}"),
    }
}

fn check(input: &str, expected: &str) {
    check_with(parse_run_filter, input, expected);
}

fn check_exp(input: &str, expected: &str) {
    check_with(parse_experiment_filter, input, expected);
}

#[test]
fn run_filter_entities_and_aliases() {
    check("", "");
    check("   ", "");
    check("metrics.m > 1", "metric(m) > 1");
    check("metrics.acc>=0.9 and params.lr = '0.1'", "metric(acc) >= 0.9 & param(lr) = \"0.1\"");
    check("metric.m <= 3 AND param.p != 'q'", "metric(m) <= 3 & param(p) != \"q\"");
    check("parameter.p = 'a' AND parameters.q = 'b'", "param(p) = \"a\" & param(q) = \"b\"");
    check("tag.t = 'a' AND tags.u = 'b'", "tag(t) = \"a\" & tag(u) = \"b\"");
    check("attr.status = 'X' AND attribute.status = 'Y'", "Status = \"X\" & Status = \"Y\"");
    check("run.user_id = 'me' AND attributes.artifact_uri = 'x'", "UserId = \"me\" & ArtifactUri = \"x\"");
    check("`metrics`.x >= 2", "metric(x) >= 2");
    check("status = 'FINISHED'", "Status = \"FINISHED\"");
    check("created > 3 AND Created < 5", "StartTime > 3 & StartTime < 5");
    check("`run name` = 'x' AND `Run Name` = 'y'", "RunName = \"x\" & RunName = \"y\"");
    check("\"run_name\" = 'x'", "RunName = \"x\"");
    check("end_time != 5", "EndTime != 5");
    check("datasets.name = 'x' AND dataset.digest IN ('d')", "dataset(name) = \"x\" & dataset(digest) IN [\"d\"]");
    check("datasets.context LIKE 'train%'", "dataset(context) LIKE \"train%\"");
}

#[test]
fn run_filter_keys() {
    check("metrics.`a b` >= 2", "metric(a b) >= 2");
    check("metrics.\"a b\" >= 2", "metric(a b) >= 2");
    check("metrics.'a b' >= 2", "metric(a b) >= 2");
    check("metrics.a.b >= 2", "metric(a.b) >= 2");
    check("tags.`mlflow.runName` = 'x'", "tag(mlflow.runName) = \"x\"");
    check("metrics.é >= 2", "metric(é) >= 2");
    check("metrics.1a >= 2", "metric(1a) >= 2");
    check("metrics.select = 1 AND metrics.and = 2", "metric(select) = 1 & metric(and) = 2");
    check("metrics.`` = 1", "metric() = 1");
}

#[test]
fn run_filter_values() {
    check("metrics.m = 1E5", "metric(m) = 100000");
    check(
        "metrics.m = .5 AND metrics.n = 5. AND metrics.o = -.5",
        "metric(m) = 0.5 & metric(n) = 5 & metric(o) = -0.5",
    );
    check("metrics.m > -1e3", "metric(m) > -1000");
    check("metrics.a>=2", "metric(a) >= 2");
    check("start_time >= -5 AND start_time < 5.5", "StartTime >= -5 & StartTime < 5.5");
    check("tags.t = \"a b\"", "tag(t) = \"a b\"");
    // Escapes are kept verbatim, as MLflow keeps them.
    check("params.p = 'it''s'", r#"param(p) = "it''s""#);
    check(r"params.p = 'a\'b'", r#"param(p) = "a\\'b""#);
    check(r"params.p = 'a\\'", r#"param(p) = "a\\\\""#);
    check(r#"params.p = "a""b""#, r#"param(p) = "a\"\"b""#);
    check("params.p = '' AND params.q = \"\"", "param(p) = \"\" & param(q) = \"\"");
    check("tags.t = 'é😀'", "tag(t) = \"é😀\"");
    check("tags.t = '''; DROP TABLE runs; --'", r#"tag(t) = "''; DROP TABLE runs; --""#);
    check("params.p IS NULL AND tags.t is not null", "param(p) IS NULL & tag(t) IS NOT NULL");
}

#[test]
fn run_filter_operators_and_lists() {
    check("params.p LiKe 'a%' AND params.q ilike 'b%'", "param(p) LIKE \"a%\" & param(q) ILIKE \"b%\"");
    check("attributes.run_id IN ('a', \"b\")", "RunId IN [\"a\", \"b\"]");
    check("attributes.run_id in ('a',)", "RunId IN [\"a\"]");
    check("run_id not in ('a')", "RunId NOT IN [\"a\"]");
    check("run_id IN ('a' 'b')", "RunId IN [\"ab\"]");
    check(r"run_id IN ('a\'b')", "RunId IN [\"a'b\"]");
    check("run_id LIKE 'a%'", "RunId LIKE \"a%\"");
}

#[test]
fn run_filter_conjunctions_are_lenient_like_mlflow() {
    check("metrics.a >= 2 AND", "metric(a) >= 2");
    check("AND metrics.a >= 2", "metric(a) >= 2");
    check("metrics.a >= 2 AND AND params.b = 'x'", "metric(a) >= 2 & param(b) = \"x\"");
    check("params.p = 'a' params.q = 'b'", "param(p) = \"a\" & param(q) = \"b\"");
    check("metrics.p = 1 aNd params.q = 'x'", "metric(p) = 1 & param(q) = \"x\"");
}

#[test]
fn run_filter_errors() {
    check("metrics.m > 1 OR metrics.m < 0", "err: Invalid clause(s) in filter string: 'OR'");
    check("metrics.m == 1", "err: Invalid comparator '==' not one of");
    check("metrics.m <> 1", "err: Invalid comparator '<>'");
    check("metrics.m = - 5", "err: Invalid clause(s)");
    check("metrics.m = 1_000", "err: Expected numeric value type for metric. Found 1_000");
    check("metrics.m = '1'", "err: Expected numeric value type for metric. Found '1'");
    check("metrics.m IN (1,2)", "err: Expected numeric value type for metric. Found (1,2)");
    check("metrics.a-b >= 2", "err: Invalid clause(s)");
    check("metrics . a >= 2", "err: Invalid clause(s)");
    check("metrics.a>=2and params.b='x'", "err: Expected numeric value type for metric. Found 2and");
    check("metrics.a >= 2; params.b = 'x'", "err: Search filter contained multiple expression");
    check("(metrics.a >= 2)", "err: Invalid clause(s) in filter string: '(metrics.a >= 2)'");
    check("metrics.a >= 2 -- comment", "err: Invalid clause(s)");
    check("params.p = 'unterminated", "err: Invalid clause(s)");
    check(
        "params.p = `bt`",
        "err: Parameter value is either not quoted or unidentified quote types used for string value `bt`",
    );
    check("params.p = x", "err: Parameter value is either not quoted");
    check("params.p = 1", "err: Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1");
    check("params.p = null", "err: Expected a quoted string value for parameter");
    check("params.p not like 'a%'", "err: Invalid comparator 'NOT LIKE'");
    check("params.p NOT IN ('a')", "err: Expected a quoted string value for parameter");
    check("tags.t IN ('a')", "err: Expected a quoted string value for tag");
    check("tags.t < 'a'", "err: Invalid comparator '<' not one of");
    check(
        "metrics.m IS NULL",
        "err: IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'm'",
    );
    check("attributes.status IS NULL", "err: not for 'attribute' 'status'");
    check("attributes.run_id IN ()", "err: but got empty list");
    check("attributes.run_id IN (1)", "err: but got different type in list");
    check("attributes.run_id IN 'a'", "err: Invalid clause(s)");
    check("attributes.run_id = ('a')", "err: needs IN or NOT IN");
    check("attributes.status IN ('a')", "err: Only ['run_id'] attributes support comparison with a list");
    check("attributes.run_id < 'a'", "err: Invalid comparator '<'");
    check(
        "attributes.start_time > '5'",
        "err: Expected numeric value type for numeric attribute: start_time. Found '5'",
    );
    check("attributes.start_time LIKE 5", "err: Invalid comparator 'LIKE'");
    check("attributes.lifecycle_stage = 'active'", "err: Invalid attribute key 'lifecycle_stage' specified");
    check("attributes.experiment_id = '0'", "err: Invalid attribute key 'experiment_id'");
    check("status = 5", "err: Expected a quoted string value for attributes. Got value 5");
    check("datasets.foo = 'x'", "err: Invalid dataset key 'foo'");
    check("datasets.name < 'x'", "err: Invalid comparator '<'");
    check("foo.bar = 'x'", "err: Invalid entity type 'foo'. Valid values are");
    check("METRICS.p = 1", "err: Invalid entity type 'METRICS'");
    check("metrics.m", "err: Invalid clause(s) in filter string: 'metrics.m'");
    check("metrics.m >", "err: Invalid clause(s) in filter string: 'metrics.m', '>'");
    check("> 1", "err: Invalid clause(s) in filter string: '>'");
    check("'a' = params.p", "err: Invalid comparison clause. Expected 'Identifier' found ''a''");
    check("params.p = 'x' AND (params.q = 'y')", "err: Invalid clause(s)");
    check("metrics.`p = 1", "err: Invalid clause(s)");
}

#[test]
fn experiment_filters() {
    check_exp("", "");
    check_exp(
        "name = 'a' AND tags.x = 'y' AND creation_time >= 0",
        "Name = \"a\" & tag(x) = \"y\" & CreationTime >= 0",
    );
    check_exp("name LIKE 'a%' AND name ILIKE 'B%'", "Name LIKE \"a%\" & Name ILIKE \"B%\"");
    check_exp("attribute.name = 'a' AND tag.t = 'v'", "Name = \"a\" & tag(t) = \"v\"");
    check_exp("tags.t IS NULL AND tags.u IS NOT NULL", "tag(t) IS NULL & tag(u) IS NOT NULL");
    check_exp("creation_time > -5 AND last_update_time <= 5", "CreationTime > -5 & LastUpdateTime <= 5");
    // Experiment ids are normalised the way Python's int() reads them.
    check_exp("experiment_id = ' +5 '", "ExperimentId = \"5\"");
    check_exp("experiment_id IN ('1', '2')", "ExperimentId IN [\"1\", \"2\"]");
    check_exp("experiment_id NOT IN ('1')", "ExperimentId NOT IN [\"1\"]");

    check_exp("name IN ('a')", "err: Only ['experiment_id'] attributes support comparison with a list");
    check_exp("name < 'a'", "err: Invalid comparator '<' not one of");
    check_exp("name IS NULL", "err: IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'");
    check_exp(
        "attr.name = 'a'",
        "err: Invalid entity type 'attr'. Valid entity types are ('attribute', 'tag', 'tags')",
    );
    check_exp("attributes.name = 'a'", "err: Invalid entity type 'attributes'");
    check_exp("`attribute`.name = 'a'", "err: Invalid entity type '`attribute`'");
    check_exp("metrics.m = 1", "err: Invalid entity type 'metrics'");
    check_exp("tags.t < 'a'", "err: Invalid comparator for tag: <");
    check_exp("tags.t IN ('a')", "err: Expected a quoted string value for tag");
    check_exp("creation_time > 5.5", "err: Invalid value for numeric attribute 'creation_time': '5.5'");
    check_exp("creation_time = 1E3", "err: Invalid value for numeric attribute");
    check_exp("creation_time LIKE 5", "err: Invalid comparator 'LIKE'");
    check_exp(
        "creation_time = '5'",
        "err: Expected numeric value type for numeric attribute: creation_time. Found '5'",
    );
    check_exp("experiment_id = 'abc'", "err: Invalid experiment ID 'abc'. Experiment ID must be a valid integer.");
    check_exp("experiment_id IN ('1', 'x')", "err: Invalid experiment ID 'x'");
    check_exp("experiment_id = '99999999999999999999'", "err: Invalid experiment ID");
    check_exp("experiment_id = 5", "err: Expected a quoted string value for attributes. Got value 5");
    check_exp("experiment_id < '5'", "err: Invalid comparator for experiment_id: <");
    check_exp("experiment_id LIKE '5'", "err: Invalid comparator for experiment_id: LIKE");
    check_exp("lifecycle_stage = 'active'", "err: Invalid attribute key 'lifecycle_stage' specified");
    check_exp("name = 'a' OR name = 'b'", "err: Invalid clause(s) in filter string: 'OR'");
}

/// `expected` is `<entity> asc|desc`, or `err: <substring of the message>`.
fn check_order(parse: fn(&str) -> Result<OrderBy>, input: &str, expected: &str) {
    let got = match parse(input) {
        Ok(o) => format!("{} {}", render_entity(&o.entity), if o.ascending { "asc" } else { "desc" }),
        Err(Error::InvalidParameter(m)) => format!("err: {m}"),
        Err(other) => panic!("{input:?}: unexpected error kind {other:?}"),
    };
    match expected.strip_prefix("err: ") {
        Some(needle) => {
            assert!(got.starts_with("err: ") && got.contains(needle), "{input:?}\n got: {got}\nwant: {expected}")
        }
        None => assert_eq!(got, expected, "{input:?}"),
    }
}

#[test]
fn run_order_by() {
    let check = |input: &str, expected: &str| check_order(parse_run_order_by, input, expected);
    check("metrics.m", "metric(m) asc");
    check("metrics.m DESC", "metric(m) desc");
    check("metrics.m  desc", "metric(m) desc");
    check("metrics.m Asc", "metric(m) asc");
    check("metrics.`my metric` DESC", "metric(my metric) desc");
    check("metrics.\"my metric\" DESC", "metric(my metric) desc");
    check("metrics.'my metric' DESC", "metric(my metric) desc");
    check("`metrics`.m", "metric(m) asc");
    check("metrics.a.b ASC", "metric(a.b) asc");
    check("param.p", "param(p) asc");
    check("tags.`mlflow.runName` ASC", "tag(mlflow.runName) asc");
    check("start_time", "StartTime asc");
    check("attributes.start_time DESC", "StartTime desc");
    check("created", "StartTime asc");
    check("run_name", "RunName asc");
    check("attr.status", "Status asc");
    check("  metrics.m  ", "metric(m) asc");

    check("metrics.m DESCENDING", "err: Invalid ordering key in order_by clause 'metrics.m DESCENDING'.");
    check("metrics.m DESC ASC", "err: Invalid order_by clause 'metrics.m DESC ASC'. Could not be parsed.");
    check("`Run name`", "err: Invalid attribute key 'Run name' specified");
    check("experiment_id", "err: Invalid attribute key 'experiment_id'");
    check("datasets.name", "err: Invalid identifier type 'dataset'");
    check("tags.t DESC NULLS LAST", "err: Could not be parsed.");
    check("metrics.m,params.p", "err: Could not be parsed.");
    check("metrics.m DESC;", "err: Could not be parsed.");
    check("metrics.a-b", "err: Could not be parsed.");
    check("", "err: Invalid order_by clause ''. Could not be parsed.");
    check("metrics.m = 1", "err: Could not be parsed.");
    check("METRICS.m", "err: Invalid entity type 'METRICS'");
}

#[test]
fn experiment_order_by() {
    let check = |input: &str, expected: &str| check_order(parse_experiment_order_by, input, expected);
    check("name", "Name asc");
    check("name DESC", "Name desc");
    check("attribute.name DESC", "Name desc");
    check("experiment_id", "ExperimentId asc");
    check("creation_time ASC", "CreationTime asc");
    check("last_update_time desc", "LastUpdateTime desc");
    check("tags.x", "err: Invalid order_by entity: tag");
    check("foo", "err: Invalid attribute key 'foo' specified");
    check("attributes.name", "err: Invalid entity type 'attributes'");
}

/// A small deterministic generator (xorshift), so that the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_input_makes_the_parsers_panic() {
    const PIECES: &[&str] = &[
        "metrics.",
        "params.",
        "tags.",
        "attributes.",
        "datasets.",
        "run_id",
        "start_time",
        "name",
        "`",
        "'",
        "\"",
        "(",
        ")",
        ",",
        ".",
        " ",
        "  ",
        "AND",
        "and",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "ILIKE",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "!",
        "-",
        "1",
        "-2.5",
        ".5",
        "1e5",
        "1E",
        "x",
        "é",
        "😀",
        "\u{0}",
        "\\",
        "''",
        "\\'",
        ";",
        "--",
        "/*",
        "*/",
        "$",
        "#",
        "%",
        "_",
        "[",
        "]",
        "'; DROP TABLE runs; --",
        "\n",
        "\t",
        "ASC",
        "DESC",
        "creation_time",
        "experiment_id",
        "(('a'",
        "'a',",
        "\u{feff}",
        "\u{301}",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut input = String::new();
        for _ in 0..rng.below(12) {
            input.push_str(PIECES[rng.below(PIECES.len())]);
        }
        // Also cut the input at an arbitrary byte and keep the valid prefix, to reach what half
        // of a multi-byte character or of a quoted string leads to.
        let cut = rng.below(input.len() + 1);
        let prefix = String::from_utf8_lossy(&input.as_bytes()[..cut]).into_owned();
        for s in [&input, &prefix] {
            // Whatever the outcome, an error must be the caller's fault, never an internal one.
            for outcome in [
                parse_run_filter(s).map(|_| ()),
                parse_experiment_filter(s).map(|_| ()),
                parse_run_order_by(s).map(|_| ()),
                parse_experiment_order_by(s).map(|_| ()),
            ] {
                assert!(matches!(outcome, Ok(()) | Err(Error::InvalidParameter(_))), "{s:?}: {outcome:?}");
            }
        }
    }
}

#[test]
fn huge_and_deeply_nested_inputs_are_handled() {
    let open = "(".repeat(100_000);
    assert!(parse_run_filter(&open).is_err());
    let nested = format!("run_id IN {}'a'{}", "(".repeat(50_000), ")".repeat(50_000));
    assert!(parse_run_filter(&nested).is_err());
    let long_value = format!("tags.t = '{}'", "x".repeat(1_000_000));
    assert_eq!(parse_run_filter(&long_value).unwrap().clauses.len(), 1);
    // Many escape-like pairs: the quote scanner runs to the end, backs up to the last quote
    // (the text is `\'\'…\`) and must stay linear doing so.
    let backtracking = format!("tags.t = '{}", "\\'".repeat(200_000));
    assert!(matches!(&parse_run_filter(&backtracking).unwrap().clauses[0].value, Value::Str(s) if s.len() == 399_999));
    // More clauses than a database can nest are refused before any SQL exists.
    let many = vec!["metrics.m > 1"; 10_000].join(" AND ");
    assert!(parse_run_filter(&many).unwrap_err().to_string().contains("more than 200 clauses"));
    let most = vec!["metrics.m > 1"; crate::search::MAX_CLAUSES].join(" AND ");
    assert_eq!(parse_run_filter(&most).unwrap().clauses.len(), crate::search::MAX_CLAUSES);
    let list = format!("run_id IN ({})", vec!["'abc'"; 10_000].join(", "));
    assert!(matches!(&parse_run_filter(&list).unwrap().clauses[0].value, Value::List(l) if l.len() == 10_000));
}

#[test]
fn nul_characters_are_refused_everywhere() {
    check("tags.note = '\u{0}'", "err: may not contain NUL");
    check("params.`a\u{0}b` = 'x'", "err: may not contain NUL");
    check_exp("name = 'a\u{0}'", "err: may not contain NUL");
    assert!(matches!(parse_run_order_by("metrics.a\u{0}"), Err(Error::InvalidParameter(_))));
}
