//! `cargo xtask schemathesis [--database-url URL]`, also a step of `cargo xtask ci`: property
//! tests of the served `/openapi.json` with schemathesis (from PyPI), every operation called
//! with a valid key, checking that no answer is a server error or strays from the document
//! (status codes, content types, response schemas).
//!
//! The API runs on a fresh SQLite file in a scratch directory (or on `--database-url`, which
//! must name an empty database), bootstrapped with a tenant, its owner key and an operator
//! key. Three invocations, in an order that keeps the keys working while they are needed:
//! tenant routes with the owner key, then the owner key's own revoke and rotate, then the
//! platform routes with the operator key on the bootstrapped tenant (they may terminate it).

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::util::{
    ChildGuard, build_debug, command_output, debug_binary, free_port, printed, run_command,
    tools_dir, wait_for_health, workspace_root,
};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The schemathesis release CI installs (CLI options checked against its `run --help`).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Test cases per operation and invocation: a few minutes in all on two cores.
const MAX_EXAMPLES: &str = "40";

/// Every check on responses the issue asks for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

/// Routes that end the owner key's life: tested last among the tenant routes.
const KEY_ENDING_PATHS: &str = r"^/v1/api-keys/\{id\}/(revoke|rotate)$";

/// The configuration every invocation reads: the key comes from the environment, so it is
/// neither on a command line nor in a file, and schemathesis masks it in its report.
const CONFIG: &str = r#"headers = { Authorization = "Bearer ${ACCOUNT_SCHEMATHESIS_KEY}" }

[parameters]
"path.tenant_id" = "${ACCOUNT_SCHEMATHESIS_TENANT_ID}"
"#;

/// `cargo xtask schemathesis [--database-url URL]`.
pub fn run(args: &[String]) -> Result<u8> {
    let database_url = match args {
        [] => None,
        [flag, url] if flag == "--database-url" => Some(url.as_str()),
        _ => {
            eprintln!("usage: cargo xtask schemathesis [--database-url URL-of-an-empty-database]");
            return Ok(2);
        }
    };
    std::env::set_current_dir(workspace_root()?)?;
    check(database_url)?;
    Ok(0)
}

/// Installs schemathesis, serves the API and runs every invocation; fails on any finding.
pub fn check(database_url: Option<&str>) -> Result<()> {
    let schemathesis = install()?;
    // The workspace's one debug build (`util::DEBUG_BUILD`): the tests reuse it.
    build_debug()?;
    let scratch =
        std::env::temp_dir().join(format!("account-api-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let outcome = check_in(&schemathesis, &scratch, database_url);
    if outcome.is_err() {
        print_server_errors(&scratch.join("server.log"));
    }
    std::fs::remove_dir_all(&scratch)?;
    outcome
}

/// One invocation of `schemathesis run`: which operations, with which key.
struct Invocation {
    name: &'static str,
    key: String,
    filters: Vec<&'static str>,
}

fn check_in(schemathesis: &Path, scratch: &Path, database_url: Option<&str>) -> Result<()> {
    let binary = debug_binary("account-api")?;
    let api = |args: &[&str]| -> Command {
        let mut command = Command::new(&binary);
        command.args(args).current_dir(scratch);
        match database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        command
    };
    let bootstrap = command_output(&mut api(&[
        "bootstrap",
        "--owner-email",
        "schemathesis@example.com",
        "--tenant-name",
        "schemathesis",
    ]))?;
    let owner_key = printed(&bootstrap, "api_key")?;
    let tenant_id = printed(&bootstrap, "tenant_id")?;
    let operator = command_output(&mut api(&[
        "operator-key",
        "create",
        "--name",
        "schemathesis",
    ]))?;
    let operator_key = printed(&operator, "operator_key")?;

    let port = free_port()?;
    let log = std::fs::File::create(scratch.join("server.log"))?;
    let server = api(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .env("RUST_LOG", "warn")
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut server = ChildGuard(server);
    wait_for_health(port, &mut server.0)?;

    let config = scratch.join("schemathesis.toml");
    std::fs::write(&config, CONFIG)?;
    let schema = format!("http://127.0.0.1:{port}/openapi.json");
    let invocations = [
        Invocation {
            name: "tenant routes, owner key",
            key: owner_key.clone(),
            filters: vec![
                "--exclude-tag",
                "platform",
                "--exclude-path-regex",
                KEY_ENDING_PATHS,
            ],
        },
        Invocation {
            name: "key revoke and rotate, owner key",
            key: owner_key,
            filters: vec!["--include-path-regex", KEY_ENDING_PATHS],
        },
        Invocation {
            name: "platform routes, operator key",
            key: operator_key,
            filters: vec!["--include-tag", "platform"],
        },
    ];
    for invocation in invocations {
        println!("    schemathesis: {}", invocation.name);
        let mut command = Command::new(schemathesis);
        command
            .current_dir(scratch)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &schema, "--checks", CHECKS])
            .args(["--max-examples", MAX_EXAMPLES])
            .args(["--workers", "1", "--request-timeout", "30", "--no-color"])
            .args(&invocation.filters)
            .env("ACCOUNT_SCHEMATHESIS_KEY", &invocation.key)
            .env("ACCOUNT_SCHEMATHESIS_TENANT_ID", &tenant_id);
        // Not `run_command`: its error prints the command with its environment, the key.
        let status = command.status().context("running schemathesis")?;
        if !status.success() {
            bail!(
                "schemathesis found problems ({}): exit {status}; its report is above",
                invocation.name
            );
        }
    }
    drop(server);
    Ok(())
}

/// The schemathesis binary in the target directory's `ci-tools/schemathesis-<version>`,
/// installed from PyPI into its own virtualenv when missing.
fn install() -> Result<PathBuf> {
    let venv = tools_dir()?.join(format!("schemathesis-{SCHEMATHESIS_VERSION}"));
    let binary = venv.join("bin").join("schemathesis");
    if !binary.exists() {
        println!(
            "    installing schemathesis=={SCHEMATHESIS_VERSION} from PyPI into {}",
            venv.display()
        );
        run_command(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run_command(Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ]))?;
    }
    let version = command_output(Command::new(&binary).arg("--version"))?;
    if !version.contains(SCHEMATHESIS_VERSION) {
        bail!(
            "{} reports `{}`, expected {SCHEMATHESIS_VERSION}",
            binary.display(),
            version.trim()
        );
    }
    Ok(binary)
}

/// The server's error lines (panics included), which explain a 500 schemathesis reports.
fn print_server_errors(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("ERROR") || line.contains("panicked"))
        .take(40)
        .collect();
    if !errors.is_empty() {
        println!("    the server logged:");
        for line in errors {
            println!("      {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_values_are_found_by_exact_name() {
        let output = "tenant_id=t-1\nowner_user_id=u-1\napi_key=acc_live_x\n";
        assert_eq!(
            printed(output, "api_key").ok().as_deref(),
            Some("acc_live_x")
        );
        assert_eq!(printed(output, "tenant_id").ok().as_deref(), Some("t-1"));
        assert!(printed(output, "owner").is_err());
    }
}
