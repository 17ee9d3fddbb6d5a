//! Every operation of the spine against a table written out here by hand: a change to any
//! operation's name, audit action, authority or capability must be made deliberately, in
//! `src/operations.rs` and here. And every write operation's audit action must actually be
//! written by its use case (the commit cases of `every_write_commits.rs`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use Authority::{Operator, System, Token};
use Capability::{Any, NewApiKeys, Read, SdkExecution, Write};
use account_spine::types::MembershipRole::{self, Admin, Member, Owner, Viewer};
use account_spine::{Authority, Capability, Operation};
use account_testkit::backends;
use std::collections::{BTreeMap, BTreeSet};

const fn tenant(min_role: MembershipRole, permission: &'static str) -> Authority {
    Authority::Tenant {
        min_role,
        permission,
    }
}

/// (name, audit action, authority, capability), in `Operation::ALL` order.
#[rustfmt::skip]
const EXPECTED: &[(&str, Option<&str>, Authority, Capability)] = &[
    ("runs.admit", Some("run.admitted"), tenant(Member, "run:*"), SdkExecution),
    ("runs.complete", Some("run.completed"), tenant(Member, "run:*"), Any),
    ("runs.list", None, tenant(Viewer, "read:runs"), Read),
    ("runs.get", None, tenant(Viewer, "read:runs"), Read),
    ("runs.heartbeat", Some("run.started"), tenant(Member, "run:*"), Any),
    ("runs.expire_lease", Some("run.lease_expired"), System, Any),
    ("api_keys.verify", None, tenant(Viewer, "read:*"), Any),
    ("api_keys.issue", Some("api_key.created"), tenant(Admin, "keys:manage"), NewApiKeys),
    ("api_keys.list", None, tenant(Admin, "keys:manage"), Read),
    ("api_keys.revoke", Some("api_key.revoked"), tenant(Admin, "keys:manage"), Any),
    ("api_keys.rotate", Some("api_key.rotated"), tenant(Admin, "keys:manage"), NewApiKeys),
    ("api_keys.update", Some("api_key.updated"), tenant(Admin, "keys:manage"), Write),
    ("api_keys.verify_presented", None, tenant(Owner, "keys:verify"), Read),
    ("account.invite_user", Some("invitation.created"), tenant(Admin, "users:manage"), Write),
    ("account.resend_invitation", Some("invitation.resent"), tenant(Admin, "users:manage"), Write),
    ("account.revoke_invitation", Some("invitation.revoked"), tenant(Admin, "users:manage"), Write),
    ("account.list_invitations", None, tenant(Admin, "users:manage"), Read),
    ("account.accept_invitation", Some("invitation.accepted"), Token, Write),
    ("account.list_users", None, tenant(Viewer, "users:read"), Read),
    ("account.list_tenant_users", None, tenant(Viewer, "users:read"), Read),
    ("account.get_user", None, tenant(Viewer, "users:read"), Read),
    ("account.list_projects", None, tenant(Viewer, "read:*"), Read),
    ("account.get_project", None, tenant(Viewer, "read:*"), Read),
    ("account.change_role", Some("membership.role_changed"), tenant(Owner, "users:manage"), Write),
    ("account.remove_user", Some("membership.removed"), tenant(Admin, "users:manage"), Write),
    ("account.transfer_ownership", Some("membership.ownership_transferred"), tenant(Owner, "users:manage"), Write),
    ("account.get_profile", None, tenant(Viewer, "read:*"), Read),
    ("account.update_profile", Some("user.profile_updated"), tenant(Viewer, "profile:write"), Write),
    ("support.open_ticket", Some("support_ticket.created"), tenant(Viewer, "support:write"), Read),
    ("support.list_tickets", None, tenant(Viewer, "support:read"), Read),
    ("support.get_contact", None, tenant(Viewer, "support:read"), Any),
    ("billing.summary", None, tenant(Admin, "billing:read"), Read),
    ("billing.invoices", None, tenant(Admin, "billing:read"), Read),
    ("onboarding.sdk_handshake", Some("sdk.attested"), tenant(Member, "run:*"), Write),
    ("memory_pins.upsert", Some("memory_pin.saved"), tenant(Member, "run:*"), Write),
    ("memory_pins.get", None, tenant(Viewer, "read:*"), Read),
    ("memory_pins.list", None, tenant(Viewer, "read:*"), Read),
    ("memory_pins.delete", Some("memory_pin.deleted"), tenant(Member, "run:*"), Write),
    ("memory_pins.cleanup", Some("memory_pin.cleanup"), tenant(Admin, "keys:manage"), Any),
    ("usage.summary", None, tenant(Viewer, "read:usage"), Read),
    ("billing.record_subscription", Some("subscription.recorded"), Operator, Any),
    ("billing.record_invoice", Some("invoice.recorded"), Operator, Any),
    ("tenant.create", Some("tenant.created"), Operator, Any),
    ("tenant.change_plan", Some("tenant.plan_changed"), Operator, Any),
    ("lifecycle.transition", Some("tenant.lifecycle_changed"), Operator, Any),
    ("lifecycle.history", None, Operator, Any),
    ("onboarding.status", None, tenant(Viewer, "read:*"), Read),
    ("onboarding.advance", Some("onboarding.advanced"), tenant(Admin, "keys:manage"), Write),
    ("onboarding.force_complete", Some("onboarding.force_completed"), Operator, Any),
    ("operator_keys.verify", None, Operator, Any),
    ("operator_keys.create", Some("operator_key.created"), Operator, Any),
    ("operator_keys.list", None, Operator, Any),
    ("operator_keys.revoke", Some("operator_key.revoked"), Operator, Any),
    ("tenant.get_quotas", None, tenant(Viewer, "read:*"), Read),
    ("audit.list", None, tenant(Admin, "audit:read"), Read),
    ("audit.export", None, tenant(Admin, "audit:read"), Read),
    ("audit.purge", Some("audit.purged"), System, Any),
    ("tenant.set_limit_override", Some("tenant.limit_overridden"), Operator, Any),
    ("tenant.remove_limit_override", Some("tenant.limit_override_removed"), Operator, Any),
    ("tenant.list_limit_overrides", None, Operator, Any),
    ("tenant.expire_limit_overrides", Some("tenant.limit_override_expired"), System, Any),
    ("plans.create_version", Some("plan.version_created"), Operator, Any),
    ("plans.retire", Some("plan.retired"), Operator, Any),
    ("plans.list", None, Operator, Any),
    ("entitlements.get", None, tenant(Viewer, "read:*"), Read),
    ("webhooks.create", Some("webhook_endpoint.created"), tenant(Admin, "webhooks:manage"), Write),
    ("webhooks.list", None, tenant(Admin, "webhooks:manage"), Read),
    ("webhooks.get", None, tenant(Admin, "webhooks:manage"), Read),
    ("webhooks.update", Some("webhook_endpoint.updated"), tenant(Admin, "webhooks:manage"), Write),
    ("webhooks.delete", Some("webhook_endpoint.deleted"), tenant(Admin, "webhooks:manage"), Write),
    ("webhooks.rotate_secret", Some("webhook_endpoint.secret_rotated"), tenant(Admin, "webhooks:manage"), Write),
    ("webhooks.replay", Some("webhook_endpoint.replay_requested"), tenant(Admin, "webhooks:manage"), Write),
    ("webhooks.list_attempts", None, tenant(Admin, "webhooks:manage"), Read),
    ("webhooks.disable", Some("webhook_endpoint.disabled"), System, Any),
    ("account.create_project", Some("project.created"), Authority::Person, Any),
    ("account.rename_project", Some("project.renamed"), tenant(Admin, "users:manage"), Write),
    ("account.leave_project", Some("membership.left"), tenant(Viewer, "profile:write"), Any),
    ("account.delete_project", Some("project.deleted"), tenant(Owner, "users:manage"), Any),
    ("account.restore_project", Some("project.restored"), Authority::Person, Any),
    ("tenant.purge", Some("project.purged"), System, Any),
    ("account.erase_me", Some("user.erased"), Authority::Person, Any),
    ("account.erase_user", Some("user.erased_by_operator"), Operator, Any),
    ("billing.start_trial", Some("subscription.trial_started"), Operator, Any),
    ("billing.end_trial", Some("subscription.trial_ended"), System, Any),
    ("billing.end_grace", Some("subscription.grace_ended"), System, Any),
];

