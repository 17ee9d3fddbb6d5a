//! The `account-api` binary: `serve` (the default) and `migrate`.

use account_api::{AppState, router};
use account_spine::{DatabaseConfig, Spine};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;

/// The account API: tenants, members, API keys, runs and quotas over HTTP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Database URL: a SQLite file (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://account.db?mode=rwc",
        global = true
    )]
    database_url: String,

    /// Address to listen on.
    #[arg(
        long,
        env = "ACCOUNT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: SocketAddr,

    /// Upper bound of the database pool.
    #[arg(
        long,
        env = "ACCOUNT_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    db_max_connections: u32,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database, then serve HTTP until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = DatabaseConfig::new(&cli.database_url);
    config.max_connections = cli.db_max_connections;
    let spine = Spine::connect(&config)
        .await
        .context("connecting to the database")?;
    spine.migrate().await.context("migrating the database")?;

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            tracing::info!(backend = spine.backend_name(), "migrations applied");
            Ok(())
        }
        Command::Serve => serve(spine, cli.listen).await,
    }
}

async fn serve(spine: Spine, listen: SocketAddr) -> anyhow::Result<()> {
    let backend = spine.backend_name();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, backend, "account-api listening");
    axum::serve(listener, router(AppState::new(spine)))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Resolves on SIGTERM or Ctrl-C; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
