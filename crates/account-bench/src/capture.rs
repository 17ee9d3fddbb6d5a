//! Recording the statements a spine call issues, and re-instantiating them for the baselines.
//!
//! The baselines must run *the same statements* as the spine. Rather than re-typing them (and
//! drifting whenever a driver changes), the harness records them: a second connection whose
//! sea-orm metric callback keeps every statement it executes. Replaying a write twice would
//! collide on the ids it generated, so each replay regenerates the UUIDs the call created and
//! swaps the call's inputs (tenant, user, run, invitation, a per-iteration marker) for the
//! iteration's own.

use crate::{Call, Harness, Prepare};
use anyhow::{Context, Result};
use sea_orm::{Statement, Value, Values};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The marker digits the captured call's unique strings carry (see [`marker`]).
pub(crate) const CAPTURE_ITERATION: u64 = 9_999_999_999;

/// A ten-digit stamp that makes an iteration's strings (emails, keys) unique.
pub(crate) fn marker(iteration: u64) -> String {
    format!("{iteration:010}")
}

impl Harness {
    /// Runs the call twice on the capture spine and keeps the statements the baselines
    /// replay: with `warm`, the second call's, which is what every timed spine call issues
    /// (its caches filled, e.g. the acting member's role), unless it issued none (a verify
    /// cache hit: the baselines then show what the cache saves); without, the first call's
    /// (a cleanup, whose second call finds nothing left to do).
    pub(crate) async fn capture(
        &self,
        name: &str,
        transactional: bool,
        warm: bool,
        prepare: &Prepare,
        call: &Call,
    ) -> Result<Captured> {
        let inputs = prepare(CAPTURE_ITERATION).await?;
        self.recorder.arm();
        let outcome = call(self.capture.clone(), inputs.clone()).await;
        let cold = self.recorder.take();
        outcome.with_context(|| format!("{name}: the captured spine call failed"))?;
        let again = prepare(CAPTURE_ITERATION - 1).await?;
        self.recorder.arm();
        let outcome = call(self.capture.clone(), again.clone()).await;
        let second = self.recorder.take();
        outcome.with_context(|| format!("{name}: the second captured spine call failed"))?;
        let counts = (cold.len(), second.len());
        let (statements, inputs) = if warm && !second.is_empty() {
            (second, again)
        } else {
            (cold, inputs)
        };
        if self.show_sql {
            println!(
                "-- {name} ({} statements cold, {} warm; replayed:)",
                counts.0, counts.1
            );
            for statement in &statements {
                println!("   {}", statement.sql);
            }
        }
        let mut captured = Captured::new(statements, transactional, inputs);
        captured.counts = counts;
        Ok(captured)
    }
}

/// Collects statements while armed; attached to the capture connection's metric callback.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    armed: Arc<Mutex<Option<Vec<Statement>>>>,
}

impl Recorder {
    /// Stores `statement` if armed.
    pub(crate) fn record(&self, statement: &Statement) {
        if let Ok(mut armed) = self.armed.lock()
            && let Some(statements) = armed.as_mut()
        {
            statements.push(statement.clone());
        }
    }

    /// Starts collecting.
    pub(crate) fn arm(&self) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = Some(Vec::new());
        }
    }

    /// Stops collecting and returns what was collected.
    pub(crate) fn take(&self) -> Vec<Statement> {
        self.armed
            .lock()
            .ok()
            .and_then(|mut armed| armed.take())
            .unwrap_or_default()
    }
}

/// What an iteration replaces in the captured statements.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inputs {
    /// Values of the captured call's inputs (tenant id, user id, run id ...), in a fixed order.
    pub(crate) values: Vec<Value>,
    /// The iteration, for [`marker`] substitution.
    pub(crate) iteration: u64,
}

/// The statements of one captured call, ready to be re-instantiated per iteration.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    /// In execution order.
    pub(crate) statements: Vec<Statement>,
    /// Whether the spine ran them in one write transaction.
    pub(crate) transactional: bool,
    /// How many statements the first (cold) call and a second (warm) call issued.
    pub(crate) counts: (usize, usize),
    captured_inputs: Inputs,
    /// UUIDs the call generated (not among its inputs): regenerated per iteration.
    generated: HashSet<Uuid>,
    /// Hex digests the call inserted (token digests are unique): regenerated per iteration.
    generated_digests: HashSet<String>,
}

impl Captured {
    /// Wraps recorded `statements`; `inputs` are the captured call's inputs.
    pub(crate) fn new(statements: Vec<Statement>, transactional: bool, inputs: Inputs) -> Self {
        let known: HashSet<Uuid> = inputs.values.iter().filter_map(value_uuid).collect();
        let mut generated = HashSet::new();
        let mut generated_digests = HashSet::new();
        for statement in &statements {
            for value in values_of(statement) {
                if let Value::String(Some(text)) = value
                    && is_insert(&statement.sql)
                    && text.len() >= 32
                    && text.bytes().all(|b| b.is_ascii_hexdigit())
                    && !inputs.values.contains(value)
                {
                    generated_digests.insert(text.clone());
                }
                if let Some(uuid) = value_uuid(value)
                    && !known.contains(&uuid)
                    && is_insert(&statement.sql)
                {
                    generated.insert(uuid);
                }
            }
        }
        Self {
            counts: (statements.len(), statements.len()),
            statements,
            transactional,
            captured_inputs: inputs,
            generated,
            generated_digests,
        }
    }

