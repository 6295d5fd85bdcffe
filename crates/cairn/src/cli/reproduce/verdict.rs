//! The verdict: each metric's original and reproduced value with their absolute and relative
//! difference against its tolerance (exact unless `--tolerance` says otherwise), its whole
//! history compared step by step under the same tolerance (a run whose curve wandered off and
//! came back to the same final value did not reproduce), and whether the params, the environment
//! digest, the code version and the final status are the same. A run is reproduced only when
//! every line holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::tracking::{RunRecord, Tracking};

/// How close a reproduced metric must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    Exact,
    Abs(f64),
    Rel(f64),
}

impl Tolerance {
    fn holds(self, original: f64, reproduced: f64) -> bool {
        if original.is_nan() || reproduced.is_nan() {
            return original.is_nan() && reproduced.is_nan();
        }
        if original == reproduced {
            return true; // also equal infinities
        }
        match self {
            Tolerance::Exact => false,
            Tolerance::Abs(t) => (original - reproduced).abs() <= t,
            Tolerance::Rel(t) => (original - reproduced).abs() <= t * original.abs(),
        }
    }

    fn describe(self) -> String {
        match self {
            Tolerance::Exact => "exact".into(),
            Tolerance::Abs(t) => format!("abs:{t:e}"),
            Tolerance::Rel(t) => format!("rel:{t:e}"),
        }
    }
}

/// Tolerances by metric key, with `*` for the rest.
#[derive(Debug, Clone, Default)]
pub struct Tolerances {
    by_key: BTreeMap<String, Tolerance>,
    default: Option<Tolerance>,
}

impl Tolerances {
    /// Parses `--tolerance KEY=abs:1e-6` / `'*=rel:1e-3'` / `KEY=exact` arguments.
    pub fn parse(args: &[String]) -> anyhow::Result<Tolerances> {
        let mut out = Tolerances::default();
        for arg in args {
            let (key, rule) = arg
                .split_once('=')
                .with_context(|| format!("--tolerance {arg}: expected KEY=abs:X, KEY=rel:X or KEY=exact"))?;
            let tolerance = match rule.split_once(':') {
                _ if rule == "exact" => Tolerance::Exact,
                Some((kind @ ("abs" | "rel"), value)) => {
                    let t: f64 =
                        value.parse().with_context(|| format!("--tolerance {arg}: '{value}' is not a number"))?;
                    if !(t.is_finite() && t >= 0.0) {
                        bail!("--tolerance {arg}: a tolerance is a finite number of at least 0");
                    }
                    if kind == "abs" { Tolerance::Abs(t) } else { Tolerance::Rel(t) }
                }
                _ => bail!("--tolerance {arg}: expected KEY=abs:X, KEY=rel:X or KEY=exact"),
            };
            if key.is_empty() {
                bail!("--tolerance {arg}: name a metric, or * for all");
            }
            if key == "*" {
                out.default = Some(tolerance);
            } else {
                out.by_key.insert(key.to_owned(), tolerance);
            }
        }
        Ok(out)
    }

    fn of(&self, key: &str) -> Tolerance {
        self.by_key.get(key).copied().or(self.default).unwrap_or(Tolerance::Exact)
    }
}

/// Each metric's whole history in both runs, as `(step, value)` in step order.
#[derive(Debug, Clone, Default)]
pub struct Histories {
    pub original: BTreeMap<String, Vec<(i64, f64)>>,
    pub reproduced: BTreeMap<String, Vec<(i64, f64)>>,
}

impl Histories {
    /// Reads the histories of the metrics both runs logged; a metric only one of them logged
    /// differs whatever its history.
    pub async fn read(
        tracking: &Tracking,
        original: &RunRecord,
        reproduction: &RunRecord,
    ) -> anyhow::Result<Histories> {
        let mut out = Histories::default();
        for key in original.metrics.keys().filter(|k| reproduction.metrics.contains_key(*k)) {
            out.original.insert(key.clone(), tracking.metric_history(&original.run_id, key).await?);
            out.reproduced.insert(key.clone(), tracking.metric_history(&reproduction.run_id, key).await?);
        }
        Ok(out)
    }
}

