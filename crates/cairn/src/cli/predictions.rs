//! `cairn predictions trace ID`: the provenance of one served prediction — the deployment and
//! model version that made it, the run that trained that version, and the data, code and
//! environment behind it, with every digest — as of now or a past time.

use std::fmt::Write;
use std::process::ExitCode;

use clap::Subcommand;

use cairn_core::lineage::{Direction, NodeKind, NodeRef, PredictionTrace};
use cairn_core::time::format_instant;

use super::lineage::{QueryArgs, pretty, render_tree, with_store};

/// Prediction subcommands.
#[derive(Debug, Subcommand)]
pub enum PredictionsCommand {
    /// The chain from a prediction back to data, code and environment.
    Trace {
        /// The prediction id the serving system gave.
        id: String,
        #[command(flatten)]
        query: QueryArgs,
    },
}

/// Runs a predictions subcommand.
pub async fn run(command: PredictionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PredictionsCommand::Trace { id, query } => {
            let trace = with_store(&query.store, async |s| s.trace_prediction(&id, query.as_of).await).await?;
            let output = if query.json { pretty(&serde_json::to_value(&trace)?)? } else { render_trace(&trace) };
            println!("{output}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A trace for people: the prediction's facts, the verdict on its lineage, then the upstream
/// tree from the prediction node.
pub fn render_trace(trace: &PredictionTrace) -> String {
    let p = &trace.prediction;
    let mut out = format!("prediction {} at {}", p.prediction_id, format_instant(p.time));
    if let Some(deployment) = &p.deployment {
        let _ = write!(out, "\n  deployment:    {deployment}");
    }
    if let Some(mv) = &p.model_version {
        let _ = write!(out, "\n  model version: {mv}");
    }
    let _ = write!(out, "\n  input digest:  {}", p.input_digest);
    if let Some(output) = &p.output_digest {
        let _ = write!(out, "\n  output digest: {output}");
    }
    if trace.completeness.complete {
        out.push_str("\n  lineage:       complete");
    } else {
        let _ = write!(out, "\n  lineage:       INCOMPLETE, missing {}", trace.completeness.missing.join(", "));
    }
    match NodeRef::new(NodeKind::Prediction, p.prediction_id.as_str()) {
        Ok(start) => {
            let _ = write!(out, "\n\n{}", render_tree(&trace.lineage, &start, Direction::Upstream));
        }
        // The id was accepted by the store, so it is a valid key; say so rather than panic if not.
        Err(e) => {
            let _ = write!(out, "\n\n(cannot draw the lineage: {e})");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use cairn_core::lineage::{Completeness, Edge, EdgeKind, Node, Prediction, Subgraph};
    use serde_json::Map;

    use super::*;

    #[test]
    fn a_trace_names_the_prediction_its_verdict_and_the_chain() {
        let pred = NodeRef::new(NodeKind::Prediction, "p-1").unwrap();
        let mv = NodeRef::model_version("churn", 1).unwrap();
        let node = |n: &NodeRef, digest: Option<&str>| Node {
            node: n.clone(),
            label: n.key.clone(),
            digest: digest.map(str::to_owned),
            attributes: Map::new(),
            recorded_at: 0,
        };
        let trace = PredictionTrace {
            prediction: Prediction {
                prediction_id: "p-1".into(),
                deployment: Some("prod".into()),
                model_version: Some(mv.clone()),
                input_digest: "in".into(),
                output_digest: None,
                time: 1_763_892_000_000,
                recorded_at: 1_763_892_000_000,
                lineage_complete: false,
            },
            completeness: Completeness { complete: false, missing: vec!["code_version".into()] },
            lineage: Subgraph {
                nodes: vec![node(&pred, Some("in")), node(&mv, None)],
                edges: vec![Edge {
                    source: pred.clone(),
                    kind: EdgeKind::WasGeneratedBy,
                    target: mv,
                    recorded_at: 0,
                    valid_from: None,
                    valid_to: None,
                }],
                truncated: false,
            },
        };
        let text = render_trace(&trace);
        assert!(text.starts_with("prediction p-1 at 2025-11-23T10:00:00.000Z"), "{text}");
        assert!(text.contains("INCOMPLETE, missing code_version"), "{text}");
        assert!(text.contains("prediction:p-1  digest in\n└─ was_generated_by → model-version:churn/1"), "{text}");
    }
}
