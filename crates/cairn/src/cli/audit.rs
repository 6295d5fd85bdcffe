//! `cairn audit verify` and `cairn audit log`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use cairn_core::audit::{AuditEvent, VerifyReport};
use cairn_core::model::Actor;

use super::StoreArgs;
use super::progress::{INTERRUPTED, TerminalProgress};

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain from the last verification checkpoint on (all of it, and the live
    /// tables against the log, the first time or with `--full`); exit 1 on any problem. A clean
    /// run records a new checkpoint, an audit event of its own.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Check every event and compare the live tables with the log, whatever the checkpoints.
        #[arg(long)]
        full: bool,
    },
    /// Print audit events, oldest first.
    Log {
        #[command(flatten)]
        store: StoreArgs,
        /// Only events with a sequence number above this.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Most events to print.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an audit subcommand.
pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { store, json, full } => {
            let store = cairn_store::open(&store.store_config()).await.context("cannot open the store")?;
            let progress = TerminalProgress::start(json);
            let report = if full {
                store.verify_audit_with(progress.clone()).await
            } else {
                store.verify_audit_incremental(progress.clone()).await
            };
            progress.finish();
            // A clean verdict is anchored in the chain, so the next run starts after it. A
            // failed one records nothing: the next run checks the same events again.
            if let Ok(Some(report)) = &report
                && report.is_ok()
                && let Some((seq, hash)) = &report.last
            {
                // The verdict stands without it (a read-only store, say); the next run is a
                // longer one, which is why it is a warning and not a failure.
                let actor = Actor("cairn-cli".to_owned());
                if let Err(e) = store.record_audit_checkpoint(&actor, *seq, hash).await {
                    eprintln!("warning: cannot record a verification checkpoint: {e}");
                }
            }
            store.close().await.context("closing the store")?;
            let Some(report) = report.context("verification could not run")? else {
                let (done, total) = progress.counts();
                eprintln!("interrupted after checking {done} of {total} audit events: no verdict");
                return Ok(ExitCode::from(INTERRUPTED));
            };
            println!("{}", render_report(&report, json)?);
            Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::Log { store, after, limit, json } => {
            let store = cairn_store::open(&store.store_config()).await.context("cannot open the store")?;
            let events = store.audit_events(after, limit).await;
            store.close().await.context("closing the store")?;
            for event in events.context("cannot read the audit log")? {
                println!("{}", render_event(&event, json)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The verification report: JSON, or one line per problem naming its event, or a one-line OK.
pub fn render_report(report: &VerifyReport, json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "ok": report.is_ok(),
            "events": report.events,
            "problems": report.problems,
            "checkpoint": report.checkpoint,
        }))?);
    }
    if report.is_ok() {
        return Ok(match report.checkpoint {
            Some(seq) => format!(
                "OK: {} audit events after the checkpoint at event {seq} verified (the chain only; --full also \
                 compares the live tables with the log)",
                report.events
            ),
            None => format!("OK: {} audit events verified, the live tables match the log", report.events),
        });
    }
    let mut lines: Vec<String> = report
        .problems
        .iter()
        .map(|p| match p.seq {
            Some(seq) => format!("event {seq}: {}", p.message),
            None => format!("no event: {}", p.message),
        })
        .collect();
    lines.push(format!("FAILED: {} problem(s) in {} audit events", report.problems.len(), report.events));
    Ok(lines.join("\n"))
}

/// One event: a JSON line, or a tab-separated summary. The actor is who the server
/// authenticated (or, without access control, the name the client gave); a user name the client
/// put in the change itself (a run's `user_id` or `mlflow.user` tag) that differs from it is
/// shown beside it as `claimed=NAME`, and as `claimed` in JSON.
pub fn render_event(event: &AuditEvent, json: bool) -> anyhow::Result<String> {
    let claim = claimed(event).filter(|c| *c != event.actor);
    if json {
        let mut value = serde_json::to_value(event)?;
        if let Some(claim) = &claim {
            value["claimed"] = serde_json::Value::String(claim.clone());
        }
        return Ok(serde_json::to_string(&value)?);
    }
    let mut line = format!(
        "{}\t{}\t{}\t{}\t{} {}\t{}",
        event.seq,
        event.time,
        escape_field(&event.actor),
        escape_field(&event.action),
        escape_field(&event.entity_type),
        escape_field(&event.entity_id),
        escape_field(event.hash.get(..12).unwrap_or(&event.hash))
    );
    if let Some(claim) = claim {
        line.push_str(&format!("\tclaimed={}", escape_field(&claim)));
    }
    Ok(line)
}

