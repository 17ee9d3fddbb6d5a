//! `foreign-source`: a crate compiles and embeds only files inside its own package directory.
//!
//! Every other rule reads the dependency graph, and a file pulled in from another directory is
//! no edge of it: `#[path = "../../drivers/src/db.rs"] mod db;` hands the engines the drivers'
//! database code without a dependency, so no layer rule would ever see it. The ways in:
//!
//! - `#[path = "…"]` on a module (also inside `cfg_attr`), resolved as rustc does: from the
//!   declaring file's directory, or inside `mod x { … }` from the inline modules' directory;
//!   a plain `mod x;` inside an inline module whose `#[path]` leads outside counts too;
//! - `include!`, `include_str!` and `include_bytes!` of a literal path (from the file's
//!   directory) or of `concat!(env!("CARGO_MANIFEST_DIR"), "…")` (from the package's);
//! - a symlinked `.rs` file or directory on the package's source walk (`sources`) that leads
//!   outside; other symlinks (a `LICENSE-MIT` pointing at the repository's) are not sources;
//! - the build script's relative path literals, which it resolves from the package directory
//!   (its working directory): `fs::copy("../other/src/x.rs", …)`, `cargo:rerun-if-changed=`
//!   lines, `concat!(env!("CARGO_MANIFEST_DIR"), …)` and `.join("…")` on the manifest
//!   directory. Absolute literals (`/usr/lib`) are the system's, not a crate's, and a `.join`
//!   on a directory the code does not show (`OUT_DIR`) cannot be placed, so neither counts.
//!
//! A file belongs to the package whose directory is the deepest to contain it, after
//! symlinks are followed (a member's nested crate is not the member's); the message names that
//! package and its layer, or says the file is in no package.
//!
//! Test code counts: a test that compiles another crate's sources exercises code its crate
//! does not depend on, an escape just like product code's (`layer-edge` takes the same stance
//! on dev-dependencies). Its violations end with `in test code`; a legitimate one (a test
//! that reads the repository's README) is what exceptions are for.
//!
//! Only a path written as literals is found: one computed at run time is not.

mod paths;
mod tokens;

use super::Rule;
use crate::Workspace;
use crate::lexer::TokenKind;
use crate::metadata::Package;
use crate::report::{Report, Violation};
use crate::sources::{Role, SourceFile};
use paths::{Owners, lexically_inside, resolve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokens::{Written, attribute, is_join, join_base, module_item, with_joins, written_path};

/// The macros that compile (`include!`) or embed a file.
const INCLUDE_MACROS: [&str; 3] = ["include", "include_str", "include_bytes"];

/// Build script output that names a file the script depends on, before the file.
const RERUN_PREFIXES: [&str; 2] = ["cargo:rerun-if-changed=", "cargo::rerun-if-changed="];

/// Checks every member's sources for files reached outside its package.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    // Placing a file among every package resolves every package's directory: done only once
    // a file outside its own package turns up, which in a tidy workspace is never.
    let owners = std::cell::OnceCell::new();
    let root = resolve(&ws.graph.metadata.workspace_root);
    // Targets are canonical, so they are shown relative to the canonical root.
    let show = |path: &Path| match path.strip_prefix(&root) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
        Ok(rest) => rest.to_string_lossy().replace('\\', "/"),
        Err(_) => ws.relative(path),
    };
    for (name, package) in &ws.graph.members {
        let Some(sources) = ws.sources.get(name) else {
            continue;
        };
        report.checked(Rule::ForeignSource, name);
        let own_dir = resolve(package.dir());
        // Only a package nested in this one's directory can own a file under it.
        let nests = ws
            .graph
            .metadata
            .packages
            .iter()
            .any(|p| p.id != package.id && p.dir().starts_with(package.dir()));
        for reach in reaches(package, &sources.files) {
            if !nests && reach.target.starts_with(&own_dir) {
                continue;
            }
            let owners = owners.get_or_init(|| Owners::new(&ws.graph.metadata.packages));
            let owner = owners.of(&reach.target);
            if owner.is_some_and(|owner| owner.id == package.id) {
                continue;
            }
            report.push(violation(ws, name, owner, &show(&reach.target), &reach));
        }
    }
}

/// How a file from outside the package gets in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Way {
    /// `#[path]` on a module, or a module inside an inline module with one.
    PathAttribute,
    /// `include!`, `include_str!` or `include_bytes!`: the macro's name.
    Macro(String),
    /// A symlink the source walk goes through.
    Symlink {
        /// The symlink.
        link: PathBuf,
        /// Whether it leads to a directory.
        dir: bool,
    },
    /// A path the build script reads.
    BuildScript,
}

