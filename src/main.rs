use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leadgate::config::Settings;
use leadgate::startup::{self, Application, Overrides};

/// Self-hosted lead-capture checkout.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: $LEADGATE_CONFIG, else ./leadgate.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Web server and worker in one process (the default).
    Serve,
    /// Worker only, for a separate process beside the web servers.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate a configuration file and explain each problem in one line.
    CheckConfig { file: Option<PathBuf> },
    /// Print every lead with its attempts, CRM ids and follow-up tasks.
    Leads {
        /// Machine-readable JSON (the only format for now).
        #[arg(long)]
        json: bool,
    },
    /// Talk to the configured CRM.
    Crm {
        #[command(subcommand)]
        action: CrmAction,
    },
    /// Make, list and revoke the bearer tokens of the API (`/api/v1`).
    ApiToken {
        #[command(subcommand)]
        action: ApiTokenAction,
    },
    /// Print an Argon2 hash of the password read from standard input, for LEADGATE_ADMIN_PASSWORD_HASH.
    HashPassword,
}

#[derive(Subcommand)]
enum CrmAction {
    /// List pipelines, stages, owners, deal fields and activity types with their ids, and
    /// verify that everything the configuration names exists.
    Check,
}

#[derive(Subcommand)]
enum ApiTokenAction {
    /// Make a token and print it (once: only its digest is stored).
    Create {
        #[arg(long)]
        name: String,
        /// payment_links:write or payment_links:read; repeat for both.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Every token with its scopes and when it was made, last used and revoked.
    List,
    /// Revoke a token by its id: requests with it are refused from now on.
    Revoke { id: String },
}

impl From<ApiTokenAction> for leadgate::cli::TokenAction {
    fn from(a: ApiTokenAction) -> Self {
        match a {
            ApiTokenAction::Create { name, scopes } => Self::Create { name, scopes },
            ApiTokenAction::List => Self::List,
            ApiTokenAction::Revoke { id } => Self::Revoke { id },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Settings> {
    Settings::load(path.map(PathBuf::as_path)).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            leadgate::telemetry::init();
            let settings = load(cli.config.as_ref())?;
            let app = Application::build(settings).await?;
            let ctx = app.context();
            let first = ctx
                .settings
                .offers
                .first()
                .map(|o| o.slug.to_string())
                .unwrap_or_default();
            println!("leadgate is serving {} ({} database)", ctx.public_url, ctx.db.backend());
            println!(
                "Open {}/c/{first} to try the checkout; admin pages at {}/admin",
                ctx.public_url, ctx.public_url
            );
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            leadgate::telemetry::init();
            let settings = load(cli.config.as_ref())?;
            let public = settings
                .public_url
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned());
            let Some(public) = public else {
                anyhow::bail!("the worker needs public_url (or LEADGATE_PUBLIC_URL) to build links");
            };
            let ctx = std::sync::Arc::new(startup::context(settings, public, Overrides::default()).await?);
            let tasks = startup::spawn_background(ctx.clone());
            startup::stop_signal().await;
            tracing::info!("stop signal received; finishing running jobs");
            startup::shut_down(&ctx, tasks).await;
            ctx.db.close().await;
        }
        Command::Migrate => {
            let settings = load(cli.config.as_ref())?;
            let db = leadgate::store::Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            println!("migrated {} database", db.backend());
        }
        Command::CheckConfig { file } => {
            return Ok(match Settings::load(file.as_deref().or(cli.config.as_deref())) {
                Ok(s) => {
                    for line in leadgate::cli::describe(&s) {
                        println!("{line}");
                    }
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    for line in errors.0 {
                        println!("error: {line}");
                    }
                    ExitCode::FAILURE
                }
            });
        }
        Command::Leads { json: _ } => {
            let settings = load(cli.config.as_ref())?;
            let db = leadgate::store::Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            let leads = leadgate::cli::export_leads(&db, &settings).await?;
            println!("{}", serde_json::to_string_pretty(&leads)?);
        }
        Command::Crm {
            action: CrmAction::Check,
        } => {
            let settings = load(cli.config.as_ref())?;
            let (lines, ok) = leadgate::cli::crm_check(&settings).await;
            for line in lines {
                println!("{line}");
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::ApiToken { action } => {
            let settings = load(cli.config.as_ref())?;
            let db = leadgate::store::Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            let (lines, ok) = leadgate::cli::api_token(&db, action.into()).await?;
            for line in lines {
                println!("{line}");
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(password.len() >= 12, "use a password of at least 12 characters");
            println!("{}", startup::hash_password(password)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
