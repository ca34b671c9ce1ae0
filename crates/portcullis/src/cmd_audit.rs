//! `portcullis audit`: verify, search, export, retention, erase (AU-3 to AU-6).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use portcullis_audit::export::{self, Format};
use portcullis_audit::verify::{self, VerifyOptions};
use portcullis_audit::{AuditConfig, AuditLog, AuditPolicy, EventFilter, retention};
use portcullis_core::SystemClock;
use portcullis_store::{OpenMode, Store};

/// Arguments of `portcullis audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The data directory: holds portcullis.db, the audit signing key and the head record.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./portcullis-data"
    )]
    data_dir: PathBuf,
    /// Database URL, when the log is not the SQLite file in the data directory
    /// (postgres://user@host/db). The key and head record stay in the data directory.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Audit policy file (YAML): data classes, retention days, payloads, memory-off connectors.
    #[arg(long, global = true, env = "PORTCULLIS_AUDIT_POLICY")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Prove the log intact, or name the first bad event. Exit 0 intact, 1 tampered, 2 error.
    Verify(VerifyArgs),
    /// Find events by time, principal, connector, tool, decision or finding kind.
    Search(SearchArgs),
    /// Write events as JSON lines, OCSF (API Activity) or CSV for a SIEM.
    Export(ExportArgs),
    /// Print the retention policy as plain text fit to publish; `--apply` enforces it now.
    Retention(RetentionArgs),
    /// Erase a data subject's stored payloads (crypto-shredding) and print the receipt.
    Erase(EraseArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Only events at or after this time (RFC 3339, or a date: 2026-11-22).
    #[arg(long)]
    from: Option<String>,
    /// Only events at or before this time (RFC 3339, or a date, meaning its end).
    #[arg(long)]
    to: Option<String>,
    /// Also fail when events at the end are chained but not yet signed.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, clap::Args)]
struct FilterArgs {
    /// Events at or after this time (RFC 3339, or a date).
    #[arg(long)]
    from: Option<String>,
    /// Events at or before this time (RFC 3339, or a date, meaning its end).
    #[arg(long)]
    to: Option<String>,
    /// Principal (user), exact.
    #[arg(long)]
    principal: Option<String>,
    /// Connector, exact.
    #[arg(long)]
    connector: Option<String>,
    /// Tool, exact.
    #[arg(long)]
    tool: Option<String>,
    /// Decision: allow, redact, confirm or deny.
    #[arg(long)]
    decision: Option<String>,
    /// Finding kind, such as pii.email.
    #[arg(long)]
    finding: Option<String>,
    /// Correlation id.
    #[arg(long)]
    correlation_id: Option<String>,
    /// At most this many events.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// jsonl, ocsf or csv.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RetentionArgs {
    /// Remove expired content now (the server also does this on a schedule).
    #[arg(long)]
    apply: bool,
    /// Who is running it, for the receipt.
    #[arg(long, env = "USER", default_value = "admin")]
    actor: String,
}

#[derive(Debug, clap::Args)]
struct EraseArgs {
    /// The data subject (principal id) to erase.
    #[arg(long)]
    subject: String,
    /// Who asked, for the receipt.
    #[arg(long, env = "USER", default_value = "admin")]
    actor: String,
    /// Also remove the metadata of the subject's events (the chain stays verifiable).
    #[arg(long)]
    redact_events: bool,
}

fn config(args: &AuditArgs) -> anyhow::Result<AuditConfig> {
    let mut cfg = AuditConfig::embedded(&args.data_dir);
    if let Some(db) = &args.database {
        cfg.database = db.clone();
    }
    if let Some(p) = &args.policy {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the audit policy {}", p.display()))?;
        AuditPolicy::from_yaml(&text, p)?.apply(&mut cfg);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// A `--from`/`--to` pair, either end open.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Parses `--from`/`--to`: RFC 3339, or a bare date (its start for `from`, its end for `to`).
fn parse_time(flag: &str, v: &str, end_of_day: bool) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_nano_opt(23, 59, 59, 999_999_999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc());
        }
    }
    bail!(
        "bad time range: {flag} {v:?} is not an RFC 3339 time (for example 2026-11-22T10:00:00Z) or a date (2026-11-22)"
    )
}

