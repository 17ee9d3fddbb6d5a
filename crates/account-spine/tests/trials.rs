//! Trials and grace on each backend: a trial that converts becomes active on its plan at its
//! end; one that does not enters grace, then is cancelled and its tenant suspended; a payment
//! reported during the grace ends it; two instances' passes racing move each subscription
//! exactly once (one audit row and one set of events per move); refusals name their field.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::billing::trials::{TRIAL_ENDED_UNPAID, TrialStart};
use account_spine::billing::{Subscription, SubscriptionUpsert};
use account_spine::types::*;
use account_spine::{DomainEvent, ErrorCode, FixedClock, RecordedEvents, Spine};
use account_testkit::backends;
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use support::operator;
use support::story::*;

/// An instance on `w`'s database whose clock is `ahead` of the world's, with events of its
/// own.
fn later(w: &World, ahead: TimeDelta) -> (Spine, Arc<RecordedEvents>) {
    let events = Arc::new(RecordedEvents::default());
    let spine = Spine::from_connection(w.db.host_conn().clone())
        .with_clock(Arc::new(FixedClock::new(now() + ahead)))
        .with_events(events.clone())
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap());
    (spine, events)
}

fn trial_end() -> DateTime<Utc> {
    now() + TimeDelta::days(14)
}

/// The tenant's subscription as its owner's billing summary shows it.
async fn subscription(spine: &Spine, w: &World) -> Subscription {
    let summary = spine.billing_summary(&w.owner("req-read")).await.unwrap();
    summary.subscription.expect("a subscription")
}

async fn tenant_status(spine: &Spine, w: &World) -> (TenantStatus, Option<String>, PlanCode) {
    let summary = spine.billing_summary(&w.owner("req-read")).await.unwrap();
    let t = summary.tenant;
    (t.status, t.suspended_reason, t.plan)
}

fn types(events: &RecordedEvents) -> Vec<&'static str> {
    events.all().iter().map(DomainEvent::event_type).collect()
}

#[tokio::test]
async fn a_converting_trial_becomes_active_on_its_plan_at_its_end() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-trial");
        let trial =
            TrialStart::new(w.tenant, "sub_trial", PlanCode::pro(), trial_end()).converting(true);
        let started = w.spine.start_trial(&op, trial).await.unwrap();
        assert_eq!(started.status, SubscriptionStatus::Trialing, "{name}");
        let (status, _, plan) = tenant_status(&w.spine, &w).await;
        assert_eq!(
            (status, plan),
            (TenantStatus::Active, PlanCode::pro()),
            "{name}: on the plan for the trial"
        );
        assert_eq!(types(&w.events), ["subscription.trial_started"], "{name}");
        assert_eq!(
            count(
                w.db.conn(),
                "audit_log",
                "action = 'subscription.trial_started'"
            )
            .await,
            1
        );

        // Not yet over: the pass leaves it.
        let (before, _) = later(&w, TimeDelta::days(14) - TimeDelta::seconds(1));
        let done = before.advance_trials(100).await.unwrap();
        assert!(
            done.converted.is_empty() && done.graced.is_empty(),
            "{name}: {done:?}"
        );

        let (after, events) = later(&w, TimeDelta::days(14) + TimeDelta::minutes(5));
        let done = after.advance_trials(100).await.unwrap();
        assert_eq!(done.converted, [started.id], "{name}");
        let sub = subscription(&after, &w).await;
        assert_eq!(sub.status, SubscriptionStatus::Active, "{name}");
        // The paid period starts when the trial ended, not when the pass ran.
        assert_eq!(sub.current_period_start, Some(trial_end()), "{name}");
        assert_eq!(
            sub.current_period_end,
            Some(trial_end() + TimeDelta::days(31)),
            "{name}: December 9 + 1 month"
        );
        assert_eq!(sub.grace_ends_at, None);
        assert_eq!(
            types(&events),
            ["subscription.trial_ended", "subscription.converted"],
            "{name}"
        );
        assert_eq!(
            events.all()[0],
            DomainEvent::SubscriptionTrialEnded {
                tenant_id: w.tenant,
                external_id: "sub_trial".into(),
                converted: true,
            }
        );
        let rows = audit_rows(w.db.conn(), "subscription.trial_ended").await;
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(rows[0].actor_type, "system", "{name}");
        assert_eq!(rows[0].resource_id.as_deref(), Some("sub_trial"));
        let (status, _, plan) = tenant_status(&after, &w).await;
        assert_eq!(
            (status, plan),
            (TenantStatus::Active, PlanCode::pro()),
            "{name}"
        );
        // Done: the next pass finds nothing.
        let again = after.advance_trials(100).await.unwrap();
        assert!(
            again.converted.is_empty() && again.skipped == 0,
            "{name}: {again:?}"
        );
    }
}

