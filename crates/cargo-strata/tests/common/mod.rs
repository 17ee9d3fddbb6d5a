//! What the integration tests share: the fixture workspaces, the command line, and a scratch
//! copy of a fixture to change.

#![allow(dead_code, clippy::expect_used)] // each test file uses a part; setup fails loudly

use cargo_strata::{Options, Report, check};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture workspace, in name order.
pub(crate) fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures exist")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The report on the workspace in `dir`.
pub(crate) fn report_for(dir: &Path) -> Report {
    check(dir.join("Cargo.toml"), &Options::default()).expect("the linter runs")
}

/// `cargo strata <args>`, as a user runs it (cargo passes the subcommand's name first).
pub(crate) fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-strata"))
        .arg("strata")
        .args(args)
        .output()
        .expect("cargo-strata runs")
}

/// A scratch copy of a workspace, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Copies `from` (symlinks stay symlinks, build output is left out) to a fresh directory
    /// named after `label`.
    pub(crate) fn copy(from: &Path, label: &str) -> Scratch {
        let to = std::env::temp_dir().join(format!("strata-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(from, &to);
        Scratch(to)
    }

    /// The copy's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the directory `from` to `to`: symlinks stay symlinks, build output is left out.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        let target = to.join(name);
        if path.is_symlink() {
            let link = std::fs::read_link(&path).expect("read_link");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if path.is_dir() {
            if name != "target" {
                copy_dir(&path, &target);
            }
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}
