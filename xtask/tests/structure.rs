//! The workspace keeps the shape ARCHITECTURE.md promises: every area has a module of its
//! name in drivers, engines, the spine and the routes (but for the documented gaps), the
//! spine runs no use case through a macro, and a source file over 600 lines says why near its
//! top.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    xtask::util::workspace_root().unwrap()
}

const AREAS: [&str; 19] = [
    "tenants",
    "memberships",
    "users",
    "api_keys",
    "invitations",
    "runs",
    "usage",
    "audit",
    "billing",
    "support",
    "onboarding",
    "lifecycle",
    "memory_pins",
    "operators",
    "identities",
    "limits",
    "plans",
    "projects",
    "webhooks",
];

/// (layer directory, areas without a module there: ARCHITECTURE.md's "Areas" says why).
const LAYERS: [(&str, &[&str]); 4] = [
    ("crates/account-drivers/src", &[]),
    ("crates/account-engines/src", &[]),
    ("crates/account-spine/src", &[]),
    ("crates/account-api/src/routes", &["operators"]),
];

#[test]
fn every_area_has_a_module_of_its_name_in_every_layer() {
    let root = root();
    let mut missing = Vec::new();
    for (dir, gaps) in LAYERS {
        for area in AREAS {
            let dir = root.join(dir);
            let exists =
                dir.join(format!("{area}.rs")).is_file() || dir.join(area).join("mod.rs").is_file();
            if exists == gaps.contains(&area) {
                let what = if exists {
                    "documented gap has"
                } else {
                    "lacks"
                };
                missing.push(format!("{} {what} `{area}`", dir.display()));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !["target", "fixtures", ".git"].contains(&name.as_str()) {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_spine_has_no_use_case_macro() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/account-spine/src"), &mut files);
    let with_macros: Vec<_> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("macro_rules!"))
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(with_macros, ["operations.rs"], "only the operation table");
}

#[test]
fn a_source_file_over_600_lines_says_why_near_its_top() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "migrations", "xtask/src", "xtask/tests", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    let unexplained: Vec<_> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            let long = text.lines().count() > 600;
            let head: String = text.lines().take(10).collect::<Vec<_>>().join("\n");
            (long && !head.contains("Over 600 lines")).then(|| file.display().to_string())
        })
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
}
