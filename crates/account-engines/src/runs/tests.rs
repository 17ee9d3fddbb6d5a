//! Unit tests of the run rules (no database).

use super::*;

#[test]
fn refusals_carry_the_field_they_concern() {
    let nul = NulCharacter {
        field: "input.my key".into(),
        in_key: false,
    };
    let cases = [
        (RunError::InvalidTask, Some("task")),
        (
            RunError::InvalidMetrics {
                field: "total_latency_ms",
            },
            Some("total_latency_ms"),
        ),
        (RunError::ErrorTextTooLong { chars: 10_001 }, Some("error")),
        (RunError::TextHasNul(nul), Some("input.my key")),
        (RunError::InvalidPage, Some("limit")),
        (RunError::RunNotFound, None),
    ];
    for (error, field) in cases {
        assert_eq!(error.field(), field, "{error:?}");
    }
}
use account_drivers::runs::KeyRuns;
use account_drivers::tenants::TenantCoreSnapshot;
use account_drivers::types::{OnboardingState, PlanCode};

fn request(principal: RunPrincipal, worker: &str, task: &str) -> AdmitRunRequest {
    AdmitRunRequest {
        tenant_id: TenantId::new(),
        principal,
        worker_id: worker.into(),
        task: task.into(),
        input: None,
        run_id: RunId::new(),
        token_estimate: 0,
        audit: None,
        lease: leases::LeaseDuration::DEFAULT,
    }
}

fn member(role: MembershipRole) -> RunPrincipal {
    RunPrincipal::User {
        user_id: UserId::new(),
        role,
    }
}

fn at(day: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 11, day)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .map(|t| t.and_utc())
        .unwrap()
}

fn tenant(status: TenantStatus, runs_today: i32, tokens: i64, day: u32) -> TenantCoreSnapshot {
    TenantCoreSnapshot {
        id: TenantId::new(),
        name: "t".into(),
        slug: "t".into(),
        status,
        plan: PlanCode::free(),
        plan_version: 1,
        warn_at_percent: Some(80),
        quotas: crate::types::PlanQuotas::built_in(&PlanCode::free()).unwrap(),
        runs_today,
        runs_this_month: runs_today,
        tokens_this_month: tokens,
        usage_day: Some(usage_period(at(day)).day),
        usage_month: Some(usage_period(at(day)).month),
        last_run_reset_at: None,
        suspended_reason: None,
        onboarding_state: OnboardingState::Complete,
        created_at: at(1),
        updated_at: at(1),
        tokens_reserved: 0,
        active_runs: 0,
        active_workers: 0,
    }
}

/// `tenant` with `active` runs queued or running on `workers` workers.
fn busy(mut t: TenantCoreSnapshot, active: i32, workers: i32) -> TenantCoreSnapshot {
    t.active_runs = active;
    t.active_workers = workers;
    t
}

fn usage(tenant: TenantCoreSnapshot) -> AdmissionUsage {
    AdmissionUsage {
        tenant,
        new_worker: false,
        key: None,
    }
}

#[test]
fn viewers_cannot_run_and_keys_only_run_their_workers() {
    assert!(matches!(
        validate(&request(member(MembershipRole::Viewer), "w", "t")),
        Err(RunError::Forbidden { .. })
    ));
    assert!(validate(&request(member(MembershipRole::Member), "w", "t")).is_ok());
    let key = RunPrincipal::ApiKey {
        key_id: ApiKeyId::new(),
        allowed_workers: Some(vec!["allowed".into()]),
    };
    assert!(matches!(
        validate(&request(key.clone(), "other", "t")),
        Err(RunError::WorkerNotAllowed { .. })
    ));
    assert!(validate(&request(key, "allowed", "t")).is_ok());
}

#[test]
fn worker_ids_and_tasks_are_validated() {
    let owner = || member(MembershipRole::Owner);
    assert!(matches!(
        validate(&request(owner(), "", "t")),
        Err(RunError::InvalidWorker)
    ));
    assert!(matches!(
        validate(&request(owner(), "Bad Worker", "t")),
        Err(RunError::InvalidWorker)
    ));
    assert!(matches!(
        validate(&request(owner(), "w", "  ")),
        Err(RunError::InvalidTask)
    ));
    let long = "x".repeat(MAX_TASK + 1);
    assert!(matches!(
        validate(&request(owner(), "w", &long)),
        Err(RunError::InvalidTask)
    ));
    assert!(matches!(
        validate(&request(owner(), "w", "a\u{0}b")),
        Err(RunError::TextHasNul(NulCharacter { field, .. })) if field == "task"
    ));
    assert!(matches!(
        validate(&request(owner(), "w", "bell\u{7}")),
        Err(RunError::ControlCharacter(TextError::ControlCharacter {
            field: "task"
        }))
    ));
    assert!(validate(&request(owner(), "w", "two\n\tlines")).is_ok());
    let mut with_input = request(owner(), "w", "t");
    with_input.input = Some(serde_json::json!({"deep": [{"k\u{0}": 1}]}));
    assert!(matches!(
        validate(&with_input),
        Err(RunError::TextHasNul(NulCharacter { field, in_key: true })) if field == "input.deep[0]"
    ));
}

