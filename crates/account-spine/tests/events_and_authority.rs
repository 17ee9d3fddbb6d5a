//! Domain events and request metadata in audit rows, through the spine on each backend:
//! events go out after commit only, tokens redact themselves, keys issue no wider keys.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::invitations::Invitee;
use account_engines::lifecycle::LifecycleAction;
use account_spine::api_keys::IssueKey;
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{DomainEvent, ErrorCode, Operation, SpineError};
use account_testkit::backends;
use chrono::TimeDelta;
use support::story::*;

#[tokio::test]
async fn invitations_publish_their_token_after_commit_and_redact_it_in_debug_output() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let owner = w.owner("req-invite");
        let issued = w
            .spine
            .invite_user(&owner, "ann@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let token = issued.token.expose().to_owned();
        let events = w.events.all();
        let created: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                DomainEvent::InvitationCreated {
                    tenant_id,
                    invitation_id,
                    email,
                    role,
                    token,
                    resent,
                    ..
                } => Some((*tenant_id, *invitation_id, email, *role, token, *resent)),
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), 1, "{}: {events:?}", w.backend);
        let (tenant_id, invitation_id, email, role, event_token, resent) = created[0];
        assert_eq!(
            (tenant_id, invitation_id, email.as_str(), role, resent),
            (
                w.tenant,
                issued.invitation.id,
                "ann@example.com",
                MembershipRole::Member,
                false
            )
        );
        assert_eq!(event_token.expose(), token, "the host can deliver it");
        let debug = format!("{events:?}");
        assert!(!debug.contains(&token), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");

        // A resend publishes the new token; the old one is gone.
        let again = w
            .spine
            .resend_invitation(&owner, issued.invitation.id)
            .await
            .unwrap();
        match w.events.all().last() {
            Some(DomainEvent::InvitationCreated { token, resent, .. }) => {
                assert!(*resent);
                assert_eq!(token.expose(), again.token.expose());
                assert_ne!(token.expose(), issued.token.expose());
            }
            other => panic!("{}: {other:?}", w.backend),
        }

        // A refused invitation publishes nothing.
        let viewer = w.member("vic@example.com", "viewer").await;
        let seen = w.events.all().len();
        w.spine
            .invite_user(
                &w.as_user(viewer, MembershipRole::Viewer, "req-v"),
                "x@example.com",
                MembershipRole::Viewer,
            )
            .await
            .unwrap_err();
        assert_eq!(w.events_since(seen), vec![], "{}", w.backend);
    }
}

/// A suspended tenant refuses acceptance: the engine's writes roll back, the refusal row
/// commits on its own, nothing is published; once resumed, the same token works and the
/// audit row carries the accepting request's metadata.
#[tokio::test]
async fn a_suspended_tenant_refuses_acceptance_and_only_the_refusal_is_written() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let issued = w
            .spine
            .invite_user(
                &w.owner("req-invite"),
                "ann@example.com",
                MembershipRole::Admin,
            )
            .await
            .unwrap();
        let ops = operator("ops@example.com");
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Suspend, "unpaid")
            .await
            .unwrap();
        let seen = w.events.all().len();

        let refused = w
            .spine
            .accept_invitation(
                w.tenant,
                issued.invitation.id,
                issued.token.expose(),
                Invitee::default(),
                request("req-accept-1"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                SpineError::TenantStatusForbids {
                    status: TenantStatus::Suspended,
                    ..
                }
            ),
            "{}: {refused:?}",
            w.backend
        );
        let other = w.other().await;
        assert_eq!(
            count(&other, "invitations", "status = 'pending'").await,
            1,
            "{}: the acceptance rolled back",
            w.backend
        );
        assert_eq!(count(&other, "users", "email = 'ann@example.com'").await, 0);
        assert_eq!(count(&other, "tenant_memberships", "1 = 1").await, 1);
        assert!(audit_rows(&other, "invitation.accepted").await.is_empty());
        let rows = refusals(&other, Operation::AccountAcceptInvitation).await;
        assert_eq!(rows.len(), 1, "{}: {rows:?}", w.backend);
        assert_eq!(rows[0].tenant_id, Some(w.tenant.as_uuid()));
        assert_eq!(rows[0].reason.as_deref(), Some("tenant_status_forbids"));
        assert_request_meta(&rows[0], "req-accept-1");
        assert_eq!(w.events_since(seen), vec![], "nothing published");

        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Resume, "paid")
            .await
            .unwrap();
        let seen = w.events.all().len();
        let membership = w
            .spine
            .accept_invitation(
                w.tenant,
                issued.invitation.id,
                issued.token.expose(),
                Invitee::default(),
                request("req-accept-2"),
            )
            .await
            .unwrap();
        let rows = audit_rows(&other, "invitation.accepted").await;
        assert_eq!(rows.len(), 1, "{}", w.backend);
        assert_request_meta(&rows[0], "req-accept-2");
        assert_eq!(rows[0].user_id, Some(membership.user_id.as_uuid()));
        assert_eq!(
            w.events_since(seen),
            vec![DomainEvent::InvitationAccepted {
                tenant_id: w.tenant,
                invitation_id: issued.invitation.id,
                user_id: membership.user_id,
                role: MembershipRole::Admin,
            }]
        );
    }
}

