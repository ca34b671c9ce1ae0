//! `portcullis users`, `portcullis consents`, `portcullis clients`: administration of the
//! built-in authorization server's local users, consents (AUTH-7) and registered clients
//! (AUTH-2), directly on the database (no running server needed; a running server picks up
//! revocations at its next sync, within a minute).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use portcullis_auth::{AuthAdmin, NewUser};
use portcullis_core::{Secret, SystemClock};
use portcullis_store::{DatabaseUrl, OpenMode, Store};

/// Where the database is: shared by the three command groups.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The data directory: holds portcullis.db (and the auth master key).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./portcullis-data"
    )]
    data_dir: PathBuf,
    /// Database URL, when it is not the SQLite file in the data directory
    /// (postgres://user@host/db).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Who makes the change, as recorded in the audit log (AU-1); default: the OS user ($USER).
    #[arg(long, global = true, env = "PORTCULLIS_ACTOR")]
    actor: Option<String>,
}

/// Opens the audit log to record `command` (AU-1) before the change is made.
async fn recorder(
    s: &StoreArgs,
    command: &'static str,
) -> anyhow::Result<crate::cmd_audit::AdminRecorder> {
    crate::cmd_audit::AdminRecorder::open(
        &s.data_dir,
        s.database.as_deref(),
        s.actor.as_deref(),
        command,
    )
    .await
}

/// Arguments of `portcullis users`.
#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// Add a local user. The password is read from stdin (--password-stdin), prompted for
    /// without echo, or generated and printed once.
    Add(AddArgs),
    /// List users.
    List(JsonFlag),
    /// Disable a user: they cannot sign in and their tokens stop working.
    Disable(NameArg),
    /// Enable a disabled user.
    Enable(NameArg),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Sign-in name (letters, digits, '.', '_', '-', '@').
    name: String,
    /// A name fit to show.
    #[arg(long)]
    display_name: Option<String>,
    /// A group (repeat for several).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A role (repeat for several): security_admin, it_admin, approver, developer, auditor, end_user.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, clap::Args)]
struct NameArg {
    /// The user name.
    name: String,
}

#[derive(Debug, clap::Args)]
struct JsonFlag {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `portcullis consents`.
#[derive(Debug, clap::Args)]
pub struct ConsentsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: ConsentsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConsentsCommand {
    /// List consents, of everyone or of one user.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a user's consent to a client, and the tokens it produced.
    Revoke {
        /// The user name.
        #[arg(long)]
        user: String,
        /// The client id.
        #[arg(long)]
        client: String,
    },
}

/// Arguments of `portcullis clients`.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: ClientsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClientsCommand {
    /// List registered clients.
    List(JsonFlag),
    /// Revoke a client and every token issued to it.
    Revoke {
        /// The client id.
        id: String,
    },
}

/// Arguments of `portcullis tokens`.
#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokensCommand {
    /// Mint an access token for a user without the code flow (tests, break-glass); prints it.
    Issue(IssueArgs),
}

