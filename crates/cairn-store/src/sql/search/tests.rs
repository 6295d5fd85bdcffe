//! Search semantics, checked by running the generated SQL on a migrated database: always on
//! SQLite (a temporary file), and also on PostgreSQL when `CAIRN_TEST_POSTGRES_URL` names a
//! database the tests may create schemas in.
//!
//! Every scenario runs on the same small fixture; runs are named by their `run_id` and
//! experiments by their id in the expectations.

use cairn_core::model::{Page, SortValue, ViewType};
use cairn_core::search::{parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by};
use cairn_core::store::{ExperimentQuery, RunQuery};
use cairn_core::{Error, Result};

use super::{search_experiments, search_runs};
use crate::sql::db::{Db, SqlValue};
use crate::sql::migrate::migrate;

/// Runs `scenario` on a freshly migrated SQLite database with the fixture loaded, then on
/// PostgreSQL if configured.
fn on_each_backend(scenario: impl Fn(&mut dyn Db)) {
    let dir = tempfile::tempdir().unwrap();
    let options = crate::sqlite::SqliteOptions { path: dir.path().join("search.db"), full_sync: false };
    let mut sqlite = crate::sqlite::SqliteDb::open(&options, crate::sqlite::Role::Write).unwrap();
    migrate(&mut sqlite).unwrap();
    load_fixture(&mut sqlite);
    scenario(&mut sqlite);

    if let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") {
        let config = crate::postgres::config_from_uri(&url).unwrap();
        let mut pg = crate::postgres::PgDb::connect(&config, crate::postgres::Role::Write).unwrap();
        // A schema of its own per scenario, so that concurrent tests do not see each other.
        let schema = format!("search_test_{}", uuid::Uuid::new_v4().simple());
        pg.batch(&format!("CREATE SCHEMA {schema}; SET search_path TO {schema}")).unwrap();
        migrate(&mut pg).unwrap();
        load_fixture(&mut pg);
        scenario(&mut pg);
        pg.batch(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    }
}

