//! `portcullis alerts` and `portcullis incidents` (MON-2, MON-4): alerts raised by anomaly
//! detection, read and acknowledged straight in the gateway's database; users' leak reports
//! recorded as incidents linked to the matching audit events (`alerts report-leak` takes the
//! text itself, scans it and keeps only its digest and detector kinds).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::DateTime;
use portcullis_monitor::incident::{
    LeakReport, MAX_TEXT_BYTES, TextLeakReport, new_id, report_leak, report_leaked_text,
};
use portcullis_store::alerts::{AlertRow, IncidentRow, LeakReportRow};

use crate::cmd_approvals::DatabaseArgs;

/// Arguments of `portcullis alerts`.
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AlertsCommand {
    /// List alerts, newest first (open ones unless `--all`).
    List {
        /// Acknowledged ones too.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one alert with its evidence.
    Show {
        /// The alert id, from `portcullis alerts list`.
        id: String,
    },
    /// Acknowledge an alert.
    Ack {
        /// The alert id.
        id: String,
        /// Who acknowledges it (default: $USER).
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
    /// Report text you believe leaked through a tool's answer (MON-4): it becomes an incident
    /// linked to the principal's calls whose answers could have held it. The text is scanned
    /// and hashed, never stored.
    ReportLeak {
        /// Whose calls the text came from.
        #[arg(long)]
        principal: String,
        /// The connector, when known.
        #[arg(long)]
        connector: Option<String>,
        /// The tool, when known.
        #[arg(long)]
        tool: Option<String>,
        /// Start of the time range to search (RFC 3339; default: seven days before `--to`).
        #[arg(long)]
        from: Option<String>,
        /// End of it (RFC 3339; default: now).
        #[arg(long)]
        to: Option<String>,
        /// A file holding the text; `-` or absent: standard input.
        #[arg(long)]
        text_file: Option<PathBuf>,
        /// Who reports it (default: $USER).
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
}

/// Arguments of `portcullis incidents`.
#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(subcommand)]
    command: IncidentsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IncidentsCommand {
    /// Report output you believe leaked; it becomes an incident linked to the matching events.
    Report {
        /// Whose calls it concerns.
        #[arg(long)]
        principal: Option<String>,
        /// The connector.
        #[arg(long)]
        connector: Option<String>,
        /// A correlation id of the call (repeatable; shown to clients on every answer).
        #[arg(long = "correlation-id")]
        correlation_ids: Vec<String>,
        /// Start of the time range to search (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// End of it (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// What you saw, in your words.
        #[arg(long)]
        description: String,
        /// Who reports it (default: $USER).
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
    /// List incidents, newest first (JSON lines).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one incident with its linked events and, for a leak report, what was found in the
    /// text.
    Show {
        /// The incident id, from `portcullis incidents list`.
        id: String,
    },
}

fn when(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| us.to_string())
}

fn alert_json(a: &AlertRow) -> serde_json::Value {
    serde_json::json!({
        "id": a.id, "time": when(a.created_us), "severity": a.severity, "kind": a.kind,
        "principal": a.principal, "client": a.client, "source": a.source, "connector": a.connector,
        "correlation_ids": serde_json::from_str::<serde_json::Value>(&a.correlation_ids).unwrap_or_default(),
        "explanation": a.explanation, "status": a.status, "acked_by": a.acked_by,
        "acked_at": a.acked_us.map(when),
    })
}

fn incident_json(i: &IncidentRow, leak: Option<&LeakReportRow>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": i.id, "time": when(i.created_us), "reported_by": i.reported_by, "principal": i.principal,
        "connector": i.connector, "from": i.from_us.map(when), "to": i.to_us.map(when),
        "description": i.description,
        "correlation_ids": serde_json::from_str::<serde_json::Value>(&i.correlation_ids).unwrap_or_default(),
        "status": i.status,
    });
    if let Some(l) = leak {
        v["leak_report"] = serde_json::json!({
            "tool": l.tool, "text_sha256": l.text_sha256, "text_chars": l.text_chars,
            "finding_kinds": serde_json::from_str::<serde_json::Value>(&l.finding_kinds).unwrap_or_default(),
            "matched_by": l.matched_by,
        });
    }
    v
}

/// The reported text, from the file or standard input, bounded before it is read whole.
fn read_text(path: &Option<PathBuf>) -> anyhow::Result<String> {
    let limit = MAX_TEXT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let from = match path.as_deref() {
        Some(p) if p != std::path::Path::new("-") => {
            std::fs::File::open(p)
                .with_context(|| format!("cannot open --text-file {}", p.display()))?
                .take(limit)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read --text-file {}", p.display()))?;
            p.display().to_string()
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading the leaked text from standard input; end it with Ctrl-D");
            }
            stdin
                .lock()
                .take(limit)
                .read_to_end(&mut bytes)
                .context("cannot read the text from standard input")?;
            "standard input".to_string()
        }
    };
    if bytes.len() > MAX_TEXT_BYTES {
        bail!(
            "the text in {from} is over {MAX_TEXT_BYTES} bytes; keep the part that leaked and report that"
        );
    }
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the text in {from} is not UTF-8; save it as UTF-8 text"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `portcullis alerts`.
pub fn run_alerts(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        match args.command {
            AlertsCommand::List { all, limit, json } => {
                let rows = store.alerts((!all).then_some("open"), limit.clamp(1, 10_000)).await?;
                for a in &rows {
                    if json {
                        println!("{}", alert_json(a));
                    } else {
                        let who = a.principal.as_deref().or(a.source.as_deref()).or(a.client.as_deref()).unwrap_or("-");
                        println!("{}  {}  {:<8} {:<26} {:<20} {}", a.id, when(a.created_us), a.severity, a.kind, who, a.explanation);
                    }
                }
                if rows.is_empty() && !json {
                    println!("no alerts");
                }
                Ok(ExitCode::SUCCESS)
            }
            AlertsCommand::Show { id } => match store.alert(&id).await? {
                Some(a) => {
                    println!("{}", serde_json::to_string_pretty(&alert_json(&a))?);
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("no alert {id:?}; list them with `portcullis alerts list --all`"),
            },
            AlertsCommand::Ack { id, by } => {
                let by = by.filter(|b| !b.trim().is_empty()).ok_or_else(|| anyhow::anyhow!("say who acknowledges with --by"))?;
                // AU-1: the acknowledgement is an admin event in the audit chain.
                let rec = args.db.recorder(Some(&by), "alerts/ack").await?;
                let r: anyhow::Result<ExitCode> = async {
                    if store.ack_alert(&id, &by, chrono::Utc::now().timestamp_micros()).await? {
                        println!("alert {id} acknowledged by {by}");
                        Ok(ExitCode::SUCCESS)
                    } else {
                        bail!("alert {id:?} does not exist or is acknowledged already; see `portcullis alerts show {id}`")
                    }
                }
                .await;
                rec.finish(&id, vec![], r).await
            }
            AlertsCommand::ReportLeak { principal, connector, tool, from, to, text_file, by } => {
                let by = by.filter(|b| !b.trim().is_empty()).ok_or_else(|| anyhow::anyhow!("say who reports it with --by"))?;
                let report = TextLeakReport {
                    reported_by: by,
                    principal,
                    connector,
                    tool,
                    from_us: parse_time(&from, "from")?,
                    to_us: parse_time(&to, "to")?,
                    text: read_text(&text_file)?,
                };
                let detector = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
                    .map_err(|e| anyhow::anyhow!("cannot build the detector: {e}"))?;
                let now = chrono::Utc::now();
                let rec = args.db.recorder(Some(&report.reported_by), "alerts/report-leak").await?;
                let r = report_leaked_text(&store, &detector, &report, new_id(now), now.timestamp_micros()).await.map_err(anyhow::Error::from);
                // The incident id and whose calls; never the reported text.
                let target = r.as_ref().map(|(i, _)| i.id.clone()).unwrap_or_default();
                let details = vec![format!("principal={}", report.principal)];
                let (incident, leak) = rec.finish(&target, details, r).await?;
                drop(report);
                println!("{}", serde_json::to_string_pretty(&incident_json(&incident, Some(&leak)))?);
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn parse_time(v: &Option<String>, flag: &str) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_micros())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--{flag} {s:?} is not an RFC 3339 time like 2026-12-01T10:00:00Z ({e})"
                    )
                })
        })
        .transpose()
}

