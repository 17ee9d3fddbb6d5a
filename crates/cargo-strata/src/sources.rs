//! A package's Rust sources, found from its targets, lexed once and shared by the source
//! rules.
//!
//! Each file gets a role from the targets that reach it: product code (lib, bin, proc-macro),
//! dev code (tests, benches, examples) or the build script. Inside product code, items under
//! `#[cfg(test)]` or `#[test]`, and out-of-line `#[cfg(test)] mod x;` files, count as dev code.

use crate::lexer::{FastSet, Token, TokenKind, test_code, tokenize};
use crate::metadata::Package;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which code a file is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Code the package ships: its library and binaries.
    Product,
    /// Tests, benches and examples.
    Dev,
    /// The build script.
    Build,
}

/// One lexed file.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Its path.
    pub(crate) path: PathBuf,
    /// Its role.
    pub(crate) role: Role,
    /// Its tokens.
    pub(crate) tokens: Vec<Token>,
    /// Per token: inside test-only code (always true in dev files).
    pub(crate) in_test: Vec<bool>,
    /// Modules this file declares as `#[cfg(test)] mod name;`.
    test_modules: Vec<String>,
}

impl SourceFile {
    /// Lexes `text`, the contents of `path`, and marks its test code.
    pub(crate) fn lex(path: PathBuf, role: Role, text: &str) -> Self {
        let tokens = tokenize(text);
        let (in_test, test_modules) = if role == Role::Product {
            let code = test_code(&tokens);
            (code.in_test, code.test_modules)
        } else {
            (vec![true; tokens.len()], Vec::new())
        };
        SourceFile {
            path,
            role,
            tokens,
            in_test,
            test_modules,
        }
    }

    /// Tokens of non-test product code, with their indices.
    pub(crate) fn product_tokens(&self) -> impl Iterator<Item = (usize, &Token)> {
        let product = self.role == Role::Product;
        self.tokens
            .iter()
            .enumerate()
            .filter(move |(index, _)| product && !self.in_test[*index])
    }
}

/// Every Rust file of one package.
#[derive(Debug, Default)]
pub(crate) struct PackageSources {
    /// The files, in path order.
    pub(crate) files: Vec<SourceFile>,
}

/// Identifiers a package's code names, by where they occur, borrowed from its tokens.
#[derive(Debug, Default)]
pub(crate) struct Identifiers<'a> {
    /// In non-test product code.
    pub(crate) product: FastSet<'a>,
    /// In test code: `#[cfg(test)]` items, tests, benches and examples.
    pub(crate) test: FastSet<'a>,
    /// In the build script.
    pub(crate) build: FastSet<'a>,
}

impl PackageSources {
    /// Finds, reads and lexes the package's files. Unreadable files are skipped: a missing
    /// source fails the build long before it matters here.
    pub(crate) fn load(package: &Package) -> Self {
        let mut roles: BTreeMap<PathBuf, Role> = BTreeMap::new();
        for target in &package.targets {
            let role = if target.kind.iter().any(|k| k == "custom-build") {
                Role::Build
            } else if target
                .kind
                .iter()
                .any(|k| matches!(k.as_str(), "test" | "bench" | "example"))
            {
                Role::Dev
            } else {
                Role::Product
            };
            for file in target_files(package.dir(), &target.src_path) {
                // A file reachable from product code is product code, whatever else uses it.
                let entry = roles.entry(file).or_insert(role);
                *entry = (*entry).min(role);
            }
        }
        let mut files = read_and_lex(roles.into_iter().collect());
        mark_test_module_files(&mut files);
        PackageSources { files }
    }

    /// The identifiers the package's code names, split by where they occur.
    pub(crate) fn identifiers(&self) -> Identifiers<'_> {
        // Hash sets of borrowed text: a package has a hundred thousand identifier tokens but
        // a few thousand names.
        let mut found = Identifiers::default();
        for file in &self.files {
            for (token, in_test) in file.tokens.iter().zip(&file.in_test) {
                if token.kind != TokenKind::Ident {
                    continue;
                }
                let set = match (file.role, in_test) {
                    (Role::Build, _) => &mut found.build,
                    (Role::Product, false) => &mut found.product,
                    _ => &mut found.test,
                };
                set.insert(token.text.as_str());
            }
        }
        found
    }
}

/// Packages this many files big are read and lexed on one thread per core.
const PARALLEL_FILES: usize = 16;

/// Reads and lexes `files` (in path order), keeping that order. The workspace loads its
/// packages on one thread per core, but hands each thread a run of them; a thread that got
/// the big packages (this workspace's spine, engines, drivers and API) would work alone for
/// most of the load, so a big package spreads its own files over the cores too.
fn read_and_lex(files: Vec<(PathBuf, Role)>) -> Vec<SourceFile> {
    let lex = |(path, role): &(PathBuf, Role)| {
        let text = std::fs::read_to_string(path).ok()?;
        Some(SourceFile::lex(path.clone(), *role, &text))
    };
    if files.len() < PARALLEL_FILES {
        return files.iter().filter_map(lex).collect();
    }
    let mut lexed: Vec<SourceFile> = on_every_core(&files, lex).into_iter().flatten().collect();
    lexed.sort_by(|a, b| a.path.cmp(&b.path));
    lexed
}

/// `work` done on every item, spread over one thread per core: every n-th item to each
/// thread, since neighbouring items (files of a directory, packages in name order) are alike
/// in size. The results come back grouped by thread, not in the items' order.
pub(crate) fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 2 {
        return items.iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    items
                        .iter()
                        .skip(first)
                        .step_by(threads)
                        .map(work)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect()
    })
}

/// The files a target's root reaches: the root alone when it sits in the package directory
/// (`build.rs`), else every `.rs` file under the root's directory.
fn target_files(package_dir: &Path, root: &Path) -> Vec<PathBuf> {
    match root.parent() {
        Some(dir) if dir != package_dir => rust_files(dir),
        _ => vec![root.to_path_buf()],
    }
}

/// Every `.rs` file under `dir`, sorted; skips hidden directories, `target` and directories
/// of other packages (fixture workspaces, nested crates).
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            let foreign = path.join("Cargo.toml").exists();
            if !(foreign || name.starts_with('.') || name == "target") {
                files.extend(rust_files(&path));
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Makes the files of `#[cfg(test)] mod name;` declarations test code: `name.rs` and
/// everything under `name/`, next to the declaring file's module directory.
fn mark_test_module_files(files: &mut [SourceFile]) {
    let mut test_paths: Vec<PathBuf> = Vec::new();
    for file in files.iter().filter(|f| f.role == Role::Product) {
        let dir = module_dir(&file.path);
        for name in &file.test_modules {
            test_paths.push(dir.join(format!("{name}.rs")));
            test_paths.push(dir.join(name));
        }
    }
    for file in files.iter_mut() {
        if test_paths.iter().any(|p| file.path.starts_with(p)) {
            file.in_test.fill(true);
        }
    }
}

/// The directory holding the submodules of the module in `file`: its own directory for
/// `lib.rs`, `main.rs` and `mod.rs`, else a directory named after the file.
fn module_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") | None => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submodules_live_next_to_their_parent() {
        assert_eq!(module_dir(Path::new("src/lib.rs")), Path::new("src"));
        assert_eq!(module_dir(Path::new("src/a/mod.rs")), Path::new("src/a"));
        assert_eq!(module_dir(Path::new("src/a.rs")), Path::new("src/a"));
    }
}
