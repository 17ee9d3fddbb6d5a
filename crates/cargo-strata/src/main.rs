//! Layer: tooling — linter. `cargo strata`: the layer linter as a cargo subcommand.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Cargo runs `cargo-strata strata <args>` for `cargo strata <args>`; run directly, the
    // binary gets `<args>` alone.
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|first| first == "strata") {
        args.remove(0);
    }
    ExitCode::from(cargo_strata::cli::run("cargo strata", args))
}
