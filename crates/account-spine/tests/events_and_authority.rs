// Over 600 lines: ten stories share one seeded World and audit-row readers a split would copy.
//! Domain events, audited refusals, request metadata in audit rows, tracing spans and
//! per-operation metrics, through the spine on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::invitations::Invitee;
use account_engines::lifecycle::LifecycleAction;
use account_engines::memory_pins::SavePin;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::runs::{AdmitRun, RunCompletion, RunFilter};
use account_spine::types::*;
use account_spine::{
    Actor, DomainEvent, ErrorCode, FixedClock, OffsetPage, Operation, OperatorPrincipal, Principal,
    RecordedEvents, RequestMeta, Spine, SpineError,
};
use account_testkit::fixtures::{Limits, TenantSeed, insert_membership, insert_user, seed_tenant};
use account_testkit::{Backend, TestDb, backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

const PAGE: OffsetPage = OffsetPage {
    limit: 50,
    offset: 0,
};

async fn count(conn: &DatabaseConnection, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// One audit row, as far as these tests look at it.
#[derive(Debug)]
struct AuditRow {
    tenant_id: Option<uuid::Uuid>,
    actor_type: String,
    user_id: Option<uuid::Uuid>,
    api_key_id: Option<uuid::Uuid>,
    resource_id: Option<String>,
    reason: Option<String>,
    request_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
}

async fn audit_rows(conn: &DatabaseConnection, action: &str) -> Vec<AuditRow> {
    let sql = format!(
        "SELECT tenant_id, actor_type, user_id, api_key_id, resource_id, reason, request_id, \
         ip_address, user_agent FROM audit_log WHERE action = '{action}' ORDER BY created_at, id"
    );
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| AuditRow {
            tenant_id: row.try_get("", "tenant_id").unwrap(),
            actor_type: row.try_get("", "actor_type").unwrap(),
            user_id: row.try_get("", "user_id").unwrap(),
            api_key_id: row.try_get("", "api_key_id").unwrap(),
            resource_id: row.try_get("", "resource_id").unwrap(),
            reason: row.try_get("", "reason").unwrap(),
            request_id: row.try_get("", "request_id").unwrap(),
            ip_address: row.try_get("", "ip_address").unwrap(),
            user_agent: row.try_get("", "user_agent").unwrap(),
        })
        .collect()
}

/// The refusal rows of one operation.
async fn refusals(conn: &DatabaseConnection, operation: Operation) -> Vec<AuditRow> {
    audit_rows(conn, "authorization.refused")
        .await
        .into_iter()
        .filter(|row| row.resource_id.as_deref() == Some(operation.name()))
        .collect()
}

fn request(id: &str) -> RequestMeta {
    RequestMeta {
        request_id: Some(id.to_owned()),
        ip_address: Some("203.0.113.7".into()),
        user_agent: Some("events-test/1.0".into()),
    }
}

fn operator(id: &str) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: id.to_owned(),
        request: request("req-operator"),
    }
}

#[derive(Clone, Copy)]
struct Quotas {
    runs_per_day: i32,
    concurrent_runs: i32,
    tokens_per_month: i64,
}

impl Default for Quotas {
    fn default() -> Self {
        let free = Plan::Free.quotas();
        Self {
            runs_per_day: free.max_runs_per_day,
            concurrent_runs: free.max_concurrent_runs,
            tokens_per_month: free.max_tokens_per_month,
        }
    }
}

struct World {
    backend: &'static str,
    db: TestDb,
    spine: Spine,
    events: Arc<RecordedEvents>,
    tenant: TenantId,
    owner: UserId,
}