fn exec(db: &mut dyn Db, sql: &str, params: Vec<SqlValue>) {
    db.execute(sql, &params).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Experiments 1, 2 and 4 are active, 3 is deleted. Runs `a1`…`e5` are in experiment 1
/// (`e5` deleted, `d4` without a start time), `f6` in experiment 2.
fn load_fixture(db: &mut dyn Db) {
    let experiments: [(i64, &str, &str, i64, i64); 4] = [
        (1, "alpha", "active", 100, 500),
        (2, "Beta", "active", 300, 300),
        (3, "gamma", "deleted", 200, 200),
        (4, "alpha_2", "active", 300, 400),
    ];
    for (id, name, stage, created, updated) in experiments {
        exec(
            db,
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
             last_update_time, seq) VALUES ($1, $2, $3, $4, $5, $6, 0)",
            vec![id.into(), name.into(), "/tmp".into(), stage.into(), created.into(), updated.into()],
        );
    }
    for (id, key, value) in [(1, "owner", "ann"), (2, "owner", "Ann"), (4, "proj", "x")] {
        exec(
            db,
            "INSERT INTO experiment_tags (experiment_id, key, value, seq) VALUES ($1, $2, $3, 0)",
            vec![SqlValue::Int(id), key.into(), value.into()],
        );
    }

    // run_pk, run_id, experiment, name, status, start_time, lifecycle stage.
    type RunRow<'a> = (i64, &'a str, i64, &'a str, &'a str, Option<i64>, &'a str);
    let runs: [RunRow<'_>; 6] = [
        (1, "a1", 1, "Alpha", "FINISHED", Some(1000), "active"),
        (2, "b2", 1, "beta", "FAILED", Some(3000), "active"),
        (3, "c3", 1, "gamma", "RUNNING", Some(2000), "active"),
        (4, "d4", 1, "delta", "FINISHED", None, "active"),
        (5, "e5", 1, "eps", "FINISHED", Some(3000), "deleted"),
        (6, "f6", 2, "zeta", "FINISHED", Some(500), "active"),
    ];
    for (pk, run_id, experiment, name, status, start, stage) in runs {
        exec(
            db,
            "INSERT INTO runs (run_pk, run_id, experiment_id, name, user_id, status, start_time, end_time, \
             lifecycle_stage, deleted_time, artifact_uri, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL, $9, 0)",
            vec![
                pk.into(),
                run_id.into(),
                experiment.into(),
                name.into(),
                "me".into(),
                status.into(),
                start.into(),
                stage.into(),
                format!("/tmp/{run_id}").into(),
            ],
        );
        key_value(db, "run_tags", pk, "mlflow.runName", name);
    }
    for (pk, key, value) in [
        (1, "team", "Vision"),
        (2, "team", "vision"),
        (3, "team", "NLP"),
        (3, "hostile", "x' OR '1'='1"),
        (4, "emoji", "é😀"),
    ] {
        key_value(db, "run_tags", pk, key, value);
    }
    for (pk, key, value) in [
        (1, "lr", "0.1"),
        (2, "lr", "0.01"),
        (3, "lr", "0.1"),
        (1, "opt", "Adam"),
        (2, "opt", "adam"),
        (4, "opt", "sgd_[x]*?"),
    ] {
        key_value(db, "params", pk, key, value);
    }
    for (id, key) in [(1, "acc"), (2, "loss")] {
        exec(db, "INSERT INTO metric_keys (key_id, key) VALUES ($1, $2)", vec![SqlValue::Int(id), key.into()]);
    }
    let metrics =
        [(1, 1, 0.9), (2, 1, f64::NAN), (3, 1, 0.5), (5, 1, 0.99), (1, 2, 0.3), (2, 2, 0.2), (3, 2, 0.1), (4, 2, 0.4)];
    for (pk, key_id, value) in metrics {
        let is_nan = value.is_nan();
        exec(
            db,
            "INSERT INTO latest_metrics (run_pk, key_id, step, timestamp, value, is_nan) VALUES ($1, $2, 0, 0, $3, $4)",
            vec![
                SqlValue::Int(pk),
                SqlValue::Int(key_id),
                SqlValue::Real(if is_nan { 0.0 } else { value }),
                SqlValue::Int(i64::from(is_nan)),
            ],
        );
    }
}

fn key_value(db: &mut dyn Db, table: &str, pk: i64, key: &str, value: &str) {
    exec(
        db,
        &format!("INSERT INTO {table} (run_pk, key, value, seq) VALUES ($1, $2, $3, 0)"),
        vec![pk.into(), key.into(), value.into()],
    );
}

fn run_query(filter: &str, order_by: &[&str]) -> RunQuery {
    RunQuery {
        experiment_ids: vec!["1".to_owned()],
        filter: parse_run_filter(filter).unwrap(),
        order_by: order_by.iter().map(|o| parse_run_order_by(o).unwrap()).collect(),
        view: ViewType::ActiveOnly,
        max_results: 100,
        offset: 0,
        after: None,
    }
}

