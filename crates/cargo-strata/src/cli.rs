//! The command line: `cargo strata [check] [options]` and `cargo strata init`, also run by a
//! workspace's own xtask through [`run`].
//!
//! Exit codes: 0 every contract kept; 1 violations (or rules that could not run); 2 a
//! configuration error (a table or exceptions that are wrong, a usage error, a workspace
//! `cargo metadata` cannot read).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line talks on the terminal

use crate::rules::Rule;
use crate::table::{DETECTORS, builtin_source_rules};
use crate::{Format, Options, check, init};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Runs the command line on `args` (without the program name) and returns the exit code.
/// `bin_name` is how the help names the command (`cargo strata`, `cargo xtask layers`).
///
/// ```no_run
/// // A host's xtask: `cargo xtask layers [options]` runs the linter on its workspace.
/// let args: Vec<String> = std::env::args().skip(2).collect();
/// std::process::exit(cargo_strata::cli::run("cargo xtask layers", args).into());
/// ```
pub fn run<I, T>(bin_name: &str, args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = std::iter::once(OsString::from(bin_name)).chain(args.into_iter().map(Into::into));
    let cli = match Cli::command_named(bin_name).try_get_matches_from(argv) {
        Ok(matches) => match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(error) => return usage(&error),
        },
        Err(error) => return usage(&error),
    };
    match cli.command.unwrap_or(Command::Check(cli.check)) {
        Command::Check(args) => run_check(&args),
        Command::Init(args) => run_init(&args),
    }
}

/// Prints clap's help, version or usage error; 0 for the first two, 2 for an error.
fn usage(error: &clap::Error) -> u8 {
    let _ = error.print();
    if error.use_stderr() { 2 } else { 0 }
}

fn run_check(args: &CheckArgs) -> u8 {
    let Some(manifest) = args.manifest_path.clone().or_else(nearest_manifest) else {
        eprintln!("error: no Cargo.toml here or in any parent directory; pass --manifest-path");
        return 2;
    };
    let mut options = Options::default().with_write_deny(args.write_deny);
    if let Some(config) = &args.config {
        options = options.with_config(config);
    }
    let report = match check(&manifest, &options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return 2;
        }
    };
    print!("{}", report.render(args.format.into()));
    for note in &report.notes {
        eprintln!("warning: {note}");
    }
    report.exit_code()
}

/// `init`: drafts the table and writes it to `layers.toml` at the workspace root (never over
/// an existing table), or prints it.
fn run_init(args: &InitArgs) -> u8 {
    let Some(manifest) = args.manifest_path.clone().or_else(nearest_manifest) else {
        eprintln!("error: no Cargo.toml here or in any parent directory; pass --manifest-path");
        return 2;
    };
    let started = match init::start(&manifest) {
        Ok(started) => started,
        Err(error) => {
            eprintln!("error: {error}");
            return 2;
        }
    };
    if args.stdout {
        print!("{}", started.text);
        if let Some(existing) = &started.existing {
            eprintln!(
                "note: the workspace already has a layer table ({existing}); this is the one \
                 its dependency graph suggests"
            );
        }
        return 0;
    }
    if let Some(existing) = &started.existing {
        eprintln!(
            "error: the workspace already has a layer table ({existing}); init writes one only \
             where there is none (`--stdout` prints the draft instead)"
        );
        return 2;
    }
    let path = started.root.join("layers.toml");
    // `create_new`: a layers.toml that appeared since the check above is not overwritten.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, started.text.as_bytes()));
    if let Err(source) = written {
        eprintln!("error: {}", crate::Error::Write { path, source });
        return 2;
    }
    println!(
        "wrote {}: {}\nnext: `cargo strata` checks the workspace against it; edit it from there",
        path.display(),
        started.summary
    );
    0
}

/// The `Cargo.toml` in the current directory or the nearest parent, as cargo finds it.
fn nearest_manifest() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|manifest| manifest.is_file())
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Checks a Cargo workspace against its layer table.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    check: CheckArgs,
}

