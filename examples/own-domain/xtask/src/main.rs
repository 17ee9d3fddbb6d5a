//! Layer: tooling — xtask. The shop's `cargo xtask`: `cargo xtask layers [options]` checks
//! the workspace against its layer table with cargo-strata's command line, as any host's
//! xtask runs it (`cargo xtask layers --help` documents the options and the table's keys).

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|command| command != "layers") {
        eprintln!("usage: cargo xtask layers [options]   (see cargo xtask layers --help)");
        return ExitCode::from(2);
    }
    let mut args: Vec<OsString> = args.collect();
    // Without --manifest-path, this workspace, from whatever directory cargo was run in:
    // after a subcommand (`check`, `init`), else first.
    if !args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--manifest-path"))
    {
        let at = usize::from(
            args.first()
                .is_some_and(|a| !a.to_string_lossy().starts_with('-')),
        );
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        args.splice(at..at, ["--manifest-path".into(), manifest.into()]);
    }
    ExitCode::from(cargo_strata::cli::run("cargo xtask layers", args))
}
