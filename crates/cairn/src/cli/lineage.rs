//! `cairn lineage show|upstream|downstream|diff|export|health`: ask the lineage graph questions
//! from the command line, against the store directly (like `cairn audit`), optionally as the
//! graph stood at a past time.
//!
//! Text output is for people: an indented tree from the start node with every digest. `--json`
//! prints what the HTTP API answers, for scripts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use cairn_core::lineage::{
    Direction, Edge, LineageHealth, MAX_TRAVERSAL_DEPTH, Node, NodeRef, Subgraph, TraversalQuery, UpstreamDiff,
    diff_upstream, to_dot, to_prov_json,
};
use cairn_core::model::Millis;
use cairn_core::store::Store;
use cairn_core::time::{format_instant, parse_instant};

use super::StoreArgs;

/// Lineage subcommands.
#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// One node: its digest, attributes and when it was recorded.
    Show {
        /// The node, `kind:key` (e.g. `model-version:churn/3`).
        node: String,
        #[command(flatten)]
        query: QueryArgs,
    },
    /// Everything the node depends on: data, code, environment, runs.
    Upstream {
        /// The node, `kind:key`.
        node: String,
        #[command(flatten)]
        traversal: TraversalArgs,
    },
    /// Everything that depends on the node: models, deployments, predictions.
    Downstream {
        /// The node, `kind:key`.
        node: String,
        #[command(flatten)]
        traversal: TraversalArgs,
    },
    /// Compare two nodes' upstream: same data (by digest), code and environment?
    Diff {
        /// The baseline node, `kind:key`.
        left: String,
        /// The node to compare with it.
        right: String,
        #[command(flatten)]
        traversal: TraversalArgs,
    },
    /// A subgraph as PROV-JSON, Graphviz DOT or Cairn's JSON.
    Export {
        /// The start node, `kind:key`.
        node: String,
        /// Output format; `--json` is the same as `--format json`.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Which way to walk from the node.
        #[arg(long, value_enum, default_value_t = Way::Upstream)]
        direction: Way,
        #[command(flatten)]
        traversal: TraversalArgs,
    },
    /// How many model versions have complete lineage, and how many predictions are flagged.
    Health {
        #[command(flatten)]
        query: QueryArgs,
    },
}

/// The options every question shares.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Answer as the graph stood at this time (milliseconds since the epoch or RFC 3339).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: Option<Millis>,
    /// Print JSON (what the HTTP API answers) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A traversal's options.
#[derive(Debug, Clone, Args)]
pub struct TraversalArgs {
    /// How many edges away from the node to go at most.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TRAVERSAL_DEPTH)))]
    pub depth: u32,
    #[command(flatten)]
    pub query: QueryArgs,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// W3C PROV-JSON.
    ProvJson,
    /// Graphviz DOT.
    Dot,
    /// Cairn's JSON (nodes, edges).
    Json,
}

/// Traversal directions, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Way {
    /// Towards what the node depends on.
    Upstream,
    /// Towards what depends on the node.
    Downstream,
}

/// Parses `--as-of`.
pub fn parse_as_of(text: &str) -> Result<Millis, String> {
    parse_instant(text).map_err(|e| e.to_string())
}

/// Parses a node argument.
pub fn parse_node(text: &str) -> anyhow::Result<NodeRef> {
    NodeRef::parse(text).with_context(|| format!("'{text}' is not a node reference"))
}

/// Opens the store, asks it one question, and closes it whatever the answer.
pub async fn with_store<T>(
    args: &StoreArgs,
    ask: impl AsyncFnOnce(&Arc<dyn Store>) -> cairn_core::Result<T>,
) -> anyhow::Result<T> {
    let store = cairn_store::open(&args.store_config()).await.context("cannot open the store")?;
    let answer = ask(&store).await;
    store.close().await.context("closing the store")?;
    Ok(answer?)
}