#[derive(Debug, clap::Args)]
struct IssueArgs {
    /// The user (must exist and be enabled).
    #[arg(long)]
    user: String,
    /// The client_id claim.
    #[arg(long)]
    client: String,
    /// The resource (audience): an MCP endpoint URL, like http://127.0.0.1:8080/mcp/crm.
    #[arg(long)]
    resource: String,
    /// A scope (repeat for several, or space separated).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// The issuer; default: the resource's origin (the gateway's public base URL).
    #[arg(long)]
    issuer: Option<String>,
    /// The environment claim (dev, test, prod).
    #[arg(long, default_value = "dev")]
    environment: String,
    /// Lifetime in seconds (at most 86400).
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// Date the token this many seconds back (to mint an already expired one for tests).
    #[arg(long, default_value_t = 0)]
    issued_ago_secs: u64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

async fn admin(s: &StoreArgs, mode: OpenMode) -> anyhow::Result<AuthAdmin> {
    let url = match &s.database {
        Some(u) => u.parse::<DatabaseUrl>()?,
        None => DatabaseUrl::embedded(&s.data_dir),
    };
    let store = Store::open(&url, mode).await?;
    Ok(AuthAdmin::open(store, &s.data_dir, Arc::new(SystemClock)).await?)
}

fn read_password(a: &AddArgs) -> anyhow::Result<(Secret, bool)> {
    if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            bail!("--password-stdin: standard input held no password");
        }
        return Ok((Secret::new(pw), false));
    }
    if std::io::stdin().is_terminal() {
        let pw =
            rpassword::prompt_password(format!("Password for {} (empty: generate one): ", a.name))
                .context("cannot read the password")?;
        if !pw.is_empty() {
            let again =
                rpassword::prompt_password("Repeat it: ").context("cannot read the password")?;
            if again != pw {
                bail!("the passwords differ; nothing was changed");
            }
            return Ok((Secret::new(pw), false));
        }
    }
    Ok((Secret::new(portcullis_auth::crypto::random_token()), true))
}

