//! The `account-api` binary: `serve` (the default), `migrate`, `bootstrap` and `operator-key`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // bootstrap prints the key for the operator

use account_api::{AppState, EdgeSettings, TrustedProxies, router};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::audit::purge::AuditPurgeSettings;
use account_spine::runs::leases::{LeaseDuration, ReaperSettings};
use account_spine::support::SupportContact;
use account_spine::types::{Email, SchemaName};
use account_spine::webhooks::{SenderSettings, WebhookSettings};
use account_spine::{DatabaseConfig, DispatchSettings, OperatorPrincipal, RequestMeta, Spine};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

    /// File holding the server-side secret that keys API-key digests (created on first run,
    /// mode 0600). Losing it invalidates every issued key.
    #[arg(
        long,
        env = "ACCOUNT_PEPPER_FILE",
        default_value = "account.pepper",
        global = true
    )]
    pepper_file: PathBuf,

    /// Upper bound of the database pool.
    #[arg(
        long,
        env = "ACCOUNT_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    db_max_connections: u32,

    /// A PostgreSQL streaming replica of the database (`postgres://user@replica/db`, the same
    /// database); repeat for several. Read requests go to a replica that has replayed the
    /// caller's own last write, else to the primary; a replica that fails or lags is skipped.
    /// The environment variable takes a comma-separated list.
    #[arg(
        long = "replica-url",
        env = "ACCOUNT_REPLICA_URLS",
        value_delimiter = ',',
        global = true
    )]
    replica_urls: Vec<String>,

    /// How far behind the primary (in milliseconds) a replica may be and still serve reads.
    #[arg(
        long,
        env = "ACCOUNT_REPLICA_MAX_LAG_MS",
        default_value_t = 2_000,
        global = true
    )]
    replica_max_lag_ms: u64,

    /// The schema our tables live in (on SQLite, the name the account database is attached
    /// under): lower-case letters, digits and `_`.
    #[arg(
        long,
        env = "ACCOUNT_DB_SCHEMA",
        default_value = "account",
        global = true
    )]
    db_schema: String,

    /// Support email address `GET /v1/support` shows (without it, that route answers 404).
    #[arg(
        long,
        env = "ACCOUNT_SUPPORT_EMAIL",
        global = true,
        requires_all = ["support_hours", "support_response_time"]
    )]
    support_email: Option<String>,

    /// When support is staffed, e.g. "Mon-Fri 09:00-17:00 CET".
    #[arg(long, env = "ACCOUNT_SUPPORT_HOURS", global = true)]
    support_hours: Option<String>,

    /// The response-time promise, e.g. "within one business day".
    #[arg(long, env = "ACCOUNT_SUPPORT_RESPONSE_TIME", global = true)]
    support_response_time: Option<String>,

    /// An OpenID Connect issuer whose tokens sign people in (`Authorization: Bearer <JWT>`
    /// with `X-Tenant-Id`); its keys come from its discovery document unless
    /// `--oidc-jwks-file` is given.
    #[arg(
        long,
        env = "ACCOUNT_OIDC_ISSUER",
        global = true,
        requires = "oidc_audience"
    )]
    oidc_issuer: Option<String>,

    /// The audience the issuer's tokens must name (the client id it issues them for).
    #[arg(long, env = "ACCOUNT_OIDC_AUDIENCE", global = true)]
    oidc_audience: Option<String>,

    /// A local JWKS file with the issuer's keys, for installations that cannot reach it.
    #[arg(long, env = "ACCOUNT_OIDC_JWKS_FILE", global = true)]
    oidc_jwks_file: Option<PathBuf>,

    /// Seconds a client has to send a request's headers, counted from when the server starts
    /// waiting for them (a new connection, or the previous response on a kept-alive one).
    #[arg(
        long,
        env = "ACCOUNT_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    header_read_timeout_secs: u64,

    /// Seconds the server waits for the next piece of a request body before answering 408.
    #[arg(
        long,
        env = "ACCOUNT_BODY_READ_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    body_read_timeout_secs: u64,

    /// Seconds a connection may stay open with no request in flight.
    #[arg(
        long,
        env = "ACCOUNT_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    idle_timeout_secs: u64,

    /// Proxies whose `X-Forwarded-For` names the client: comma-separated IP addresses and CIDR
    /// ranges (`10.0.0.0/8,192.0.2.7`). Without any, the TCP peer is the client.
    #[arg(
        long,
        env = "ACCOUNT_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    trusted_proxies: TrustedProxies,

    /// Seconds a run's lease lasts from its admission or its worker's latest heartbeat
    /// (1 to 86400); workers should heartbeat every third of it.
    #[arg(
        long,
        env = "ACCOUNT_RUN_LEASE_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        global = true
    )]
    run_lease_secs: u64,

    /// Seconds between two passes of the lease reaper, which expires runs whose lease lapsed
    /// and frees their slots.
    #[arg(
        long,
        env = "ACCOUNT_REAPER_INTERVAL_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    reaper_interval_secs: u64,

    /// Do not run the lease reaper in this process (another process, or the host's own
    /// scheduler, reaps); `ACCOUNT_NO_REAPER=true` does the same.
    #[arg(long, env = "ACCOUNT_NO_REAPER", global = true)]
    no_reaper: bool,

    /// Do not dispatch events from the outbox in this process (another process does);
    /// `ACCOUNT_NO_DISPATCHER=true` does the same. Several dispatchers may run together.
    #[arg(long, env = "ACCOUNT_NO_DISPATCHER", global = true)]
    no_dispatcher: bool,

    /// Let webhooks go to private, loopback and link-local addresses (tests, on-premise
    /// receivers); refused by default. `ACCOUNT_WEBHOOKS_ALLOW_PRIVATE=true` does the same.
    #[arg(long, env = "ACCOUNT_WEBHOOKS_ALLOW_PRIVATE", global = true)]
    webhooks_allow_private: bool,

    /// Seconds one webhook request may take, connecting included (default 15).
    #[arg(
        long,
        env = "ACCOUNT_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=120),
        global = true
    )]
    webhook_timeout_secs: u64,

    /// Seconds an endpoint a dispatcher took stays its own without progress (default 60):
    /// after a dispatcher dies, another takes its endpoints over after this long.
    #[arg(
        long,
        env = "ACCOUNT_WEBHOOK_LEASE_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    webhook_lease_secs: u64,

    /// Seconds between two passes of the audit purge, which deletes audit rows older than
    /// their tenant's retention (its plan's: free 30 days, pro 365, enterprise 2,555), a
    /// batch per short transaction, and audits each tenant's purge. The first pass runs at
    /// start.
    #[arg(
        long,
        env = "ACCOUNT_AUDIT_PURGE_INTERVAL_SECS",
        default_value_t = 3_600,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    audit_purge_interval_secs: u64,

    /// Do not run the audit purge in this process (another process, or the host's own
    /// scheduler, purges); `ACCOUNT_NO_AUDIT_PURGE=true` does the same.
    #[arg(long, env = "ACCOUNT_NO_AUDIT_PURGE", global = true)]
    no_audit_purge: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// The token verifier the flags configure, if any.
    fn oidc(&self) -> Option<account_api::oidc::Verifier> {
        let (issuer, audience) = (self.oidc_issuer.as_ref()?, self.oidc_audience.as_ref()?);
        let mut issuer = account_api::oidc::Issuer::new(issuer, audience);
        if let Some(path) = &self.oidc_jwks_file {
            issuer = issuer.with_jwks_file(path);
        }
        Some(account_api::oidc::Verifier::new(
            vec![issuer],
            reqwest::Client::new(),
        ))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database, then serve HTTP until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Create the first tenant, its owner and an owner API key; prints the key once.
    Bootstrap {
        /// The owner's email.
        #[arg(long)]
        owner_email: String,
        /// The tenant's display name.
        #[arg(long, default_value = "My project")]
        tenant_name: String,
    },
    /// Platform operator keys (`acc_op_...`): the only credentials platform routes accept.
    #[command(subcommand)]
    OperatorKey(OperatorKeyCommand),
}