/// How a metric's history compares, step by step.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    /// Not compared: one of the runs did not log the metric.
    Unknown,
    /// Every value at every step within tolerance.
    Same { values: usize },
    /// The runs logged different steps, or a different number of values.
    Steps { original: usize, reproduced: usize },
    /// The first value outside tolerance.
    DiffersAt { step: i64, original: f64, reproduced: f64 },
}

impl History {
    fn of(original: &[(i64, f64)], reproduced: &[(i64, f64)], tolerance: Tolerance) -> History {
        let same_steps = original.len() == reproduced.len() && original.iter().zip(reproduced).all(|(a, b)| a.0 == b.0);
        if !same_steps {
            return History::Steps { original: original.len(), reproduced: reproduced.len() };
        }
        match original.iter().zip(reproduced).find(|(a, b)| !tolerance.holds(a.1, b.1)) {
            Some((a, b)) => History::DiffersAt { step: a.0, original: a.1, reproduced: b.1 },
            None => History::Same { values: original.len() },
        }
    }

    /// Whether the history contradicts the reproduction (an unknown one does not: the latest
    /// values already say the metric is missing).
    fn differs(&self) -> bool {
        matches!(self, History::Steps { .. } | History::DiffersAt { .. })
    }

    fn describe(&self) -> String {
        match self {
            History::Unknown => "-".into(),
            History::Same { values: 1 } => "1 value".into(),
            History::Same { values } => format!("{values} values"),
            History::Steps { original, reproduced } if original == reproduced => "other steps".into(),
            History::Steps { original, reproduced } => format!("{original} vs {reproduced} values"),
            History::DiffersAt { step, .. } => format!("differs at step {step}"),
        }
    }

    fn to_json(&self, number: impl Fn(Option<f64>) -> Value) -> Value {
        match self {
            History::Unknown => Value::Null,
            History::Same { values } => json!({"same": true, "values": values}),
            History::Steps { original, reproduced } => {
                json!({"same": false, "original_values": original, "reproduced_values": reproduced})
            }
            History::DiffersAt { step, original, reproduced } => json!({
                "same": false, "first_difference_step": step,
                "original": number(Some(*original)), "reproduced": number(Some(*reproduced)),
            }),
        }
    }
}

/// One metric's line.
#[derive(Debug, Clone)]
pub struct MetricLine {
    pub key: String,
    pub original: Option<f64>,
    pub reproduced: Option<f64>,
    pub tolerance: Tolerance,
    pub history: History,
    pub ok: bool,
}

impl MetricLine {
    fn abs_diff(&self) -> Option<f64> {
        Some((self.original? - self.reproduced?).abs())
    }

    fn rel_diff(&self) -> Option<f64> {
        let (a, d) = (self.original?, self.abs_diff()?);
        Some(if d == 0.0 { 0.0 } else { d / a.abs() })
    }
}

/// A value compared between the two runs.
#[derive(Debug, Clone)]
pub struct Same {
    pub what: String,
    pub original: Option<String>,
    pub reproduced: Option<String>,
}

impl Same {
    fn ok(&self) -> bool {
        self.original == self.reproduced
    }
}

/// The whole verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub original: String,
    pub reproduction: String,
    pub metrics: Vec<MetricLine>,
    /// Params, environment, code and status, each compared for equality.
    pub checks: Vec<Same>,
}

impl Verdict {
    /// Whether everything matched.
    pub fn reproduced(&self) -> bool {
        self.metrics.iter().all(|m| m.ok) && self.checks.iter().all(Same::ok)
    }