#[tokio::test]
async fn membership_changes_publish_their_events_after_commit_only() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let bea = w.member("bea@example.com", "member").await;
        let cy = w.member("cy@example.com", "member").await;
        let owner = w.owner("req-members");

        let seen = w.events.all().len();
        w.spine
            .change_role(&owner, bea, MembershipRole::Admin)
            .await
            .unwrap();
        w.spine.remove_user(&owner, cy).await.unwrap();
        w.spine.transfer_ownership(&owner, bea).await.unwrap();
        assert_eq!(
            w.events_since(seen),
            vec![
                DomainEvent::MemberRoleChanged {
                    tenant_id: w.tenant,
                    user_id: bea,
                    from: MembershipRole::Member,
                    to: MembershipRole::Admin,
                    changed_by: w.owner,
                },
                DomainEvent::MemberRemoved {
                    tenant_id: w.tenant,
                    user_id: cy,
                    role: MembershipRole::Member,
                    removed_by: w.owner,
                },
                DomainEvent::OwnershipTransferred {
                    tenant_id: w.tenant,
                    from: w.owner,
                    to: bea,
                },
            ],
            "{}",
            w.backend
        );

        // The former owner still claims the owner role: the spine reads the membership's role
        // before deciding (the host's claim grants nothing) and refuses. Typed, audited,
        // nothing changed or published.
        let seen = w.events.all().len();
        let refused = w
            .spine
            .change_role(&w.owner("req-stale"), bea, MembershipRole::Member)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("forbidden", 403),
            "{}",
            w.backend
        );
        assert_eq!(w.events_since(seen), vec![]);
        let other = w.other().await;
        assert_eq!(
            count(&other, "tenant_memberships", "role = 'owner'").await,
            1
        );
        let rows = refusals(&other, Operation::AccountChangeRole).await;
        assert_eq!(rows.len(), 1, "{}: {rows:?}", w.backend);
        assert_eq!(rows[0].user_id, Some(w.owner.as_uuid()));
        assert_eq!(rows[0].actor_type, "user");
        assert_eq!(rows[0].reason.as_deref(), Some("forbidden"));
        assert_request_meta(&rows[0], "req-stale");
    }
}

/// Key audit rows name the acting key (not `system`) and carry the request's metadata;
/// rotation publishes `ApiKeyRotated`, not a second `ApiKeyIssued`.
#[tokio::test]
async fn key_changes_audit_the_acting_principal_and_rotation_publishes_rotated() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let other = w.other().await;
        let (manager_id, manager) = w.key(&["keys:manage", "run:*", "read:*"], "req-key").await;
        let created = audit_rows(&other, "api_key.created").await;
        assert_eq!(created.len(), 1, "{}", w.backend);
        assert_eq!(created[0].actor_type, "user");
        assert_eq!(created[0].user_id, Some(w.owner.as_uuid()));
        assert_request_meta(&created[0], "req-setup");

        let seen = w.events.all().len();
        let ci = w
            .spine
            .issue_api_key(
                &manager,
                IssueKey {
                    name: "ci".into(),
                    permissions: vec!["run:*".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let rotated = w
            .spine
            .rotate_api_key(&manager, ci.key.id, TimeDelta::hours(1))
            .await
            .unwrap();
        w.spine
            .revoke_api_key(&manager, rotated.issued.key.id, "leaked")
            .await
            .unwrap();
        for action in ["api_key.created", "api_key.rotated", "api_key.revoked"] {
            let row = audit_rows(&other, action).await.pop().unwrap();
            assert_eq!(row.actor_type, "api_key", "{}: {action}", w.backend);
            assert_eq!(row.api_key_id, Some(manager_id.as_uuid()), "{action}");
            assert_eq!(row.user_id, None, "{action}");
            assert_request_meta(&row, "req-key");
        }
        assert_eq!(
            w.events_since(seen),
            vec![
                DomainEvent::ApiKeyIssued {
                    tenant_id: w.tenant,
                    key_id: ci.key.id,
                },
                DomainEvent::ApiKeyRotated {
                    tenant_id: w.tenant,
                    previous_key_id: ci.key.id,
                    new_key_id: rotated.issued.key.id,
                    previous_expires_at: Some(now() + TimeDelta::hours(1)),
                },
                DomainEvent::ApiKeyRevoked {
                    tenant_id: w.tenant,
                    key_id: rotated.issued.key.id,
                },
            ],
            "{}",
            w.backend
        );
    }
}

#[tokio::test]
async fn a_restricted_key_issues_only_keys_as_restricted_as_itself() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let restricted = w
            .spine
            .issue_api_key(
                &w.owner("req-setup"),
                IssueKey {
                    name: "builder manager".into(),
                    permissions: vec!["keys:manage".into(), "run:*".into()],
                    allowed_workers: Some(vec!["builder".into()]),
                    max_concurrent_runs: Some(2),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let manager = w
            .spine
            .authenticate_api_key(restricted.plaintext.expose(), request("req-key"))
            .await
            .unwrap();
        // Leaving the restriction out inherits it: no unrestricted key by omission.
        let child = w
            .spine
            .issue_api_key(
                &manager,
                IssueKey {
                    name: "child".into(),
                    permissions: vec!["run:*".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            child.key.allowed_workers,
            Some(vec!["builder".into()]),
            "{}",
            w.backend
        );
        assert_eq!(child.key.max_concurrent_runs, Some(2));
        let other = w.other().await;
        let keys_before = audit_rows(&other, "api_key.created").await.len();
        for (wider, field) in [
            (
                IssueKey {
                    allowed_workers: Some(vec!["builder".into(), "deployer".into()]),
                    ..IssueKey::default()
                },
                "allowed_workers",
            ),
            (
                IssueKey {
                    max_concurrent_runs: Some(3),
                    ..IssueKey::default()
                },
                "max_concurrent_runs",
            ),
        ] {
            let refused = w
                .spine
                .issue_api_key(
                    &manager,
                    IssueKey {
                        name: "wider".into(),
                        permissions: vec!["run:*".into()],
                        ..wider
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(
                (refused.code(), refused.http_status()),
                ("wider_than_issuing_key", 403),
                "{}: {field}",
                w.backend
            );
            assert!(refused.to_string().contains(field), "{refused}");
        }
        assert_eq!(
            audit_rows(&other, "api_key.created").await.len(),
            keys_before,
            "refused issues write no key"
        );
    }
}

#[tokio::test]
async fn lifecycle_transitions_publish_status_changes_and_suspensions_with_the_reason() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let ops = operator("ops@example.com");
        let seen = w.events.all().len();
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Suspend, "unpaid invoice")
            .await
            .unwrap();
        // A no-op transition publishes nothing.
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Suspend, "again")
            .await
            .unwrap();
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Resume, "paid")
            .await
            .unwrap();
        assert_eq!(
            w.events_since(seen),
            vec![
                DomainEvent::TenantStatusChanged {
                    tenant_id: w.tenant,
                    from: TenantStatus::Active,
                    to: TenantStatus::Suspended,
                },
                DomainEvent::TenantSuspended {
                    tenant_id: w.tenant,
                    reason: "unpaid invoice".into(),
                },
                DomainEvent::TenantStatusChanged {
                    tenant_id: w.tenant,
                    from: TenantStatus::Suspended,
                    to: TenantStatus::Active,
                },
            ],
            "{}",
            w.backend
        );
    }
}

