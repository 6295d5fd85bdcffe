//! Promotion policies: what a model version must be able to prove before it may be moved to a
//! stage or given an alias.
//!
//! A policy is a declarative JSON document of rules. Each rule says which promotions it governs
//! (model name patterns, target stages, target aliases) and what it requires: lineage facts
//! (dataset digests, a code version, an environment), tags, and metric thresholds. Evaluation
//! never stops at the first failure: a refusal names every missing fact, so one round of fixes
//! is enough.
//!
//! ```json
//! {"rules": [{
//!   "name": "production needs full lineage",
//!   "applies_to": {"models": ["churn-*"], "stages": ["Production"], "aliases": ["champion"]},
//!   "require": {"dataset_digests": true, "code_version": true, "environment": true,
//!               "tags": ["validated_by"], "metrics": [{"key": "auc", "min": 0.8}]}
//! }]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Named in refusals; defaults to `rule <n>`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub applies_to: Scope,
    #[serde(default)]
    pub require: Requirements,
}

/// Which promotions a rule governs. An empty list matches everything of that sort; a rule with
/// stages and aliases governs a promotion to any of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Model name patterns; `*` matches any run of characters.
    #[serde(default)]
    pub models: Vec<String>,
    /// Target stages (case-insensitive).
    #[serde(default)]
    pub stages: Vec<String>,
    /// Target aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// What a governed promotion must show.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Every dataset the version was trained on has a content digest (and there is at least one).
    #[serde(default)]
    pub dataset_digests: bool,
    /// The training run is linked to a code version.
    #[serde(default)]
    pub code_version: bool,
    /// The training run is linked to an environment.
    #[serde(default)]
    pub environment: bool,
    /// Tags the model version (or its run) must carry.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Metric bounds on the training run's latest values.
    #[serde(default)]
    pub metrics: Vec<MetricBound>,
}

/// A metric's allowed range; both ends inclusive.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricBound {
    pub key: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// Where a promotion goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionTarget {
    Stage(String),
    Alias(String),
}

/// What is known about a model version at the moment it is promoted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromotionFacts {
    pub model_name: String,
    pub version: i64,
    /// The datasets (and slices) it was trained on, with their digests where known.
    pub datasets: Vec<(String, Option<String>)>,
    pub code_versions: Vec<String>,
    pub environments: Vec<String>,
    /// Tags of the version and of its training run (the version's win on a clash).
    pub tags: BTreeMap<String, String>,
    /// The training run's latest metric values.
    pub metrics: BTreeMap<String, f64>,
}

/// One unmet requirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyViolation {
    /// The rule's name.
    pub rule: String,
    /// A stable name of the missing fact (`dataset_digest:<name>`, `code_version`, `tag:<key>`,
    /// `metric:<key>`, …), for machines.
    pub fact: String,
    /// What is missing, for people.
    pub message: String,
}

/// Parses and checks a policy document.
pub fn parse_policy(text: &str) -> Result<Policy> {
    let policy: Policy = serde_json::from_str(text).map_err(|e| Error::invalid(format!("Invalid policy file: {e}")))?;
    for (i, rule) in policy.rules.iter().enumerate() {
        for bound in &rule.require.metrics {
            if bound.min.is_none() && bound.max.is_none() {
                return Err(Error::invalid(format!(
                    "Invalid policy file: rule {} bounds metric '{}' with neither min nor max",
                    i + 1,
                    bound.key
                )));
            }
        }
    }
    Ok(policy)
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

impl Scope {
    fn covers(&self, model: &str, target: &PromotionTarget) -> bool {
        let model_ok = self.models.is_empty() || self.models.iter().any(|p| glob_matches(p, model));
        let target_ok = match target {
            _ if self.stages.is_empty() && self.aliases.is_empty() => true,
            PromotionTarget::Stage(stage) => self.stages.iter().any(|s| s.eq_ignore_ascii_case(stage)),
            PromotionTarget::Alias(alias) => self.aliases.iter().any(|a| a == alias),
        };
        model_ok && target_ok
    }
}

/// One requirement of a rule, and whether a model version's facts meet it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequirementCheck {
    /// The fact's stable name, as in [`PolicyViolation::fact`].
    pub fact: String,
    pub met: bool,
    /// What was found, or what is missing, for people.
    pub message: String,
}

