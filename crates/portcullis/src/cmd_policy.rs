//! `portcullis policy schema|check|explain|test` (AZ-6): the Cedar schema, validation of policy
//! files, the explanation of one decision, and policy test files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use portcullis_policy::testcases::{CaseContext, TestFile};
use portcullis_policy::{
    Action, AuthzDecision, AuthzRequest, Classification, ConnectorFacts, Environment, PolicyEngine,
    PolicySource, PreparedResource, PrincipalFacts, ResourceFacts, ResourceItem, Sharing,
    SharingMode, ToolFacts,
};

/// Arguments of `portcullis policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

/// Which policies to use: the embedded baseline unless files are named.
#[derive(Debug, Clone, clap::Args)]
struct PolicySet {
    /// Cedar policy files to use instead of the embedded baseline.
    #[arg(long = "policies", num_args = 1.., value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Use the embedded baseline too, beside the files of --policies.
    #[arg(long)]
    with_baseline: bool,
}

impl PolicySet {
    fn sources(&self) -> anyhow::Result<Vec<PolicySource>> {
        sources(&self.policies, self.with_baseline)
    }
}

fn sources(files: &[PathBuf], with_baseline: bool) -> anyhow::Result<Vec<PolicySource>> {
    let mut out = Vec::new();
    if files.is_empty() || with_baseline {
        out.push(PolicySource::baseline());
    }
    for f in files {
        out.push(PolicySource::read(f)?);
    }
    Ok(out)
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Print the Cedar schema that policies are validated against.
    Schema,
    /// Validate policy files (with no file: the embedded baseline); errors name file, line, column.
    Check {
        /// Cedar policy files, checked together as one set.
        files: Vec<PathBuf>,
        /// Check them together with the embedded baseline.
        #[arg(long)]
        with_baseline: bool,
    },
    /// Decide one request and show the policies that made the decision.
    Explain(Box<ExplainArgs>),
    /// Run a YAML file of policy test cases; exit 1 on any mismatch, 2 on a bad file.
    Test {
        /// The test file.
        file: PathBuf,
        #[command(flatten)]
        set: PolicySet,
    },
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// The user: `User::"alice"`, `Portcullis::User::"alice"` or `alice`.
    #[arg(long)]
    principal: String,
    /// The user's groups.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The user's roles (see `portcullis_policy::roles`).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// The token's scopes (expanded to the levels they imply).
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// The user is a guest, not a member of the organization.
    #[arg(long)]
    guest: bool,
    /// The OAuth client id.
    #[arg(long, default_value = "cli")]
    client: String,
    /// call_tool, read_resource, get_prompt or list.
    #[arg(long)]
    action: String,
    /// `connector/tool` (or `/resource-uri`, `/prompt` by action), or `connector` for list.
    #[arg(long)]
    resource: String,
    /// The tool's annotations: read_only, destructive, idempotent, open_world, bulk.
    #[arg(long, value_delimiter = ',')]
    annotations: Vec<String>,
    /// The connector's owner (a subject).
    #[arg(long, default_value = "")]
    owner: String,
    /// The connector's environment: dev, test or prod.
    #[arg(long, default_value = "prod")]
    environment: String,
    /// The connector's sharing: owner, users, organization or link.
    #[arg(long, default_value = "organization")]
    sharing: String,
    /// Users admitted by `--sharing users`.
    #[arg(long, value_delimiter = ',')]
    share_users: Vec<String>,
    /// Groups admitted by `--sharing users`.
    #[arg(long, value_delimiter = ',')]
    share_groups: Vec<String>,
    /// The connector's (and item's) classification: public, internal, confidential, restricted.
    #[arg(long, default_value = "internal")]
    classification: String,
    /// Context as JSON: {"scopes": [...], "source_ip": "...", "at": "RFC 3339", "risk": 0-100,
    /// "confirmed": bool, "token_environment": "dev|test|prod"}.
    #[arg(long)]
    context: Option<String>,
    /// A shadow policy set to evaluate beside (reported, not enforced).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    shadow: Vec<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    set: PolicySet,
}