fn thresholds(events: &[DomainEvent]) -> Vec<(&'static str, u8, i64, i64)> {
    events
        .iter()
        .filter_map(|event| match event {
            DomainEvent::QuotaThresholdCrossed {
                quota,
                percent,
                used,
                limit,
                ..
            } => Some((*quota, *percent, *used, *limit)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn committed_admissions_and_completions_report_quota_thresholds_once() {
    for backend in backends().unwrap() {
        let quotas = Quotas {
            runs_per_day: 5,
            concurrent_runs: 10,
            tokens_per_month: 1_000,
        };
        let w = World::new(&backend, quotas).await;
        let owner = w.owner("req-runs");
        let admit = || AdmitRun {
            worker_id: "business-builder".into(),
            task: "plan".into(),
            input: None,
            token_estimate: 0,
        };
        let mut crossed = Vec::new();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let seen = w.events.all().len();
            runs.push(w.spine.admit_run(&owner, admit()).await.unwrap());
            crossed.push(thresholds(&w.events_since(seen)));
        }
        assert_eq!(
            crossed,
            vec![
                vec![],
                vec![],
                vec![],
                vec![("quota_runs_per_day", 80, 4, 5)],
                vec![("quota_runs_per_day", 100, 5, 5)],
            ],
            "{}",
            w.backend
        );
        // The refused sixth admission rolls back: a refusal event, no threshold.
        let seen = w.events.all().len();
        let refused = w.spine.admit_run(&owner, admit()).await.unwrap_err();
        assert_eq!(refused.code(), "quota_runs_per_day");
        assert_eq!(
            w.events_since(seen),
            vec![DomainEvent::QuotaRefused {
                tenant_id: w.tenant,
                quota: "quota_runs_per_day",
            }]
        );

        // Tokens count at completion: 850 crosses 80 %, 950 nothing, 1000 the limit.
        let mut crossed = Vec::new();
        for (run, tokens) in runs.iter().zip([850, 100, 50]) {
            let seen = w.events.all().len();
            w.spine
                .complete_run(
                    &owner,
                    run.id,
                    RunCompletion {
                        success: true,
                        total_tokens: tokens,
                        ..RunCompletion::default()
                    },
                )
                .await
                .unwrap();
            crossed.push(thresholds(&w.events_since(seen)));
        }
        assert_eq!(
            crossed,
            vec![
                vec![("quota_tokens_per_month", 80, 850, 1_000)],
                vec![],
                vec![("quota_tokens_per_month", 100, 1_000, 1_000)],
            ],
            "{}",
            w.backend
        );
    }
}
