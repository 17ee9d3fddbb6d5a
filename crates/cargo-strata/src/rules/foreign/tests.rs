//! The scan on sources at paths that do not exist (placed by their text), and symlinks in a
//! scratch directory.

use super::*;

/// The package directory of the scanned files; nothing exists there.
const PACKAGE: &str = "/nonexistent-strata/crates/fx-engines";

/// What a file at `path` reaches for outside [`PACKAGE`]: (how, line, where, test code).
fn outside(path: &str, role: Role, source: &str) -> Vec<(String, usize, String, bool)> {
    let file = SourceFile::lex(PathBuf::from(path), role, source);
    let name = file.path.file_name().and_then(|n| n.to_str());
    let mod_rs = matches!(name, Some("lib.rs" | "main.rs" | "mod.rs" | "build.rs"));
    let mut scan = Scan::new(&file, Path::new(PACKAGE));
    scan.modules_and_includes(mod_rs);
    if role == Role::Build {
        scan.build_script_paths();
    }
    scan.found
        .into_iter()
        .filter(|reach| !reach.target.starts_with(PACKAGE))
        .map(|reach| {
            let how = match reach.way {
                Way::PathAttribute => "#[path]".to_owned(),
                Way::Macro(name) => format!("{name}!"),
                Way::Symlink { .. } => "symlink".to_owned(),
                Way::BuildScript => "build".to_owned(),
            };
            let target = reach.target.to_string_lossy().replace('\\', "/");
            let target = target
                .strip_prefix("/nonexistent-strata/")
                .unwrap_or(&target)
                .to_owned();
            (how, reach.line, target, reach.in_test)
        })
        .collect()
}

/// One expected finding of [`outside`].
fn found(how: &str, line: usize, target: &str, in_test: bool) -> (String, usize, String, bool) {
    (how.to_owned(), line, target.to_owned(), in_test)
}

#[test]
fn module_directories_follow_rustc() {
    let lib = ModuleDir {
        dir: PathBuf::from("src"),
        relative: None,
        depth: 0,
    };
    let a = ModuleDir {
        relative: Some("a".to_owned()),
        ..lib.clone()
    };
    // `#[path]` outside inline modules starts from the file's directory, mod-rs or not.
    assert_eq!(lib.dir.join("x.rs"), Path::new("src/x.rs"));
    assert_eq!(a.dir.join("x.rs"), Path::new("src/x.rs"));
    // Plain submodules of `src/a.rs` live in `src/a/`.
    assert_eq!(a.default_file("m"), Path::new("src/a/m.rs"));
    assert_eq!(lib.default_file("m"), Path::new("src/m.rs"));
    // Inline modules add their name, after the stem of a non-mod-rs file.
    assert_eq!(a.inline("inner", None, 1).dir, Path::new("src/a/inner"));
    assert_eq!(lib.inline("inner", None, 1).dir, Path::new("src/inner"));
    // An inline module's `#[path]` is its directory, from the file's directory.
    assert_eq!(a.inline("inner", Some("p"), 1).dir, Path::new("src/p"));
    assert_eq!(
        a.inline("inner", Some("p"), 1).default_file("m"),
        Path::new("src/p/m.rs")
    );
}

#[test]
fn path_attributes_resolve_from_the_declaring_file() {
    let source = "//! Layer: L5 — engines.\n\
                  #[path = \"../../fx-drivers/src/db.rs\"]\nmod db;\n\
                  #[path = \"rules/decide.rs\"]\npub(crate) mod decide;\n\
                  #[cfg_attr(unix, path = \"../../fx-drivers/src/unix.rs\")]\nmod unix;\n\
                  mod inline {\n    #[path = \"../../../fx-drivers/src/x.rs\"]\n    mod x;\n}\n\
                  #[path = \"../../fx-drivers/src\"]\nmod shared {\n    mod pool;\n}\n\
                  mod plain;\n\
                  #[cfg(test)]\n#[path = \"../../fx-drivers/src/fake.rs\"]\nmod fake;\n";
    assert_eq!(
        outside(&format!("{PACKAGE}/src/lib.rs"), Role::Product, source),
        [
            found("#[path]", 2, "crates/fx-drivers/src/db.rs", false),
            found("#[path]", 6, "crates/fx-drivers/src/unix.rs", false),
            found("#[path]", 9, "crates/fx-drivers/src/x.rs", false),
            found("#[path]", 14, "crates/fx-drivers/src/pool.rs", false),
            found("#[path]", 18, "crates/fx-drivers/src/fake.rs", true),
        ]
    );
}