fn range(from: &Option<String>, to: &Option<String>) -> anyhow::Result<TimeRange> {
    let f = from
        .as_deref()
        .map(|v| parse_time("--from", v, false))
        .transpose()?;
    let t = to
        .as_deref()
        .map(|v| parse_time("--to", v, true))
        .transpose()?;
    if let (Some(a), Some(b)) = (f, t)
        && a > b
    {
        bail!(
            "bad time range: --from {} is after --to {}; swap them",
            a.to_rfc3339(),
            b.to_rfc3339()
        );
    }
    Ok((f, t))
}

fn filter(a: &FilterArgs) -> anyhow::Result<EventFilter> {
    let (from, to) = range(&a.from, &a.to)?;
    let decision = match a.decision.as_deref() {
        None => None,
        Some(d) => Some(
            portcullis_audit::canonical::parse_decision(d).with_context(|| {
                format!("--decision {d:?} is not a decision; use allow, redact, confirm or deny")
            })?,
        ),
    };
    Ok(EventFilter {
        from,
        to,
        principal: a.principal.clone(),
        connector: a.connector.clone(),
        tool: a.tool.clone(),
        decision,
        correlation_id: a.correlation_id.clone(),
        finding_kind: a.finding.clone(),
        limit: a.limit,
    })
}

/// Runs `portcullis audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(run_async(args))
}

async fn read_store(cfg: &AuditConfig) -> anyhow::Result<Store> {
    Ok(Store::open(&cfg.database_url()?, OpenMode::ReadOnly).await?)
}