#[derive(Debug, Subcommand)]
enum OperatorKeyCommand {
    /// Creates an operator key; prints it once.
    Create {
        /// Who or what holds the key (1 to 100 characters).
        #[arg(long)]
        name: String,
    },
    /// Lists operator keys (prefix, name, dates; never the key).
    List,
    /// Revokes an operator key by id; it stops working at once.
    Revoke {
        /// The key's id (from `list`).
        #[arg(long)]
        id: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Log lines (one per request: the access log) are written by a thread of their own, so a
    // request never waits on stderr; not lossy: with 128,000 lines queued a request waits
    // rather than drop its line. The guard flushes the queue when `main` returns.
    let (log_writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("account-api-log")
        .finish(std::io::stderr()); // stdout carries command output (bootstrap's key)
    tracing_subscriber::fmt()
        .with_writer(log_writer)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = DatabaseConfig::new(&cli.database_url)
        .with_max_connections(cli.db_max_connections)
        .with_replicas(cli.replica_urls.iter().cloned())
        .with_replica_max_lag(Duration::from_millis(cli.replica_max_lag_ms))
        .with_schema(SchemaName::parse(&cli.db_schema).context("--db-schema")?);
    let pepper = load_or_create_pepper(&cli.pepper_file)?;
    let lease =
        LeaseDuration::new(Duration::from_secs(cli.run_lease_secs)).context("--run-lease-secs")?;
    let mut spine = Spine::connect(&config)
        .await
        .context("connecting to the database")?
        .with_pepper(pepper)
        .with_run_lease(lease)
        .with_webhook_delivery(
            WebhookSettings::default()
                .with_lease(Duration::from_secs(cli.webhook_lease_secs))
                .with_sender(
                    SenderSettings::default()
                        .with_private_destinations(cli.webhooks_allow_private)
                        .with_request_timeout(Duration::from_secs(cli.webhook_timeout_secs)),
                ),
        )
        .context("building the webhook client")?;
    if let Some(email) = &cli.support_email {
        spine = spine.with_support_contact(SupportContact::new(
            Email::parse(email).context("--support-email")?,
            cli.support_hours.clone().unwrap_or_default(),
            cli.support_response_time.clone().unwrap_or_default(),
        ));
    }
    // After connecting: an in-memory SQLite database lives while the pool holds it.
    let applied = account_spine::migrate(&config)
        .await
        .context("migrating the database")?;
    tracing::info!(
        backend = spine.backend_name(),
        schema = %config.schema,
        applied = applied.migrations.len(),
        upgraded_from_0_0_0 = applied.upgraded_from_0_0_0,
        "migrations checked"
    );

    let oidc = cli.oidc();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => Ok(()),
        Command::Serve => {
            let edge = EdgeSettings::default()
                .with_timeouts(
                    Duration::from_secs(cli.header_read_timeout_secs),
                    Duration::from_secs(cli.body_read_timeout_secs),
                    Duration::from_secs(cli.idle_timeout_secs),
                )
                .with_trusted_proxies(cli.trusted_proxies.clone());
            let reaper = (!cli.no_reaper).then(|| {
                ReaperSettings::default()
                    .with_interval(Duration::from_secs(cli.reaper_interval_secs))
            });
            let purger = (!cli.no_audit_purge).then(|| {
                AuditPurgeSettings::default()
                    .with_interval(Duration::from_secs(cli.audit_purge_interval_secs))
            });
            let dispatcher = (!cli.no_dispatcher).then(DispatchSettings::default);
            let jobs = Jobs {
                reaper,
                purger,
                dispatcher,
            };
            serve(spine, cli.listen, edge, oidc, jobs).await
        }
        Command::OperatorKey(command) => operator_key(&spine, command).await,
        Command::Bootstrap {
            owner_email,
            tenant_name,
        } => {
            let operator = OperatorPrincipal {
                operator_id: "cli:bootstrap".into(),
                request: RequestMeta::default(),
            };
            let (created, key) = spine
                .bootstrap(&operator, &owner_email, &tenant_name)
                .await
                .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
            println!("tenant_id={}", created.tenant.id);
            println!("owner_user_id={}", created.owner.user_id);
            println!("api_key={}", key.plaintext.expose());
            eprintln!("The API key is shown once; store it now.");
            Ok(())
        }
    }
}

/// `operator-key create|list|revoke`: run by whoever runs the platform, never over HTTP.
async fn operator_key(spine: &Spine, command: OperatorKeyCommand) -> anyhow::Result<()> {
    let operator = OperatorPrincipal {
        operator_id: "cli:operator-key".into(),
        request: RequestMeta::default(),
    };
    match command {
        OperatorKeyCommand::Create { name } => {
            let created = spine
                .create_operator_key(&operator, &name)
                .await
                .map_err(|e| anyhow::anyhow!("creating the operator key failed: {e}"))?;
            println!("operator_key_id={}", created.key.id);
            println!("operator_key={}", created.plaintext.expose());
            eprintln!("The operator key is shown once; store it now.");
        }
        OperatorKeyCommand::List => {
            let keys = spine
                .list_operator_keys(&operator)
                .await
                .map_err(|e| anyhow::anyhow!("listing operator keys failed: {e}"))?;
            for key in keys {
                let revoked = key
                    .revoked_at
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                println!(
                    "{}\t{}\t{}\tcreated={}\trevoked={revoked}",
                    key.id,
                    key.key_prefix,
                    key.name,
                    key.created_at.to_rfc3339()
                );
            }
        }
        OperatorKeyCommand::Revoke { id } => {
            let id = id
                .parse()
                .map_err(|e| anyhow::anyhow!("--id is not an operator key id: {e}"))?;
            spine
                .revoke_operator_key(&operator, id)
                .await
                .map_err(|e| anyhow::anyhow!("revoking the operator key failed: {e}"))?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// Reads the pepper, or creates 32 random bytes on first run (owner-only permissions).
fn load_or_create_pepper(path: &Path) -> anyhow::Result<ApiKeyPepper> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("no randomness for the pepper: {e}"))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(
                &mut options
                    .open(path)
                    .with_context(|| format!("creating {}", path.display()))?,
                &bytes,
            )?;
            tracing::info!(path = %path.display(), "created a new API-key pepper");
            bytes
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    ApiKeyPepper::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The background jobs `serve` runs beside the server (`None`: not in this process).
struct Jobs {
    reaper: Option<ReaperSettings>,
    purger: Option<AuditPurgeSettings>,
    dispatcher: Option<DispatchSettings>,
}

async fn serve(
    spine: Spine,
    listen: SocketAddr,
    edge: EdgeSettings,
    oidc: Option<account_api::oidc::Verifier>,
    jobs: Jobs,
) -> anyhow::Result<()> {
    let backend = spine.backend_name();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, backend, "account-api listening");
    let reaper = jobs.reaper.map(|settings| {
        tracing::info!(
            lease_secs = spine.run_lease().get().as_secs(),
            interval_secs = settings.interval.as_secs(),
            "lease reaper started"
        );
        spine.spawn_reaper(settings)
    });
    // The outbox's dispatcher: stopped after the last request, so their events go out.
    let (stop_dispatch, dispatch_stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = jobs.dispatcher.map(|settings| {
        let spine = spine.clone();
        tokio::spawn(async move {
            let stopped = async {
                let _ = dispatch_stopped.await;
            };
            spine.run_dispatcher(settings, stopped).await;
        })
    });
    let purger = jobs.purger.map(|settings| {
        tracing::info!(
            interval_secs = settings.interval.as_secs(),
            "audit purge started"
        );
        spine.spawn_audit_purger(settings)
    });
    let mut state = AppState::new(spine.clone()).with_edge(edge.clone());
    if let Some(verifier) = oidc {
        state = state.with_oidc(verifier);
    }
    account_api::serve(listener, router(state), &edge, shutdown_signal()).await;
    if let Some(reaper) = reaper {
        reaper.shutdown().await;
    }
    if let Some(purger) = purger {
        purger.shutdown().await;
    }
    let _ = stop_dispatch.send(());
    if let Some(dispatcher) = dispatcher
        && let Err(error) = dispatcher.await
    {
        tracing::error!(%error, "the event dispatcher failed");
    }
    // Last-use times collected since the previous background flush.
    spine
        .flush_key_usage()
        .await
        .context("flushing API-key last use")?;
    Ok(())
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