impl Cli {
    /// The command, named as the caller runs it, with the long help.
    fn command_named(bin_name: &str) -> clap::Command {
        let name = bin_name.to_owned();
        <Cli as clap::CommandFactory>::command()
            .bin_name(name)
            .after_long_help(long_help())
            .after_help("`--help` lists the rules and the table's keys.")
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the workspace against its layer table (the default).
    Check(CheckArgs),
    /// Write a starting layer table, derived from the dependency graph, to layers.toml.
    #[command(after_long_help = INIT_HELP)]
    Init(InitArgs),
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The workspace: a Cargo.toml or the directory holding one (default: the nearest
    /// Cargo.toml from the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Print the table instead of writing layers.toml (also where the workspace has one).
    #[arg(long)]
    stdout: bool,
}

/// What `init` does, in `init --help` and after the table's keys in `--help`.
const INIT_HELP: &str = "cargo strata init [--manifest-path PATH] [--stdout]
  drafts a table from the dependencies declared between the workspace's crates and writes it to
  layers.toml at the workspace root; it refuses (exit 2) when the workspace already has a table
  there or in Cargo.toml. Against the draft, the check finds no layer-edge or undeclared-crate
  violation:
  - a crate no workspace crate depends on sits on top, at L1; any other sits one level below the
    lowest crate depending on it (normal, build or dev), so every dependency points down;
  - crates others use only from [dev-dependencies] form a dev_only side layer;
  - binaries with no workspace dependency either way form an isolated side layer (a library
    without any stays on the stack, ready for its first user);
  - crates that depend on each other (a cycle; cargo allows one through dev-dependencies) share
    a layer with siblings_may_depend;
  - layers are named after what their crates' names share, else level<n>, and left open (a
    commented `closed = true` says what closing would refuse); a comment says why each crate
    is where it is; [rules] switches every rule on but layer-header.
";

#[derive(Debug, Args)]
struct CheckArgs {
    /// The workspace to check: a Cargo.toml or the directory holding one (default: the
    /// nearest Cargo.toml from the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Read the layer table from this file instead of the workspace's layers.toml or
    /// [workspace.metadata.layers].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// First regenerate the generated `[bans]` block of deny.toml (between `# BEGIN generated
    /// by …` and `# END generated`).
    #[arg(long)]
    write_deny: bool,
}

/// The output formats, as the command line names them.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// `file:line: rule: message` lines, then `N contracts kept, M broken`.
    Text,
    /// One JSON document, schema version 1 (see the README).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// GitHub Actions annotations (`::error file=…`).
    Github,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Github => Format::Github,
        }
    }
}

/// The rules and the table's keys, after the options in `--help`.
fn long_help() -> String {
    let mut out = String::from(
        "Reads `cargo metadata --offline` (no network) and the crates' sources, and reports \
         every violation, one per line as `<file>:<line>: <rule>: <message>`, then `N contracts \
         kept, M broken` (a contract is one rule applied to one crate).\n\
         Exit code: 0 clean, 1 violations, 2 configuration error (a wrong table or exception, a \
         usage error, a workspace cargo cannot read).\n\nrules (the ids the report prints, \
         exceptions name and [rules] switches):\n",
    );
    for &rule in Rule::ALL {
        let _ = writeln!(out, "  {:<20}{}", rule.id(), wrap(rule.summary(), 22));
    }
    out.push_str(TABLE_HELP);
    for (name, rule) in builtin_source_rules() {
        let _ = writeln!(out, "{:<22}{name}: detect = {:?}", "", rule.detect);
    }
    out.push_str("                      detectors:\n");
    for (id, summary) in DETECTORS {
        let _ = writeln!(out, "{:<24}{id}: {}", "", wrap(summary, 26));
    }
    out.push_str(TABLE_HELP_END);
    out.push('\n');
    out.push_str(INIT_HELP);
    out
}