impl World {
    async fn new(backend: &Backend, quotas: Quotas) -> Self {
        let db = fresh_db(backend).await.unwrap();
        let limits = Limits {
            runs_per_day: quotas.runs_per_day,
            concurrent_runs: quotas.concurrent_runs,
            tokens_per_month: quotas.tokens_per_month,
            ..support::limits(Plan::Free)
        };
        let seed = TenantSeed::new("Acme", "free", limits, now()).user("owner", Some("owner"));
        let seeded = seed_tenant(db.conn(), &seed).await;
        let events = Arc::new(RecordedEvents::default());
        let spine = Spine::from_connection(db.conn().clone())
            .with_clock(Arc::new(FixedClock::new(now())))
            .with_events(events.clone())
            .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap());
        Self {
            backend: backend.name(),
            db,
            spine,
            events,
            tenant: TenantId::from_uuid(seeded.id),
            owner: UserId::from_uuid(seeded.users[0]),
        }
    }

    /// A user with a membership in the tenant.
    async fn member(&self, email: &str, role: &str) -> UserId {
        let user = UserId::new();
        insert_user(self.db.conn(), user.as_uuid(), email, now()).await;
        insert_membership(
            self.db.conn(),
            self.tenant.as_uuid(),
            user.as_uuid(),
            role,
            now(),
        )
        .await;
        user
    }

    fn as_user(&self, user: UserId, role: MembershipRole, request_id: &str) -> Principal {
        Principal {
            tenant_id: self.tenant,
            actor: Actor::User {
                user_id: user,
                role,
            },
            request: request(request_id),
        }
    }

    fn owner(&self, request_id: &str) -> Principal {
        self.as_user(self.owner, MembershipRole::Owner, request_id)
    }

    /// An API key of the tenant with `permissions`, authenticated as a principal.
    async fn key(&self, permissions: &[&str], request_id: &str) -> (ApiKeyId, Principal) {
        let issued = self
            .spine
            .issue_api_key(
                &self.owner("req-setup"),
                IssueKey {
                    name: format!("key-{request_id}"),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let principal = self
            .spine
            .authenticate_api_key(issued.plaintext.expose(), request(request_id))
            .await
            .unwrap();
        (issued.key.id, principal)
    }

    async fn other(&self) -> DatabaseConnection {
        self.db.second_connection().await.unwrap()
    }

    fn events_since(&self, seen: usize) -> Vec<DomainEvent> {
        self.events.all().split_off(seen)
    }
}

fn assert_request_meta(row: &AuditRow, request_id: &str) {
    assert_eq!(row.request_id.as_deref(), Some(request_id), "{row:?}");
    assert_eq!(row.ip_address.as_deref(), Some("203.0.113.7"), "{row:?}");
    assert_eq!(
        row.user_agent.as_deref(),
        Some("events-test/1.0"),
        "{row:?}"
    );
}

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

        // The former owner still claims the owner role: the engine re-reads it (admin now)
        // and refuses inside the transaction. Typed, audited, nothing changed or published.
        let seen = w.events.all().len();
        let refused = w
            .spine
            .change_role(&w.owner("req-stale"), bea, MembershipRole::Member)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("only_owners_change_roles", 403),
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
        assert_eq!(rows[0].reason.as_deref(), Some("only_owners_change_roles"));
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

/// Every refusal path is a typed error with an audit row of its own: the authority check of
/// a read, the member check before a write (`acting`), a read's capability check, and
/// operator refusals (an unidentified operator, on a write and on `lifecycle_history`).
#[tokio::test]
async fn refusals_are_typed_and_audited_on_every_path() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let other = w.other().await;
        let viewer = w.member("vic@example.com", "viewer").await;

        let refused = w
            .spine
            .billing_summary(&w.as_user(viewer, MembershipRole::Viewer, "req-read"))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        let rows = refusals(&other, Operation::BillingSummary).await;
        assert_eq!(rows.len(), 1, "{}: a read refusal is audited", w.backend);
        assert_eq!(
            (rows[0].actor_type.as_str(), rows[0].user_id),
            ("user", Some(viewer.as_uuid()))
        );
        assert_eq!(rows[0].reason.as_deref(), Some("forbidden"));
        assert_request_meta(&rows[0], "req-read");

        let (key_id, key) = w.key(&["run:*", "read:*"], "req-key").await;
        for (operation, refused) in [
            (
                Operation::AccountInviteUser,
                w.spine
                    .invite_user(&key, "x@example.com", MembershipRole::Viewer)
                    .await
                    .map(|_| ()),
            ),
            // A personal key acts for its user, but only within its permissions: `read:*`
            // does not cover `support:read`.
            (
                Operation::SupportListTickets,
                w.spine.list_tickets(&key, None, PAGE).await.map(|_| ()),
            ),
        ] {
            let refused = refused.unwrap_err();
            assert!(
                matches!(refused, SpineError::Forbidden { .. }),
                "{refused:?}"
            );
            let rows = refusals(&other, operation).await;
            assert_eq!(rows.len(), 1, "{}: {}", w.backend, operation.name());
            assert_eq!(rows[0].actor_type, "api_key");
            assert_eq!(rows[0].api_key_id, Some(key_id.as_uuid()));
            assert_request_meta(&rows[0], "req-key");
        }

        let nobody = operator("  ");
        let refused = w
            .spine
            .lifecycle_history(&nobody, w.tenant, PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        let refused = w
            .spine
            .transition_tenant(&nobody, w.tenant, LifecycleAction::Suspend, "who?")
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        assert_eq!(count(&other, "tenants", "status = 'active'").await, 1);
        assert_eq!(count(&other, "lifecycle_events", "1 = 1").await, 0);
        for operation in [Operation::LifecycleHistory, Operation::LifecycleTransition] {
            let rows = refusals(&other, operation).await;
            assert_eq!(rows.len(), 1, "{}: {}", w.backend, operation.name());
            assert_eq!(rows[0].actor_type, "founder");
            assert_eq!(rows[0].tenant_id, Some(w.tenant.as_uuid()));
            assert_request_meta(&rows[0], "req-operator");
        }

        // An identified operator reads the history; a terminated tenant's reads are refused.
        let ops = operator("ops@example.com");
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Terminate, "closed")
            .await
            .unwrap();
        let history = w
            .spine
            .lifecycle_history(&ops, w.tenant, PAGE)
            .await
            .unwrap();
        assert_eq!(history.total, 1, "{}", w.backend);
        let refused = w
            .spine
            .list_runs(&w.owner("req-terminated"), &RunFilter::default(), PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::TenantStatusForbids { .. }),
            "{refused:?}"
        );
        let rows = refusals(&other, Operation::RunsList).await;
        assert_eq!(rows.len(), 1, "{}", w.backend);
        assert_eq!(rows[0].reason.as_deref(), Some("tenant_status_forbids"));
    }
}