/// A file the package reaches for, and where it does.
#[derive(Debug)]
struct Reach {
    /// How.
    way: Way,
    /// The file that reaches for it (the symlink itself for a symlink).
    file: PathBuf,
    /// The line that does.
    line: usize,
    /// The file reached, symlinks followed.
    target: PathBuf,
    /// Whether only test code reaches for it.
    in_test: bool,
    /// The `mod` declaration that loads a symlinked file: its file and line.
    declared: Option<(PathBuf, usize)>,
}

/// A plain `mod name;` and the file it loads, so a symlinked file can show its declaration.
#[derive(Debug)]
struct Declaration {
    /// The file rustc loads for it.
    loads: PathBuf,
    /// The declaring file.
    file: PathBuf,
    /// The line of `mod`.
    line: usize,
}

/// The violation for `reach`, a file owned by `owner` (`None`: no package) shown as `target`.
fn violation(
    ws: &Workspace<'_>,
    krate: &str,
    owner: Option<&Package>,
    target: &str,
    reach: &Reach,
) -> Violation {
    let (whose, owned_by) = match owner {
        Some(owner) => match ws.table.layer_of(&owner.name) {
            Some(layer) => (
                format!("of {} ({})", owner.name, layer.describe()),
                owner.name.clone(),
            ),
            None => (format!("of {}", owner.name), owner.name.clone()),
        },
        None => (
            "from outside any package".to_owned(),
            "outside any package".to_owned(),
        ),
    };
    let file = ws.relative(&reach.file);
    let mut chain: Vec<String> = reach
        .declared
        .iter()
        .map(|(declaring, line)| format!("{}:{line}", ws.relative(declaring)))
        .collect();
    let action = match &reach.way {
        Way::PathAttribute => format!("compiles {target} {whose} through #[path]"),
        Way::Macro(name) if name == "include" => {
            format!("compiles {target} {whose} through include!")
        }
        Way::Macro(name) => format!("embeds {target} {whose} through {name}!"),
        Way::Symlink { link, dir } => {
            let files = if *dir { "the files under " } else { "" };
            format!(
                "compiles {files}{target} {whose} through the symlink {}",
                ws.relative(link)
            )
        }
        Way::BuildScript => format!("reads {target} {whose} in its build script"),
    };
    chain.push(match &reach.way {
        Way::Symlink { .. } => format!("{file} (symlink)"),
        _ => format!("{file}:{}", reach.line),
    });
    chain.push(format!("{target} ({owned_by})"));
    let test = if reach.in_test { " in test code" } else { "" };
    Violation::new(
        Rule::ForeignSource,
        krate,
        target,
        (&file, reach.line),
        format!("{krate} {action}{test}"),
    )
    .with_chain(chain)
}

/// Every file the package's sources reach for through a path, a symlink or its build script,
/// inside the package or not.
fn reaches(package: &Package, files: &[SourceFile]) -> Vec<Reach> {
    let dir = package.dir();
    let roots: Vec<&Path> = package
        .targets
        .iter()
        .map(|t| t.src_path.as_path())
        .collect();
    let mut found = Vec::new();
    let mut declarations = Vec::new();
    for file in files {
        let name = file.path.file_name().and_then(|n| n.to_str());
        let mod_rs = roots.contains(&file.path.as_path())
            || matches!(name, Some("lib.rs" | "main.rs" | "mod.rs"));
        let mut scan = Scan::new(file, dir);
        scan.modules_and_includes(mod_rs);
        if file.role == Role::Build {
            scan.build_script_paths();
        }
        found.append(&mut scan.found);
        declarations.append(&mut scan.declarations);
    }
    found.extend(symlinks(dir, files, &declarations));
    found
}

/// Where a module's `#[path]` values and `mod x;` files resolve, as rustc tracks it.
#[derive(Debug, Clone)]
struct ModuleDir {
    /// The directory `#[path]` values start from.
    dir: PathBuf,
    /// In a non-mod-rs file (`src/a.rs`), its stem: `mod x;` there loads `src/a/x.rs`.
    relative: Option<String>,
    /// The brace depth of an inline module's body (0 for the file).
    depth: usize,
}