/// The run ids of a page, in order.
fn run_ids(db: &mut dyn Db, q: &RunQuery) -> Vec<String> {
    let page = search_runs(db, q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    page.items
        .iter()
        .map(|pk| {
            let rows = db.query("SELECT run_id FROM runs WHERE run_pk = $1", &[SqlValue::Int(*pk)]).unwrap();
            rows[0][0].text().unwrap().to_owned()
        })
        .collect()
}

fn check_runs(db: &mut dyn Db, filter: &str, order_by: &[&str], expected: &[&str]) {
    assert_eq!(
        run_ids(db, &run_query(filter, order_by)),
        expected,
        "{:?}: filter {filter:?}, order_by {order_by:?}",
        db.dialect()
    );
}

#[test]
fn run_filters_select_the_right_runs() {
    on_each_backend(|db| {
        let check = |db: &mut dyn Db, filter: &str, expected: &[&str]| check_runs(db, filter, &[], expected);
        check(db, "", &["b2", "c3", "a1", "d4"]);
        check(db, "metrics.acc > 0.6", &["a1"]);
        // NaN satisfies `!=` only, and its stored placeholder 0 satisfies nothing.
        check(db, "metrics.acc != 0.9", &["b2", "c3"]);
        check(db, "metrics.acc = 0", &[]);
        check(db, "metrics.acc <= 0.9", &["c3", "a1"]);
        check(db, "metrics.missing >= 0", &[]);
        check(db, "params.lr = '0.1'", &["c3", "a1"]);
        check(db, "params.lr != '0.1'", &["b2"]);
        check(db, "params.opt IS NULL", &["c3"]);
        check(db, "params.opt IS NOT NULL", &["b2", "a1", "d4"]);
        check(db, "tags.team = 'vision'", &["b2"]);
        check(db, "attributes.run_name = 'Alpha'", &["a1"]);
        check(db, "run_id IN ('a1', 'c3', 'zz')", &["c3", "a1"]);
        check(db, "run_id NOT IN ('a1')", &["b2", "c3", "d4"]);
        check(db, "status = 'FINISHED'", &["a1", "d4"]);
        check(db, "start_time > 1500.5", &["b2", "c3"]);
        check(db, "start_time = 1000.0", &["a1"]);
        check(db, "start_time != 1000", &["b2", "c3"]);
        check(db, "created >= 2000", &["b2", "c3"]);
        check(db, "start_time = 1000.5", &[]);
        check(db, "datasets.name = 'x'", &[]);
        check(db, "datasets.name != 'x'", &[]);
        check(db, "metrics.acc > 0 AND params.lr = '0.1' AND tags.team ILIKE 'nlp'", &["c3"]);
    });
}

#[test]
fn like_is_case_sensitive_and_ilike_is_not_on_both_backends() {
    on_each_backend(|db| {
        let check = |db: &mut dyn Db, filter: &str, expected: &[&str]| check_runs(db, filter, &[], expected);
        check(db, "params.opt LIKE 'A%'", &["a1"]);
        check(db, "params.opt LIKE 'a%'", &["b2"]);
        check(db, "params.opt ILIKE 'A%'", &["b2", "a1"]);
        check(db, "tags.team ILIKE 'VISION'", &["b2", "a1"]);
        check(db, "run_name LIKE 'alpha'", &[]);
        check(db, "run_name ILIKE 'alpha'", &["a1"]);
        check(db, "params.opt LIKE '_dam'", &["b2", "a1"]);
        // GLOB's own wildcards in a LIKE pattern are ordinary characters.
        check(db, "params.opt LIKE '%[x]*?'", &["d4"]);
        check(db, "params.opt LIKE '%*'", &[]);
        check(db, "params.opt LIKE 'sgd_[%'", &["d4"]);
        // There is no escape character: the backslash is matched literally.
        check(db, "params.opt LIKE 'sgd\\_%'", &[]);
        check(db, "tags.emoji LIKE 'é%'", &["d4"]);
        check(db, "tags.emoji = 'é😀'", &["d4"]);
    });
}

#[test]
fn hostile_values_are_bound_not_pasted() {
    on_each_backend(|db| {
        check_runs(db, "tags.team = '''; DROP TABLE runs; --'", &[], &[]);
        check_runs(db, "params.lr = '0.1; DELETE FROM params'", &[], &[]);
        check_runs(db, "tags.`'; DROP TABLE runs; --` = 'x'", &[], &[]);
        // The stored value contains SQL; it matches itself, and only itself.
        check_runs(db, "tags.hostile = \"x' OR '1'='1\"", &[], &["c3"]);
        check_runs(db, "", &[], &["b2", "c3", "a1", "d4"]);
        let params = db.query("SELECT COUNT(*) FROM params", &[]).unwrap();
        assert_eq!(params[0][0], SqlValue::Int(6));
    });
}

#[test]
fn views_and_experiments_narrow_the_runs() {
    on_each_backend(|db| {
        let mut q = run_query("", &[]);
        q.view = ViewType::All;
        assert_eq!(run_ids(db, &q), ["b2", "e5", "c3", "a1", "d4"]);
        q.view = ViewType::DeletedOnly;
        assert_eq!(run_ids(db, &q), ["e5"]);
        q.view = ViewType::ActiveOnly;
        q.experiment_ids = vec!["1".to_owned(), "2".to_owned()];
        assert_eq!(run_ids(db, &q), ["b2", "c3", "a1", "f6", "d4"]);
        q.experiment_ids = vec![];
        assert_eq!(run_ids(db, &q), Vec::<String>::new());
        q.experiment_ids = vec!["x".to_owned()];
        assert!(matches!(search_runs(db, &q), Err(Error::InvalidParameter(_))));
    });
}

#[test]
fn run_ordering_follows_mlflow() {
    on_each_backend(|db| {
        // Numbers, then NaN, then missing, whichever the direction.
        check_runs(db, "", &["metrics.acc DESC"], &["a1", "c3", "b2", "d4"]);
        check_runs(db, "", &["metrics.acc"], &["c3", "a1", "b2", "d4"]);
        // Ties fall back to start_time DESC, then run_id.
        check_runs(db, "", &["params.lr"], &["b2", "c3", "a1", "d4"]);
        check_runs(db, "", &["params.lr DESC"], &["c3", "a1", "b2", "d4"]);
        check_runs(db, "", &["start_time ASC"], &["a1", "c3", "b2", "d4"]);
        check_runs(db, "", &["start_time DESC"], &["b2", "c3", "a1", "d4"]);
        // Text sorts by code point on both backends.
        check_runs(db, "", &["attributes.run_name DESC"], &["c3", "d4", "b2", "a1"]);
        check_runs(db, "", &["tags.team"], &["c3", "a1", "b2", "d4"]);
        check_runs(db, "", &["params.lr DESC", "metrics.loss"], &["c3", "a1", "b2", "d4"]);
        check_runs(db, "params.lr = '0.1'", &["metrics.loss DESC"], &["a1", "c3"]);
        // Filtering on the metric being sorted on: the same NaN and missing-value rules.
        check_runs(db, "metrics.acc != 0.9", &["metrics.acc DESC"], &["c3", "b2"]);
        check_runs(db, "metrics.acc > 0.6", &["metrics.acc"], &["a1"]);
        check_runs(db, "metrics.acc <= 0.9", &["metrics.acc DESC"], &["a1", "c3"]);
        check_runs(db, "metrics.acc >= 0 AND metrics.acc < 0.9", &["metrics.acc"], &["c3"]);
        check_runs(db, "metrics.missing >= 0", &["metrics.missing"], &[]);
        check_runs(db, "metrics.acc != 0.9", &["metrics.loss"], &["c3", "b2"]);
        check_runs(db, "metrics.loss < 0.35", &["params.lr", "metrics.acc DESC"], &["b2", "a1", "c3"]);
        let q = run_query("", &["metrics.acc", "metrics.acc DESC"]);
        let duplicate = "`order_by` contains duplicate fields: metrics.acc";
        assert!(matches!(search_runs(db, &q), Err(Error::InvalidParameter(m)) if m == duplicate));
        let q = run_query("", &["created", "start_time DESC"]);
        assert!(matches!(search_runs(db, &q), Err(Error::InvalidParameter(m)) if m.contains("start_time")));
    });
}

/// On SQLite a metric comparison is worded to start from the searched runs or from the metric
/// value index, by the share of experiments searched (`runs::may_use_value_index`); both
/// wordings must find the same runs in the same order, NaN and missing values included.
#[test]
fn metric_filters_find_the_same_runs_whichever_plan_is_chosen() {
    on_each_backend(|db| {
        let cases: [(&str, &[&str], &[&str]); 6] = [
            ("metrics.acc > 0.6", &[], &["a1"]),
            ("metrics.acc != 0.9", &["metrics.acc DESC"], &["c3", "b2"]),
            ("metrics.acc <= 0.9", &["metrics.acc DESC"], &["a1", "c3"]),
            ("metrics.acc >= 0 AND metrics.acc < 0.9", &["metrics.acc"], &["c3"]),
            ("metrics.loss < 0.35", &["params.lr", "metrics.acc DESC"], &["b2", "a1", "c3"]),
            ("metrics.acc > 0 AND params.lr = '0.1' AND tags.team ILIKE 'nlp'", &[], &["c3"]),
        ];
        // One experiment of four is searched: the index may be used.
        for (filter, order_by, expected) in cases {
            check_runs(db, filter, order_by, expected);
        }
        // One of sixteen: on SQLite the runs come first.
        for id in 10..22_i64 {
            exec(
                db,
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
                 last_update_time, seq) VALUES ($1, $2, '/tmp', 'active', 0, 0, 0)",
                vec![id.into(), format!("empty-{id}").into()],
            );
        }
        for (filter, order_by, expected) in cases {
            check_runs(db, filter, order_by, expected);
        }
    });
}

