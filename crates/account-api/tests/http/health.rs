//! Liveness and readiness over HTTP on every backend.

use crate::process::{BINARY, command};
use crate::support::start;
use account_api::{AppState, EdgeSettings, router};
use account_spine::{DatabaseConfig, Spine};
use account_testkit::fixtures::count_rows;
use account_testkit::{Backend, backends, empty_db};
use reqwest::Method;
use serde_json::Value;
use std::process::Stdio;

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let health = server.send(server.request(Method::GET, "/healthz")).await;
        assert_eq!(health.status, 200);
        let ready = server.send(server.request(Method::GET, "/readyz")).await;
        assert_eq!(ready.body["status"], "ready");
        assert_eq!(ready.body["database"], backend.name());
    }
}

/// An instance whose database is not migrated yet (another instance is still migrating, or
/// nothing migrated it) is not ready; once the migrations are applied it is.
#[tokio::test]
async fn readiness_waits_for_the_migrations() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        let config = DatabaseConfig::new(db.url());
        let spine = Spine::connect(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let edge = EdgeSettings::default();
        let app = router(AppState::new(spine.clone()));
        let task = tokio::spawn(async move {
            account_api::serve(listener, app, &edge, std::future::pending()).await;
        });
        let client = reqwest::Client::new();
        let readyz = || async {
            let answer = client.get(format!("{base}/readyz")).send().await.unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap())
        };

        let (status, body) = readyz().await;
        assert_eq!(status, 503, "{}: {body}", backend.name());
        assert_eq!(body["error"], "migrations_pending", "{body}");
        let pending = spine.pending_migrations().await.unwrap();
        assert!(
            pending.len() > 20,
            "every migration is pending: {pending:?}"
        );

        let applied = account_spine::migrate(&config).await.unwrap();
        assert_eq!(applied.migrations, pending, "{}", backend.name());
        let (status, body) = readyz().await;
        assert_eq!(status, 200, "{}: {body}", backend.name());
        assert_eq!(body["status"], "ready");
        assert!(spine.pending_migrations().await.unwrap().is_empty());
        task.abort();
    }
}

/// Three instances started together on one fresh PostgreSQL database: each migrates, the
/// migration lock lets one apply every migration while the others wait and find none
/// pending, and all three exit successfully.
#[tokio::test]
async fn three_instances_starting_together_migrate_once() {
    let Some(backend) = backends()
        .unwrap()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres { .. }))
    else {
        return;
    };
    let db = empty_db(&backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("account.pepper"), [7_u8; 32]).unwrap();
    let instances: Vec<_> = (0..3)
        .map(|_| {
            command(BINARY, dir.path())
                .args([
                    "--database-url",
                    db.url(),
                    "--pepper-file",
                    "account.pepper",
                ])
                .arg("migrate")
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = Vec::new();
    for instance in instances {
        let output = instance.wait_with_output().unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{log}");
        let line = log
            .lines()
            .find(|line| line.contains("migrations checked"))
            .map(without_colours)
            .unwrap_or_else(|| panic!("no migration line in {log}"));
        let count = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("applied="))
            .unwrap_or_else(|| panic!("no applied= in {line}"));
        applied.push(count.parse::<usize>().unwrap());
    }
    applied.sort_unstable();
    let recorded = count_rows(db.direct_conn(), "account.account_migrations", "TRUE").await;
    let distinct = count_rows(
        db.direct_conn(),
        "(SELECT DISTINCT version FROM account.account_migrations) AS v",
        "TRUE",
    )
    .await;
    assert_eq!(
        applied,
        [0, 0, usize::try_from(recorded).unwrap()],
        "one instance applies every migration, the others none"
    );
    assert_eq!(distinct, recorded, "each migration recorded once");
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap();
    assert!(spine.pending_migrations().await.unwrap().is_empty());
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}