/// Runs `portcullis incidents`.
pub fn run_incidents(args: IncidentsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let store = args.db.open().await?;
        match args.command {
            IncidentsCommand::Report {
                principal,
                connector,
                correlation_ids,
                from,
                to,
                description,
                by,
            } => {
                // AU-2: the description is stored as written, so it must not carry the data
                // itself; the text goes through `alerts report-leak`, which keeps only a digest.
                let detector = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
                    .map_err(|e| anyhow::anyhow!("cannot build the detector: {e}"))?;
                let found: std::collections::BTreeSet<String> = detector
                    .scan_text(&description)
                    .into_iter()
                    .filter(|f| matches!(f.category, portcullis_detect::Category::Pii | portcullis_detect::Category::Secret))
                    .map(|f| f.kind)
                    .collect();
                if !found.is_empty() {
                    bail!(
                        "the --description holds what looks like personal data or a secret ({}); describe it without the data, and give the text itself with `portcullis alerts report-leak --text-file FILE`, which stores only its digest",
                        found.into_iter().collect::<Vec<_>>().join(", ")
                    );
                }
                let report = LeakReport {
                    reported_by: by.unwrap_or_default(),
                    principal,
                    connector,
                    correlation_ids,
                    from_us: parse_time(&from, "from")?,
                    to_us: parse_time(&to, "to")?,
                    description,
                };
                let now = chrono::Utc::now();
                let rec = args.db.recorder(Some(&report.reported_by), "incidents/report").await?;
                let r = report_leak(&store, &report, new_id(now), now.timestamp_micros()).await.map_err(anyhow::Error::from);
                let target = r.as_ref().map(|i| i.id.clone()).unwrap_or_default();
                let details = report.principal.iter().map(|p| format!("principal={p}")).collect();
                let row = rec.finish(&target, details, r).await?;
                println!("{}", serde_json::to_string_pretty(&incident_json(&row, None))?);
                Ok(ExitCode::SUCCESS)
            }
            IncidentsCommand::List { limit } => {
                for i in store.incidents(limit.clamp(1, 10_000)).await? {
                    let leak = store.leak_report(&i.id).await?;
                    println!("{}", incident_json(&i, leak.as_ref()));
                }
                Ok(ExitCode::SUCCESS)
            }
            IncidentsCommand::Show { id } => match store.incident(&id).await? {
                Some(i) => {
                    let leak = store.leak_report(&i.id).await?;
                    println!("{}", serde_json::to_string_pretty(&incident_json(&i, leak.as_ref()))?);
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("no incident {id:?}; list them with `portcullis incidents list`"),
            },
        }
    })
}