/// A search that filters on the metric it is ordered by reads that metric's value index in
/// order and stops after the page, instead of sorting every hit (see `runs::order_joins`); a
/// metric the filter does not require to be a number keeps its NaN-and-missing rank, and
/// SQLite then sorts the whole result.
#[test]
fn a_search_filtered_on_its_order_metric_reads_the_value_index_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let options = crate::sqlite::SqliteOptions { path: dir.path().join("plan.db"), full_sync: false };
    let mut sqlite = crate::sqlite::SqliteDb::open(&options, crate::sqlite::Role::Write).unwrap();
    migrate(&mut sqlite).unwrap();
    load_fixture(&mut sqlite);
    let db: &mut dyn Db = &mut sqlite;
    let plan = |db: &mut dyn Db, filter: &str| -> String {
        let mut q = run_query(filter, &["metrics.acc DESC"]);
        q.experiment_ids = vec!["1".into(), "2".into(), "4".into()];
        let (query, _) = super::runs::statement(db, &q).unwrap().unwrap();
        let rows = db.query(&format!("EXPLAIN QUERY PLAN {}", query.sql), &query.params).unwrap();
        rows.into_iter().map(|row| format!("{:?}\n", row.last().unwrap())).collect()
    };
    let ordered = plan(db, "metrics.acc > 0.1 AND params.lr = '0.1'");
    assert!(ordered.contains("latest_metrics_by_value"), "{ordered}");
    assert!(!ordered.contains("TEMP B-TREE FOR ORDER BY"), "{ordered}");
    let ranked = plan(db, "metrics.acc != 0.1 AND params.lr = '0.1'");
    assert!(ranked.contains("TEMP B-TREE FOR ORDER BY"), "{ranked}");
    // The same searches still find what the unranked order finds.
    check_runs(db, "metrics.acc > 0.1", &["metrics.acc DESC"], &["a1", "c3"]);
}

