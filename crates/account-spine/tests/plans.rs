//! Plans as data on each backend: an operator creates a plan, versions it and retires it; a
//! tenant moved onto it is held to that version's limits by the next admission (the limits
//! live on the tenant row admission already reads, so every instance sees the change with its
//! commit); a new version reaches a tenant only through a plan change; entitlements report the
//! version, its features and the usage of every limit.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::ErrorCode;
use account_spine::limits::LimitName;
use account_spine::plans::{Entitlement, Entitlements, NewPlanVersion};
use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_testkit::backends;
use support::operator;
use support::story::*;

fn admit(task: &str) -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: task.into(),
        input: None,
        token_estimate: 0,
    }
}

fn team(concurrent: i32) -> NewPlanVersion {
    let mut limits = PlanQuotas::built_in(&PlanCode::pro()).unwrap();
    limits.max_concurrent_runs = concurrent;
    let features = Entitlements::from([
        ("sso".to_owned(), Entitlement::Enabled(true)),
        ("exports_per_month".to_owned(), Entitlement::Value(12)),
    ]);
    NewPlanVersion::new("team", "Team", limits).with_entitlements(features)
}

#[tokio::test]
async fn a_tenant_on_a_created_plan_gets_its_versions_limits_at_the_next_request() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-plans");
        let owner = w.owner("req-plans-owner");

        let v1 = w.spine.create_plan_version(&op, team(2)).await.unwrap();
        assert_eq!((v1.code.as_str(), v1.version), ("team", 1), "{name}");
        let team_code = PlanCode::parse("team").unwrap();
        w.spine
            .change_plan(&op, w.tenant, team_code.clone())
            .await
            .unwrap();
        w.spine.admit_run(&owner, admit("one")).await.unwrap();
        w.spine.admit_run(&owner, admit("two")).await.unwrap();
        let refused = w.spine.admit_run(&owner, admit("three")).await.unwrap_err();
        assert_eq!(refused.code(), "quota_concurrent_runs", "{name}");

        // A new version does not move the tenants already on the plan.
        let v2 = w.spine.create_plan_version(&op, team(3)).await.unwrap();
        assert_eq!(v2.version, 2, "{name}");
        let still = w.spine.admit_run(&owner, admit("three")).await.unwrap_err();
        assert_eq!(still.code(), "quota_concurrent_runs", "{name}: still v1");
        // A plan change to the same plan moves it to the newest version.
        w.spine
            .change_plan(&op, w.tenant, team_code.clone())
            .await
            .unwrap();
        w.spine.admit_run(&owner, admit("three")).await.unwrap();
        let same = w
            .spine
            .change_plan(&op, w.tenant, team_code.clone())
            .await
            .unwrap_err();
        assert_eq!(same.code(), "same_plan", "{name}");

        let had = w.spine.entitlements(&owner).await.unwrap();
        assert_eq!(
            (had.plan.as_str(), had.plan_version, had.plan_name.as_str()),
            ("team", 2, "Team"),
            "{name}"
        );
        assert_eq!(had.features.get("sso"), Some(&Entitlement::Enabled(true)));
        assert_eq!(
            had.features.get("exports_per_month"),
            Some(&Entitlement::Value(12))
        );
        let concurrent = had
            .limits
            .iter()
            .find(|l| l.limit == LimitName::MaxConcurrentRuns)
            .unwrap();
        assert_eq!(
            (concurrent.value, concurrent.plan_value, concurrent.used),
            (Some(3), Some(3), Some(3)),
            "{name}"
        );
        assert_eq!(had.limits.len(), LimitName::ALL.len());

        // Retired: no tenant moves onto it; the tenant on it keeps it.
        w.spine
            .retire_plan(&op, team_code.clone(), 1)
            .await
            .unwrap();
        w.spine
            .retire_plan(&op, team_code.clone(), 2)
            .await
            .unwrap();
        w.spine
            .change_plan(&op, w.tenant, PlanCode::free())
            .await
            .unwrap();
        let retired = w
            .spine
            .change_plan(&op, w.tenant, team_code.clone())
            .await
            .unwrap_err();
        assert_eq!(
            (retired.code(), retired.http_status(), retired.field()),
            ("plan_retired", 422, Some("plan")),
            "{name}"
        );
        let unknown = w
            .spine
            .change_plan(&op, w.tenant, PlanCode::parse("platinum").unwrap())
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), "plan_not_found", "{name}");
        let default = w
            .spine
            .retire_plan(&op, PlanCode::free(), 1)
            .await
            .unwrap_err();
        assert_eq!(
            (default.code(), default.http_status()),
            ("default_plan", 409),
            "{name}"
        );

        // Bad definitions name their field.
        let mut bad = team(2);
        bad.limits.max_pin_value_bytes = 1_000_000;
        let error = w.spine.create_plan_version(&op, bad).await.unwrap_err();
        assert_eq!(
            (error.code(), error.field()),
            ("invalid_limit_value", Some("limits.max_pin_value_bytes")),
            "{name}"
        );
        let error = w
            .spine
            .create_plan_version(&op, team(2).warning_at(100))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("warn_at_percent"), "{name}");
        let listed = w.spine.list_plans(&op).await.unwrap();
        assert_eq!(listed.len(), 5, "{name}: three built in, two of team");
    }
}

/// The percents of the threshold events in `events`.
fn crossed(events: &[account_spine::DomainEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|event| match event {
            account_spine::DomainEvent::QuotaThresholdCrossed { percent, .. } => Some(*percent),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_plans_soft_limit_warns_once_per_period_where_its_version_says() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-soft");
        let owner = w.owner("req-soft-owner");
        let mut limits = PlanQuotas::built_in(&PlanCode::pro()).unwrap();
        limits.max_runs_per_day = 4;
        let plan = NewPlanVersion::new("metered", "Metered", limits).warning_at(50);
        w.spine.create_plan_version(&op, plan).await.unwrap();
        w.spine
            .change_plan(&op, w.tenant, PlanCode::parse("metered").unwrap())
            .await
            .unwrap();
        let mut warnings = Vec::new();
        for i in 0..4 {
            let seen = w.events.all().len();
            w.spine
                .admit_run(&owner, admit(&format!("r{i}")))
                .await
                .unwrap();
            warnings.push(crossed(&w.events_since(seen)));
        }
        assert_eq!(
            warnings,
            vec![vec![], vec![50], vec![], vec![100]],
            "{name}: the plan's 50 % once, then the limit"
        );
    }
}