const TABLE_HELP: &str = "
the table ([workspace.metadata.layers] in the root Cargo.toml, or the same keys at the top of a
layers.toml beside it):
  banned_name_suffixes = [\"_service\"]
  header = \"//! Layer: {level} — {name}.\"   what layer-header wants on each crate root
  [[workspace.metadata.layers.layer]]   one per layer, any order
    name, level       `L<n>` puts a layer on the stack (L2 sits above L4); a side layer's
                      level may be any word (`dev`, `tooling`)
    crates            its workspace crates; every member must be in exactly one layer
    closed            layers above may not skip it (a level with no crates is no obstacle)
    side              off the stack: used only by layers whose also_uses lists it, and using
                      only what its own also_uses lists
    also_uses         side layers this layer may use as well (a side layer may list any)
    dev_only          reachable from [dev-dependencies] only, by any layer
    isolated          no workspace edges in or out
    siblings_may_depend   crates of this layer may depend on each other
    forbidden_external    external crates the layer must not reach
    reexports         lower layers whose items it may re-export to the layers above (reexport)
    source_rules      source rules to run on its non-test code (besides those whose only_in
                      leaves it out)
  [workspace.metadata.layers.source_rules.<name>]   a source rule of the table's own
    detect            built-in detectors (below)
    calls             function or method names whose calls match
    paths             paths whose use matches (`std::process::Command`, `std::fs`)
    only_in           the layers allowed to do it: the rule runs on every other layer
    message           what the layer must not do (`must not run SQL`)
                      built-in rules, which a table may redefine:
";

const TABLE_HELP_END: &str = "  [workspace.metadata.layers.rules]
    <rule> = false    switches a rule off (every rule runs unless switched off); its
                      exceptions then wait, unreported, for it to return
  [workspace.metadata.layers.external_parents]
    <forbidden> = [\"<owner>\", ...]
                      sanctioned owners: external crates that may depend on a forbidden crate;
                      forbidden-external does not search through them, and deny.toml lists
                      them as wrappers (forbid an owner too by listing it in forbidden_external)
  [[workspace.metadata.layers.exceptions]]
    rule, crate, target, reason
                      accept one violation; `target` is what the violation names: the
                      dependency (layer-edge, unused-dependency), the forbidden crate
                      (forbidden-external), the file (layer-header, source-rule), the foreign
                      file relative to the workspace root (foreign-source), the name
                      (banned-name), the crate (undeclared-crate); the reason is required

forbidden-external follows normal dependencies through external crates only: a workspace
crate on the way is checked against its own layer (the engines reach sea-orm through the
drivers, which own it), and a procedural macro's dependencies run in the compiler, not in the
program, so they do not count.

foreign-source finds the files a crate takes from outside its package directory, which no
dependency edge shows: `#[path]` modules (resolved from the declaring file, as rustc does),
`include!`, `include_str!` and `include_bytes!` of a literal or of
`concat!(env!(\"CARGO_MANIFEST_DIR\"), …)`, symlinked `.rs` files and directories on the source
walk, and the build script's relative path literals (from the package directory, `.join(…)` on
the manifest directory included). Test code counts and says so. The message names the package
owning the file and its layer.
";

/// `text` wrapped at 96 columns, continuation lines indented by `indent`; a `code span` is
/// never broken.
fn wrap(text: &str, indent: usize) -> String {
    let width = 96 - indent;
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if last.matches('`').count() % 2 == 1 => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_owned()),
        }
    }
    let mut out = String::new();
    let mut line_len = 0;
    for word in &words {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = Cli::command_named("cargo strata")
            .try_get_matches_from(std::iter::once("cargo-strata").chain(args.iter().copied()))?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
    }

    #[test]
    fn options_in_both_spellings_and_the_check_subcommand() {
        let cli = parse(&[
            "--manifest-path",
            "a/Cargo.toml",
            "--format=json",
            "--write-deny",
        ])
        .expect("parses");
        assert_eq!(cli.check.manifest_path, Some(PathBuf::from("a/Cargo.toml")));
        assert!(matches!(cli.check.format, FormatArg::Json) && cli.check.write_deny);
        let cli = parse(&["check", "--format", "sarif"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Check(CheckArgs {
                format: FormatArg::Sarif,
                ..
            }))
        ));
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["--format", "xml"]).is_err());
        assert!(parse(&["--manifest-path"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        assert!(parse(&["init", "--format", "json"]).is_err());
    }

    #[test]
    fn init_takes_a_manifest_and_stdout() {
        let cli = parse(&["init", "--manifest-path", "w", "--stdout"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Init(InitArgs { stdout: true, manifest_path: Some(ref p) })) if p == &PathBuf::from("w")
        ));
        assert!(long_help().contains("cargo strata init"));
    }

    #[test]
    fn help_lists_every_rule_and_detector() {
        let help = long_help();
        for &rule in Rule::ALL {
            assert!(help.contains(rule.id()), "{}", rule.id());
        }
        for (detector, _) in DETECTORS {
            assert!(help.contains(detector), "{detector}");
        }
    }
}
