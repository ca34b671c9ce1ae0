//! `portcullis tools`: the pinned tool definitions (PI-3, MON-3). The gateway pins every tool's
//! definition by hash when it first lists it and blocks a tool whose upstream definition changed;
//! here a person lists the pins, reads what changed (with the poisoning scan of the new
//! definition) and approves it. Like `approvals`, this works on the database the gateway uses,
//! SQLite or PostgreSQL, also while it runs.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::DateTime;
use portcullis_detect::{Detector, DetectorConfig};
use portcullis_inspect::pinning::{self, escape_invisible};
use portcullis_store::tools::{PinState, ToolPinEvent, ToolPinRow, ToolPins};
use serde_json::Value;

use crate::cmd_approvals::DatabaseArgs;

/// Arguments of `portcullis tools`.
#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(subcommand)]
    command: ToolsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ToolsCommand {
    /// List pinned tools: state (approved, drifted, unapproved), who approved them and when.
    List {
        /// Only this connector's tools.
        connector: Option<String>,
        /// Also print each tool's history: first seen, drifts, approvals.
        #[arg(long)]
        history: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show what changed between a tool's approved definition and the one its upstream serves
    /// now, with the poisoning scan of the new one.
    Diff {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
    },
    /// Approve a tool's pending definition, so that calls to it are allowed again.
    Approve {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
        /// The pending hash that `portcullis tools diff` showed: the approval is refused if the
        /// definition changed since. Without it, whatever is pending now is approved.
        #[arg(long)]
        hash: Option<String>,
        /// Who approves, recorded with the pin (default: $USER).
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
}

/// Runs `portcullis tools`.
pub fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = args.db.open().await?;
        let pins = store.tool_pins();
        let result = match args.command {
            ToolsCommand::List {
                connector,
                history,
                json,
            } => list(&pins, connector.as_deref(), history, json).await,
            ToolsCommand::Diff { connector, tool } => diff(&pins, &connector, &tool).await,
            ToolsCommand::Approve {
                connector,
                tool,
                hash,
                by,
            } => {
                // AU-1: the approval is an admin event in the audit chain.
                let rec = args.db.recorder(by.as_deref(), "tools/approve").await?;
                let r = approve(&pins, &connector, &tool, hash.as_deref(), by.as_deref()).await;
                let details = hash.iter().map(|h| format!("hash={h}")).collect();
                rec.finish(&format!("{connector}/{tool}"), details, r).await
            }
        };
        store.close().await;
        result
    })
}

fn time(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `sha256:` and the first 12 hex digits: enough to tell definitions apart in a table.
fn short(hash: &str) -> String {
    match hash.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => hash.chars().take(19).collect(),
    }
}

fn state_word(row: &ToolPinRow) -> &'static str {
    match row.state() {
        PinState::Drifted { .. } => "drifted",
        PinState::Unapproved { .. } => "unapproved",
        PinState::FirstSeen | PinState::Approved => "approved",
    }
}

