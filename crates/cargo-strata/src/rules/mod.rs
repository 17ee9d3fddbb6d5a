//! The rules: their ids (what the report prints and exceptions name) and their checks, one
//! module per concern.

pub(crate) mod backstops;
pub(crate) mod edges;
pub(crate) mod externals;
pub(crate) mod foreign;
pub(crate) mod headers;
pub(crate) mod names;
pub(crate) mod reexports;
pub(crate) mod unused;

use std::fmt;

/// One rule of the linter. New rules arrive in minor versions.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The layer table itself is malformed.
    InvalidTable,
    /// A workspace crate is in no layer.
    UndeclaredCrate,
    /// A dependency between workspace crates that the table does not allow.
    LayerEdge,
    /// A crate re-exports a workspace crate to a layer that may not use it.
    Reexport,
    /// A crate reaches an external crate its layer forbids.
    ForbiddenExternal,
    /// A declared dependency that the code never names (or names only in tests).
    UnusedDependency,
    /// A crate root without its `//! Layer:` header.
    LayerHeader,
    /// A name with a banned suffix.
    BannedName,
    /// A per-layer source backstop matched.
    SourceRule,
    /// A crate compiles, embeds or its build script reads a file from outside its package.
    ForeignSource,
    /// deny.toml's generated block disagrees with the table.
    DenySync,
    /// An exception without a reason, or naming a rule it cannot name.
    InvalidException,
    /// An exception that matches no violation.
    StaleException,
}

impl Rule {
    /// Every rule, in the order `--help` lists them (a slice: rules are added in minor
    /// versions).
    pub const ALL: &'static [Rule] = &[
        Rule::InvalidTable,
        Rule::UndeclaredCrate,
        Rule::LayerEdge,
        Rule::Reexport,
        Rule::ForbiddenExternal,
        Rule::UnusedDependency,
        Rule::LayerHeader,
        Rule::BannedName,
        Rule::SourceRule,
        Rule::ForeignSource,
        Rule::DenySync,
        Rule::InvalidException,
        Rule::StaleException,
    ];

    /// The id the report prints and exceptions name.
    pub fn id(self) -> &'static str {
        match self {
            Rule::InvalidTable => "invalid-table",
            Rule::UndeclaredCrate => "undeclared-crate",
            Rule::LayerEdge => "layer-edge",
            Rule::Reexport => "reexport",
            Rule::ForbiddenExternal => "forbidden-external",
            Rule::UnusedDependency => "unused-dependency",
            Rule::LayerHeader => "layer-header",
            Rule::BannedName => "banned-name",
            Rule::SourceRule => "source-rule",
            Rule::ForeignSource => "foreign-source",
            Rule::DenySync => "deny-sync",
            Rule::InvalidException => "invalid-exception",
            Rule::StaleException => "stale-exception",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|rule| rule.id() == id)
    }

    /// Whether an exception may accept its violations. Problems with the table, the
    /// exceptions or deny.toml are fixed where they are, not excused.
    pub fn accepts_exceptions(self) -> bool {
        !matches!(
            self,
            Rule::InvalidTable | Rule::DenySync | Rule::InvalidException | Rule::StaleException
        )
    }

    /// What the rule checks, in a sentence (`--help` and SARIF show it).
    pub fn summary(self) -> &'static str {
        match self {
            Rule::InvalidTable => {
                "the table itself is wrong: an unknown key, layer or source rule, a crate in two \
                 layers, a listed crate that is not a member, two stack layers on one level"
            }
            Rule::UndeclaredCrate => "a workspace crate is in no layer",
            Rule::LayerEdge => {
                "a dependency between workspace crates climbs the stack, skips a closed layer, \
                 joins two crates of one layer, uses a side layer not in also_uses, touches an \
                 isolated layer, or uses a dev-only layer outside [dev-dependencies]; normal, \
                 dev and build dependencies are reported separately"
            }
            Rule::Reexport => {
                "a crate re-exports (`pub use`, `pub extern crate`) a workspace crate, directly \
                 or through that crate's own re-exports, to a layer that may use it but not the \
                 re-exported crate"
            }
            Rule::ForbiddenExternal => {
                "a crate reaches a crate its layer's forbidden_external lists, directly or \
                 through other external crates (normal dependencies; the shortest chain is \
                 printed)"
            }
            Rule::UnusedDependency => {
                "a declared dependency is never named in the code that could use it, or a \
                 normal dependency is named only by tests"
            }
            Rule::LayerHeader => {
                "the crate root (lib, else each bin) does not start with \
                 `//! Layer: <level> — <name>.`"
            }
            Rule::BannedName => {
                "a crate, module file, module, fn, type, trait, const or static ends with a \
                 banned_name_suffixes entry (`TenantService` counts as `tenant_service`)"
            }
            Rule::SourceRule => {
                "a source rule that runs on a layer (listed in its source_rules, or left out \
                 of the rule's only_in) matches its non-test code, or the code of a procedural \
                 macro it uses, whose output compiles in it"
            }
            Rule::ForeignSource => {
                "a crate compiles or embeds a file outside its package directory (another \
                 crate's sources, or a file of no package): a `#[path]` module, `include!`, \
                 `include_str!` or `include_bytes!`, a symlinked source file or directory, or a \
                 path its build script reads; test code included"
            }
            Rule::DenySync => {
                "the generated [bans] block of deny.toml differs from what the table implies"
            }
            Rule::InvalidException => {
                "an exception has no reason or names an unknown rule, or one that takes none"
            }
            Rule::StaleException => "an exception matches no violation",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
