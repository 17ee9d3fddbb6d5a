//! `cargo xtask layers`: the layer linter (`cargo-strata`) on this workspace, as a host's own
//! xtask would run it. Without `--manifest-path` it checks this workspace from any directory.

use crate::util::workspace_root;
use anyhow::Result;

/// Runs the linter's command line; returns its exit code (0 clean, 1 violations, 2
/// configuration error).
pub fn run(args: &[String]) -> Result<u8> {
    let mut args = args.to_vec();
    let names_workspace = args
        .iter()
        .any(|a| a == "--manifest-path" || a.starts_with("--manifest-path="));
    if !names_workspace {
        // After a subcommand (`check`, `init`), else first.
        let at = usize::from(args.first().is_some_and(|a| !a.starts_with('-')));
        let manifest = workspace_root()?.join("Cargo.toml");
        args.splice(
            at..at,
            ["--manifest-path".to_owned(), manifest.display().to_string()],
        );
    }
    Ok(cargo_strata::cli::run("cargo xtask layers", args))
}
