//! `cargo run -p example-embed-axum`: the host's app on `127.0.0.1:3000` (or
//! `EMBED_AXUM_LISTEN`), over a fresh in-memory SQLite database holding one tenant, whose
//! owner is the host user `alice` (host token `alice-host-token`). See README.md.

#![allow(clippy::print_stdout)] // the demo prints how to call it

use account_spine::api_keys::ApiKeyPepper;
use account_spine::{OperatorPrincipal, RequestMeta};
use example_embed_axum::{HostUser, HostUsers, app, open_spine};

/// A named in-memory database, shared by the pool's connections; gone when the demo exits.
const DATABASE_URL: &str = "sqlite:file:example-embed-axum?mode=memory&cache=shared";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pepper = [0u8; 32];
    getrandom::fill(&mut pepper).map_err(|e| format!("no randomness for the pepper: {e}"))?;
    let spine = open_spine(DATABASE_URL, ApiKeyPepper::from_bytes(&pepper)?).await?;

    // The platform's set-up: a tenant whose owner key the host links to its user `alice`.
    let operator = OperatorPrincipal {
        operator_id: "example:setup".into(),
        request: RequestMeta::default(),
    };
    let (_, owner_key) = spine
        .bootstrap(&operator, "alice@example.com", "Alice's shop")
        .await?;
    let account_key = owner_key.plaintext.expose().to_owned();
    let users = HostUsers::new().with(
        "alice-host-token",
        HostUser::new("alice", account_key.clone()),
    );

    let listen = std::env::var("EMBED_AXUM_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("host app on http://{listen}: the host's /orders, our API under /account");
    println!("host token of alice: alice-host-token");
    println!("alice's account API key (for /account/v1/...): {account_key}");
    axum::serve(listener, app(spine, users)).await?;
    Ok(())
}
