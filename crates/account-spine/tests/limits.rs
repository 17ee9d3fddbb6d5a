//! Per-tenant limit overrides on each backend: an enterprise tenant given 500 concurrent runs
//! admits exactly 500 under a race, keeps the override through a plan change, and falls back
//! to its plan's 100 once the override expired and the reaper's pass reverted it; refusals
//! name the field; every change is audited.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::limits::{LimitName, SetOverride};
use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_spine::{ErrorCode, FixedClock, Spine};
use account_testkit::backends;
use chrono::TimeDelta;
use std::sync::Arc;
use support::operator;
use support::story::*;

fn admit(task: String) -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task,
        input: None,
        token_estimate: 0,
    }
}

/// An instance on `w`'s database whose clock is `ahead` of the world's.
fn later(w: &World, ahead: TimeDelta) -> Spine {
    Spine::from_connection(w.db.host_conn().clone())
        .with_clock(Arc::new(FixedClock::new(now() + ahead)))
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_override_of_500_concurrent_runs_admits_exactly_500_and_reverts_when_it_expires() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-limits");
        w.spine
            .change_plan(&op, w.tenant, PlanCode::enterprise())
            .await
            .unwrap();
        let request = SetOverride::new(LimitName::MaxConcurrentRuns, 500, "launch week")
            .until(now() + TimeDelta::hours(1));
        let change = w
            .spine
            .set_limit_override(&op, w.tenant, request)
            .await
            .unwrap();
        assert_eq!(change.before.max_concurrent_runs, 100, "{name}: enterprise");
        assert_eq!(change.after.max_concurrent_runs, 500, "{name}");
        let stored = change.set.expect("the override set");
        assert_eq!(
            (stored.value, stored.set_by.as_str()),
            (500, "ops@example.com")
        );

        // A plan change keeps it.
        w.spine
            .change_plan(&op, w.tenant, PlanCode::pro())
            .await
            .unwrap();
        w.spine
            .change_plan(&op, w.tenant, PlanCode::enterprise())
            .await
            .unwrap();
        let listed = w.spine.list_limit_overrides(&op, w.tenant).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].limit, listed[0].value),
            (LimitName::MaxConcurrentRuns, 500)
        );

        // 520 admissions at once: exactly 500 get a slot.
        let owner = w.owner("req-race");
        let tasks: Vec<_> = (0..520)
            .map(|i| {
                let spine = w.spine.clone();
                let owner = owner.clone();
                tokio::spawn(
                    async move { spine.admit_run(&owner, admit(format!("run {i}"))).await },
                )
            })
            .collect();
        let mut admitted = 0;
        let mut refused = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(error) => refused.push(error.code()),
            }
        }
        assert_eq!(admitted, 500, "{name}: {refused:?}");
        assert!(
            refused.iter().all(|code| *code == "quota_concurrent_runs"),
            "{name}: {refused:?}"
        );

        // Not yet expired: the reaper's pass leaves it.
        assert_eq!(
            later(&w, TimeDelta::minutes(59))
                .expire_limit_overrides(100)
                .await
                .unwrap(),
            0
        );
        // Expired: reverted once, whoever runs the pass.
        let after = later(&w, TimeDelta::minutes(61));
        assert_eq!(
            after.expire_limit_overrides(100).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            after.expire_limit_overrides(100).await.unwrap(),
            0,
            "{name}: once"
        );
        assert!(
            after
                .list_limit_overrides(&op, w.tenant)
                .await
                .unwrap()
                .is_empty()
        );
        let quotas = after.tenant_quotas(&owner).await.unwrap();
        assert_eq!(quotas.max_concurrent_runs, 100, "{name}: the plan's again");
        let refused = after
            .admit_run(&owner, admit("after expiry".into()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "quota_concurrent_runs", "{name}");

        let actions = support::sql::audit_actions(w.db.conn()).await;
        for action in ["tenant.limit_overridden", "tenant.limit_override_expired"] {
            assert_eq!(actions.get(action), Some(&1), "{name}: {actions:?}");
        }
    }
}

#[tokio::test]
async fn refusals_name_the_field_and_removal_restores_the_plans_value() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-limits-bad");
        let set = |request: SetOverride| w.spine.set_limit_override(&op, w.tenant, request);

        let negative = set(SetOverride::new(LimitName::MaxApiKeys, -1, "oops")).await;
        let negative = negative.unwrap_err();
        assert_eq!(
            (negative.code(), negative.field()),
            ("invalid_limit_value", Some("value"))
        );
        let past = SetOverride::new(LimitName::MaxApiKeys, 5, "late").until(now());
        let past = set(past).await.unwrap_err();
        assert_eq!(
            (past.code(), past.field()),
            ("invalid_expiry", Some("expires_at"))
        );
        let blank = set(SetOverride::new(LimitName::MaxApiKeys, 5, "  "))
            .await
            .unwrap_err();
        assert_eq!(blank.field(), Some("reason"), "{name}");
        let missing = w
            .spine
            .set_limit_override(
                &op,
                TenantId::new(),
                SetOverride::new(LimitName::MaxApiKeys, 5, "x"),
            )
            .await
            .unwrap_err();
        assert_eq!(missing.code(), "tenant_not_found");

        let plan_value = account_spine::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_api_keys;
        let set_up = set(SetOverride::new(
            LimitName::MaxApiKeys,
            40,
            "integration partner",
        ))
        .await
        .unwrap();
        assert_eq!(set_up.after.max_api_keys, 40);
        let removed = w
            .spine
            .remove_limit_override(&op, w.tenant, LimitName::MaxApiKeys)
            .await
            .unwrap();
        assert_eq!(removed.after.max_api_keys, plan_value, "{name}");
        let again = w
            .spine
            .remove_limit_override(&op, w.tenant, LimitName::MaxApiKeys)
            .await
            .unwrap_err();
        assert_eq!(again.code(), "limit_override_not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seats_count_members_and_pending_invitations_and_the_refusal_names_the_limit() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-seats");
        // The owner holds one of four seats.
        let seats = SetOverride::new(LimitName::MaxMembers, 4, "small team");
        w.spine
            .set_limit_override(&op, w.tenant, seats)
            .await
            .unwrap();
        let owner = w.owner("req-seats-owner");

        // Eight invitations at once for three free seats: exactly three are sent.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let spine = w.spine.clone();
                let owner = owner.clone();
                tokio::spawn(async move {
                    spine
                        .invite_user(
                            &owner,
                            &format!("seat-{i}@example.com"),
                            MembershipRole::Member,
                        )
                        .await
                })
            })
            .collect();
        let mut sent = Vec::new();
        let mut refused = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(issued) => sent.push(issued.invitation.id),
                Err(error) => refused.push(error),
            }
        }
        assert_eq!(sent.len(), 3, "{name}: {refused:?}");
        for error in &refused {
            assert_eq!(error.code(), "quota_members", "{name}");
            assert_eq!(error.http_status(), 409);
            assert!(error.to_string().contains("4/4"), "{name}: {error}");
        }

        // Revoking a pending invitation frees its seat.
        w.spine.revoke_invitation(&owner, sent[0]).await.unwrap();
        w.spine
            .invite_user(&owner, "late@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let quotas = w.spine.tenant_quotas(&owner).await.unwrap();
        assert_eq!(quotas.max_members, 4, "{name}");
    }
}