/// Runs `portcullis policy`.
pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Schema => {
            print!("{}", portcullis_policy::schema::SCHEMA_TEXT);
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check {
            files,
            with_baseline,
        } => {
            let srcs = sources(&files, with_baseline)?;
            match PolicyEngine::load(&srcs) {
                Ok(e) => {
                    let names: Vec<&str> = srcs.iter().map(|s| s.name.as_str()).collect();
                    println!(
                        "{}: valid ({} policies)",
                        names.join(", "),
                        e.policies().count()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        PolicyCommand::Explain(a) => explain(*a),
        PolicyCommand::Test { file, set } => test(&file, &set),
    }
}

/// `User::"alice"`, `Portcullis::User::"alice"` or `alice` to `alice`.
fn subject(p: &str) -> anyhow::Result<String> {
    let p = p.trim();
    let rest = p.strip_prefix("Portcullis::").unwrap_or(p);
    if let Some(q) = rest.strip_prefix("User::") {
        let id = q
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .with_context(|| format!("--principal `{p}`: write User::\"<subject>\""))?;
        return Ok(id.to_string());
    }
    if rest.contains("::") {
        bail!(
            "--principal `{p}`: the principal is a User: write User::\"<subject>\" or the subject"
        );
    }
    Ok(rest.to_string())
}

fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let action: Action = a.action.parse().context("--action")?;
    let mut ctx: CaseContext = match &a.context {
        Some(j) => serde_json::from_str(j)
            .with_context(|| format!("--context: not a valid context: {j}"))?,
        None => CaseContext::default(),
    };
    ctx.scopes.extend(a.scopes.iter().cloned());
    // Explaining a decision now: the real clock, unless the context names the instant.
    ctx.at.get_or_insert_with(chrono::Utc::now);
    let principal = PrincipalFacts {
        subject: subject(&a.principal)?,
        groups: a.groups.clone(),
        roles: a.roles.clone(),
        client_id: a.client.clone(),
        member: !a.guest,
    };
    let classification: Classification = a.classification.parse().context("--classification")?;
    let connector_name;
    let item_name;
    match a.resource.split_once('/') {
        Some((c, i)) => {
            connector_name = c.to_string();
            item_name = Some(i.to_string());
        }
        None => {
            connector_name = a.resource.clone();
            item_name = None;
        }
    }
    let connector = ConnectorFacts {
        name: connector_name.clone(),
        owner: a.owner.clone(),
        environment: a
            .environment
            .parse::<Environment>()
            .context("--environment")?,
        sharing: Sharing {
            mode: a.sharing.parse::<SharingMode>().context("--sharing")?,
            users: a.share_users.clone(),
            groups: a.share_groups.clone(),
        },
        classification,
    };
    let item = match (action, item_name) {
        (Action::List, None) => ResourceItem::Connector,
        (Action::List, Some(_)) => {
            bail!("--resource: list applies to a connector; write `{connector_name}`")
        }
        (_, None) => bail!("--resource: {action} needs `{connector_name}/<name>`"),
        (Action::CallTool, Some(name)) => {
            let mut t = ToolFacts::named(name);
            for ann in &a.annotations {
                match ann.as_str() {
                    "read_only" => t.read_only = true,
                    "destructive" => t.destructive = true,
                    "idempotent" => t.idempotent = true,
                    "open_world" => t.open_world = true,
                    "bulk" => t.bulk = true,
                    other => bail!(
                        "--annotations: `{other}` is not an annotation; use read_only, destructive, idempotent, open_world, bulk"
                    ),
                }
            }
            ResourceItem::Tool(t)
        }
        (Action::ReadResource, Some(uri)) => ResourceItem::Resource {
            uri,
            classification: None,
        },
        (Action::GetPrompt, Some(name)) => ResourceItem::Prompt { name },
    };
    if action != Action::CallTool && !a.annotations.is_empty() {
        bail!("--annotations: only tools have annotations (--action call_tool)");
    }
    let resource =
        PreparedResource::new(ResourceFacts { connector, item }).context("--resource")?;
    let mut engine = PolicyEngine::load(&a.set.sources()?)?.with_request_validation(true);
    if !a.shadow.is_empty() {
        engine = engine.with_shadow(&sources(&a.shadow, false)?)?;
    }
    let req = AuthzRequest {
        principal,
        action,
        resource,
        context: ctx.facts(),
    };
    let d = engine.authorize(&req);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print_explanation(&engine, &req, &d);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_explanation(engine: &PolicyEngine, req: &AuthzRequest, d: &AuthzDecision) {
    println!("verdict: {}", d.verdict);
    println!(
        "request: principal Portcullis::User::{:?} action {} resource {} (needs scope {})",
        req.principal.subject,
        req.action,
        req.resource.uid(),
        req.resource.facts().required_scope()
    );
    println!("determined by:");
    for r in &d.reasons {
        let at = if r.line > 0 {
            format!("{}:{}", r.source, r.line)
        } else {
            r.source.clone()
        };
        let obligation = r
            .obligation
            .as_deref()
            .map(|o| format!(" [obligation: {o}]"))
            .unwrap_or_default();
        println!("  {r}{obligation}  ({at})");
        if let Some(text) = engine.policy_text(&r.policy) {
            for line in text.trim().lines() {
                println!("      {line}");
            }
        }
    }
    for e in &d.errors {
        println!("error: {e}");
    }
    if let Some(s) = &d.shadow {
        let ids: Vec<&str> = s.reasons.iter().map(|r| r.policy.as_str()).collect();
        println!("shadow: {} ({})", s.verdict, ids.join(", "));
        for e in &s.errors {
            println!("shadow error: {e}");
        }
    }
}

fn test(file: &std::path::Path, set: &PolicySet) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the test file {name}"))?;
    let tests = TestFile::parse(&name, &text)?;
    let engine = PolicyEngine::load(&set.sources()?)?.with_request_validation(true);
    let results = tests.run(&engine);
    let mut failed = 0;
    for r in &results {
        if r.passed() {
            continue;
        }
        failed += 1;
        let why: Vec<String> = r.decision.reasons.iter().map(ToString::to_string).collect();
        print!(
            "{name}:{}: case `{}`: expected {}, got {} ({})",
            r.line,
            r.name,
            r.expect,
            r.decision.verdict,
            why.join("; ")
        );
        if !r.missing_policies.is_empty() {
            print!(
                "; expected among the reasons: {}",
                r.missing_policies.join(", ")
            );
        }
        for e in &r.decision.errors {
            print!("; error: {e}");
        }
        println!();
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