/// Runs a lineage subcommand.
pub async fn run(command: LineageCommand) -> anyhow::Result<ExitCode> {
    let output = match command {
        LineageCommand::Show { node, query } => {
            let node = parse_node(&node)?;
            let found = with_store(&query.store, async |s| s.get_node(&node, query.as_of).await).await?;
            if query.json { pretty(&serde_json::json!({ "node": found }))? } else { render_node(&found) }
        }
        LineageCommand::Upstream { node, traversal } => walk(&node, Direction::Upstream, &traversal).await?,
        LineageCommand::Downstream { node, traversal } => walk(&node, Direction::Downstream, &traversal).await?,
        LineageCommand::Diff { left, right, traversal } => {
            let (left, right) = (parse_node(&left)?, parse_node(&right)?);
            let (max_depth, as_of) = (traversal.depth, traversal.query.as_of);
            let query = |start: &NodeRef| TraversalQuery {
                start: start.clone(),
                direction: Direction::Upstream,
                max_depth,
                as_of,
            };
            let (l, r) = with_store(&traversal.query.store, async |s| {
                Ok((s.traverse(query(&left)).await?, s.traverse(query(&right)).await?))
            })
            .await?;
            let diff = diff_upstream(&left, &l, &right, &r);
            let truncated = l.truncated || r.truncated;
            if traversal.query.json {
                let mut body = serde_json::to_value(&diff)?;
                body["truncated"] = Value::Bool(truncated);
                pretty(&body)?
            } else {
                render_diff(&diff, truncated)
            }
        }
        LineageCommand::Export { node, format, direction, traversal } => {
            let direction = match direction {
                Way::Upstream => Direction::Upstream,
                Way::Downstream => Direction::Downstream,
            };
            let graph = traverse(&node, direction, &traversal).await?;
            // `--json`, which every lineage command takes, asks for Cairn's JSON here too.
            let format = if traversal.query.json { ExportFormat::Json } else { format };
            match format {
                ExportFormat::Json => pretty(&serde_json::to_value(&graph)?)?,
                ExportFormat::ProvJson => pretty(&to_prov_json(&graph))?,
                ExportFormat::Dot => to_dot(&graph).trim_end().to_owned(),
            }
        }
        LineageCommand::Health { query } => {
            let as_of = query.as_of;
            let health = with_store(&query.store, async move |s| s.lineage_health(as_of).await).await?;
            if query.json { pretty(&serde_json::to_value(&health)?)? } else { render_health(&health) }
        }
    };
    println!("{output}");
    Ok(ExitCode::SUCCESS)
}

async fn traverse(node: &str, direction: Direction, args: &TraversalArgs) -> anyhow::Result<Subgraph> {
    let query = TraversalQuery { start: parse_node(node)?, direction, max_depth: args.depth, as_of: args.query.as_of };
    with_store(&args.query.store, async |s| s.traverse(query).await).await
}

async fn walk(node: &str, direction: Direction, args: &TraversalArgs) -> anyhow::Result<String> {
    let graph = traverse(node, direction, args).await?;
    if args.query.json {
        return pretty(&serde_json::to_value(&graph)?);
    }
    Ok(render_tree(&graph, &parse_node(node)?, direction))
}