/// Paging by the sort key each page hands on finds the same runs as paging by offset, one run
/// per page, across runs without a start time (NULLs, placed differently by the two backends
/// unless written out), missing and NaN metrics, and missing params; a key of another search's
/// shape is refused.
#[test]
fn pages_by_key_find_what_pages_by_offset_find() {
    on_each_backend(|db| {
        let orders: [&[&str]; 6] = [
            &[],
            &["metrics.acc DESC"],
            &["metrics.acc"],
            &["params.opt DESC"],
            &["attributes.start_time"],
            &["attributes.end_time DESC"],
        ];
        for order_by in orders {
            for filter in ["", "metrics.loss < 0.35", "metrics.acc > 0"] {
                let mut q = run_query(filter, order_by);
                q.experiment_ids = vec!["1".into(), "2".into()];
                q.max_results = 1;
                let (mut by_key, mut by_offset) = (Vec::new(), Vec::new());
                for keyset in [true, false] {
                    let mut q = q.clone();
                    loop {
                        let page = search_runs(db, &q).unwrap();
                        if keyset { &mut by_key } else { &mut by_offset }.extend(page.items.iter().copied());
                        let Some(next) = page.next_offset else { break };
                        q.offset = next;
                        q.after = if keyset { Some(page.next_after.expect("a key with the offset")) } else { None };
                    }
                }
                assert_eq!(by_key, by_offset, "{:?}: filter {filter:?}, order {order_by:?}", db.dialect());
                q.max_results = 100;
                assert_eq!(search_runs(db, &q).unwrap().items, by_offset, "one page holds the same runs");
            }
        }
        let mut q = run_query("", &["metrics.acc DESC"]);
        q.after = Some(vec![SortValue::Text("x".into())]);
        assert!(matches!(search_runs(db, &q), Err(Error::InvalidParameter(m)) if m.contains("Invalid page token")));
    });
}

