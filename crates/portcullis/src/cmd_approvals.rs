//! `portcullis approvals`: the queue of calls waiting for a person's confirmation (HC-2, HC-3).
//! A call parked by the gateway waits until an approver approves or denies it here, or until it
//! times out (denied). Decisions go straight to the database the gateway reads, so they work
//! against a running gateway, on SQLite or PostgreSQL.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::DateTime;
use portcullis_store::{DatabaseUrl, OpenMode, Store};

/// Where the gateway's database is: shared by the commands that read or change it directly.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// The data directory holding portcullis.db.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./portcullis-data"
    )]
    pub data_dir: PathBuf,
    /// Database URL, when it is not the SQLite file in the data directory.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
}

impl DatabaseArgs {
    /// Opens the database, which must exist (the gateway created it).
    pub async fn open(&self) -> anyhow::Result<Store> {
        let url: DatabaseUrl = match &self.database {
            Some(u) => u.parse()?,
            None => DatabaseUrl::embedded(&self.data_dir),
        };
        Store::open(&url, OpenMode::MustExist)
            .await
            .with_context(|| format!("cannot open {}", url.redacted()))
    }

    /// Opens the audit log to record an administrative `command` by `actor` (AU-1) before the
    /// change is made.
    pub async fn recorder(
        &self,
        actor: Option<&str>,
        command: &'static str,
    ) -> anyhow::Result<crate::cmd_audit::AdminRecorder> {
        crate::cmd_audit::AdminRecorder::open(
            &self.data_dir,
            self.database.as_deref(),
            actor,
            command,
        )
        .await
    }
}

/// Arguments of `portcullis approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ApprovalsCommand {
    /// List calls waiting for a decision (`--all` for decided and expired ones too).
    List {
        /// Every entry, not only pending ones.
        #[arg(long)]
        all: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve one waiting call: it is forwarded once, with exactly the arguments shown.
    Approve(DecideArgs),
    /// Deny one waiting call.
    Deny(DecideArgs),
}

#[derive(Debug, clap::Args)]
struct DecideArgs {
    /// The approval id (`apr_…`), from `portcullis approvals list`.
    id: String,
    /// Who decides, recorded with the call (default: $USER).
    #[arg(long, env = "USER")]
    by: Option<String>,
    /// Why, recorded with the decision.
    #[arg(long)]
    reason: Option<String>,
}

/// Runs `portcullis approvals`.
pub fn run(args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = args.db.open().await?;
        let now = chrono::Utc::now().timestamp_micros();
        // Entries past their time are denied, whoever looks first.
        store.expire_approvals(now).await?;
        let code = match args.command {
            ApprovalsCommand::List { all, json } => {
                let rows = store
                    .approvals(if all { None } else { Some("pending") }, 1000)
                    .await?;
                if json {
                    for r in &rows {
                        println!(
                            "{}",
                            serde_json::json!({
                                "id": r.id, "status": r.status, "created": time(r.created_us),
                                "expires": time(r.expires_us), "principal": r.principal, "client": r.client,
                                "connector": r.connector, "tool": r.tool, "summary": r.summary,
                                "correlation_id": r.correlation_id, "decided_by": r.decided_by,
                                "reason": r.reason, "used": r.used_us.is_some(),
                            })
                        );
                    }
                } else if rows.is_empty() {
                    println!(
                        "no {}calls waiting for approval",
                        if all { "" } else { "pending " }
                    );
                } else {
                    for r in &rows {
                        println!(
                            "{}  {:<8} {}  {} via {}  expires {}\n    {}",
                            r.id,
                            r.status,
                            time(r.created_us),
                            r.principal,
                            r.client,
                            time(r.expires_us),
                            r.summary
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            ApprovalsCommand::Approve(d) => {
                // AU-1: the decision is an admin event in the audit chain.
                let rec = args.db.recorder(d.by.as_deref(), "approvals/approve").await?;
                let r = decide(&store, &d, "approved", now).await;
                rec.finish(&d.id, vec![], r).await?
            }
            ApprovalsCommand::Deny(d) => {
                let rec = args.db.recorder(d.by.as_deref(), "approvals/deny").await?;
                let r = decide(&store, &d, "denied", now).await;
                rec.finish(&d.id, vec![], r).await?
            }
        };
        store.close().await;
        Ok(code)
    })
}

fn time(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

async fn decide(store: &Store, d: &DecideArgs, status: &str, now: i64) -> anyhow::Result<ExitCode> {
    let by =
        d.by.clone()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "unknown".into());
    let Some(row) = store.approval(&d.id).await? else {
        bail!(
            "no approval {:?}: `portcullis approvals list` shows the waiting ones",
            d.id
        );
    };
    if !store
        .decide_approval(&d.id, status, &by, d.reason.as_deref(), now)
        .await?
    {
        let current = store
            .approval(&d.id)
            .await?
            .map(|r| r.status)
            .unwrap_or(row.status);
        bail!(
            "approval {} is {current}, not pending: it cannot be {status} now",
            d.id
        );
    }
    println!("{} {status} by {by}: {}", d.id, row.summary);
    Ok(ExitCode::SUCCESS)
}