#[test]
fn a_refusal_names_the_limit_that_refused() {
    let period = usage_period(at(25));
    let active = |runs, tokens| tenant(TenantStatus::Active, runs, tokens, 25);
    let refused = |u: AdmissionUsage, requested| refusal(&u, period, requested);
    assert!(matches!(
        refused(usage(tenant(TenantStatus::Suspended, 0, 0, 25)), 0),
        RunError::TenantInactive {
            status: TenantStatus::Suspended
        }
    ));
    assert!(matches!(
        refused(usage(active(100, 0)), 0),
        RunError::DailyRunLimit {
            limit: 100,
            used: 100
        }
    ));
    assert!(matches!(
        refused(usage(active(1, 1_000_000)), 0),
        RunError::MonthlyTokenLimit { .. }
    ));
    // Used plus reserved leaves room, but not for this run's estimate.
    let mut reserved = active(1, 400_000);
    reserved.tokens_reserved = 500_000;
    assert!(matches!(
        refused(usage(reserved.clone()), 100_001),
        RunError::MonthlyTokenLimit {
            limit: 1_000_000,
            used: 400_000,
            reserved: 500_000,
            requested: 100_001,
        }
    ));
    assert!(matches!(
        refused(usage(reserved), 100_000),
        RunError::AdmissionUnexplained { .. }
    ));
    let key = AdmissionUsage {
        key: Some(KeyRuns {
            api_key_id: ApiKeyId::new(),
            max_concurrent_runs: Some(1),
            active_runs: 1,
        }),
        ..usage(active(1, 0))
    };
    assert!(matches!(
        refused(key, 0),
        RunError::KeyConcurrentRunLimit {
            limit: 1,
            active: 1
        }
    ));
    assert!(matches!(
        refused(usage(busy(active(1, 0), 5, 1)), 0),
        RunError::ConcurrentRunLimit {
            limit: 5,
            active: 5
        }
    ));
    let workers = crate::types::PlanQuotas::built_in(&PlanCode::free())
        .unwrap()
        .max_workers;
    let new_worker = AdmissionUsage {
        new_worker: true,
        ..usage(busy(active(1, 0), 1, workers))
    };
    assert!(matches!(
        refused(new_worker, 0),
        RunError::WorkerLimit { limit, active } if limit == workers && active == workers
    ));
    // A run on a worker already busy brings no new one.
    assert!(matches!(
        refused(usage(busy(active(1, 0), 1, workers)), 0),
        RunError::AdmissionUnexplained { .. }
    ));
}

#[test]
fn a_refusal_no_limit_explains_is_not_blamed_on_one() {
    let key = AdmissionUsage {
        key: Some(KeyRuns {
            api_key_id: ApiKeyId::new(),
            max_concurrent_runs: Some(5),
            active_runs: 4,
        }),
        ..usage(busy(tenant(TenantStatus::Active, 1, 0, 25), 4, 1))
    };
    let error = refusal(&key, usage_period(at(25)), 0);
    assert!(
        matches!(error, RunError::AdmissionUnexplained { active: 4 }),
        "{error}"
    );
    assert_eq!(error.http_status(), 500, "not the caller's doing");
    assert_eq!(error.code(), "admission_unexplained");
}

#[test]
fn yesterdays_counter_does_not_refuse_today() {
    let yesterday = busy(tenant(TenantStatus::Active, 100, 0, 24), 5, 1);
    assert!(matches!(
        refusal(&usage(yesterday), usage_period(at(25)), 0),
        RunError::ConcurrentRunLimit { .. }
    ));
}

#[test]
fn every_caller_error_is_a_4xx() {
    let errors = [
        RunError::TenantNotFound,
        RunError::TenantInactive {
            status: TenantStatus::Archived,
        },
        RunError::Forbidden {
            role: MembershipRole::Viewer,
        },
        RunError::InvalidWorker,
        RunError::InvalidTask,
        RunError::TextHasNul(NulCharacter {
            field: "output.a".into(),
            in_key: true,
        }),
        RunError::ControlCharacter(TextError::ControlCharacter { field: "error" }),
        RunError::WorkerNotAllowed { worker: "w".into() },
        RunError::DailyRunLimit { limit: 1, used: 1 },
        RunError::MonthlyTokenLimit {
            limit: 1,
            used: 1,
            reserved: 0,
            requested: 0,
        },
        RunError::WorkerLimit {
            limit: 1,
            active: 1,
        },
        RunError::ConcurrentRunLimit {
            limit: 1,
            active: 1,
        },
        RunError::KeyConcurrentRunLimit {
            limit: 1,
            active: 1,
        },
        RunError::RunNotFound,
        RunError::AlreadyFinished {
            status: RunStatus::Completed,
        },
        RunError::ErrorTextTooLong { chars: 10_001 },
        RunError::InvalidMetrics {
            field: "cost_cents",
        },
        RunError::InvalidPage,
    ];
    let mut codes = std::collections::HashSet::new();
    for error in errors {
        assert!(
            (400..500).contains(&error.http_status()),
            "{error}: {}",
            error.http_status()
        );
        let code = error.code();
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(codes.insert(code), "duplicate code {code}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn periods_are_utc_day_and_first_of_month() {
    let period = usage_period(at(25));
    assert_eq!(period.day, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    assert_eq!(period.month, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
}