/// What one rule says of a model version, whichever promotion it is asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleVerdict {
    pub rule: String,
    /// The stages and aliases the rule governs; both empty means every promotion.
    pub stages: Vec<String>,
    pub aliases: Vec<String>,
    /// Every requirement of the rule, met or not.
    pub checks: Vec<RequirementCheck>,
    /// Whether every check is met, so a promotion the rule governs would pass it.
    pub passes: bool,
}

fn rule_name(rule: &Rule, index: usize) -> String {
    rule.name.clone().unwrap_or_else(|| format!("rule {}", index + 1))
}

/// Checks every requirement of `require` against `facts`, met ones included.
fn check_requirements(require: &Requirements, facts: &PromotionFacts) -> Vec<RequirementCheck> {
    let mut checks = Vec::new();
    let mut check = |fact: String, met: bool, message: String| checks.push(RequirementCheck { fact, met, message });
    if require.dataset_digests {
        if facts.datasets.is_empty() {
            check("dataset".into(), false, "no training dataset is recorded".into());
        }
        for (name, digest) in &facts.datasets {
            match digest.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => check(format!("dataset_digest:{name}"), true, format!("dataset '{name}' has digest {d}")),
                None => {
                    check(format!("dataset_digest:{name}"), false, format!("dataset '{name}' has no content digest"))
                }
            }
        }
    }
    if require.code_version {
        match facts.code_versions.first() {
            Some(code) => check("code_version".into(), true, format!("code version {code}")),
            None => {
                check("code_version".into(), false, "no code version (commit) is recorded for the training run".into())
            }
        }
    }
    if require.environment {
        match facts.environments.first() {
            Some(env) => check("environment".into(), true, format!("environment {env}")),
            None => check("environment".into(), false, "no environment is recorded for the training run".into()),
        }
    }
    for tag in &require.tags {
        match facts.tags.get(tag) {
            Some(value) => check(format!("tag:{tag}"), true, format!("tag '{tag}' is '{value}'")),
            None => check(format!("tag:{tag}"), false, format!("tag '{tag}' is not set")),
        }
    }
    for bound in &require.metrics {
        let fact = format!("metric:{}", bound.key);
        match facts.metrics.get(&bound.key) {
            None => check(fact, false, format!("metric '{}' is not recorded", bound.key)),
            Some(v) if v.is_nan() => check(fact, false, format!("metric '{}' is NaN", bound.key)),
            Some(&v) => {
                let low = bound.min.filter(|min| v < *min);
                let high = bound.max.filter(|max| v > *max);
                if let Some(min) = low {
                    check(fact.clone(), false, format!("metric '{}' is {v}, below the minimum {min}", bound.key));
                }
                if let Some(max) = high {
                    check(fact.clone(), false, format!("metric '{}' is {v}, above the maximum {max}", bound.key));
                }
                if low.is_none() && high.is_none() {
                    check(fact, true, format!("metric '{}' is {v}, within bounds", bound.key));
                }
            }
        }
    }
    checks
}

/// Every requirement of every rule governing this promotion that `facts` do not meet.
pub fn evaluate_policy(policy: &Policy, target: &PromotionTarget, facts: &PromotionFacts) -> Vec<PolicyViolation> {
    let mut violations = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        if !rule.applies_to.covers(&facts.model_name, target) {
            continue;
        }
        let name = rule_name(rule, i);
        for c in check_requirements(&rule.require, facts).into_iter().filter(|c| !c.met) {
            violations.push(PolicyViolation { rule: name.clone(), fact: c.fact, message: c.message });
        }
    }
    violations
}

