//! `cairn models history` and `cairn models alias`: the registry's timeline and "which version
//! did this alias point to then", read from the store like the other command-line tools.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use cairn_core::model::Millis;
use cairn_core::registry::{HistoryEntry, HistoryKind, ModelVersion};
use cairn_core::time::{format_instant, parse_instant};

use super::StoreArgs;

/// Model-registry subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Print a registered model's history: creation, versions, stage transitions, alias moves,
    /// renames and deletion, oldest first.
    History {
        /// The model's name (current or former).
        name: String,
        /// Only changes made at or before this time (milliseconds since the epoch or RFC 3339).
        #[arg(long, value_parser = parse_time)]
        as_of: Option<Millis>,
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the version an alias pointed to at a given time; exit 1 if it pointed nowhere.
    Alias {
        /// The model's name.
        name: String,
        /// The alias, without `@`.
        alias: String,
        /// The time to look at (milliseconds since the epoch or RFC 3339).
        #[arg(long, value_parser = parse_time)]
        as_of: Millis,
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(text: &str) -> Result<Millis, String> {
    parse_instant(text).map_err(|e| e.to_string())
}

/// Runs a models subcommand.
pub async fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::History { name, as_of, store, json } => {
            let store = cairn_store::open(&store.store_config()).await.context("cannot open the store")?;
            let entries = store.model_history(&name, as_of).await;
            store.close().await.context("closing the store")?;
            let entries = entries.context("cannot read the model's history")?;
            if entries.is_empty() {
                eprintln!("no registered model named '{name}' has any history");
                return Ok(ExitCode::FAILURE);
            }
            println!("{}", render_history(&entries, json)?);
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Alias { name, alias, as_of, store, json } => {
            let store = cairn_store::open(&store.store_config()).await.context("cannot open the store")?;
            let found = lookup(store.as_ref(), &name, &alias, as_of).await;
            store.close().await.context("closing the store")?;
            let found = found.context("cannot look the alias up")?;
            println!("{}", render_alias(&name, &alias, as_of, found.as_ref(), json)?);
            Ok(if found.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// The version an alias pointed to, with that version's record when it still exists.
async fn lookup(
    store: &dyn cairn_core::store::Store,
    name: &str,
    alias: &str,
    at: Millis,
) -> cairn_core::Result<Option<(i64, Option<ModelVersion>)>> {
    let Some(version) = store.alias_as_of(name, alias, at).await? else { return Ok(None) };
    // The model may have been renamed since: its last history entry carries today's name, unless
    // it records the deletion.
    let history = store.model_history(name, None).await?;
    let current = history.last().filter(|e| e.kind != HistoryKind::ModelDeleted).map(|e| e.name.as_str());
    let record = match current {
        None => None,
        Some(current) => match store.get_model_version(current, version).await {
            Ok(record) => Some(record),
            // Deleted since: the number is the answer, the record is gone.
            Err(cairn_core::Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
    };
    Ok(Some((version, record)))
}

/// The timeline as JSON, or one line per change.
pub fn render_history(entries: &[HistoryEntry], json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({ "history": entries }))?);
    }
    Ok(entries.iter().map(history_line).collect::<Vec<_>>().join("\n"))
}

/// `<time>  <actor>  <what happened>`, with the audit event's number.
fn history_line(e: &HistoryEntry) -> String {
    let version = |v: Option<i64>| v.map_or_else(|| "?".to_owned(), |v| format!("v{v}"));
    let stage = |s: Option<cairn_core::registry::Stage>| s.map_or("?", |s| s.as_str());
    let what = match e.kind {
        HistoryKind::ModelCreated => format!("created model {}", e.name),
        HistoryKind::ModelRenamed => {
            format!("renamed {} to {}", e.previous_name.as_deref().unwrap_or("?"), e.name)
        }
        HistoryKind::ModelDeleted => format!("deleted model {}", e.name),
        HistoryKind::VersionCreated => format!("created {} of {}", version(e.version), e.name),
        HistoryKind::VersionDeleted => format!("deleted {} of {}", version(e.version), e.name),
        HistoryKind::StageTransition => {
            format!("moved {} of {} from {} to {}", version(e.version), e.name, stage(e.from_stage), stage(e.to_stage))
        }
        HistoryKind::AliasSet => {
            let was = e.previous_version.map(|v| format!(" (was v{v})")).unwrap_or_default();
            format!("set @{} of {} to {}{was}", e.alias.as_deref().unwrap_or("?"), e.name, version(e.version))
        }
        HistoryKind::AliasDeleted => format!(
            "deleted @{} of {} (was {})",
            e.alias.as_deref().unwrap_or("?"),
            e.name,
            version(e.previous_version)
        ),
    };
    format!("{}  {}  {}  [event {}]", format_instant(e.time), e.actor, what, e.seq)
}

/// The answer of `cairn models alias`: JSON, or one sentence.
pub fn render_alias(
    name: &str,
    alias: &str,
    at: Millis,
    found: Option<&(i64, Option<ModelVersion>)>,
    json: bool,
) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "name": name,
            "alias": alias,
            "as_of": at,
            "version": found.map(|(v, _)| v),
            "model_version": found.and_then(|(_, record)| record.as_ref()),
        }))?);
    }
    let when = format_instant(at);
    Ok(match found {
        None => format!("@{alias} of {name} pointed to no version at {when}"),
        Some((version, record)) => {
            let detail = record
                .as_ref()
                .map(|r| format!(" (source {}, now {})", r.source, r.current_stage.as_str()))
                .unwrap_or_default();
            format!("@{alias} of {name} pointed to version {version} at {when}{detail}")
        }
    })
}

#[cfg(test)]
mod tests {
    use cairn_core::registry::Stage;

    use super::*;

    fn entry(kind: HistoryKind) -> HistoryEntry {
        HistoryEntry {
            seq: 7,
            time: 1_763_892_000_000,
            actor: "alice".into(),
            kind,
            name: "m".into(),
            version: Some(2),
            alias: Some("champion".into()),
            previous_version: Some(1),
            from_stage: Some(Stage::None),
            to_stage: Some(Stage::Production),
            previous_name: Some("old".into()),
        }
    }

    #[test]
    fn history_lines_say_what_happened() {
        let text = render_history(
            &[entry(HistoryKind::AliasSet), entry(HistoryKind::StageTransition), entry(HistoryKind::ModelRenamed)],
            false,
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2025-11-23T10:00:00.000Z  alice  set @champion of m to v2 (was v1)  [event 7]");
        assert!(lines[1].contains("moved v2 of m from None to Production"), "{}", lines[1]);
        assert!(lines[2].contains("renamed old to m"), "{}", lines[2]);
        let json: serde_json::Value =
            serde_json::from_str(&render_history(&[entry(HistoryKind::AliasDeleted)], true).unwrap()).unwrap();
        assert_eq!(json["history"][0]["kind"], "alias_deleted");
    }

    #[test]
    fn alias_answers_name_the_version_or_its_absence() {
        let at = 1_763_892_000_000;
        assert_eq!(
            render_alias("m", "champion", at, Some(&(3, None)), false).unwrap(),
            "@champion of m pointed to version 3 at 2025-11-23T10:00:00.000Z"
        );
        assert!(render_alias("m", "champion", at, None, false).unwrap().contains("pointed to no version"));
        let json: serde_json::Value =
            serde_json::from_str(&render_alias("m", "champion", at, Some(&(3, None)), true).unwrap()).unwrap();
        assert_eq!(json["version"], 3);
    }
}