#[tokio::test]
async fn an_unpaid_trial_enters_grace_then_the_tenant_is_suspended() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-trial");
        let trial =
            TrialStart::new(w.tenant, "sub_trial", PlanCode::pro(), trial_end()).with_grace_days(3);
        let started = w.spine.start_trial(&op, trial).await.unwrap();

        let (ended, events) = later(&w, TimeDelta::days(15));
        let done = ended.advance_trials(100).await.unwrap();
        assert_eq!(done.graced, [started.id], "{name}");
        let sub = subscription(&ended, &w).await;
        assert_eq!(sub.status, SubscriptionStatus::Grace, "{name}");
        // The grace counts from the trial's end.
        assert_eq!(
            sub.grace_ends_at,
            Some(trial_end() + TimeDelta::days(3)),
            "{name}"
        );
        assert_eq!(
            types(&events),
            ["subscription.trial_ended", "subscription.grace_started"],
            "{name}"
        );
        let (status, _, plan) = tenant_status(&ended, &w).await;
        assert_eq!(
            (status, plan),
            (TenantStatus::Active, PlanCode::pro()),
            "{name}: served during grace"
        );

        // The grace has not ended yet.
        let (during, _) = later(&w, TimeDelta::days(17) - TimeDelta::seconds(1));
        assert!(
            during
                .advance_trials(100)
                .await
                .unwrap()
                .ended_unpaid
                .is_empty(),
            "{name}"
        );

        let (over, events) = later(&w, TimeDelta::days(17));
        let done = over.advance_trials(100).await.unwrap();
        assert_eq!(done.ended_unpaid, [started.id], "{name}");
        let sub = subscription(&over, &w).await;
        assert_eq!(sub.status, SubscriptionStatus::Canceled, "{name}");
        assert_eq!(sub.canceled_at, Some(now() + TimeDelta::days(17)), "{name}");
        let (status, reason, _) = tenant_status(&over, &w).await;
        assert_eq!(status, TenantStatus::Suspended, "{name}");
        assert_eq!(reason.as_deref(), Some(TRIAL_ENDED_UNPAID), "{name}");
        assert_eq!(
            types(&events),
            [
                "subscription.grace_ended",
                "tenant.status_changed",
                "tenant.suspended"
            ],
            "{name}"
        );
        let rows = audit_rows(w.db.conn(), "subscription.grace_ended").await;
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(
            (rows[0].actor_type.as_str(), rows[0].reason.as_deref()),
            ("system", Some(TRIAL_ENDED_UNPAID))
        );
        // The suspension went through the lifecycle state machine: its history says who.
        let history = over.lifecycle_history(&op, w.tenant, PAGE).await.unwrap();
        assert_eq!(history.items.len(), 1, "{name}");
        assert_eq!(history.items[0].actor_type, ActorType::System, "{name}");
        assert_eq!(history.items[0].actor_id, "trial-reaper", "{name}");
        assert_eq!(history.items[0].to, TenantStatus::Suspended, "{name}");
    }
}