#[test]
fn a_non_mod_rs_file_nests_inline_modules_under_its_stem() {
    // In `src/a.rs`, this `x` is `src/a/inner/../../../../x.rs`: `crates/x.rs`.
    let source = "mod inner {\n    #[path = \"../../../../x.rs\"]\n    mod x;\n}\n";
    assert_eq!(
        outside(&format!("{PACKAGE}/src/a.rs"), Role::Product, source),
        [found("#[path]", 2, "crates/x.rs", false)]
    );
    // In `src/lib.rs` the same path leads one level further up.
    assert_eq!(
        outside(&format!("{PACKAGE}/src/lib.rs"), Role::Product, source),
        [found("#[path]", 2, "x.rs", false)]
    );
}

#[test]
fn include_macros_with_literals_and_the_manifest_directory() {
    let source = "include!(\"../../fx-drivers/src/db.rs\");\n\
                  const A: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../fx-drivers/schema.sql\"));\n\
                  const B: &[u8] = std::include_bytes!(\"/nonexistent-elsewhere/x.bin\");\n\
                  include!(concat!(env!(\"OUT_DIR\"), \"/generated.rs\"));\n\
                  const C: &str = include_str!(\"../Cargo.toml\");\n\
                  const D: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/README.md\"));\n\
                  fn include(x: &str) { let _ = \"../../elsewhere\"; }\n\
                  #[cfg(test)]\nmod tests { const E: &str = include_str!(\"../../../README.md\"); }\n";
    let found_in_lib = outside(&format!("{PACKAGE}/src/lib.rs"), Role::Product, source);
    assert_eq!(found_in_lib.len(), 4, "{found_in_lib:?}");
    assert_eq!(
        found_in_lib[..2],
        [
            found("include!", 1, "crates/fx-drivers/src/db.rs", false),
            found("include_str!", 2, "crates/fx-drivers/schema.sql", false),
        ]
    );
    assert_eq!(found_in_lib[2].0, "include_bytes!");
    assert_eq!(found_in_lib[2].2, "/nonexistent-elsewhere/x.bin");
    assert_eq!(found_in_lib[3], found("include_str!", 9, "README.md", true));
    // A test target is test code throughout.
    assert_eq!(
        outside(
            &format!("{PACKAGE}/tests/t.rs"),
            Role::Dev,
            "const S: &str = include_str!(\"../../fx-drivers/src/db.rs\");"
        ),
        [found(
            "include_str!",
            1,
            "crates/fx-drivers/src/db.rs",
            true
        )]
    );
}

#[test]
fn build_scripts_read_from_the_package_directory() {
    let source = "use std::path::Path;\nfn main() {\n\
                  let out = std::env::var(\"OUT_DIR\").unwrap();\n\
                  std::fs::copy(\"../fx-drivers/src/db.rs\", Path::new(&out).join(\"db.rs\")).unwrap();\n\
                  let up = Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"../..\").join(\"README.md\");\n\
                  let schema = concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../fx-drivers/schema.sql\");\n\
                  println!(\"cargo:rerun-if-changed=../fx-drivers/src/pool.rs\");\n\
                  let root = std::env::var(\"CARGO_MANIFEST_DIR\").unwrap();\n\
                  let seed = Path::new(&root).join(\"../fx-drivers/seed.sql\");\n\
                  let target = Path::new(&out).join(\"../../..\");\n\
                  println!(\"cargo:rustc-link-search=/usr/lib\");\n\
                  let local = Path::new(\"src/lib.rs\");\n\
                  let message = \"build.rs\";\n}\n";
    assert_eq!(
        outside(&format!("{PACKAGE}/build.rs"), Role::Build, source),
        [
            found("build", 4, "crates/fx-drivers/src/db.rs", false),
            found("build", 5, "README.md", false),
            found("build", 6, "crates/fx-drivers/schema.sql", false),
            found("build", 7, "crates/fx-drivers/src/pool.rs", false),
            found("build", 9, "crates/fx-drivers/seed.sql", false),
        ]
    );
    // The same literals in product code are data, not files the build reads.
    assert!(outside(&format!("{PACKAGE}/src/lib.rs"), Role::Product, source).is_empty());
}

