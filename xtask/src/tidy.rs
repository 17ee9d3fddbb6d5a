//! Source hygiene that no compiler lint covers: applied migrations are frozen.
//!
//! A migration that has run somewhere must never change, or databases migrated before and
//! after the edit silently differ. `migrations/frozen.txt` records the SHA-256 of every
//! migration file; `cargo xtask tidy` fails when a recorded file changed or disappeared, or
//! when a migration file is not recorded yet. `cargo xtask tidy --freeze` records new files
//! and never rewrites an existing line.

#![allow(clippy::print_stdout, clippy::print_stderr)] // reporting is this module's job

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const FROZEN_LIST: &str = "migrations/frozen.txt";
const MIGRATIONS_DIR: &str = "migrations/src";

/// One way the migrations drifted from the frozen list.
#[derive(Debug, PartialEq, Eq)]
pub enum Drift {
    /// A recorded migration's content changed.
    Changed {
        /// File name under `migrations/src`.
        file: String,
    },
    /// A recorded migration file is gone.
    Missing {
        /// File name under `migrations/src`.
        file: String,
    },
    /// A migration file is not recorded yet.
    Unrecorded {
        /// File name under `migrations/src`.
        file: String,
    },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Changed { file } => write!(
                f,
                "{MIGRATIONS_DIR}/{file}: frozen-migration: this migration is applied and must not change; write a new migration instead"
            ),
            Drift::Missing { file } => write!(
                f,
                "{FROZEN_LIST}: frozen-migration: {file} is recorded but missing; applied migrations are never deleted"
            ),
            Drift::Unrecorded { file } => write!(
                f,
                "{MIGRATIONS_DIR}/{file}: frozen-migration: new migration not recorded; run `cargo xtask tidy --freeze` and commit {FROZEN_LIST}"
            ),
        }
    }
}

/// `cargo xtask tidy [--freeze]`.
pub fn run(args: &[String]) -> Result<u8> {
    let root = crate::util::workspace_root()?;
    let freeze = args.iter().any(|a| a == "--freeze");
    if freeze {
        let added = freeze_new(&root)?;
        println!("recorded {added} new migration(s) in {FROZEN_LIST}");
        return Ok(0);
    }
    let drift = check(&root)?;
    for problem in &drift {
        println!("{problem}");
    }
    if drift.is_empty() {
        println!("tidy: migrations frozen and recorded");
        Ok(0)
    } else {
        Ok(1)
    }
}

/// Compares the migration files with the frozen list.
pub fn check(root: &Path) -> Result<Vec<Drift>> {
    let recorded = read_frozen(root)?;
    let current = hash_migrations(root)?;
    let mut drift = Vec::new();
    for (file, hash) in &recorded {
        match current.get(file) {
            None => drift.push(Drift::Missing { file: file.clone() }),
            Some(now) if now != hash => drift.push(Drift::Changed { file: file.clone() }),
            Some(_) => {}
        }
    }
    for file in current.keys().filter(|f| !recorded.contains_key(*f)) {
        drift.push(Drift::Unrecorded { file: file.clone() });
    }
    Ok(drift)
}

fn freeze_new(root: &Path) -> Result<usize> {
    let recorded = read_frozen(root)?;
    let mut added = 0;
    let mut text = std::fs::read_to_string(root.join(FROZEN_LIST)).unwrap_or_else(|_| {
        "# SHA-256 of every applied migration; checked by `cargo xtask tidy`. Append only.\n"
            .to_owned()
    });
    for (file, hash) in hash_migrations(root)? {
        if !recorded.contains_key(&file) {
            text.push_str(&format!("{hash}  {file}\n"));
            added += 1;
        }
    }
    std::fs::write(root.join(FROZEN_LIST), text)?;
    Ok(added)
}

fn read_frozen(root: &Path) -> Result<BTreeMap<String, String>> {
    let path = root.join(FROZEN_LIST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (hash, file) = line.split_once("  ")?;
            Some((file.trim().to_owned(), hash.trim().to_owned()))
        })
        .collect())
}

/// Migration files are the `mYYYYMMDD_HHMMSS_*.rs` files of `migrations/src`.
fn hash_migrations(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut hashes = BTreeMap::new();
    let dir = root.join(MIGRATIONS_DIR);
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_migration_file(&name) {
            let bytes = std::fs::read(entry.path())?;
            let digest = Sha256::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            hashes.insert(name, hex);
        }
    }
    Ok(hashes)
}

fn is_migration_file(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.ends_with(".rs")
        && bytes.len() > 17
        && bytes[0] == b'm'
        && bytes[1..9].iter().all(u8::is_ascii_digit)
        && bytes[9] == b'_'
        && bytes[10..16].iter().all(u8::is_ascii_digit)
        && bytes[16] == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(MIGRATIONS_DIR)).unwrap();
        dir
    }

    #[test]
    fn migration_file_names_are_recognised() {
        assert!(is_migration_file("m20261125_000001_create_tenants.rs"));
        assert!(!is_migration_file("lib.rs"));
        assert!(!is_migration_file("m2026112_000001_create_tenants.rs"));
    }

    #[test]
    fn edits_deletions_and_unrecorded_files_are_reported() {
        let root = scratch("drift");
        let file = root
            .join(MIGRATIONS_DIR)
            .join("m20261125_000001_create_a.rs");
        std::fs::write(&file, "one").unwrap();
        assert_eq!(
            check(&root).unwrap(),
            vec![Drift::Unrecorded {
                file: "m20261125_000001_create_a.rs".into()
            }]
        );

        assert_eq!(freeze_new(&root).unwrap(), 1);
        assert!(check(&root).unwrap().is_empty());
        assert_eq!(freeze_new(&root).unwrap(), 0, "freezing twice adds nothing");

        std::fs::write(&file, "two").unwrap();
        assert_eq!(
            check(&root).unwrap(),
            vec![Drift::Changed {
                file: "m20261125_000001_create_a.rs".into()
            }]
        );

        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            check(&root).unwrap(),
            vec![Drift::Missing {
                file: "m20261125_000001_create_a.rs".into()
            }]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