    /// The statements with this iteration's inputs and fresh generated ids.
    pub(crate) fn instantiate(&self, inputs: &Inputs) -> Vec<Statement> {
        let mut swaps: Vec<(Value, Value)> = Vec::new();
        for (old, new) in self.captured_inputs.values.iter().zip(&inputs.values) {
            swaps.push((old.clone(), new.clone()));
        }
        let mut text_swaps: Vec<(String, String)> = Vec::new();
        for uuid in &self.generated {
            let fresh = Uuid::now_v7();
            swaps.push((Value::Uuid(Some(*uuid)), Value::Uuid(Some(fresh))));
            text_swaps.push((uuid.to_string(), fresh.to_string()));
        }
        for digest in &self.generated_digests {
            let mut fresh = String::with_capacity(digest.len());
            while fresh.len() < digest.len() {
                fresh.push_str(&Uuid::new_v4().simple().to_string());
            }
            fresh.truncate(digest.len());
            swaps.push((
                Value::String(Some(digest.clone())),
                Value::String(Some(fresh)),
            ));
        }
        for (old, new) in self.captured_inputs.values.iter().zip(&inputs.values) {
            if let (Some(old), Some(new)) = (value_uuid(old), value_uuid(new)) {
                text_swaps.push((old.to_string(), new.to_string()));
            }
        }
        text_swaps.push((
            marker(self.captured_inputs.iteration),
            marker(inputs.iteration),
        ));
        self.statements
            .iter()
            .map(|statement| Statement {
                sql: statement.sql.clone(),
                db_backend: statement.db_backend,
                values: statement.values.as_ref().map(|values| {
                    Values(
                        values
                            .0
                            .iter()
                            .map(|value| swap(value, &swaps, &text_swaps))
                            .collect(),
                    )
                }),
            })
            .collect()
    }
}

fn swap(value: &Value, swaps: &[(Value, Value)], text_swaps: &[(String, String)]) -> Value {
    if let Some((_, new)) = swaps.iter().find(|(old, _)| old == value) {
        return new.clone();
    }
    match value {
        Value::String(Some(text)) => Value::String(Some(swap_text(text, text_swaps))),
        Value::Json(Some(json)) => {
            let text = json.to_string();
            let swapped = swap_text(&text, text_swaps);
            if swapped == text {
                value.clone()
            } else {
                serde_json::from_str(&swapped)
                    .map(|json| Value::Json(Some(Box::new(json))))
                    .unwrap_or_else(|_| value.clone())
            }
        }
        Value::Bytes(Some(bytes)) if bytes.len() == 16 => {
            // SQLite binds UUIDs as 16-byte blobs.
            let uuid = Uuid::from_slice(bytes).ok();
            let found = uuid.and_then(|u| {
                let key = Value::Uuid(Some(u));
                swaps
                    .iter()
                    .find(|(old, _)| *old == key)
                    .map(|(_, new)| new)
            });
            match found {
                Some(Value::Uuid(Some(new))) => Value::Bytes(Some(new.as_bytes().to_vec())),
                _ => value.clone(),
            }
        }
        _ => value.clone(),
    }
}

fn swap_text(text: &str, text_swaps: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (old, new) in text_swaps {
        if out.contains(old.as_str()) {
            out = out.replace(old.as_str(), new);
        }
    }
    out
}

fn values_of(statement: &Statement) -> impl Iterator<Item = &Value> {
    statement.values.iter().flat_map(|values| values.0.iter())
}

fn value_uuid(value: &Value) -> Option<Uuid> {
    match value {
        Value::Uuid(Some(uuid)) => Some(*uuid),
        _ => None,
    }
}

/// Whether `sql` inserts rows: an `INSERT`, or a `WITH` whose parts do (run admission on
/// PostgreSQL is one such statement).
fn is_insert(sql: &str) -> bool {
    let starts = |word: &str| {
        sql.trim_start()
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word))
    };
    starts("insert") || (starts("with") && sql.contains(" AS (INSERT INTO "))
}

/// The table a `SELECT` reads first (`FROM "t"`, or `FROM "schema"."t"` as the spine's
/// statements name it), for decoding rows into its entity.
pub(crate) fn first_table(sql: &str) -> Option<&str> {
    let start = sql.find(" FROM \"")? + 7;
    let rest = &sql[start..];
    let name = &rest[..rest.find('"')?];
    match rest[name.len()..].strip_prefix("\".\"") {
        Some(qualified) => Some(&qualified[..qualified.find('"')?]),
        None => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::first_table;

    #[test]
    fn the_first_table_is_found_with_or_without_its_schema() {
        let qualified = r#"SELECT "users"."id" FROM "account"."users" INNER JOIN "account"."x""#;
        assert_eq!(first_table(qualified), Some("users"));
        assert_eq!(
            first_table(r#"SELECT 1 FROM "tenants" WHERE 1"#),
            Some("tenants")
        );
        assert_eq!(first_table("SELECT 1"), None);
    }
}