impl ModuleDir {
    /// The directory of the inline module `name` declared here, `#[path]` value or not.
    fn inline(&self, name: &str, path: Option<&str>, depth: usize) -> ModuleDir {
        // An inline module's `#[path]` names its directory, from this one's (no stem).
        let dir = match path {
            Some(path) => self.dir.join(path),
            None => self.submodules().join(name),
        };
        ModuleDir {
            dir,
            relative: None,
            depth,
        }
    }

    /// The file a plain `mod name;` here loads: `name.rs`, or `name/mod.rs` when only that
    /// exists.
    fn default_file(&self, name: &str) -> PathBuf {
        let base = self.submodules();
        let flat = base.join(format!("{name}.rs"));
        let nested = base.join(name).join("mod.rs");
        if !flat.exists() && nested.exists() {
            nested
        } else {
            flat
        }
    }

    /// The directory holding this module's submodule files.
    fn submodules(&self) -> PathBuf {
        match &self.relative {
            Some(stem) => self.dir.join(stem),
            None => self.dir.clone(),
        }
    }
}

/// Reads one file's tokens for the paths it compiles, embeds or (a build script) reads.
struct Scan<'f> {
    /// The file.
    file: &'f SourceFile,
    /// Its package's directory.
    package_dir: &'f Path,
    /// Per token: already read as part of a path.
    used: Vec<bool>,
    /// What the file reaches for.
    found: Vec<Reach>,
    /// Its plain `mod x;` declarations.
    declarations: Vec<Declaration>,
}

impl<'f> Scan<'f> {
    /// A scan of `file`, in the package at `package_dir`.
    fn new(file: &'f SourceFile, package_dir: &'f Path) -> Self {
        Scan {
            file,
            package_dir,
            used: vec![false; file.tokens.len()],
            found: Vec::new(),
            declarations: Vec::new(),
        }
    }

    /// Whether token `index` is test code (build scripts never are).
    fn in_test(&self, index: usize) -> bool {
        match self.file.role {
            Role::Dev => true,
            Role::Product => self.file.in_test[index],
            Role::Build => false,
        }
    }

    /// Records that the code at token `index` reaches for `path`.
    fn reach(&mut self, way: Way, index: usize, path: &Path) {
        self.found.push(Reach {
            way,
            file: self.file.path.clone(),
            line: self.file.tokens[index].line,
            target: resolve(path),
            in_test: self.in_test(index),
            declared: None,
        });
    }