/// A package in a scratch directory: its manifest path and a lib target at `src/lib.rs`.
#[cfg(unix)]
fn scratch_package(dir: &Path) -> Package {
    Package {
        name: "fx-engines".to_owned(),
        id: "fx-engines".to_owned(),
        manifest_path: dir.join("Cargo.toml"),
        dependencies: Vec::new(),
        targets: vec![crate::metadata::Target {
            kind: vec!["lib".to_owned()],
            name: "fx_engines".to_owned(),
            src_path: dir.join("src/lib.rs"),
        }],
    }
}

#[cfg(unix)]
#[test]
fn symlinked_files_and_directories_on_the_source_walk() {
    use std::os::unix::fs::symlink;
    let scratch = std::env::temp_dir().join(format!("cargo-strata-foreign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let scratch = {
        std::fs::create_dir_all(scratch.join("fx-drivers/src")).expect("mkdir");
        resolve(&scratch)
    };
    let engines = scratch.join("fx-engines");
    let write = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(&scratch.join("fx-drivers/src/db.rs"), "pub fn db() {}\n");
    write(&scratch.join("fx-drivers/src/pool/mod.rs"), "\n");
    write(&scratch.join("LICENSE-MIT"), "MIT\n");
    write(&engines.join("Cargo.toml"), "");
    write(
        &engines.join("src/lib.rs"),
        "mod db;\nmod shared;\nmod own;\n#[cfg(test)]\nmod tests;\n",
    );
    write(&engines.join("src/real.rs"), "\n");
    write(&engines.join("src/tests/mod.rs"), "\n");
    symlink("../../fx-drivers/src/db.rs", engines.join("src/db.rs")).expect("link");
    symlink("../../fx-drivers/src/pool", engines.join("src/shared")).expect("link");
    symlink("real.rs", engines.join("src/own.rs")).expect("link");
    symlink(
        "../../../fx-drivers/src/db.rs",
        engines.join("src/tests/db.rs"),
    )
    .expect("link");
    symlink("../LICENSE-MIT", engines.join("LICENSE-MIT")).expect("link");

    let package = scratch_package(&engines);
    let files: Vec<SourceFile> = crate::sources::PackageSources::load(&package).files;
    let mut links: Vec<(String, bool, Option<usize>, bool)> = reaches(&package, &files)
        .into_iter()
        .filter(|reach| !reach.target.starts_with(&engines))
        .map(|reach| {
            let Way::Symlink { link, dir } = reach.way else {
                panic!("only symlinks here: {reach:?}");
            };
            let link = link.strip_prefix(&engines).expect("inside").display();
            (
                link.to_string(),
                dir,
                reach.declared.map(|d| d.1),
                reach.in_test,
            )
        })
        .collect();
    links.sort();
    // `own.rs` leads inside; `LICENSE-MIT` is no source; the test module's link is test code.
    assert_eq!(
        links,
        [
            ("src/db.rs".to_owned(), false, Some(1), false),
            ("src/shared".to_owned(), true, Some(2), false),
            ("src/tests/db.rs".to_owned(), false, None, true),
        ]
    );
    std::fs::remove_dir_all(&scratch).expect("clean up");
}