async fn run_async(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(&args)?;
    match &args.command {
        AuditCommand::Verify(v) => {
            let (from, to) = range(&v.from, &v.to)?;
            let opts = VerifyOptions {
                from,
                to,
                head_path: cfg.head_path.clone(),
            };
            let r = verify::verify_config(&cfg, &opts).await?;
            if let Some(p) = &r.problem {
                println!(
                    "TAMPERED: first bad event is seq {}{}: {}",
                    p.seq,
                    p.event_id
                        .as_deref()
                        .map(|i| format!(" (id {i})"))
                        .unwrap_or_default(),
                    p.detail
                );
                println!(
                    "checked {} events before it; restore the log from a backup and investigate",
                    r.events_checked
                );
                return Ok(ExitCode::from(1));
            }
            if r.events_checked == 0 && (from.is_some() || to.is_some()) {
                println!("no events in that time range: nothing to verify");
                return Ok(ExitCode::SUCCESS);
            }
            let span = match (r.first_seq, r.last_seq) {
                (Some(a), Some(b)) => format!(" (seq {a} to {b})"),
                _ => String::new(),
            };
            println!(
                "intact: {} events{span}, {} signed checkpoints verified{}{}",
                r.events_checked,
                r.checkpoints_checked,
                if r.redacted > 0 {
                    format!(
                        ", {} removed by retention or erasure (still chained)",
                        r.redacted
                    )
                } else {
                    String::new()
                },
                if r.head_checked {
                    ", head record matches"
                } else {
                    ""
                },
            );
            if r.unsigned_tail > 0 {
                println!(
                    "note: the last {} events are chained but not yet signed (left by a crash; the next start signs them)",
                    r.unsigned_tail
                );
                if v.strict {
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Search(s) => {
            let f = filter(&s.filter)?;
            let store = read_store(&cfg).await?;
            let mut out = std::io::stdout().lock();
            if s.json {
                export::export(&store, &f, Format::Jsonl, &mut out).await?;
            } else {
                use std::io::Write;
                let rows = store.search_events(&f.to_query()?).await?;
                writeln!(
                    out,
                    "{:>8}  {:<30}  {:<16}  {:<24}  {:<8}  findings",
                    "seq", "time", "principal", "connector/tool", "decision"
                )?;
                for r in &rows {
                    let e = portcullis_audit::canonical::from_row(r).map_err(anyhow::Error::msg)?;
                    let kinds: Vec<&str> = e.findings.iter().map(|f| f.kind.as_str()).collect();
                    writeln!(
                        out,
                        "{:>8}  {:<30}  {:<16}  {:<24}  {:<8}  {}",
                        r.seq,
                        e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        e.principal.as_deref().unwrap_or("-"),
                        format!(
                            "{}/{}",
                            e.connector.as_deref().unwrap_or("-"),
                            e.target.as_deref().unwrap_or("-")
                        ),
                        portcullis_audit::canonical::decision_str(e.decision),
                        kinds.join(" ")
                    )?;
                }
                eprintln!("{} events", rows.len());
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export(x) => {
            let format: Format = x.format.parse()?;
            let f = filter(&x.filter)?;
            let store = read_store(&cfg).await?;
            let n = match &x.output {
                Some(p) => {
                    let file = std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    export::export(&store, &f, format, &mut w).await?
                }
                None => export::export(&store, &f, format, &mut std::io::stdout().lock()).await?,
            };
            store.close().await;
            eprintln!("exported {n} events");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Retention(r) => {
            if !r.apply {
                print!("{}", retention::policy_text(&cfg));
                return Ok(ExitCode::SUCCESS);
            }
            let log = open_existing(&cfg).await?;
            let receipt = log.apply_retention(&r.actor).await;
            log.shutdown().await;
            println!("{}", serde_json::to_string_pretty(&receipt?)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Erase(e) => {
            let log = open_existing(&cfg).await?;
            let receipt = log
                .erase_subject(&e.subject, &e.actor, e.redact_events)
                .await;
            log.shutdown().await;
            println!("{}", serde_json::to_string_pretty(&receipt?)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Opens the log for a change, refusing to create one where none exists (a typo in --data-dir
/// must not produce a fresh, empty log).
async fn open_existing(cfg: &AuditConfig) -> anyhow::Result<Arc<AuditLog>> {
    if let portcullis_store::DatabaseUrl::Sqlite(p) = cfg.database_url()?
        && !p.exists()
    {
        bail!("no audit log at {}; check --data-dir", p.display());
    }
    Ok(AuditLog::open(cfg.clone(), Arc::new(SystemClock)).await?)
}

/// Records one administrative CLI command as a chained audit event (AU-1): who (`--actor`, or
/// the OS user), what (the command path), the target (ids and names only, never secrets) and the
/// outcome. The log is opened before the change is made, so a log that cannot be written refuses
/// the change (fail closed); it appends safely beside a running `portcullis serve`, which writes
/// to the same database (each batch re-reads the chain head under the database's write lock).
pub(crate) struct AdminRecorder {
    log: Arc<AuditLog>,
    actor: String,
    os_user: Option<String>,
    command: &'static str,
}

impl AdminRecorder {
    /// Opens the audit log of the data directory (or `database`) for `command`.
    pub(crate) async fn open(
        data_dir: &std::path::Path,
        database: Option<&str>,
        actor: Option<&str>,
        command: &'static str,
    ) -> anyhow::Result<Self> {
        let mut cfg = AuditConfig::embedded(data_dir);
        if let Some(db) = database {
            cfg.database = db.to_string();
        }
        let log = AuditLog::open(cfg, Arc::new(SystemClock))
            .await
            .with_context(|| {
                format!(
                    "cannot open the audit log in {} to record `{}`; nothing was changed",
                    data_dir.display(),
                    command.replace('/', " ")
                )
            })?;
        let os_user = portcullis_audit::admin::os_user();
        let actor = actor
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .or_else(|| os_user.clone())
            .unwrap_or_else(|| "unknown".into());
        Ok(Self {
            log,
            actor,
            os_user,
            command,
        })
    }

    /// Records how the command ended and passes its result on. A change that was made but could
    /// not be recorded is an error too (exit status 2), saying so.
    pub(crate) async fn finish<T>(
        self,
        target: &str,
        details: Vec<String>,
        result: anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let action = portcullis_audit::admin::AdminAction {
            actor: self.actor.clone(),
            os_user: self.os_user.clone(),
            client: portcullis_audit::admin::CLI_CLIENT.into(),
            command: self.command.into(),
            target: target.into(),
            details,
            outcome: result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")),
        };
        let recorded = self.log.record_admin(&action).await;
        self.log.shutdown().await;
        match (result, recorded) {
            (Ok(v), Ok(_)) => Ok(v),
            (Ok(_), Err(e)) => Err(anyhow::Error::new(e).context(format!(
                "`{}` on {target} was done, but its audit event could not be recorded",
                self.command.replace('/', " ")
            ))),
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(r)) => Err(e.context(format!("(its audit event was not recorded: {r})"))),
        }
    }
}
