//! Promotion policies at the door: before an alias is set or a stage changes — through MLflow's
//! routes or Cairn's — the model version's lineage facts, tags and metrics are checked against
//! the policy file the server was started with (`--policy-file`). A refusal names every missing
//! fact at once.

use std::path::Path;

use anyhow::Context;

use cairn_core::lineage::{
    Direction, NodeKind, NodeRef, Policy, PromotionFacts, PromotionTarget, TraversalQuery, evaluate_policy,
    parse_policy,
};

use crate::AppState;
use crate::error::ApiResult;

/// How far upstream of a model version the facts are gathered.
const FACTS_DEPTH: u32 = 16;

/// Reads and checks a policy file.
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read policy file {}", path.display()))?;
    parse_policy(&text).with_context(|| format!("policy file {}", path.display()))
}

/// What the store knows about `name` version `version` that a policy can ask for.
pub(crate) async fn facts(state: &AppState, name: &str, version: i64) -> ApiResult<PromotionFacts> {
    let record = state.store.get_model_version(name, version).await?;
    let mut facts = PromotionFacts { model_name: name.to_owned(), version, ..PromotionFacts::default() };
    if let Some(run_id) = record.run_id.as_deref().filter(|r| !r.is_empty())
        && let Ok(run) = state.store.get_run(run_id).await
    {
        facts.tags.extend(run.tags.into_iter().map(|t| (t.key, t.value)));
        facts.metrics.extend(run.metrics.into_iter().map(|m| (m.key, m.value)));
    }
    // The version's own tags win over its run's.
    facts.tags.extend(record.tags.into_iter().map(|t| (t.key, t.value)));
    let start = NodeRef::model_version(name, version)?;
    let query =
        TraversalQuery { start: start.clone(), direction: Direction::Upstream, max_depth: FACTS_DEPTH, as_of: None };
    let lineage = state.store.traverse(query).await?;
    for node in lineage.nodes.iter().filter(|n| n.node != start) {
        match node.node.kind {
            NodeKind::Dataset | NodeKind::Slice => facts.datasets.push((node.node.to_string(), node.digest.clone())),
            NodeKind::Code => facts.code_versions.push(node.node.key.clone()),
            NodeKind::Environment => facts.environments.push(node.node.key.clone()),
            _ => {}
        }
    }
    Ok(facts)
}

/// Refuses the promotion of `name` version `version` to `target` when the server's policy
/// requires facts the version cannot show. Without a policy every promotion passes.
pub async fn check_promotion(state: &AppState, name: &str, version: i64, target: PromotionTarget) -> ApiResult<()> {
    let Some(policy) = state.policy.as_deref() else { return Ok(()) };
    let facts = facts(state, name, version).await?;
    let violations = evaluate_policy(policy, &target, &facts);
    if violations.is_empty() {
        return Ok(());
    }
    let target_text = match &target {
        PromotionTarget::Stage(stage) => format!("stage {stage}"),
        PromotionTarget::Alias(alias) => format!("alias '{alias}'"),
    };
    let missing: Vec<String> = violations.iter().map(|v| format!("{} ({}: {})", v.fact, v.rule, v.message)).collect();
    Err(cairn_core::Error::InvalidState(format!(
        "Promotion policy refuses {target_text} for model '{name}' version {version}; missing: {}",
        missing.join("; ")
    ))
    .into())
}
