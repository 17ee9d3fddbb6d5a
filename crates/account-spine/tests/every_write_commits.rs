//! Every write use case of the spine, table-driven: after the call returns, its change is
//! visible from a second connection (a new pool; on SQLite a file database, so it is a real
//! second connection), with its audit row: the operation's audit action, the tenant, the
//! actor and the request id. The cases are `support::cases::all()` (one entry per use case,
//! under `tests/support/cases/`); a write operation added to `Operation::ALL` without a case
//! fails `every_write_operation_has_a_case`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::Operation;
use account_testkit::backends;
use std::collections::BTreeSet;
use support::{WRITING_READS, cases};

#[test]
fn every_write_operation_has_a_case() {
    let writes: BTreeSet<&str> = Operation::ALL
        .iter()
        .filter(|op| op.audit_action().is_some() || WRITING_READS.contains(op))
        .map(|op| op.name())
        .collect();
    let covered: BTreeSet<&str> = cases::all().iter().map(|c| c.operation.name()).collect();
    let missing: Vec<_> = writes.difference(&covered).collect();
    let not_writes: Vec<_> = covered.difference(&writes).collect();
    assert!(
        missing.is_empty(),
        "write operations without a case in tests/support/cases/: {missing:?}"
    );
    assert!(
        not_writes.is_empty(),
        "cases whose operation neither audits nor is listed in WRITING_READS: {not_writes:?}"
    );
    // Both directions hold, so the number of cases follows from the operation table: no
    // count to bump by hand.
}

#[tokio::test]
async fn every_write_use_case_commits_visibly_with_its_audit_row() {
    for backend in backends().unwrap() {
        let committed = support::commit_every_case(&backend).await;
        assert_eq!(committed.len(), cases::all().len(), "{}", backend.name());
        println!("{}: {} cases committed", backend.name(), committed.len());
    }
}