/// What each rule that applies to this model (by name) says of `facts`, for every promotion it
/// governs: the same checks [`evaluate_policy`] makes, with the facts that are present too.
pub fn explain_policy(policy: &Policy, facts: &PromotionFacts) -> Vec<RuleVerdict> {
    policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| {
            rule.applies_to.models.is_empty()
                || rule.applies_to.models.iter().any(|p| glob_matches(p, &facts.model_name))
        })
        .map(|(i, rule)| {
            let checks = check_requirements(&rule.require, facts);
            RuleVerdict {
                rule: rule_name(rule, i),
                stages: rule.applies_to.stages.clone(),
                aliases: rule.applies_to.aliases.clone(),
                passes: checks.iter().all(|c| c.met),
                checks,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"rules": [
        {"name": "prod", "applies_to": {"models": ["churn-*"], "stages": ["Production"], "aliases": ["champion"]},
         "require": {"dataset_digests": true, "code_version": true, "environment": true,
                     "tags": ["validated_by"], "metrics": [{"key": "auc", "min": 0.8}, {"key": "p99_ms", "max": 50}]}},
        {"applies_to": {"models": ["other"]}, "require": {"code_version": true}}
    ]}"#;

    fn complete() -> PromotionFacts {
        PromotionFacts {
            model_name: "churn-eu".into(),
            version: 3,
            datasets: vec![("sales@v1".into(), Some("abc".into()))],
            code_versions: vec!["repo@1234".into()],
            environments: vec!["env:ff".into()],
            tags: [("validated_by".to_owned(), "ana".to_owned())].into(),
            metrics: [("auc".to_owned(), 0.9), ("p99_ms".to_owned(), 20.0)].into(),
        }
    }

    #[test]
    fn complete_lineage_passes_and_out_of_scope_promotions_are_not_checked() {
        let policy = parse_policy(POLICY).unwrap();
        let prod = PromotionTarget::Stage("production".into());
        assert!(evaluate_policy(&policy, &prod, &complete()).is_empty());
        let bare = PromotionFacts { model_name: "churn-eu".into(), ..PromotionFacts::default() };
        assert!(evaluate_policy(&policy, &PromotionTarget::Stage("Staging".into()), &bare).is_empty());
        assert!(evaluate_policy(&policy, &PromotionTarget::Alias("challenger".into()), &bare).is_empty());
        let unrelated = PromotionFacts { model_name: "fraud".into(), ..PromotionFacts::default() };
        assert!(evaluate_policy(&policy, &prod, &unrelated).is_empty());
    }

    #[test]
    fn a_refusal_names_every_missing_fact() {
        let policy = parse_policy(POLICY).unwrap();
        let mut facts = complete();
        facts.datasets.push(("raw@2".into(), None));
        facts.code_versions.clear();
        facts.environments.clear();
        facts.tags.clear();
        facts.metrics.insert("auc".into(), 0.5);
        facts.metrics.remove("p99_ms");
        let facts_named: Vec<String> = evaluate_policy(&policy, &PromotionTarget::Alias("champion".into()), &facts)
            .into_iter()
            .map(|v| v.fact)
            .collect();
        assert_eq!(
            facts_named,
            ["dataset_digest:raw@2", "code_version", "environment", "tag:validated_by", "metric:auc", "metric:p99_ms"]
        );
    }

    #[test]
    fn bad_policy_files_are_refused() {
        assert!(parse_policy("{").is_err());
        assert!(parse_policy(r#"{"rules": [{"require": {"dataset_digest": true}}]}"#).is_err());
        assert!(parse_policy(r#"{"rules": [{"require": {"metrics": [{"key": "auc"}]}}]}"#).is_err());
    }

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_matches("churn-*", "churn-eu"));
        assert!(glob_matches("*", "x"));
        assert!(glob_matches("a*b*c", "a-b-c"));
        assert!(!glob_matches("a*b*c", "a-c-b"));
        assert!(!glob_matches("churn", "churn-eu"));
        assert!(glob_matches("*-eu", "churn-eu"));
    }

    #[test]
    fn an_explanation_lists_present_and_missing_facts_of_every_rule_for_the_model() {
        let policy = parse_policy(POLICY).unwrap();
        let mut facts = complete();
        facts.code_versions.clear();
        let verdicts = explain_policy(&policy, &facts);
        assert_eq!(verdicts.len(), 1, "only the rule for churn-* applies: {verdicts:?}");
        let prod = &verdicts[0];
        assert_eq!((prod.rule.as_str(), prod.passes), ("prod", false));
        assert_eq!(prod.stages, vec!["Production"]);
        let met: Vec<(&str, bool)> = prod.checks.iter().map(|c| (c.fact.as_str(), c.met)).collect();
        assert_eq!(
            met,
            vec![
                ("dataset_digest:sales@v1", true),
                ("code_version", false),
                ("environment", true),
                ("tag:validated_by", true),
                ("metric:auc", true),
                ("metric:p99_ms", true)
            ]
        );
        // The refusal of a governed promotion names exactly the unmet checks.
        let refused = evaluate_policy(&policy, &PromotionTarget::Alias("champion".into()), &facts);
        assert_eq!(refused.iter().map(|v| v.fact.as_str()).collect::<Vec<_>>(), vec!["code_version"]);
    }
}