/// The user name a client wrote into the change: a run's `user_id`, or an `mlflow.user` tag.
fn claimed(event: &AuditEvent) -> Option<String> {
    let payload: serde_json::Value = serde_json::from_str(&event.payload).ok()?;
    payload["changes"].as_array()?.iter().find_map(|change| {
        let after = &change["after"];
        let claim = match change["entity"].as_str()? {
            "run" => after["user_id"].as_str(),
            "run_tag" if after["key"] == "mlflow.user" => after["value"].as_str(),
            _ => None,
        }?;
        (!claim.is_empty()).then(|| claim.to_owned())
    })
}

/// A field of a text line with every control character and backslash escaped (`\t`, `\n`,
/// `\u{1b}`, `\\`), so that stored text can neither split a line nor drive the terminal, and
/// the original can still be read back.
pub fn escape_field(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use cairn_core::audit::Problem;

    use super::*;

    #[test]
    fn text_fields_cannot_split_a_line_or_drive_the_terminal() {
        assert_eq!(escape_field("alice"), "alice");
        assert_eq!(escape_field("a\tb\nc\u{1b}[2Jd\\e"), "a\\tb\\nc\\u{1b}[2Jd\\\\e");
        let event = AuditEvent {
            seq: 7,
            time: 1,
            actor: "mallory\n8\t0\tforged".into(),
            action: "run.delete".into(),
            entity_type: "run".into(),
            entity_id: "r\r1".into(),
            payload: "{}".into(),
            digest: String::new(),
            prev_hash: String::new(),
            hash: "abcdef0123456789".into(),
        };
        let line = render_event(&event, false).unwrap();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(line.matches('\t').count(), 5, "exactly the six columns: {line}");
        assert!(line.contains("mallory\\n8\\t0\\tforged") && line.contains("r\\r1"), "{line}");
    }

    #[test]
    fn a_claimed_user_is_shown_beside_the_authenticated_actor() {
        let payload = r#"{"changes":[{"after":{"run_id":"r","user_id":"mallory"},"entity":"run","id":"r"}]}"#;
        let mut event = AuditEvent {
            seq: 1,
            time: 1,
            actor: "alice".into(),
            action: "create_run".into(),
            entity_type: "run".into(),
            entity_id: "r".into(),
            payload: payload.into(),
            digest: String::new(),
            prev_hash: String::new(),
            hash: "abcdef0123456789".into(),
        };
        assert!(render_event(&event, false).unwrap().ends_with("\tclaimed=mallory"));
        let json: serde_json::Value = serde_json::from_str(&render_event(&event, true).unwrap()).unwrap();
        assert_eq!((json["actor"].as_str(), json["claimed"].as_str()), (Some("alice"), Some("mallory")));
        event.actor = "mallory".into();
        assert!(!render_event(&event, false).unwrap().contains("claimed="), "no claim when they agree");
    }

    #[test]
    fn reports_name_the_event() {
        let ok = VerifyReport { events: 3, problems: vec![], ..VerifyReport::default() };
        assert!(render_report(&ok, false).unwrap().starts_with("OK: 3 audit events"));
        let bad = VerifyReport {
            events: 3,
            problems: vec![Problem { seq: Some(2), message: "event 2 hash does not match its content".into() }],
            ..VerifyReport::default()
        };
        let text = render_report(&bad, false).unwrap();
        assert!(text.starts_with("event 2: event 2 hash"), "{text}");
        assert!(text.ends_with("FAILED: 1 problem(s) in 3 audit events"));
        let json: serde_json::Value = serde_json::from_str(&render_report(&bad, true).unwrap()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["problems"][0]["seq"], 2);
    }
}
