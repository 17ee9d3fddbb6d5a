//! Placing a path: where it leads once symlinks are followed, and which package owns it.
//!
//! A path in code may name a file that does not exist yet (a build script's output, a typo the
//! compiler will report), so resolving never fails: the part that exists is canonicalized and
//! the rest applied by hand.

use crate::metadata::Package;
use std::path::{Component, Path, PathBuf};

/// The packages' directories, symlinks followed, deepest first: the first that contains a
/// file owns it (a crate nested in another's directory owns its own files).
pub(super) struct Owners<'m> {
    /// Directory and package.
    dirs: Vec<(PathBuf, &'m Package)>,
}

impl<'m> Owners<'m> {
    /// The owners among `packages` (members, path packages and registry crates alike).
    pub(super) fn new(packages: &'m [Package]) -> Self {
        let mut dirs: Vec<(PathBuf, &Package)> =
            packages.iter().map(|p| (resolve(p.dir()), p)).collect();
        dirs.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.components().count()));
        Owners { dirs }
    }

    /// The package owning `path` (already resolved), if any does.
    pub(super) fn of(&self, path: &Path) -> Option<&'m Package> {
        self.dirs
            .iter()
            .find(|(dir, _)| path.starts_with(dir))
            .map(|(_, package)| *package)
    }
}

/// `path` as the file system reaches it: symlinks followed and `..` applied. For a path that
/// does not exist, its longest existing ancestor is resolved and the rest applied lexically,
/// so a missing file is still placed where it would be.
pub(super) fn resolve(path: &Path) -> PathBuf {
    let components: Vec<Component<'_>> = path.components().collect();
    for existing in (1..=components.len()).rev() {
        let base: PathBuf = components[..existing].iter().collect();
        if let Ok(resolved) = std::fs::canonicalize(&base) {
            return apply(resolved, &components[existing..]);
        }
    }
    apply(PathBuf::new(), &components)
}

/// Whether `path` lies under `dir` by its text alone (`..` applied, symlinks not followed).
pub(super) fn lexically_inside(path: &Path, dir: &Path) -> bool {
    normalize(path).starts_with(normalize(dir))
}

/// `path` with `.` and `..` applied by its text.
fn normalize(path: &Path) -> PathBuf {
    apply(PathBuf::new(), &path.components().collect::<Vec<_>>())
}

/// `base` with `rest` applied: `.` dropped, `..` taking off the component before it (never
/// the root).
fn apply(mut base: PathBuf, rest: &[Component<'_>]) -> PathBuf {
    for component in rest {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match base.components().next_back() {
                Some(Component::Normal(_)) => {
                    base.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => base.push(".."),
            },
            other => base.push(other.as_os_str()),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cargo-strata-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        resolve(&dir)
    }

    #[test]
    fn missing_paths_are_placed_by_their_text() {
        let missing = Path::new("/nonexistent-strata/crates/a/src/../../b/src/./db.rs");
        assert_eq!(
            resolve(missing),
            Path::new("/nonexistent-strata/crates/b/src/db.rs")
        );
        assert_eq!(
            resolve(Path::new("/nonexistent-strata/../../..")),
            Path::new("/")
        );
        assert!(lexically_inside(
            Path::new("/w/crates/a/src/../x.rs"),
            Path::new("/w/crates/a")
        ));
        assert!(!lexically_inside(
            Path::new("/w/crates/a/src/../../b/x.rs"),
            Path::new("/w/crates/a/")
        ));
        assert!(!lexically_inside(
            Path::new("/w/crates/ab/x.rs"),
            Path::new("/w/crates/a")
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_even_to_missing_files() {
        let dir = scratch("symlinks");
        let other = dir.join("other/src");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::write(other.join("db.rs"), "").expect("write");
        std::fs::create_dir_all(dir.join("mine/src")).expect("mkdir");
        std::os::unix::fs::symlink("../../other/src", dir.join("mine/src/shared")).expect("link");
        assert_eq!(
            resolve(&dir.join("mine/src/shared/db.rs")),
            other.join("db.rs")
        );
        assert_eq!(
            resolve(&dir.join("mine/src/shared/new.rs")),
            other.join("new.rs")
        );
        // `..` after a symlink leaves the symlink's target, as the file system does.
        assert_eq!(
            resolve(&dir.join("mine/src/shared/../lib.rs")),
            dir.join("other/lib.rs")
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
