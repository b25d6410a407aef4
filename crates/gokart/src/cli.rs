//! The commands of the `gokart` binary.

use clap::{Parser, Subcommand};
use gokart_domain::tenant::TenantKind;
use gokart_engine::tenants::NewTenant;

use crate::{serve, Server, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "gokart",
    version,
    about = "Self-hostable GoKart: CPI/CPE offers, MMP postbacks, partner postbacks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, tracking links, postback intake and dashboard (and the delivery worker).
    Serve(Settings),
    /// Run only the delivery worker.
    Worker(Settings),
    /// Apply the database migrations and exit.
    Migrate(Settings),
    /// Create the demo tenant `brownboots` once, print its credentials, then serve.
    Demo(Settings),
    /// Tenant administration.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Play an MMP: click a tracking link, then send Adjust- or AppsFlyer-shaped postbacks.
    Simulate(crate::simulate::Simulate),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its admin login, Management API token and postback credentials.
    Create(TenantCreate),
}

#[derive(Debug, clap::Args)]
pub struct TenantCreate {
    /// The tenant slug: 3–40 of a-z, 0-9 and -.
    pub slug: String,
    /// advertiser, aff-network or publisher.
    #[arg(long, value_parser = parse_kind)]
    pub kind: TenantKind,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub admin_email: String,
    #[arg(long, env = "GOKART_ADMIN_PASSWORD")]
    pub admin_password: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: Settings,
}

fn parse_kind(text: &str) -> Result<TenantKind, String> {
    TenantKind::parse(text).ok_or_else(|| "one of advertiser, aff-network, publisher".to_owned())
}

/// Logs to stderr, filtered by `RUST_LOG` (default: gokart's own info and above).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gokart=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(settings) => {
            run_server(&settings, Server::from_settings(&settings).await?).await
        }
        Command::Worker(settings) => {
            let server = Server::from_settings(&settings).await?;
            crate::server::run_worker_until(&server, shutdown_signal()).await
        }
        Command::Migrate(settings) => {
            Server::from_settings(&settings).await?;
            println!("migrations applied to {}", settings.database_url);
            Ok(())
        }
        Command::Demo(mut settings) => {
            settings.allow_private_destinations = true;
            let server = Server::from_settings(&settings).await?;
            crate::demo::prepare(&server).await?;
            run_server(&settings, server).await
        }
        Command::Tenant(TenantCommand::Create(args)) => create_tenant(args).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
    }
}

async fn run_server(settings: &Settings, server: Server) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    tracing::info!(address = %settings.listen, "gokart listening");
    serve(&server, listener, shutdown_signal()).await
}

async fn create_tenant(args: TenantCreate) -> anyhow::Result<()> {
    let server = Server::from_settings(&args.settings).await?;
    let created = server
        .engine
        .create_tenant(NewTenant {
            slug: args.slug,
            kind: args.kind,
            name: args.name,
            admin_email: args.admin_email,
            admin_password: args.admin_password,
        })
        .await
        .map_err(describe)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        println!("tenant:               {}", created.tenant);
        println!("management API token: {}", created.management_api_token);
        println!("admin login:          {}", created.admin.email);
        println!("postback URL:         {}", created.postback.url);
    }
    Ok(())
}

/// Turns an engine error into a sentence for the terminal.
pub fn describe(error: gokart_engine::EngineError) -> anyhow::Error {
    match error {
        gokart_engine::EngineError::Invalid(problems) => anyhow::anyhow!(
            "{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