#[test]
fn every_operation_matches_the_expected_table() {
    let actual: Vec<_> = Operation::ALL
        .iter()
        .map(|op| {
            (
                op.name(),
                op.audit_action(),
                op.authority(),
                op.capability(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for row in &actual {
        match EXPECTED.iter().find(|e| e.0 == row.0) {
            None => problems.push(format!("{} is not in EXPECTED: add {row:?}", row.0)),
            Some(expected) if expected != row => {
                problems.push(format!(
                    "{}: expected {expected:?}, the code says {row:?}",
                    row.0
                ));
            }
            Some(_) => {}
        }
    }
    for expected in EXPECTED {
        if !actual.iter().any(|row| row.0 == expected.0) {
            problems.push(format!(
                "{} is expected but no operation has that name",
                expected.0
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Same order too, so the table reads like the code.
    let names: Vec<_> = actual.iter().map(|row| row.0).collect();
    let expected: Vec<_> = EXPECTED.iter().map(|row| row.0).collect();
    assert_eq!(names, expected);
    let audit: BTreeSet<_> = EXPECTED.iter().filter_map(|row| row.1).collect();
    assert_eq!(
        audit.len(),
        EXPECTED.iter().filter(|row| row.1.is_some()).count(),
        "audit actions are unique"
    );
}

#[tokio::test]
async fn every_write_operations_audit_action_is_written_by_its_commit_case() {
    for backend in backends().unwrap() {
        let committed = support::commit_every_case(&backend).await;
        // Audit actions each operation's cases added to the log.
        let mut written: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in &committed {
            written
                .entry(c.operation.name())
                .or_default()
                .extend(c.new_audit_actions.iter().cloned());
        }
        let mut problems = Vec::new();
        for (name, audit, ..) in EXPECTED {
            let Some(action) = audit else { continue };
            let actions = written.get(name).cloned().unwrap_or_default();
            if !actions.contains(*action) {
                problems.push(format!(
                    "{}: {name} should write `{action}`; its cases wrote {actions:?}",
                    backend.name()
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
