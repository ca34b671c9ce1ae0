//! `portcullis permissions unused --days N` (AZ-7): least-privilege recommendations from the
//! recorded calls. For each consent (user, client, endpoint, granted scopes) it reports the
//! granted scopes no call needed in the window, a narrower level where one would have done, and
//! the tools within the grant that the user never called through that client (among the tools
//! anyone called in the window: the audit log is the record of what exists and is used).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;

use portcullis_audit::EventFilter;
use portcullis_core::{Decision, EventKind, SystemClock, scope_covers};

/// Arguments of `portcullis permissions`.
#[derive(Debug, clap::Args)]
pub struct PermissionsArgs {
    #[command(flatten)]
    db: crate::cmd_approvals::DatabaseArgs,
    #[command(subcommand)]
    command: PermissionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PermissionsCommand {
    /// Granted scopes and tools that went unused in the last N days, per user and client.
    Unused {
        /// The window, in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What one user did through one client in the window.
#[derive(Default)]
struct Usage {
    /// Scopes their calls needed.
    scopes: BTreeSet<String>,
    /// `connector/tool` called, with how many times.
    tools: BTreeMap<String, u64>,
}

/// Runs `portcullis permissions`.
pub fn run(args: PermissionsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let PermissionsCommand::Unused { days, json } = args.command;
        let store = args.db.open().await?;
        let now = chrono::Utc::now();
        let from = now - chrono::Duration::days(i64::from(days));
        let filter = EventFilter {
            from: Some(from),
            ..Default::default()
        };
        let rows = store.search_events(&filter.to_query()?).await?;
        // Who used what, and which tools exist (were called by anyone) with the scope they need.
        let mut usage: BTreeMap<(String, String), Usage> = BTreeMap::new();
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        for r in &rows {
            let e = portcullis_audit::canonical::from_row(r).map_err(anyhow::Error::msg)?;
            if e.kind != EventKind::McpRequest || e.decision == Decision::Deny {
                continue;
            }
            let (Some(p), Some(c)) = (e.principal.clone(), e.client.clone()) else {
                continue;
            };
            let needed = e.reasons.iter().find_map(|r| r.strip_prefix("scope:"));
            let u = usage.entry((p, c)).or_default();
            if let Some(s) = needed {
                u.scopes.insert(s.to_string());
            }
            if e.method.as_deref() == Some("tools/call")
                && let (Some(conn), Some(tool)) = (&e.connector, &e.target)
            {
                let key = format!("{conn}/{tool}");
                *u.tools.entry(key.clone()).or_default() += 1;
                if let Some(s) = needed {
                    known.insert(key, s.to_string());
                }
            }
        }
        let admin =
            portcullis_auth::AuthAdmin::open(store.clone(), &args.db.data_dir, Arc::new(SystemClock))
                .await?;
        let consents = admin.consents(None).await?;
        if consents.is_empty() && !json {
            println!("no consents: nobody has granted a client any scope");
        }
        for c in consents {
            let who = c.username.clone().unwrap_or_else(|| c.user_id.clone());
            let u = usage.get(&(c.user_id.clone(), c.client_id.clone()));
            let used: Vec<&String> = u.map(|u| u.scopes.iter().collect()).unwrap_or_default();
            let unused: Vec<&String> = c
                .scopes
                .iter()
                .filter(|g| !used.iter().any(|n| scope_covers(g, n)))
                .collect();
            // A wider level granted where a narrower one did every call.
            let narrower: Vec<(String, String)> = c
                .scopes
                .iter()
                .filter(|g| !unused.contains(g))
                .filter_map(|g| {
                    let covered: Vec<&&String> =
                        used.iter().filter(|n| scope_covers(g, n)).collect();
                    if covered.iter().any(|n| n.as_str() == g.as_str()) {
                        return None;
                    }
                    covered
                        .iter()
                        .max_by_key(|n| level(n))
                        .map(|n| (g.clone(), (**n).clone()))
                })
                .collect();
            let connector = c.resource.rsplit('/').next().unwrap_or("").to_string();
            let unused_tools: Vec<&String> = known
                .iter()
                .filter(|(tool, scope)| {
                    (tool.starts_with(&format!("{connector}/")) || c.resource.ends_with("/mcp"))
                        && c.scopes.iter().any(|g| scope_covers(g, scope))
                        && !u.is_some_and(|u| u.tools.contains_key(*tool))
                })
                .map(|(t, _)| t)
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "user": who, "user_id": c.user_id, "client": c.client_id,
                        "resource": c.resource, "granted": c.scopes, "used": used,
                        "unused_scopes": unused,
                        "narrower": narrower.iter().map(|(g, n)| serde_json::json!({"granted": g, "enough": n})).collect::<Vec<_>>(),
                        "unused_tools": unused_tools, "days": days,
                    })
                );
                continue;
            }
            println!(
                "{who} via {} on {}: granted {}",
                c.client_id,
                c.resource,
                c.scopes.join(" ")
            );
            if unused.is_empty() && narrower.is_empty() && unused_tools.is_empty() {
                println!("    every granted scope was used in the last {days} days");
            }
            for s in &unused {
                println!("    unused for {days} days: {s} (recommend revoking it)");
            }
            for (g, n) in &narrower {
                println!("    {g} granted, but every call needed at most {n} (recommend {n})");
            }
            if !unused_tools.is_empty() {
                let list: Vec<&str> = unused_tools.iter().map(|s| s.as_str()).collect();
                println!("    tools within the grant never called: {}", list.join(", "));
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The rank of a scope's level, for "the narrowest that would do".
fn level(scope: &str) -> u8 {
    match scope.rsplit_once(':').map(|(_, l)| l) {
        Some("read") => 0,
        Some("write") => 1,
        Some("admin") => 2,
        _ => 1,
    }
}
