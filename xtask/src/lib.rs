//! Layer: tooling — xtask. Library half of `cargo xtask`, so its checks run as tests too.
//!
//! Each module is one command; `main.rs` only dispatches; `util` holds what commands share. Commands return the process exit
//! code (0 clean, 1 violations found, 2 usage error).

pub mod bench;
pub mod ci;
pub mod cluster;
pub mod fuzz;
pub mod layers;
pub mod package;
pub mod pg;
pub mod schemathesis;
pub mod semver;
pub mod tidy;
pub mod util;