async fn list(
    pins: &ToolPins<'_>,
    connector: Option<&str>,
    history: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rows = pins.list(connector).await?;
    if rows.is_empty() {
        match connector {
            Some(c) => return Err(unknown_connector(pins, c).await?),
            None if json => {}
            None => println!(
                "no pinned tools yet: the gateway pins each tool when it first lists it (run `portcullis serve` and list the tools)"
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        for r in &rows {
            let events = if history {
                Some(
                    pins.events(Some(&r.connector), Some(&r.tool), 1000)
                        .await?
                        .iter()
                        .map(event_json)
                        .collect::<Vec<_>>(),
                )
            } else {
                None
            };
            let mut line = serde_json::json!({
                "connector": r.connector, "tool": r.tool, "state": state_word(r),
                "first_seen": time(r.first_seen_us),
                "approved_hash": r.approved_hash, "approved_by": r.approved_by,
                "approved_at": r.approved_us.map(time),
                "pending_hash": r.pending_hash,
                "pending_since": r.pending_first_seen_us.map(time),
            });
            if let Some(ev) = events {
                line["history"] = Value::Array(ev);
            }
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let header = [
        "CONNECTOR",
        "TOOL",
        "STATE",
        "APPROVED BY",
        "APPROVED AT",
        "HASH",
        "PENDING",
    ];
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                escape_invisible(&r.connector),
                escape_invisible(&r.tool),
                state_word(r).to_owned(),
                r.approved_by
                    .as_deref()
                    .map(escape_invisible)
                    .unwrap_or_else(|| "-".into()),
                r.approved_us.map(time).unwrap_or_else(|| "-".into()),
                r.approved_hash
                    .as_deref()
                    .map(short)
                    .unwrap_or_else(|| "-".into()),
                match (&r.pending_hash, r.pending_first_seen_us) {
                    (Some(h), Some(t)) => format!("{} since {}", short(h), time(t)),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print_row = |cells: &[String]| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", line.trim_end());
    };
    print_row(&header.map(String::from));
    for row in &table {
        print_row(row);
    }
    let blocked = rows.iter().filter(|r| r.pending_hash.is_some()).count();
    if blocked > 0 {
        println!(
            "\n{blocked} tool(s) blocked until approved: `portcullis tools diff CONNECTOR TOOL` shows what changed"
        );
    }
    if history {
        for r in &rows {
            println!(
                "\n{} / {}:",
                escape_invisible(&r.connector),
                escape_invisible(&r.tool)
            );
            for e in pins.events(Some(&r.connector), Some(&r.tool), 1000).await? {
                println!("  {}", event_line(&e));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn event_line(e: &ToolPinEvent) -> String {
    let what = match e.kind.as_str() {
        "first_seen" => "first seen, approved automatically".to_owned(),
        "unapproved" => "first seen, waiting for review".to_owned(),
        "drifted" => format!(
            "drifted from {}",
            e.previous_hash.as_deref().map(short).unwrap_or_default()
        ),
        "reverted" => "upstream went back to the approved definition".to_owned(),
        "approved" => format!(
            "approved by {}",
            escape_invisible(e.actor.as_deref().unwrap_or("?"))
        ),
        other => escape_invisible(other),
    };
    format!("{}  {}  {what}", time(e.at_us), short(&e.hash))
}

fn event_json(e: &ToolPinEvent) -> Value {
    serde_json::json!({
        "at": time(e.at_us), "kind": e.kind, "hash": e.hash,
        "previous_hash": e.previous_hash, "actor": e.actor,
    })
}

/// The pin of `connector`/`tool`, or an error that lists what exists instead.
async fn find(pins: &ToolPins<'_>, connector: &str, tool: &str) -> anyhow::Result<ToolPinRow> {
    if let Some(row) = pins.get(connector, tool).await? {
        return Ok(row);
    }
    let of_connector = pins.list(Some(connector)).await?;
    if of_connector.is_empty() {
        return Err(unknown_connector(pins, connector).await?);
    }
    let names: Vec<String> = of_connector
        .iter()
        .map(|r| escape_invisible(&r.tool))
        .collect();
    bail!(
        "connector {:?} has no pinned tool {:?}; its pinned tools: {}",
        escape_invisible(connector),
        escape_invisible(tool),
        names.join(", ")
    )
}

/// The error for a connector with no pins, naming the connectors that have some.
async fn unknown_connector(pins: &ToolPins<'_>, connector: &str) -> anyhow::Result<anyhow::Error> {
    let mut connectors: Vec<String> = pins
        .list(None)
        .await?
        .into_iter()
        .map(|r| escape_invisible(&r.connector))
        .collect();
    connectors.dedup();
    if connectors.is_empty() {
        return Ok(anyhow::anyhow!(
            "no connector {:?} has pinned tools, and no tools are pinned at all: the gateway pins each tool when it first lists it; check --data-dir or --database points at the gateway's database",
            escape_invisible(connector)
        ));
    }
    Ok(anyhow::anyhow!(
        "no connector {:?} has pinned tools; connectors with pinned tools: {}",
        escape_invisible(connector),
        connectors.join(", ")
    ))
}

fn parse_definition(text: &str, which: &str, connector: &str, tool: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| {
        format!(
            "the {which} definition of {:?} / {:?} in the database is not JSON: the database is damaged or was edited by hand; restore it from a backup",
            escape_invisible(connector),
            escape_invisible(tool)
        )
    })
}

fn detector() -> anyhow::Result<Detector> {
    Detector::new(&DetectorConfig::default())
        .context("cannot build the detector that scans tool definitions for poisoning")
}

async fn diff(pins: &ToolPins<'_>, connector: &str, tool: &str) -> anyhow::Result<ExitCode> {
    let row = find(pins, connector, tool).await?;
    let name = format!(
        "tool {:?} of connector {:?}",
        escape_invisible(&row.tool),
        escape_invisible(&row.connector)
    );
    let (Some(pending_hash), Some(pending_text)) = (&row.pending_hash, &row.pending_definition)
    else {
        println!(
            "no pending change: {name} serves its approved definition {}",
            row.approved_hash.as_deref().unwrap_or("-")
        );
        return Ok(ExitCode::SUCCESS);
    };
    let pending = parse_definition(pending_text, "pending", connector, tool)?;
    let approved = match &row.approved_definition {
        Some(t) => parse_definition(t, "approved", connector, tool)?,
        None => Value::Null,
    };
    match (&row.approved_hash, &row.approved_by, row.approved_us) {
        (Some(h), Some(by), Some(at)) => println!(
            "{name}: approved {h} by {} at {}",
            escape_invisible(by),
            time(at)
        ),
        _ => println!("{name}: nothing approved yet"),
    }
    println!(
        "pending {pending_hash} since {}",
        row.pending_first_seen_us.map(time).unwrap_or_default()
    );
    println!();
    print!("{}", pinning::diff(&approved, &pending));

    let mut findings = pinning::scan_definition(&detector()?, &pending);
    // Strongest first: what the reviewer must read before anything else.
    findings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    println!();
    if findings.is_empty() {
        println!("poisoning scan of the pending definition: nothing found");
    } else {
        let review = pinning::needs_review(&findings, pinning::REVIEW_THRESHOLD);
        println!(
            "poisoning scan of the pending definition: {} finding(s){}",
            findings.len(),
            if review {
                " (some strong: read the definition carefully before approving)"
            } else {
                ""
            }
        );
        for f in &findings {
            println!(
                "  {:.2}  {}  at {}",
                f.confidence,
                f.kind,
                escape_invisible(&f.pointer)
            );
        }
    }
    println!();
    println!(
        "to approve it: portcullis tools approve {} {} --hash {pending_hash}",
        shell_word(&row.connector),
        shell_word(&row.tool)
    );
    Ok(ExitCode::SUCCESS)
}

/// `s` as one shell word: as is when it is plainly safe, single-quoted otherwise.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", escape_invisible(s).replace('\'', r"'\''"))
    }
}

async fn approve(
    pins: &ToolPins<'_>,
    connector: &str,
    tool: &str,
    hash: Option<&str>,
    by: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let Some(by) = by.map(str::trim).filter(|b| !b.is_empty()) else {
        bail!("cannot tell who approves: $USER is not set; pass --by NAME");
    };
    if let Some(h) = hash
        && !pinning::is_definition_hash(h)
    {
        bail!(
            "--hash {:?} is not a definition hash: give the full sha256:<64 hex digits> that `portcullis tools diff {connector} {tool}` prints",
            escape_invisible(h)
        );
    }
    let row = find(pins, connector, tool).await?;
    let Some(pending) = row.pending_hash.clone() else {
        bail!(
            "tool {:?} of connector {:?} has no pending change: it serves its approved definition {}, so there is nothing to approve",
            escape_invisible(tool),
            escape_invisible(connector),
            row.approved_hash.as_deref().unwrap_or("-")
        );
    };
    let expected = hash.unwrap_or(&pending);
    let now = chrono::Utc::now().timestamp_micros();
    let approved = pins.approve(connector, tool, expected, by, now).await?;
    println!(
        "approved {} for tool {:?} of connector {:?}, by {}: calls to it are allowed again",
        approved.approved_hash.as_deref().unwrap_or(expected),
        escape_invisible(tool),
        escape_invisible(connector),
        escape_invisible(by)
    );
    // A warning, not a refusal: the reviewer decides, but must not miss what the scan saw.
    if let Some(text) = &approved.approved_definition {
        let def = parse_definition(text, "approved", connector, tool)?;
        let findings = pinning::scan_definition(&detector()?, &def);
        if pinning::needs_review(&findings, pinning::REVIEW_THRESHOLD) {
            eprintln!(
                "warning: the poisoning scan found {} cue(s) in the definition you just approved; `portcullis tools diff` lists such cues before approval",
                findings.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