    /// `reproduced` or `not reproduced`.
    pub fn word(&self) -> &'static str {
        if self.reproduced() { "reproduced" } else { "not reproduced" }
    }

    /// The verdict as `--json` prints it and the run stores it.
    pub fn to_json(&self) -> Value {
        let number = |v: Option<f64>| match v {
            Some(x) if x.is_finite() => json!(x),
            Some(x) => json!(x.to_string()),
            None => Value::Null,
        };
        json!({
            "original_run_id": self.original,
            "reproduction_run_id": self.reproduction,
            "verdict": self.word(),
            "reproduced": self.reproduced(),
            "metrics": self.metrics.iter().map(|m| json!({
                "key": m.key,
                "original": number(m.original),
                "reproduced": number(m.reproduced),
                "abs_diff": number(m.abs_diff()),
                "rel_diff": number(m.rel_diff()),
                "tolerance": m.tolerance.describe(),
                "history": m.history.to_json(number),
                "ok": m.ok,
            })).collect::<Vec<_>>(),
            "checks": self.checks.iter().map(|c| json!({
                "what": c.what, "original": c.original, "reproduced": c.reproduced, "ok": c.ok(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The verdict table for people.
    pub fn render(&self) -> String {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x}"));
        let short = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.3e}"));
        let mut rows = vec![
            ["metric", "original", "reproduced", "abs diff", "rel diff", "tolerance", "history", ""].map(String::from),
        ];
        for m in &self.metrics {
            rows.push([
                m.key.clone(),
                show(m.original),
                show(m.reproduced),
                short(m.abs_diff()),
                short(m.rel_diff()),
                m.tolerance.describe(),
                m.history.describe(),
                if m.ok { "ok".into() } else { "DIFFERS".into() },
            ]);
        }
        let widths: Vec<usize> = (0..8).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        }
        for m in &self.metrics {
            if let History::DiffersAt { step, original, reproduced } = m.history {
                let _ = writeln!(out, "  {} at step {step}: {original} -> {reproduced}", m.key);
            }
        }
        for c in &self.checks {
            let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            if c.ok() {
                let _ = writeln!(out, "  {}: same ({})", c.what, value(&c.original));
            } else {
                let _ = writeln!(out, "  {}: DIFFERS: {} -> {}", c.what, value(&c.original), value(&c.reproduced));
            }
        }
        let _ = writeln!(out, "{}: run {} as run {}", self.word(), self.original, self.reproduction);
        out
    }
}

/// Compares the reproduction with the original.
pub fn compare(
    original: &RunRecord,
    reproduction: &RunRecord,
    histories: &Histories,
    tolerances: &Tolerances,
) -> Verdict {
    let keys: BTreeSet<&String> = original.metrics.keys().chain(reproduction.metrics.keys()).collect();
    let metrics = keys
        .into_iter()
        .map(|key| {
            let (a, b) = (original.metrics.get(key).copied(), reproduction.metrics.get(key).copied());
            let tolerance = tolerances.of(key);
            let history = match (histories.original.get(key), histories.reproduced.get(key)) {
                (Some(a), Some(b)) => History::of(a, b, tolerance),
                _ => History::Unknown,
            };
            let ok = matches!((a, b), (Some(a), Some(b)) if tolerance.holds(a, b)) && !history.differs();
            MetricLine { key: key.clone(), original: a, reproduced: b, tolerance, history, ok }
        })
        .collect();
    let mut checks = Vec::new();
    let params: BTreeSet<&String> = original.params.keys().chain(reproduction.params.keys()).collect();
    for key in params {
        checks.push(Same {
            what: format!("param {key}"),
            original: original.params.get(key).cloned(),
            reproduced: reproduction.params.get(key).cloned(),
        });
    }
    let tag = |run: &RunRecord, k: &str| run.tags.get(k).cloned();
    for (what, key) in [("environment", "cairn.environment.digest"), ("code", "cairn.code.node")] {
        checks.push(Same { what: what.into(), original: tag(original, key), reproduced: tag(reproduction, key) });
    }
    checks.push(Same {
        what: "status".into(),
        original: Some(original.status.clone()),
        reproduced: Some(reproduction.status.clone()),
    });
    Verdict { original: original.run_id.clone(), reproduction: reproduction.run_id.clone(), metrics, checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, metrics: &[(&str, f64)], params: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            experiment_id: "1".into(),
            run_name: id.into(),
            status: "FINISHED".into(),
            artifact_uri: String::new(),
            tags: BTreeMap::from([
                ("cairn.environment.digest".into(), "e".into()),
                ("cairn.code.node".into(), "code:r@c".into()),
            ]),
            params: params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            metrics: metrics.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        }
    }

    fn tolerances(args: &[&str]) -> Tolerances {
        Tolerances::parse(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn identical_runs_are_reproduced() {
        let a = run("a", &[("loss", 0.25), ("acc", f64::NAN)], &[("lr", "0.1")]);
        let b = run("b", &[("loss", 0.25), ("acc", f64::NAN)], &[("lr", "0.1")]);
        let v = compare(&a, &b, &Histories::default(), &Tolerances::default());
        assert!(v.reproduced(), "{}", v.render());
        assert_eq!(v.to_json()["verdict"], "reproduced");
    }

    #[test]
    fn metrics_are_exact_unless_a_tolerance_says_otherwise() {
        let a = run("a", &[("loss", 1.0), ("acc", 0.5)], &[]);
        let b = run("b", &[("loss", 1.0000005), ("acc", 0.5004)], &[]);
        let v = compare(&a, &b, &Histories::default(), &Tolerances::default());
        assert!(!v.reproduced());
        assert_eq!(v.metrics.iter().filter(|m| !m.ok).count(), 2);
        assert!(compare(&a, &b, &Histories::default(), &tolerances(&["loss=abs:1e-6", "*=rel:1e-3"])).reproduced());
        assert!(!compare(&a, &b, &Histories::default(), &tolerances(&["loss=abs:1e-7", "*=rel:1e-3"])).reproduced());
        let line = &compare(&a, &b, &Histories::default(), &Tolerances::default()).metrics[0];
        assert_eq!(line.key, "acc");
        assert!((line.rel_diff().unwrap() - 0.0008).abs() < 1e-12);
    }

    #[test]
    fn missing_metrics_and_changed_params_differ() {
        let a = run("a", &[("loss", 1.0)], &[("lr", "0.1")]);
        let b = run("b", &[("loss", 1.0), ("extra", 2.0)], &[("lr", "0.2")]);
        let v = compare(&a, &b, &Histories::default(), &Tolerances::default());
        assert!(!v.reproduced());
        assert!(v.render().contains("param lr: DIFFERS: 0.1 -> 0.2"), "{}", v.render());
        assert!(!v.metrics.iter().find(|m| m.key == "extra").unwrap().ok);
    }

    fn histories(original: &[(&str, &[(i64, f64)])], reproduced: &[(&str, &[(i64, f64)])]) -> Histories {
        let map = |h: &[(&str, &[(i64, f64)])]| h.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect();
        Histories { original: map(original), reproduced: map(reproduced) }
    }

    #[test]
    fn a_curve_that_strays_and_returns_to_the_same_final_value_did_not_reproduce() {
        let (a, b) = (run("a", &[("loss", 0.1)], &[]), run("b", &[("loss", 0.1)], &[]));
        let same =
            histories(&[("loss", &[(0, 0.9), (1, 0.5), (2, 0.1)])], &[("loss", &[(0, 0.9), (1, 0.5), (2, 0.1)])]);
        let v = compare(&a, &b, &same, &Tolerances::default());
        assert!(v.reproduced(), "{}", v.render());
        assert_eq!(v.metrics[0].history, History::Same { values: 3 });
        assert_eq!(v.to_json()["metrics"][0]["history"], json!({"same": true, "values": 3}));

        let strayed =
            histories(&[("loss", &[(0, 0.9), (1, 0.5), (2, 0.1)])], &[("loss", &[(0, 0.9), (1, 0.7), (2, 0.1)])]);
        let v = compare(&a, &b, &strayed, &Tolerances::default());
        assert!(!v.reproduced());
        assert_eq!(v.metrics[0].history, History::DiffersAt { step: 1, original: 0.5, reproduced: 0.7 });
        assert!(v.render().contains("loss at step 1: 0.5 -> 0.7"), "{}", v.render());
        assert!(compare(&a, &b, &strayed, &tolerances(&["loss=abs:0.25"])).reproduced());

        let shorter = histories(&[("loss", &[(0, 0.9), (1, 0.5), (2, 0.1)])], &[("loss", &[(0, 0.9), (2, 0.1)])]);
        let v = compare(&a, &b, &shorter, &Tolerances::default());
        assert!(!v.reproduced());
        assert_eq!(v.metrics[0].history, History::Steps { original: 3, reproduced: 2 });
        let moved = histories(&[("loss", &[(0, 0.9), (2, 0.1)])], &[("loss", &[(1, 0.9), (2, 0.1)])]);
        assert!(!compare(&a, &b, &moved, &Tolerances::default()).reproduced());
    }

    #[test]
    fn bad_tolerances_are_refused() {
        for bad in ["loss", "loss=abs", "loss=abs:x", "loss=abs:-1", "=abs:1", "loss=near:1"] {
            assert!(Tolerances::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
