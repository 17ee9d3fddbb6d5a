//! Line numbers in `Cargo.toml` files, so each violation points at the declaration to change.
//!
//! `cargo metadata` carries no spans, so this reads the manifest text line by line. It knows
//! the shapes cargo accepts for a dependency: `name = …`, `name.workspace = true`, quoted keys,
//! `[dependencies.name]` tables and `[target.'cfg(…)'.dependencies]` sections. When a shape is
//! not found the report falls back to line 1 rather than guessing.

use crate::metadata::EdgeKind;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Manifest texts read so far, so each file is read once however many violations it has.
#[derive(Default)]
pub(crate) struct Manifests {
    texts: RefCell<HashMap<PathBuf, String>>,
}

impl Manifests {
    /// The line declaring the dependency `key` (its rename, else its package name) in the
    /// section of `kind`, or 1.
    pub(crate) fn dependency_line(&self, manifest: &Path, key: &str, kind: EdgeKind) -> usize {
        self.with_text(manifest, |text| dependency_line(text, key, kind))
    }

    /// The line of the package's `name = …`, or 1.
    pub(crate) fn package_name_line(&self, manifest: &Path) -> usize {
        self.with_text(manifest, |text| {
            let mut in_package = false;
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if let Some(header) = header(line) {
                    in_package = header == "package";
                } else if in_package && key_of(line) == Some("name") {
                    return index + 1;
                }
            }
            1
        })
    }

    fn with_text(&self, manifest: &Path, find: impl FnOnce(&str) -> usize) -> usize {
        let mut texts = self.texts.borrow_mut();
        if !texts.contains_key(manifest) {
            let text = std::fs::read_to_string(manifest).unwrap_or_default();
            texts.insert(manifest.to_path_buf(), text);
        }
        texts.get(manifest).map_or(1, |text| find(text))
    }
}

/// The table name of a `[header]` or `[[header]]` line, without spaces around the dots.
pub(crate) fn header(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let end = inner.find(']')?;
    let inner = inner[..end].trim_start_matches('[');
    Some(
        inner
            .split('.')
            .map(|part| part.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The first key of a `key = value` or `key.sub = value` line, unquoted.
pub(crate) fn key_of(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
        return None;
    }
    let key = if let Some(quoted) = line.strip_prefix('"') {
        &quoted[..quoted.find('"')?]
    } else {
        let end = line
            .find(|c: char| c == '=' || c == '.' || c.is_whitespace())
            .unwrap_or(line.len());
        &line[..end]
    };
    Some(key)
}

/// See [`Manifests::dependency_line`].
fn dependency_line(manifest: &str, key: &str, kind: EdgeKind) -> usize {
    let section = kind.section();
    let mut in_section = false;
    for (index, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = header(line) {
            // `[target.'cfg(…)'.dependencies]` has dots inside the quotes; the section is the
            // last part either way.
            let table = format!(".{section}.{key}");
            if header == table[1..] || header.ends_with(&table) {
                return index + 1;
            }
            in_section = header == section || header.ends_with(&format!(".{section}"));
            continue;
        }
        if in_section && key_of(line) == Some(key) {
            return index + 1;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[package]
name = "a"

[dependencies]
serde.workspace = true
"b" = { path = "../b" }
short = { package = "long-name", version = "1" }

[dev-dependencies]
serde = "1"

[build-dependencies.cc]
version = "1"

[target.'cfg(target_os = "linux")'.dependencies]
libc = "0.2"

[ target . "cfg(unix)" . dev-dependencies ]
nix = "0.29"
"#;

    #[test]
    fn finds_the_declaring_line_by_kind() {
        assert_eq!(dependency_line(MANIFEST, "serde", EdgeKind::Normal), 5);
        assert_eq!(dependency_line(MANIFEST, "b", EdgeKind::Normal), 6);
        assert_eq!(dependency_line(MANIFEST, "short", EdgeKind::Normal), 7);
        assert_eq!(dependency_line(MANIFEST, "serde", EdgeKind::Dev), 10);
        assert_eq!(dependency_line(MANIFEST, "cc", EdgeKind::Build), 12);
        assert_eq!(dependency_line(MANIFEST, "libc", EdgeKind::Normal), 16);
        assert_eq!(dependency_line(MANIFEST, "nix", EdgeKind::Dev), 19);
        assert_eq!(dependency_line(MANIFEST, "missing", EdgeKind::Normal), 1);
        assert_eq!(dependency_line(MANIFEST, "libc", EdgeKind::Dev), 1);
    }

    #[test]
    fn headers_and_keys() {
        assert_eq!(
            header("[[workspace.metadata.layers.layer]]").as_deref(),
            Some("workspace.metadata.layers.layer")
        );
        assert_eq!(header("name = 1"), None);
        assert_eq!(key_of("name = \"x\""), Some("name"));
        assert_eq!(key_of("\"quoted-key\" = 1"), Some("quoted-key"));
        assert_eq!(key_of("# comment"), None);
    }
}
