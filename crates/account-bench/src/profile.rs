//! `--profile OP`: one operation, one way, a given number of calls, for an instruction-counting
//! profiler. `cargo xtask bench --profile OP` runs it under callgrind with two call counts per
//! way and divides the difference of the counts by the difference of the calls.
//!
//! Everything but the measured calls is the same in two runs that differ only in
//! `--profile-calls`: the seeding, the capture, every input prepared (`--profile-inputs`, all
//! before the first call), the statements instantiated for a baseline, the warm-up. The
//! difference is then the calls alone, on every thread: sqlx runs SQLite statements on a
//! thread of its own, and callgrind's client requests (zero, dump) act on the calling thread
//! only. It also leaves out what a case prepares per iteration untimed (the run a completion
//! finishes), which a profile of one long run would count as the call's.

use crate::capture::{Captured, Inputs};
use crate::report::Way;
use crate::{Call, Harness, Prepare};
use anyhow::{Context, Result};
use sea_orm::Statement;
use std::fmt;

/// Calls before the measured ones (statement caches, pools, the member-role cache).
const WARM_UP: usize = 10;

/// The profiling options of the command line.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ProfileArgs {
    /// Call the latency operation whose name contains OP (one must), one way only, on a
    /// single-threaded runtime, then exit (for a profiler: `cargo xtask bench --profile OP`).
    #[arg(long, value_name = "OP")]
    profile: Option<String>,
    /// The way `--profile` calls the operation.
    #[arg(long, value_enum, default_value = "spine")]
    profile_way: Way,
    /// Calls `--profile` measures, after a warm-up of 10.
    #[arg(long, default_value_t = 100)]
    profile_calls: usize,
    /// Inputs prepared before any call (at least the warm-up and the calls); give two runs
    /// that differ in `--profile-calls` the same number.
    #[arg(long)]
    profile_inputs: Option<usize>,
}

impl ProfileArgs {
    /// What `--profile` asks for, if it was given.
    pub(crate) fn profile(&self) -> Option<Profile> {
        let operation = self.profile.clone()?;
        Some(Profile {
            operation,
            way: self.profile_way,
            calls: self.profile_calls,
            inputs: self
                .profile_inputs
                .unwrap_or(0)
                .max(WARM_UP + self.profile_calls),
        })
    }
}

/// One operation to call for a profiler.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    /// Text the operation's name contains.
    pub(crate) operation: String,
    way: Way,
    calls: usize,
    inputs: usize,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "profile of `{}` via {}, {} calls",
            self.operation,
            self.way.name(),
            self.calls
        )
    }
}

/// One call's input, made ready before the calls start.
enum Ready {
    Spine(Inputs),
    Statements(Vec<Statement>),
}

impl Profile {
    /// Prepares every input, warms up, then makes the measured calls.
    pub(crate) async fn run(
        &self,
        h: &Harness,
        name: &str,
        captured: &Captured,
        prepare: &Prepare,
        call: &Call,
    ) -> Result<()> {
        let mut ready = Vec::with_capacity(self.inputs);
        for _ in 0..self.inputs {
            let inputs = prepare(h.next_iteration()).await?;
            ready.push(match self.way {
                Way::Spine => Ready::Spine(inputs),
                Way::SeaOrm | Way::Raw => Ready::Statements(captured.instantiate(&inputs)),
            });
        }
        let mut ready = ready.into_iter();
        for round in [WARM_UP, self.calls] {
            for _ in 0..round {
                let next = ready.next().context("fewer inputs than calls")?;
                self.call_once(h, captured, call, next)
                    .await
                    .with_context(|| format!("{name} via {}", self.way.name()))?;
            }
        }
        eprintln!("    {}: {name}: {self}", h.backend);
        // The inputs left over are dropped here, after the calls: each input is dropped once
        // in every run, inside a call or here, so the drops cancel out of the difference.
        Ok(())
    }

    async fn call_once(
        &self,
        h: &Harness,
        captured: &Captured,
        call: &Call,
        ready: Ready,
    ) -> Result<()> {
        match ready {
            Ready::Spine(inputs) => call(h.spine.clone(), inputs).await,
            Ready::Statements(statements) if self.way == Way::SeaOrm => h
                .sea
                .run(statements, captured.transactional)
                .await
                .map(drop),
            Ready::Statements(statements) => h
                .raw
                .run(statements, captured.transactional, false)
                .await
                .map(drop),
        }
    }
}