#[tokio::test]
async fn a_payment_reported_during_the_grace_ends_it() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-trial");
        let trial = TrialStart::new(w.tenant, "sub_trial", PlanCode::pro(), trial_end());
        w.spine.start_trial(&op, trial).await.unwrap();
        let (graced, events) = later(&w, TimeDelta::days(15));
        assert_eq!(
            graced.advance_trials(100).await.unwrap().graced.len(),
            1,
            "{name}"
        );
        assert_eq!(
            subscription(&graced, &w).await.grace_ends_at,
            Some(trial_end() + TimeDelta::days(7)),
            "{name}: the default grace"
        );

        // The billing system reports the payment.
        let paid = SubscriptionUpsert {
            id: SubscriptionId::new(),
            tenant_id: w.tenant,
            external_id: "sub_trial".into(),
            plan: PlanCode::pro(),
            status: SubscriptionStatus::Active,
            billing_period: BillingPeriod::Monthly,
            current_period_start: Some(now() + TimeDelta::days(15)),
            current_period_end: Some(now() + TimeDelta::days(45)),
            trial_ends_at: Some(trial_end()),
            canceled_at: None,
            cancel_at_period_end: false,
        };
        let saved = graced.record_subscription(&op, paid).await.unwrap();
        assert_eq!(
            (saved.status, saved.grace_ends_at),
            (SubscriptionStatus::Active, None),
            "{name}"
        );
        assert_eq!(
            types(&events),
            [
                "subscription.trial_ended",
                "subscription.grace_started",
                "subscription.converted"
            ],
            "{name}"
        );

        // Past the grace's end: nothing to do, the tenant stays active.
        let (over, events) = later(&w, TimeDelta::days(30));
        let done = over.advance_trials(100).await.unwrap();
        assert!(
            done.ended_unpaid.is_empty() && done.skipped == 0,
            "{name}: {done:?}"
        );
        assert!(events.all().is_empty(), "{name}");
        assert_eq!(
            tenant_status(&over, &w).await.0,
            TenantStatus::Active,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_move_each_subscription_exactly_once() {
    const TRIALS: usize = 12;
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-trial");
        for i in 0..TRIALS {
            let trial = TrialStart::new(w.tenant, format!("sub_{i}"), PlanCode::pro(), trial_end())
                .converting(i % 2 == 0)
                .with_grace_days(2);
            w.spine.start_trial(&op, trial).await.unwrap();
        }

        // Both instances pass at once after the trials ended, then after the graces ended.
        for (ahead, action) in [
            (TimeDelta::days(15), "subscription.trial_ended"),
            (TimeDelta::days(17), "subscription.grace_ended"),
        ] {
            let (a, a_events) = later(&w, ahead);
            let (b, b_events) = later(&w, ahead);
            let (ra, rb) = tokio::join!(a.advance_trials(100), b.advance_trials(100));
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            assert_eq!(ra.failed + rb.failed, 0, "{name}: {ra:?} {rb:?}");
            let expected = if action == "subscription.trial_ended" {
                TRIALS
            } else {
                TRIALS / 2
            };
            let moved = ra.converted.len()
                + ra.graced.len()
                + ra.ended_unpaid.len()
                + rb.converted.len()
                + rb.graced.len()
                + rb.ended_unpaid.len();
            assert_eq!(moved, expected, "{name}: {action}: {ra:?} {rb:?}");
            let rows = count(w.db.conn(), "audit_log", &format!("action = '{action}'")).await;
            assert_eq!(
                rows,
                i64::try_from(expected).unwrap(),
                "{name}: one audit row per move"
            );
            let mut all = a_events.all();
            all.extend(b_events.all());
            let of = |t: &str| all.iter().filter(|e| e.event_type() == t).count();
            if action == "subscription.trial_ended" {
                assert_eq!(of("subscription.trial_ended"), TRIALS, "{name}");
                assert_eq!(of("subscription.converted"), TRIALS / 2, "{name}");
                assert_eq!(of("subscription.grace_started"), TRIALS / 2, "{name}");
            } else {
                assert_eq!(of("subscription.grace_ended"), TRIALS / 2, "{name}");
                assert_eq!(
                    of("tenant.suspended"),
                    1,
                    "{name}: the tenant is suspended once"
                );
            }
        }
        assert_eq!(
            count(w.db.conn(), "subscriptions", "status = 'active'").await,
            6,
            "{name}"
        );
        assert_eq!(
            count(w.db.conn(), "subscriptions", "status = 'canceled'").await,
            6,
            "{name}"
        );
        assert_eq!(
            count(
                w.db.conn(),
                "lifecycle_events",
                "reason = 'trial ended unpaid'"
            )
            .await,
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn refusals_name_their_field() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let name = w.backend;
        let op = operator("req-trial");
        let refused = |e: account_spine::SpineError| (e.code(), e.field().map(str::to_owned));
        let past = TrialStart::new(w.tenant, "sub_x", PlanCode::pro(), now());
        let e = w.spine.start_trial(&op, past).await.unwrap_err();
        assert_eq!(
            refused(e),
            ("invalid_trial_end", Some("trial_ends_at".into())),
            "{name}"
        );
        let far = TrialStart::new(
            w.tenant,
            "sub_x",
            PlanCode::pro(),
            now() + TimeDelta::days(366),
        );
        let e = w.spine.start_trial(&op, far).await.unwrap_err();
        assert_eq!(e.code(), "invalid_trial_end", "{name}");
        let long =
            TrialStart::new(w.tenant, "sub_x", PlanCode::pro(), trial_end()).with_grace_days(91);
        let e = w.spine.start_trial(&op, long).await.unwrap_err();
        assert_eq!(
            refused(e),
            ("invalid_grace_days", Some("grace_days".into())),
            "{name}"
        );
        let unknown = TrialStart::new(
            w.tenant,
            "sub_x",
            PlanCode::parse("nope").unwrap(),
            trial_end(),
        );
        let e = w.spine.start_trial(&op, unknown).await.unwrap_err();
        assert_eq!(e.code(), "plan_not_found", "{name}");
        let nobody = TrialStart::new(TenantId::new(), "sub_x", PlanCode::pro(), trial_end());
        let e = w.spine.start_trial(&op, nobody).await.unwrap_err();
        assert_eq!(e.code(), "tenant_not_found", "{name}");
        assert_eq!(
            count(w.db.conn(), "subscriptions", "1 = 1").await,
            0,
            "{name}: nothing written"
        );

        // A trial is not restarted over a paid subscription.
        let paid = SubscriptionUpsert {
            id: SubscriptionId::new(),
            tenant_id: w.tenant,
            external_id: "sub_paid".into(),
            plan: PlanCode::pro(),
            status: SubscriptionStatus::Active,
            billing_period: BillingPeriod::Monthly,
            current_period_start: None,
            current_period_end: None,
            trial_ends_at: None,
            canceled_at: None,
            cancel_at_period_end: false,
        };
        w.spine
            .record_subscription(&op, paid.clone())
            .await
            .unwrap();
        let again = TrialStart::new(w.tenant, "sub_paid", PlanCode::pro(), trial_end());
        let e = w.spine.start_trial(&op, again).await.unwrap_err();
        assert_eq!(
            refused(e),
            ("subscription_not_trialing", Some("external_id".into())),
            "{name}"
        );
        // ... and only the pass puts one in grace.
        let grace = SubscriptionUpsert {
            status: SubscriptionStatus::Grace,
            ..paid
        };
        let e = w.spine.record_subscription(&op, grace).await.unwrap_err();
        assert_eq!(
            refused(e),
            ("invalid_subscription_status", Some("status".into())),
            "{name}"
        );

        // A trial still in its trial can be changed (a later end, conversion on).
        let first = TrialStart::new(w.tenant, "sub_t", PlanCode::pro(), trial_end());
        w.spine.start_trial(&op, first).await.unwrap();
        let changed = TrialStart::new(
            w.tenant,
            "sub_t",
            PlanCode::pro(),
            trial_end() + TimeDelta::days(7),
        )
        .converting(true);
        let sub = w.spine.start_trial(&op, changed).await.unwrap();
        assert_eq!(
            (sub.trial_ends_at, sub.convert_to_paid),
            (Some(trial_end() + TimeDelta::days(7)), true),
            "{name}"
        );
    }
}
