//! Fault injection: for every write use case, a failure at each of its statements in turn
//! leaves the database exactly as it was (every table's rows, so no audit row either) and
//! publishes no event.
//!
//! The spine passes every statement of its write transactions through a `FaultInjector`
//! (`Spine::with_fault_injector`). For each case the test first counts the statements of a
//! successful call (on a twin database, arranged the same way), then, on a database of its
//! own, makes statement k fail for every k in 1..=count, checking after each failed call; a
//! last, uninjected call must then succeed with exactly that many statements.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::FaultInjector;
use account_spine::ErrorCode;
use account_testkit::backends;
use support::{cases, env, snapshot};

#[tokio::test]
async fn a_failure_at_any_statement_of_any_write_leaves_nothing_and_publishes_nothing() {
    for backend in backends().unwrap() {
        let mut problems = Vec::new();
        let (mut injected, mut cases) = (0, 0);
        let mut counts = Vec::new();
        for case in cases::all() {
            // Count the statements of a successful call.
            let twin = env(&backend).await;
            let arranged = case.arrange(&twin).await;
            twin.faults.disarm();
            case.act(&twin, &arranged).await.unwrap();
            let statements = twin.faults.seen();
            drop(twin);
            if !case.transactional() {
                // Reads run on the pool, which the injector does not see.
                if statements != 0 {
                    problems.push(format!(
                        "{case:?}: {statements} statements in a transaction; it is now a \
                         transactional write: drop it from WRITING_READS"
                    ));
                }
                continue;
            }
            // A write is at least one statement; run admission on PostgreSQL is exactly one
            // (the whole admission in one statement), which the fault at statement 1 covers.
            if statements == 0 {
                problems.push(format!("{case:?}: no statement"));
            }
            cases += 1;
            counts.push(format!("{case:?} {statements}"));

            let env = env(&backend).await;
            let arranged = case.arrange(&env).await;
            let other = env.second().await;
            let before = snapshot(&other).await;
            let events = env.events.all();
            for k in 1..=statements {
                let fired = env.faults.injected();
                env.faults.fail_at(k);
                let outcome = case.act(&env, &arranged).await;
                let at = format!(
                    "{}: {case:?}, fault at statement {k}/{statements}",
                    env.backend
                );
                if env.faults.injected() != fired + 1 && case.commits_in_steps() {
                    // The faults before resumed and finished the work in fewer statements.
                    env.faults.disarm();
                    break;
                }
                if env.faults.injected() != fired + 1 {
                    problems.push(format!("{at}: the fault did not fire"));
                    env.faults.disarm();
                    continue;
                }
                injected += 1;
                match outcome {
                    Ok(_) => problems.push(format!("{at}: the call succeeded anyway")),
                    Err(error) => {
                        let status = ErrorCode::http_status(&error);
                        if status != 500 || !format!("{error:?}").contains(FaultInjector::MESSAGE) {
                            problems.push(format!(
                                "{at}: reported as {} ({status}), not as the storage failure: {error:?}",
                                ErrorCode::code(&error)
                            ));
                        }
                    }
                }
                // A write that commits in steps keeps the steps before the fault; the
                // uninjected call below must then finish the work.
                let after = snapshot(&other).await;
                if after != before && !case.commits_in_steps() {
                    for (table, rows) in &after {
                        let was = before.get(table).cloned().unwrap_or_default();
                        if *rows != was {
                            let added: Vec<_> = rows.iter().filter(|r| !was.contains(r)).collect();
                            let gone: Vec<_> = was.iter().filter(|r| !rows.contains(r)).collect();
                            problems.push(format!(
                                "{at}: {table} changed ({} rows, was {}): added {added:?}, gone {gone:?}",
                                rows.len(),
                                was.len()
                            ));
                        }
                    }
                }
                if env.events.all() != events && !case.commits_in_steps() {
                    problems.push(format!(
                        "{at}: published {:?}",
                        &env.events.all()[events.len().min(env.events.all().len())..]
                    ));
                }
            }
            // The arrangement is intact: the same call now succeeds, statement for statement.
            env.faults.disarm();
            if let Err(error) = case.act(&env, &arranged).await {
                problems.push(format!("{case:?}: the uninjected call failed: {error:?}"));
            } else if env.faults.seen() != statements && !case.commits_in_steps() {
                problems.push(format!(
                    "{case:?}: {} statements after the faults, {statements} on the twin",
                    env.faults.seen()
                ));
            } else if snapshot(&other).await == before {
                // The snapshot would have seen a leftover: it sees the committed change.
                problems.push(format!(
                    "{case:?}: the snapshot misses the committed change"
                ));
            }
        }
        println!(
            "{}: {cases} cases, {injected} injected faults (statements: {})",
            backend.name(),
            counts.join(", ")
        );
        assert!(
            problems.is_empty(),
            "{}: {} problems:\n{}",
            backend.name(),
            problems.len(),
            problems.join("\n")
        );
    }
}