#[test]
fn run_pages_report_the_next_offset_only_when_more_rows_exist() {
    on_each_backend(|db| {
        let mut q = run_query("", &[]);
        q.max_results = 2;
        let first = search_runs(db, &q).unwrap();
        assert_eq!(first.next_offset, Some(2));
        assert_eq!(run_ids(db, &q), ["b2", "c3"]);
        q.offset = 2;
        assert_eq!(search_runs(db, &q).unwrap().next_offset, None);
        assert_eq!(run_ids(db, &q), ["a1", "d4"]);
        q.max_results = 4;
        q.offset = 0;
        assert_eq!(search_runs(db, &q).unwrap().next_offset, None);
    });
}

fn experiment_ids(db: &mut dyn Db, filter: &str, order_by: &[&str], view: ViewType) -> Result<Page<i64>> {
    let q = ExperimentQuery {
        filter: parse_experiment_filter(filter)?,
        order_by: order_by.iter().map(|o| parse_experiment_order_by(o)).collect::<Result<_>>()?,
        view,
        max_results: 100,
        offset: 0,
    };
    search_experiments(db, &q)
}

#[test]
fn experiment_search_follows_mlflow() {
    on_each_backend(|db| {
        let check = |db: &mut dyn Db, filter: &str, order_by: &[&str], expected: &[i64]| {
            let page = experiment_ids(db, filter, order_by, ViewType::ActiveOnly).unwrap();
            assert_eq!(page.items, expected, "{:?}: filter {filter:?}, order_by {order_by:?}", db.dialect());
        };
        // Default order: creation_time DESC, experiment_id ASC.
        check(db, "", &[], &[2, 4, 1]);
        assert_eq!(experiment_ids(db, "", &[], ViewType::All).unwrap().items, [2, 4, 3, 1]);
        assert_eq!(experiment_ids(db, "", &[], ViewType::DeletedOnly).unwrap().items, [3]);
        check(db, "name LIKE 'alpha%'", &[], &[4, 1]);
        check(db, "name LIKE 'ALPHA%'", &[], &[]);
        check(db, "name ILIKE 'ALPHA%'", &[], &[4, 1]);
        check(db, "name = 'Beta'", &[], &[2]);
        check(db, "name != 'Beta'", &[], &[4, 1]);
        check(db, "tags.owner = 'ann'", &[], &[1]);
        check(db, "tags.owner ILIKE 'ANN'", &[], &[2, 1]);
        check(db, "tags.owner IS NULL", &[], &[4]);
        check(db, "tags.proj IS NOT NULL", &[], &[4]);
        check(db, "experiment_id IN ('1', '2')", &[], &[2, 1]);
        check(db, "experiment_id != '2'", &[], &[4, 1]);
        check(db, "creation_time >= 300", &[], &[2, 4]);
        check(db, "last_update_time < 450 AND name LIKE '%a'", &[], &[2]);
        check(db, "", &["name"], &[2, 1, 4]);
        check(db, "", &["name DESC"], &[4, 1, 2]);
        check(db, "", &["last_update_time"], &[2, 4, 1]);
        // The experiment_id DESC tie-breaker.
        check(db, "", &["creation_time DESC"], &[4, 2, 1]);
        check(db, "name = '''; DROP TABLE experiments; --'", &[], &[]);

        let q = ExperimentQuery { max_results: 1, ..ExperimentQuery::default() };
        let page = search_experiments(db, &q).unwrap();
        assert_eq!((page.items, page.next_offset), (vec![2], Some(1)));
    });
}