/// Runs `portcullis users`.
pub fn run_users(args: UsersArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match &args.command {
            UsersCommand::Add(a) => {
                let (password, generated) = read_password(a)?;
                let admin = admin(&args.store, OpenMode::CreateIfMissing).await?;
                let rec = recorder(&args.store, "users/add").await?;
                let added = admin
                    .add_user(NewUser {
                        username: a.name.clone(),
                        display_name: a.display_name.clone(),
                        groups: a.groups.clone(),
                        roles: a.roles.clone(),
                        password: password.clone(),
                    })
                    .await
                    .map_err(anyhow::Error::from);
                // Never the password: only who was added, with what.
                let details = vec![
                    format!("roles={}", a.roles.join(",")),
                    format!("groups={}", a.groups.join(",")),
                ];
                let u = rec.finish(&a.name, details, added).await?;
                println!("added user {} ({})", u.username, u.id);
                if generated {
                    println!("password (shown once): {}", password.expose());
                }
            }
            UsersCommand::List(f) => {
                let users = admin(&args.store, OpenMode::MustExist)
                    .await?
                    .users()
                    .await?;
                if f.json {
                    for u in &users {
                        println!("{}", serde_json::to_string(u)?);
                    }
                } else {
                    println!(
                        "{:<24} {:<9} {:<24} {:<20} ROLES",
                        "USER", "STATUS", "DISPLAY NAME", "GROUPS"
                    );
                    for u in &users {
                        println!(
                            "{:<24} {:<9} {:<24} {:<20} {}",
                            u.username,
                            if u.disabled { "disabled" } else { "active" },
                            u.display_name.as_deref().unwrap_or("-"),
                            u.groups.join(","),
                            u.roles.join(",")
                        );
                    }
                }
            }
            UsersCommand::Disable(n) => {
                let admin = admin(&args.store, OpenMode::MustExist).await?;
                let rec = recorder(&args.store, "users/disable").await?;
                let r = admin.set_user_disabled(&n.name, true).await;
                rec.finish(&n.name, vec![], r.map_err(anyhow::Error::from))
                    .await?;
                println!("disabled {}: sessions ended, tokens revoked", n.name);
            }
            UsersCommand::Enable(n) => {
                let admin = admin(&args.store, OpenMode::MustExist).await?;
                let rec = recorder(&args.store, "users/enable").await?;
                let r = admin.set_user_disabled(&n.name, false).await;
                rec.finish(&n.name, vec![], r.map_err(anyhow::Error::from))
                    .await?;
                println!("enabled {}", n.name);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `portcullis consents`.
pub fn run_consents(args: ConsentsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let admin = admin(&args.store, OpenMode::MustExist).await?;
        match &args.command {
            ConsentsCommand::List { user, json } => {
                let list = admin.consents(user.as_deref()).await?;
                if *json {
                    for c in &list {
                        println!("{}", serde_json::to_string(c)?);
                    }
                } else {
                    println!(
                        "{:<20} {:<40} {:<40} {:<25} GRANTED",
                        "USER", "CLIENT", "RESOURCE", "SCOPES"
                    );
                    for c in &list {
                        println!(
                            "{:<20} {:<40} {:<40} {:<25} {}",
                            c.username.as_deref().unwrap_or(&c.user_id),
                            c.client_id,
                            c.resource,
                            c.scopes.join(" "),
                            c.granted_at.to_rfc3339()
                        );
                    }
                }
            }
            ConsentsCommand::Revoke { user, client } => {
                let rec = recorder(&args.store, "consents/revoke").await?;
                let r = admin.revoke_consent(user, client).await;
                rec.finish(
                    user,
                    vec![format!("client={client}")],
                    r.map_err(anyhow::Error::from),
                )
                .await?;
                println!("revoked the consent of {user} to {client} and its tokens");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `portcullis clients`.
pub fn run_clients(args: ClientsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let admin = admin(&args.store, OpenMode::MustExist).await?;
        match &args.command {
            ClientsCommand::List(f) => {
                let list = admin.clients().await?;
                if f.json {
                    for c in &list {
                        println!("{}", serde_json::to_string(c)?);
                    }
                } else {
                    println!(
                        "{:<26} {:<8} {:<24} {:<20} REDIRECT URIS",
                        "CLIENT", "STATUS", "NAME (unverified)", "AUTH"
                    );
                    for c in &list {
                        println!(
                            "{:<26} {:<8} {:<24} {:<20} {}",
                            c.client_id,
                            if c.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            },
                            c.client_name.as_deref().unwrap_or("-"),
                            c.auth_method,
                            c.redirect_uris.join(" ")
                        );
                    }
                }
            }
            ClientsCommand::Revoke { id } => {
                let rec = recorder(&args.store, "clients/revoke").await?;
                let r = admin.revoke_client(id).await;
                rec.finish(id, vec![], r.map_err(anyhow::Error::from))
                    .await?;
                println!("revoked client {id} and every token issued to it");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `portcullis tokens`.
pub fn run_tokens(args: TokensArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let TokensCommand::Issue(a) = &args.command;
        let issuer = match &a.issuer {
            Some(i) => i.clone(),
            // scheme://authority of the resource.
            None => {
                let Some(i) = a.resource.find("://") else {
                    bail!("--resource must be an absolute URL, like http://127.0.0.1:8080/mcp/crm");
                };
                let rest = &a.resource[i + 3..];
                a.resource[..i + 3 + rest.find('/').unwrap_or(rest.len())].to_string()
            }
        };
        let admin = admin(&args.store, OpenMode::MustExist).await?;
        let rec = recorder(&args.store, "tokens/issue").await?;
        let minted = admin
            .mint_access_token(portcullis_auth::MintToken {
                username: a.user.clone(),
                client_id: a.client.clone(),
                issuer,
                resource: a.resource.clone(),
                scopes: a
                    .scopes
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                environment: a.environment.clone(),
                issued_at: chrono::Utc::now()
                    - chrono::Duration::seconds(a.issued_ago_secs.min(10 * 86_400) as i64),
                ttl: std::time::Duration::from_secs(a.ttl_secs),
            })
            .await
            .map_err(anyhow::Error::from);
        // Never the token itself: who it is for, and what it allows.
        let details = vec![
            format!("client={}", a.client),
            format!("resource={}", a.resource),
            format!("scopes={}", a.scopes.join(" ")),
            format!("environment={}", a.environment),
            format!("ttl_secs={}", a.ttl_secs),
        ];
        let token = rec.finish(&a.user, details, minted).await?;
        println!("{token}");
        Ok(ExitCode::SUCCESS)
    })
}
