//! The frozen-migration check of `cargo xtask tidy` on this workspace, so `cargo test` fails
//! too when an applied migration was edited, deleted or added without being recorded.

use xtask::{tidy, util};

#[test]
fn applied_migrations_are_frozen_and_recorded() -> anyhow::Result<()> {
    let drift = tidy::check(&util::workspace_root()?)?;
    let report: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "\n{}\n", report.join("\n"));
    Ok(())
}