/// What a capture layer saw of one span.
#[derive(Clone, Debug)]
struct SeenSpan {
    thread: ThreadId,
    id: u64,
    name: &'static str,
    /// Names of the enclosing spans, innermost first.
    ancestors: Vec<&'static str>,
    fields: BTreeMap<String, String>,
}

/// Records every span (with its fields) and every field value of spans and events, with the
/// thread that made them. Installed once as the global subscriber: a thread-local one races
/// with the callsite interest that parallel tests cache.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    values: Arc<Mutex<Vec<(ThreadId, String)>>>,
}

impl Capture {
    fn global() -> &'static Capture {
        static CAPTURE: OnceLock<Capture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            let capture = Capture::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry::Registry::default().with(capture.clone()),
            )
            .unwrap();
            capture
        })
    }

    fn record_values<'a>(&self, values: impl IntoIterator<Item = &'a String>) {
        let thread = std::thread::current().id();
        self.values
            .lock()
            .unwrap()
            .extend(values.into_iter().map(|v| (thread, v.clone())));
    }

    /// The spans this thread made.
    fn spans_of_this_thread(&self) -> Vec<SeenSpan> {
        let thread = std::thread::current().id();
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.thread == thread)
            .cloned()
            .collect()
    }

    /// The field values this thread recorded.
    fn values_of_this_thread(&self) -> Vec<String> {
        let thread = std::thread::current().id();
        let values = self.values.lock().unwrap();
        values
            .iter()
            .filter(|(t, _)| *t == thread)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Forgets what this thread recorded.
    fn forget_this_thread(&self) {
        let thread = std::thread::current().id();
        self.spans.lock().unwrap().retain(|s| s.thread != thread);
        self.values.lock().unwrap().retain(|(t, _)| *t != thread);
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let ancestors = ctx
            .span(id)
            .map(|span| span.scope().skip(1).map(|s| s.name()).collect())
            .unwrap_or_default();
        self.record_values(fields.values());
        self.spans.lock().unwrap().push(SeenSpan {
            thread: std::thread::current().id(),
            id: id.into_u64(),
            name: attrs.metadata().name(),
            ancestors,
            fields,
        });
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        values.record(&mut Fields(&mut fields));
        self.record_values(fields.values());
        let mut spans = self.spans.lock().unwrap();
        // Ids are reused once a span closed: the newest span with this id is the open one.
        let thread = std::thread::current().id();
        if let Some(span) = spans
            .iter_mut()
            .rev()
            .find(|s| s.id == id.into_u64() && s.thread == thread)
        {
            span.fields.extend(fields);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.record_values(fields.values());
    }
}

/// Every use case runs in a span named by its operation, with request id and tenant id, and
/// no secret shows in any span or event; a write runs a `transaction` span, a read (such as
/// `get_pin`) none.
#[tokio::test]
async fn use_cases_run_in_operation_spans_without_secrets_and_reads_open_no_transaction() {
    // The test runs on one thread (a current-thread runtime): what it traced is what that
    // thread traced.
    let capture = Capture::global();
    for backend in backends().unwrap() {
        capture.forget_this_thread();
        let w = World::new(&backend, Quotas::default()).await;
        let owner = w.owner("req-trace");
        let invitation = w
            .spine
            .invite_user(&owner, "ann@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let key = w
            .spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "ci".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        w.spine
            .authenticate_api_key(key.plaintext.expose(), request("req-auth"))
            .await
            .unwrap();
        w.spine
            .upsert_pin(
                &owner,
                SavePin {
                    key: "agent:cfg".into(),
                    value: json!({"v": 1}),
                    source: None,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap();
        w.spine.get_pin(&owner, "agent:cfg").await.unwrap();
        w.spine
            .lifecycle_history(&operator("ops@example.com"), w.tenant, PAGE)
            .await
            .unwrap();

        let spans = capture.spans_of_this_thread();
        let span = |operation: Operation| {
            let found: Vec<_> = spans
                .iter()
                .filter(|s| s.name == operation.name())
                .collect();
            assert_eq!(
                found.len(),
                1,
                "{}: {}: {spans:#?}",
                w.backend,
                operation.name()
            );
            found[0].clone()
        };
        let transactions_in = |operation: Operation| {
            spans
                .iter()
                .filter(|s| s.name == "transaction" && s.ancestors.contains(&operation.name()))
                .count()
        };
        let tenant = w.tenant.to_string();
        for operation in [
            Operation::AccountInviteUser,
            Operation::ApiKeysIssue,
            Operation::PinsUpsert,
            Operation::PinsGet,
        ] {
            let seen = span(operation);
            assert_eq!(
                seen.fields.get("operation"),
                Some(&operation.name().to_owned())
            );
            assert_eq!(seen.fields.get("tenant_id"), Some(&tenant), "{seen:?}");
            assert_eq!(
                seen.fields.get("request_id").map(String::as_str),
                Some("req-trace"),
                "{seen:?}"
            );
            assert_eq!(seen.fields.get("actor").map(String::as_str), Some("user"));
        }
        let verify = span(Operation::ApiKeysVerify);
        assert_eq!(verify.fields.get("tenant_id"), Some(&tenant), "{verify:?}");
        assert_eq!(
            verify.fields.get("request_id").map(String::as_str),
            Some("req-auth")
        );
        let history = span(Operation::LifecycleHistory);
        assert_eq!(
            history.fields.get("actor").map(String::as_str),
            Some("operator")
        );
        assert_eq!(history.fields.get("tenant_id"), Some(&tenant));

        assert_eq!(transactions_in(Operation::PinsUpsert), 1, "{}", w.backend);
        assert_eq!(transactions_in(Operation::AccountInviteUser), 1);
        assert_eq!(
            transactions_in(Operation::PinsGet),
            0,
            "{}: a read opens no write transaction",
            w.backend
        );
        assert_eq!(transactions_in(Operation::LifecycleHistory), 0);

        let values = capture.values_of_this_thread();
        for secret in [invitation.token.expose(), key.plaintext.expose()] {
            assert!(
                values.iter().all(|v| !v.contains(secret)),
                "{}: a secret was traced",
                w.backend
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_calls_errors_by_code_and_durations_per_operation() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let owner = w.owner("req-metrics");
        let viewer = w.as_user(
            w.member("vic@example.com", "viewer").await,
            MembershipRole::Viewer,
            "req-viewer",
        );
        let admit = AdmitRun {
            worker_id: "business-builder".into(),
            task: "plan".into(),
            input: None,
        };
        w.spine.admit_run(&owner, admit.clone()).await.unwrap();
        w.spine.admit_run(&owner, admit).await.unwrap();
        w.spine
            .list_runs(&viewer, &RunFilter::default(), PAGE)
            .await
            .unwrap();
        w.spine.billing_summary(&viewer).await.unwrap_err();
        w.spine
            .lifecycle_history(&operator(""), w.tenant, PAGE)
            .await
            .unwrap_err();

        let snapshot = w.spine.clone().metrics();
        assert_eq!(snapshot, w.spine.metrics(), "clones share the registry");
        assert_eq!(snapshot.operations.len(), Operation::ALL.len());
        let of = |operation: Operation| snapshot.operation(operation).unwrap().clone();
        let admitted = of(Operation::RunsAdmit);
        assert_eq!(
            (
                admitted.calls,
                admitted.duration_count,
                admitted.error_total()
            ),
            (2, 2, 0),
            "{}",
            w.backend
        );
        assert!(admitted.duration_sum > Duration::ZERO);
        assert_eq!(of(Operation::RunsList).calls, 1);
        for operation in [Operation::BillingSummary, Operation::LifecycleHistory] {
            let refused = of(operation);
            assert_eq!(refused.calls, 1, "{}", operation.name());
            assert_eq!(
                refused.errors,
                BTreeMap::from([("forbidden", 1)]),
                "{}",
                operation.name()
            );
        }
        assert_eq!(of(Operation::RunsComplete).calls, 0);
    }
}