/// Pretty JSON of `value` (a lineage type, converted by the caller).
pub fn pretty(value: &Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

/// A node's one-line summary: reference, label when it says more, full digest.
pub fn node_line(node: &NodeRef, graph_node: Option<&Node>) -> String {
    let mut line = node.to_string();
    if let Some(n) = graph_node {
        if !n.label.is_empty() && n.label != node.key {
            let _ = write!(line, "  \"{}\"", n.label);
        }
        if let Some(digest) = &n.digest {
            let _ = write!(line, "  digest {digest}");
        }
    }
    line
}

/// One node in full.
pub fn render_node(node: &Node) -> String {
    let mut out = node_line(&node.node, Some(node));
    let _ = write!(out, "\n  recorded {}", format_instant(node.recorded_at));
    for (key, value) in &node.attributes {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(out, "\n  {key}: {value}");
    }
    out
}

/// The subgraph as an indented tree from `start`, each line naming the edge that leads to the
/// node. A node reached twice is printed in full once and referred to after that, so shared
/// upstream (one dataset behind many runs) does not repeat.
pub fn render_tree(graph: &Subgraph, start: &NodeRef, direction: Direction) -> String {
    let mut children: BTreeMap<&NodeRef, Vec<&Edge>> = BTreeMap::new();
    for edge in &graph.edges {
        let from = if direction == Direction::Upstream { &edge.source } else { &edge.target };
        children.entry(from).or_default().push(edge);
    }
    let mut out = node_line(start, graph.node(start));
    let mut seen = BTreeSet::from([start.clone()]);
    tree_below(graph, &children, start, direction, "", &mut seen, &mut out);
    if graph.truncated {
        out.push_str("\n… truncated: raise --depth to see further");
    }
    out
}

fn tree_below(
    graph: &Subgraph,
    children: &BTreeMap<&NodeRef, Vec<&Edge>>,
    node: &NodeRef,
    direction: Direction,
    indent: &str,
    seen: &mut BTreeSet<NodeRef>,
    out: &mut String,
) {
    let edges = children.get(node).map(Vec::as_slice).unwrap_or_default();
    for (i, edge) in edges.iter().enumerate() {
        let last = i + 1 == edges.len();
        let next = if direction == Direction::Upstream { &edge.target } else { &edge.source };
        let (branch, continuation) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        // The arrow keeps the edge's own direction: upstream, this node points at the next one;
        // downstream, the next one points at this node.
        let arrow = if direction == Direction::Upstream { "→" } else { "←" };
        let mut interval = String::new();
        if let Some(from) = edge.valid_from {
            let to = edge.valid_to.map_or_else(|| "now".to_owned(), format_instant);
            interval = format!(" [{} – {to}]", format_instant(from));
        }
        let _ = write!(
            out,
            "\n{indent}{branch}{}{interval} {arrow} {}",
            edge.kind.as_str(),
            node_line(next, graph.node(next))
        );
        if !seen.insert(next.clone()) {
            if children.contains_key(next) {
                out.push_str("  (see above)");
            }
            continue;
        }
        tree_below(graph, children, next, direction, &format!("{indent}{continuation}"), seen, out);
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

/// A diff for people.
pub fn render_diff(diff: &UpstreamDiff, truncated: bool) -> String {
    let mut out = format!("left:  {}\nright: {}\n", diff.left, diff.right);
    let _ = write!(
        out,
        "same data: {}   same code: {}   same environment: {}",
        yes_no(diff.same_data),
        yes_no(diff.same_code),
        yes_no(diff.same_environment)
    );
    for (title, nodes) in [("shared", &diff.shared), ("only left", &diff.only_left), ("only right", &diff.only_right)] {
        let _ = write!(out, "\n{title}:");
        if nodes.is_empty() {
            out.push_str(" (none)");
        }
        for node in nodes {
            let _ = write!(out, "\n  {node}");
        }
    }
    if truncated {
        out.push_str("\n… an upstream was truncated: raise --depth for a complete comparison");
    }
    out
}

/// Health for people.
pub fn render_health(h: &LineageHealth) -> String {
    format!(
        "model versions with complete lineage: {} of {} ({:.1}%)\npredictions flagged for incomplete lineage: {} of {} ({:.1}%)",
        h.model_versions_complete,
        h.model_versions,
        h.model_versions_complete_ratio * 100.0,
        h.predictions_flagged,
        h.predictions,
        h.predictions_flagged_ratio * 100.0
    )
}

#[cfg(test)]
mod tests {
    use cairn_core::lineage::{EdgeKind, NodeKind};
    use serde_json::Map;

    use super::*;

    fn node(kind: NodeKind, key: &str, digest: Option<&str>) -> Node {
        Node {
            node: NodeRef::new(kind, key).unwrap(),
            label: key.into(),
            digest: digest.map(str::to_owned),
            attributes: Map::new(),
            recorded_at: 0,
        }
    }

    fn edge(source: &Node, kind: EdgeKind, target: &Node) -> Edge {
        Edge {
            source: source.node.clone(),
            kind,
            target: target.node.clone(),
            recorded_at: 0,
            valid_from: None,
            valid_to: None,
        }
    }

    fn graph() -> Subgraph {
        let raw = node(NodeKind::Dataset, "raw@1", Some("aaaa"));
        let clean = node(NodeKind::Dataset, "clean@1", Some("bbbb"));
        let prep = node(NodeKind::Run, "prep", None);
        let train = node(NodeKind::Run, "train", None);
        let mv = node(NodeKind::ModelVersion, "churn/1", None);
        Subgraph {
            edges: vec![
                edge(&mv, EdgeKind::WasDerivedFrom, &train),
                edge(&train, EdgeKind::Used, &clean),
                edge(&train, EdgeKind::Used, &raw),
                edge(&clean, EdgeKind::WasGeneratedBy, &prep),
                edge(&prep, EdgeKind::Used, &raw),
            ],
            nodes: vec![raw, clean, prep, train, mv],
            truncated: false,
        }
    }

    #[test]
    fn the_upstream_tree_shows_relations_and_digests_and_each_node_once() {
        let g = graph();
        let tree = render_tree(&g, &NodeRef::parse("model-version:churn/1").unwrap(), Direction::Upstream);
        let expected = "\
model-version:churn/1
└─ was_derived_from → run:train
   ├─ used → dataset:clean@1  digest bbbb
   │  └─ was_generated_by → run:prep
   │     └─ used → dataset:raw@1  digest aaaa
   └─ used → dataset:raw@1  digest aaaa";
        assert_eq!(tree, expected);
    }

    #[test]
    fn the_downstream_tree_reads_edges_backwards() {
        let g = graph();
        let tree = render_tree(&g, &NodeRef::parse("dataset:raw@1").unwrap(), Direction::Downstream);
        assert!(tree.starts_with("dataset:raw@1  digest aaaa\n├─ used ← run:train"), "{tree}");
        assert!(tree.contains("used ← run:prep"), "{tree}");
        // run:train is reached twice (directly and through clean@1); its subtree prints once.
        assert_eq!(tree.matches("was_derived_from ← model-version:churn/1").count(), 1, "{tree}");
    }

    #[test]
    fn as_of_takes_either_spelling_and_nodes_must_be_references() {
        assert_eq!(parse_as_of("2025-11-23T10:00:00Z").unwrap(), 1_763_892_000_000);
        assert!(parse_as_of("tuesday").is_err());
        assert!(parse_node("churn/1").is_err());
    }
}