    /// Module declarations and `include!`-family calls. `mod_rs`: the file is a crate root or
    /// `lib.rs`/`main.rs`/`mod.rs`, whose submodules sit beside it.
    fn modules_and_includes(&mut self, mod_rs: bool) {
        let file = self.file;
        let tokens = file.tokens.as_slice();
        let file_dir = file.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let stem = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned());
        let mut modules = vec![ModuleDir {
            dir: file_dir.clone(),
            relative: if mod_rs { None } else { stem },
            depth: 0,
        }];
        let mut depth = 0;
        let mut path_attribute: Option<usize> = None;
        let mut at = 0;
        while at < tokens.len() {
            if let Some((end, inner, path)) = attribute(tokens, at) {
                if !inner {
                    path_attribute = path.or(path_attribute);
                }
                at = end;
                continue;
            }
            if let Some((name, keyword, open)) = module_item(tokens, at) {
                // `modules` always holds the file's own entry, pushed above.
                let module = modules.last().cloned().unwrap_or(ModuleDir {
                    dir: file_dir.clone(),
                    relative: None,
                    depth: 0,
                });
                let path = path_attribute.take();
                if tokens[open].is_punct('{') {
                    let path = path.map(|index| tokens[index].text.as_str());
                    modules.push(module.inline(name, path, depth + 1));
                } else if let Some(index) = path {
                    self.used[index] = true;
                    self.reach(
                        Way::PathAttribute,
                        index,
                        &module.dir.join(tokens[index].text.as_str()),
                    );
                } else {
                    let loads = module.default_file(name);
                    // Only an inline module's `#[path]` takes a plain `mod x;` outside by
                    // name; a symlink on the way is reported as one.
                    if !lexically_inside(&loads, self.package_dir) {
                        self.reach(Way::PathAttribute, keyword, &loads);
                    }
                    self.declarations.push(Declaration {
                        loads,
                        file: file.path.clone(),
                        line: tokens[keyword].line,
                    });
                }
                at = open; // the brace still counts below
                continue;
            }
            path_attribute = None;
            let token = &tokens[at];
            if token.is_punct('{') {
                depth += 1;
            } else if token.is_punct('}') {
                if modules.len() > 1 && modules.last().is_some_and(|m| m.depth == depth) {
                    modules.pop();
                }
                depth = depth.saturating_sub(1);
            } else if let Some(end) = self.include(at, &file_dir) {
                at = end;
                continue;
            }
            at += 1;
        }
    }

    /// An `include!`, `include_str!` or `include_bytes!` call at `at`: records its file and
    /// returns the index past its path.
    fn include(&mut self, at: usize, file_dir: &Path) -> Option<usize> {
        let tokens = self.file.tokens.as_slice();
        let name = &tokens[at];
        if name.kind != TokenKind::Ident || !INCLUDE_MACROS.contains(&name.text.as_str()) {
            return None;
        }
        if !(tokens.get(at + 1)?.is_punct('!') && tokens.get(at + 2)?.is_punct('(')) {
            return None;
        }
        let written = written_path(tokens, at + 3, self.package_dir)?;
        self.used[at + 3..written.end].fill(true);
        // A literal is relative to the including file; `join` keeps an absolute path.
        let path = file_dir.join(&written.path);
        self.reach(Way::Macro(name.text.to_string()), at + 3, &path);
        Some(written.end)
    }

    /// A build script's paths: literals, `concat!`s and `env!("CARGO_MANIFEST_DIR")` with
    /// their `.join("…")`s, from the package directory, where the script runs.
    fn build_script_paths(&mut self) {
        let tokens = self.file.tokens.as_slice();
        let mut at = 0;
        while at < tokens.len() {
            if self.used[at] {
                at += 1;
                continue;
            }
            let Some(written) = written_path(tokens, at, self.package_dir) else {
                at += 1;
                continue;
            };
            let written = with_joins(tokens, written);
            self.used[at..written.end].fill(true);
            if let Some(path) = self.build_path(at, &written) {
                self.reach(Way::BuildScript, at, &path);
            }
            at = written.end;
        }
    }

    /// The file a path written at `at` in the build script names, when it can be placed: a
    /// relative literal (a `cargo:rerun-if-changed=` line's file too) from the package
    /// directory, or from a `.join` receiver that shows `CARGO_MANIFEST_DIR`.
    fn build_path(&self, at: usize, written: &Written) -> Option<PathBuf> {
        if written.manifest {
            return Some(written.path.clone());
        }
        let text = written.path.to_string_lossy();
        let text = RERUN_PREFIXES
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .unwrap_or(&text);
        if text.is_empty() || text.contains('\n') || text.contains("://") {
            return None;
        }
        if Path::new(text).is_absolute() {
            return None;
        }
        let tokens = self.file.tokens.as_slice();
        let base = if at >= 3 && is_join(tokens, at - 3) {
            join_base(tokens, at - 3, self.package_dir)?
        } else {
            self.package_dir.to_path_buf()
        };
        Some(base.join(text))
    }
}

/// The symlinks inside the package that its source walk goes through (the outermost on each
/// file's way), with the `mod` declarations loading them. A symlink some product code comes
/// through is product code.
fn symlinks(package_dir: &Path, files: &[SourceFile], declarations: &[Declaration]) -> Vec<Reach> {
    let mut links: BTreeMap<PathBuf, bool> = BTreeMap::new();
    for file in files {
        let Ok(rest) = file.path.strip_prefix(package_dir) else {
            continue;
        };
        let mut path = package_dir.to_path_buf();
        for component in rest.components() {
            path.push(component);
            if path
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                let in_test = links.entry(path.clone()).or_insert(true);
                *in_test &= whole_file_is_test(file);
                break;
            }
        }
    }
    links
        .into_iter()
        .map(|(link, in_test)| Reach {
            way: Way::Symlink {
                dir: link.is_dir(),
                link: link.clone(),
            },
            target: resolve(&link),
            declared: declarations
                .iter()
                .find(|d| d.loads.starts_with(&link))
                .map(|d| (d.file.clone(), d.line)),
            file: link,
            line: 1,
            in_test,
        })
        .collect()
}

/// Whether all of `file` is test code: a test, bench or example, or a `#[cfg(test)]` module.
fn whole_file_is_test(file: &SourceFile) -> bool {
    match file.role {
        Role::Dev => true,
        Role::Build => false,
        Role::Product => !file.in_test.is_empty() && file.in_test.iter().all(|t| *t),
    }
}

#[cfg(test)]
mod tests;
