//! Where the layer table is written: which file holds it, and the line of each of its parts
//! there, so a problem with the table points at the entry at fault.

use super::LayerTable;
use crate::Error;
use crate::manifest::{header, key_of};
use crate::metadata::Metadata;
use std::path::{Path, PathBuf};

/// Where the table is written: the file, its text, and how its tables are named there.
pub(crate) struct TableSource {
    path: PathBuf,
    text: String,
    /// `[workspace.metadata]` when the table is in the root manifest; `None` for a file of
    /// its own.
    manifest_metadata: Option<Option<serde_json::Value>>,
}

/// The prefix of the table's headers in the root manifest.
const MANIFEST_PREFIX: &str = "workspace.metadata.layers";

impl TableSource {
    /// The table `config` names, else `layers.toml` at the workspace root, else the root
    /// manifest's `[workspace.metadata.layers]`. A table in both places is an error, so
    /// nobody edits the one that is not read.
    pub(crate) fn find(metadata: &Metadata, config: Option<&Path>) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))
        };
        let in_manifest = metadata
            .metadata
            .as_ref()
            .is_some_and(|m| m.get("layers").is_some());
        let own_file = metadata.workspace_root.join("layers.toml");
        let file = match config {
            Some(path) => Some(path.to_path_buf()),
            None if own_file.is_file() => {
                if in_manifest {
                    return Err(Error::Config(format!(
                        "the layer table is in two places, {} and [workspace.metadata.layers] \
                         of the root Cargo.toml; keep one",
                        own_file.display()
                    )));
                }
                Some(own_file)
            }
            None => None,
        };
        match file {
            Some(path) => Ok(TableSource {
                text: read(&path)?,
                path,
                manifest_metadata: None,
            }),
            None => {
                let path = metadata.workspace_root.join("Cargo.toml");
                Ok(TableSource {
                    text: std::fs::read_to_string(&path).unwrap_or_default(),
                    path,
                    manifest_metadata: Some(metadata.metadata.clone()),
                })
            }
        }
    }

    /// The file holding the table.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// How the table's headers are named in the file.
    pub(crate) fn prefix(&self) -> &'static str {
        match self.manifest_metadata {
            Some(_) => MANIFEST_PREFIX,
            None => "",
        }
    }

    /// The table, or why it cannot be read.
    pub(crate) fn parse(&self) -> Result<LayerTable, String> {
        match &self.manifest_metadata {
            Some(metadata) => LayerTable::from_metadata(metadata.as_ref()),
            None => toml::from_str::<LayerTable>(&self.text)
                .map(LayerTable::with_builtins)
                .map_err(|e| {
                    let file = self.path.file_name().unwrap_or_default().to_string_lossy();
                    format!("{file} is malformed: {}", e.message())
                }),
        }
    }
}

/// Where the parts of the table sit in the root `Cargo.toml`, for the report.
#[derive(Debug, Default)]
pub(crate) struct TableLines {
    /// The `[workspace.metadata.layers]` header (1 when absent).
    pub(crate) table: usize,
    /// The `[workspace.metadata.layers.external_parents]` header (else the table's).
    pub(crate) external_parents: usize,
    /// Keys of the main table: (key, line).
    table_keys: Vec<(String, usize)>,
    /// Each `[[…layer]]` entry: its header line and its keys.
    layers: Vec<(usize, Vec<(String, usize)>)>,
    /// Each `[[…exceptions]]` entry's header line.
    exceptions: Vec<usize>,
    /// The `[…rules]` header (else the table's).
    pub(crate) rules: usize,
    /// Each `[…source_rules.<name>]` header, by name.
    source_rules: Vec<(String, usize)>,
}

impl TableLines {
    /// Scans the file holding the table, whose tables are named `<prefix>.layer` and so on
    /// (`prefix` is empty for a `layers.toml`). Entries written in another shape (inline
    /// arrays) fall back to the table's header line.
    pub(crate) fn scan(text: &str, prefix: &str) -> Self {
        let mut lines = TableLines {
            table: 1,
            external_parents: 0,
            ..TableLines::default()
        };
        enum Section {
            Other,
            Table,
            Layer,
        }
        // A layers.toml is the table from its first line.
        let mut section = if prefix.is_empty() {
            Section::Table
        } else {
            Section::Other
        };
        for (index, text) in text.lines().enumerate() {
            let line = index + 1;
            let text = text.trim();
            if let Some(header) = header(text) {
                section = Section::Other;
                let relative = if prefix.is_empty() {
                    Some(format!(".{header}"))
                } else {
                    header.strip_prefix(prefix).map(str::to_owned)
                };
                match relative.as_deref() {
                    Some(".rules") => lines.rules = line,
                    Some(name) if name.starts_with(".source_rules.") => {
                        let name = name[".source_rules.".len()..].trim_matches('"');
                        lines.source_rules.push((name.to_owned(), line));
                    }
                    Some("") => {
                        lines.table = line;
                        section = Section::Table;
                    }
                    Some(".layer") => {
                        lines.layers.push((line, Vec::new()));
                        section = Section::Layer;
                    }
                    Some(".exceptions") => lines.exceptions.push(line),
                    Some(".external_parents") => lines.external_parents = line,
                    _ => {}
                }
                continue;
            }
            let Some(key) = key_of(text) else { continue };
            match section {
                Section::Table => lines.table_keys.push((key.to_owned(), line)),
                Section::Layer => {
                    if let Some((_, keys)) = lines.layers.last_mut() {
                        keys.push((key.to_owned(), line));
                    }
                }
                Section::Other => {}
            }
        }
        if lines.external_parents == 0 {
            lines.external_parents = lines.table;
        }
        if lines.rules == 0 {
            lines.rules = lines.table;
        }
        lines
    }

    /// The header line of source rule `name`, else the table's.
    pub(crate) fn source_rule(&self, name: &str) -> usize {
        self.source_rules
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.table, |(_, line)| *line)
    }

    /// The line of `key` in layer entry `index`, else the entry's header, else the table's.
    pub(crate) fn layer_key(&self, index: usize, key: &str) -> usize {
        self.layers.get(index).map_or(self.table, |(header, keys)| {
            keys.iter()
                .find(|(k, _)| k == key)
                .map_or(*header, |(_, line)| *line)
        })
    }

    /// The line of `key` in the main table, else the table's header.
    pub(crate) fn key(&self, key: &str) -> usize {
        self.table_keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.table, |(_, line)| *line)
    }

    /// The header line of exception `index`, else the table's.
    pub(crate) fn exception(&self, index: usize) -> usize {
        self.exceptions.get(index).copied().unwrap_or(self.table)
    }
}
