// Over 600 lines: seven stories share the seeded tenant, spine and principal helpers.
//! Account and API-key use cases through the spine, on each backend: each write is visible
//! from a second connection with its audit row.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::api_keys::ApiKeyPepper;
use account_engines::invitations::Invitee;
use account_spine::api_keys::IssueKey;
use account_spine::types::*;
use account_spine::{Actor, FixedClock, OffsetPage, Principal, RequestMeta, Spine, SpineError};
use account_testkit::fixtures::{TenantSeed, insert_user, seed_tenant};
use account_testkit::{backends, fresh_db};
use chrono::{TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::sync::Arc;

async fn count(conn: &DatabaseConnection, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A tenant with one owner, seeded with plain SQL (the spine has no driver access).
async fn seed(conn: &DatabaseConnection) -> (TenantId, UserId) {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let seed = TenantSeed::new("Acme", "free", support::limits(PlanCode::free()), now)
        .user("owner", Some("owner"));
    let seeded = seed_tenant(conn, &seed).await;
    (
        TenantId::from_uuid(seeded.id),
        UserId::from_uuid(seeded.users[0]),
    )
}

fn spine(conn: &DatabaseConnection) -> Spine {
    Spine::from_connection(conn.clone())
        .with_clock(Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        )))
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap())
}

fn as_user(tenant: TenantId, user: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: user,
            role,
        },
        request: RequestMeta::default(),
    }
}

#[tokio::test]
async fn invitation_story_commits_with_audit_rows() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let (tenant, owner_id) = seed(db.conn()).await;
        let spine = spine(db.host_conn());
        let owner = as_user(tenant, owner_id, MembershipRole::Owner);

        let issued = spine
            .invite_user(&owner, "ann@example.com", MembershipRole::Admin)
            .await
            .unwrap();
        let other = db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "invitations", "status = 'pending'").await,
            1,
            "{}",
            backend.name()
        );
        assert_eq!(
            count(&other, "audit_log", "action = 'invitation.created'").await,
            1
        );
        assert_eq!(
            count(
                &other,
                "audit_log",
                &format!("CAST(new_value AS TEXT) LIKE '%{}%'", issued.token.expose())
            )
            .await,
            0,
            "no token in audit rows"
        );

        let membership = spine
            .accept_invitation(
                tenant,
                issued.invitation.id,
                issued.token.expose(),
                Invitee::default(),
                RequestMeta::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            count(&other, "tenant_memberships", "role = 'admin'").await,
            1
        );
        assert_eq!(
            count(&other, "audit_log", "action = 'invitation.accepted'").await,
            1
        );

        let change = spine
            .change_role(&owner, membership.user_id, MembershipRole::Member)
            .await
            .unwrap();
        assert_eq!(change.previous, MembershipRole::Admin);
        assert_eq!(
            count(&other, "audit_log", "action = 'membership.role_changed'").await,
            1
        );

        // The last owner cannot leave; the error is a typed 409.
        let error = spine.remove_user(&owner, owner_id).await.unwrap_err();
        assert_eq!(account_spine::ErrorCode::code(&error), "last_owner");
        let users = spine
            .list_users(
                &owner,
                Default::default(),
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(users.total, 2);

        // The seed's `list_tenant_users`: every member with role and join time.
        let page = OffsetPage {
            limit: 1,
            offset: 0,
        };
        let members = spine.list_tenant_users(&owner, page).await.unwrap();
        assert_eq!((members.total, members.users.len()), (2, 1));
        let next = OffsetPage { offset: 1, ..page };
        let rest = spine.list_tenant_users(&owner, next).await.unwrap();
        let mut roles: Vec<_> = [&members.users[0], &rest.users[0]]
            .iter()
            .map(|m| (m.user_id == owner_id, m.role))
            .collect();
        roles.sort_by_key(|(is_owner, _)| *is_owner);
        assert_eq!(
            roles,
            [
                (false, MembershipRole::Member),
                (true, MembershipRole::Owner)
            ],
            "{}",
            backend.name()
        );
        let too_big = OffsetPage {
            limit: 101,
            offset: 0,
        };
        let refused = spine.list_tenant_users(&owner, too_big).await.unwrap_err();
        assert_eq!(account_spine::ErrorCode::code(&refused), "invalid_page");
    }
}

#[tokio::test]
async fn api_keys_issue_authenticate_and_revoke() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let (tenant, owner_id) = seed(db.conn()).await;
        let spine = spine(db.host_conn());
        let owner = as_user(tenant, owner_id, MembershipRole::Owner);

        let issued = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "ci".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let other = db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "api_keys", "status = 'active'").await,
            1,
            "{}",
            backend.name()
        );
        assert_eq!(
            count(&other, "audit_log", "action = 'api_key.created'").await,
            1
        );

        let principal = spine
            .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(principal.tenant_id, tenant);
        let malformed = spine
            .authenticate_api_key("acc_live_nope", RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(account_spine::ErrorCode::http_status(&malformed), 401);

        // A key cannot manage users, whatever it holds.
        let error = spine
            .invite_user(&principal, "x@example.com", MembershipRole::Viewer)
            .await
            .unwrap_err();
        assert!(matches!(error, SpineError::Forbidden { .. }), "{error:?}");

        spine
            .revoke_api_key(&owner, issued.key.id, "rotated out")
            .await
            .unwrap();
        let refused = spine
            .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(account_spine::ErrorCode::http_status(&refused), 401);

        let second = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "ci-2".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let rotated = spine
            .rotate_api_key(&owner, second.key.id, TimeDelta::hours(1))
            .await
            .unwrap();
        spine
            .authenticate_api_key(rotated.issued.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        spine
            .authenticate_api_key(second.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
    }
}

/// Of concurrent accepts of one invitation, one joins and the others are told it was
/// accepted (or that the invitee is a member now): a typed 409, never a storage error from
/// the unique email index.
#[tokio::test]
async fn racing_accepts_of_one_invitation_are_typed_refusals() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let (tenant, owner_id) = seed(db.conn()).await;
        let spine = spine(db.host_conn());
        let owner = as_user(tenant, owner_id, MembershipRole::Owner);
        let issued = spine
            .invite_user(&owner, "racer@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let token = issued.token.expose().to_owned();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (spine, token) = (spine.clone(), token.clone());
                let id = issued.invitation.id;
                tokio::spawn(async move {
                    spine
                        .accept_invitation(
                            tenant,
                            id,
                            &token,
                            Invitee::default(),
                            RequestMeta::default(),
                        )
                        .await
                })
            })
            .collect();
        let mut joined = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => joined += 1,
                // Which of the two a loser sees depends on when it read the invitation.
                Err(error) => assert!(
                    matches!(
                        (
                            account_spine::ErrorCode::code(&error),
                            account_spine::ErrorCode::http_status(&error)
                        ),
                        ("invitation_accepted" | "already_member", 409)
                    ),
                    "{}: {error:?}",
                    backend.name()
                ),
            }
        }
        assert_eq!(joined, 1, "{}", backend.name());
        let other = db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "users", "email = 'racer@example.com'").await,
            1
        );
    }
}

/// An account for the invitee's email created by a concurrent transaction (another tenant's
/// accept, a sign-up) that commits while the accept waits on the unique email index: the
/// accept is retried and joins with that account instead of failing with a storage error.
/// PostgreSQL only: SQLite runs one writer at a time, so the accept cannot overlap the insert.
#[tokio::test]
async fn an_accept_racing_a_signup_joins_with_the_account_created_first() {
    for backend in backends().unwrap() {
        if backend.name() != "postgres" {
            continue;
        }
        let db = fresh_db(&backend).await.unwrap();
        let (tenant, owner_id) = seed(db.conn()).await;
        let spine = spine(db.host_conn());
        let owner = as_user(tenant, owner_id, MembershipRole::Owner);
        let issued = spine
            .invite_user(&owner, "late@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let signup = db.second_connection().await.unwrap();
        let txn = signup.begin().await.unwrap();
        let account = UserId::new();
        insert_user(&txn, account.as_uuid(), "late@example.com", now).await;
        let accept = {
            let (spine, token) = (spine.clone(), issued.token.expose().to_owned());
            let id = issued.invitation.id;
            tokio::spawn(async move {
                spine
                    .accept_invitation(
                        tenant,
                        id,
                        &token,
                        Invitee::default(),
                        RequestMeta::default(),
                    )
                    .await
            })
        };
        // Let the accept reach the insert that waits on the uncommitted row, then commit.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        txn.commit().await.unwrap();
        let membership = accept.await.unwrap().unwrap();
        assert_eq!(
            membership.user_id, account,
            "joined with the existing account"
        );
        assert_eq!(
            count(&signup, "users", "email = 'late@example.com'").await,
            1
        );
        assert_eq!(
            count(
                &signup,
                "tenant_memberships",
                &format!("user_id = '{}'", account.as_uuid())
            )
            .await,
            1
        );
    }
}

// ---------------------------------------------------------------------------------------
// Reads: projects, user detail, support contact.

const PAGE: OffsetPage = OffsetPage {
    limit: 20,
    offset: 0,
};

fn platform() -> account_spine::OperatorPrincipal {
    account_spine::OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    }
}

/// A new tenant named `name` whose owner is `email`: the tenant, the owner as a user
/// principal, and the owner's personal (bootstrap) key as a principal.
async fn tenant_of(spine: &Spine, email: &str, name: &str) -> (TenantId, Principal, Principal) {
    let (created, key) = spine.bootstrap(&platform(), email, name).await.unwrap();
    let tenant = created.tenant.id;
    let owner = as_user(tenant, created.owner.user_id, MembershipRole::Owner);
    let personal = spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    (tenant, owner, personal)
}

/// `issuer` issues a key with `permissions` and it is verified: a personal key when the
/// issuer is a user, a machine key when the issuer is a key.
async fn key_for(spine: &Spine, issuer: &Principal, permissions: &[&str]) -> Principal {
    let issued = spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "k".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    spine
        .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap()
}

/// `email` joins `tenant` with `role` through an invitation from `inviter`; their user id.
async fn join(spine: &Spine, inviter: &Principal, email: &str, role: MembershipRole) -> UserId {
    let issued = spine.invite_user(inviter, email, role).await.unwrap();
    spine
        .accept_invitation(
            inviter.tenant_id,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap()
        .user_id
}

fn code_and_status(error: &SpineError) -> (&'static str, u16) {
    (
        account_spine::ErrorCode::code(error),
        account_spine::ErrorCode::http_status(error),
    )
}

#[tokio::test]
async fn projects_are_the_callers_memberships_and_any_other_is_not_found() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let spine = spine(db.host_conn());
        let (acme, ann, ann_key) = tenant_of(&spine, "ann@example.com", "Acme").await;
        let (beta, bob, _) = tenant_of(&spine, "bob@example.com", "Beta").await;
        let (gamma, _, _) = tenant_of(&spine, "cat@example.com", "Gamma").await;
        // Ann is also a viewer of Beta; she is not a member of Gamma.
        join(&spine, &bob, "ann@example.com", MembershipRole::Viewer).await;

        for caller in [&ann, &ann_key] {
            let listed = spine
                .list_projects(caller, Default::default(), PAGE)
                .await
                .unwrap();
            let ids: Vec<_> = listed.items.iter().map(|p| p.project_id).collect();
            assert_eq!(listed.total, 2, "{name}: {ids:?}");
            assert!(!listed.has_more);
            assert!(ids.contains(&acme) && ids.contains(&beta), "{name}");
            assert!(
                !ids.contains(&gamma),
                "{name}: never a tenant she is not in"
            );
        }
        let first = spine
            .list_projects(
                &ann,
                Default::default(),
                OffsetPage {
                    limit: 1,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (first.items.len(), first.total, first.has_more),
            (1, 2, true)
        );

        let detail = spine.get_project(&ann, acme).await.unwrap();
        assert_eq!(detail.project_id, acme);
        assert_eq!(
            (detail.name.as_str(), detail.slug.as_str()),
            ("Acme", "acme")
        );
        assert_eq!(detail.plan, PlanCode::free());
        assert_eq!(
            detail.max_api_keys,
            account_spine::types::PlanQuotas::built_in(&PlanCode::free())
                .unwrap()
                .max_api_keys
        );
        assert_eq!(
            spine.get_project(&ann_key, beta).await.unwrap().name,
            "Beta"
        );

        // Gamma exists but Ann is not in it: the same 404 as an id that names nothing.
        let not_hers = spine.get_project(&ann, gamma).await.unwrap_err();
        let nothing = spine.get_project(&ann, TenantId::new()).await.unwrap_err();
        assert_eq!(
            code_and_status(&not_hers),
            ("project_not_found", 404),
            "{name}"
        );
        assert_eq!(code_and_status(&nothing), code_and_status(&not_hers));
        assert_eq!(not_hers.to_string(), nothing.to_string());
        assert!(!format!("{not_hers:?}").contains("Gamma"));

        // The status filter, and a project that stopped allowing reads.
        spine
            .transition_tenant(
                &platform(),
                beta,
                account_spine::lifecycle::LifecycleAction::Suspend,
                "test",
            )
            .await
            .unwrap();
        let suspended = spine
            .list_projects(
                &ann,
                account_spine::tenants::ProjectFilters::default()
                    .with_status(TenantStatus::Suspended),
                PAGE,
            )
            .await
            .unwrap();
        assert_eq!(suspended.total, 1, "{name}");
        assert_eq!(suspended.items[0].project_id, beta);
        assert_eq!(
            spine.get_project(&ann, beta).await.unwrap().status,
            TenantStatus::Suspended,
            "{name}: suspended tenants still read"
        );
        spine
            .transition_tenant(
                &platform(),
                beta,
                account_spine::lifecycle::LifecycleAction::Terminate,
                "test",
            )
            .await
            .unwrap();
        let closed = spine.get_project(&ann, beta).await.unwrap_err();
        assert_eq!(
            code_and_status(&closed),
            ("tenant_status_forbids", 403),
            "{name}"
        );

        // Authority: a personal key needs `read:*`; a machine key acts as nobody.
        let runner = key_for(&spine, &ann, &["run:*"]).await;
        let refused = spine
            .list_projects(&runner, Default::default(), PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );
        let refused = spine.get_project(&runner, acme).await.unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );
        let machine = key_for(&spine, &ann_key, &["read:*"]).await;
        let refused = spine.get_project(&machine, acme).await.unwrap_err();
        assert_eq!(code_and_status(&refused), ("machine_key_not_allowed", 403));
        let other = db.second_connection().await.unwrap();
        assert_eq!(
            count(
                &other,
                "audit_log",
                "action = 'authorization.refused' AND resource_id = 'account.get_project'"
            )
            .await,
            3,
            "{name}: the closed project, the narrow key and the machine key"
        );
        assert_eq!(
            count(
                &other,
                "audit_log",
                "action = 'authorization.refused' AND resource_id = 'account.list_projects'"
            )
            .await,
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn user_detail_is_of_the_principals_tenant_only() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let spine = spine(db.host_conn());
        let (_, ann, ann_key) = tenant_of(&spine, "ann@example.com", "Acme").await;
        let (_, bob, _) = tenant_of(&spine, "bob@example.com", "Beta").await;
        let mo = join(&spine, &ann, "mo@example.com", MembershipRole::Member).await;

        let detail = spine.get_user(&ann, mo).await.unwrap();
        assert_eq!(detail.user_id, mo, "{name}");
        assert_eq!(detail.email, "mo@example.com");
        assert_eq!(detail.role, MembershipRole::Member);
        assert!(detail.can_run_workers && detail.can_view_runs);
        assert!(!detail.can_manage_keys, "{name}: members manage no keys");
        let own = spine.get_user(&ann_key, user_of(&ann)).await.unwrap();
        assert_eq!(
            (own.role, own.can_manage_keys),
            (MembershipRole::Owner, true)
        );

        // Bob exists, in another tenant: from Acme he is not found, and Mo not from Beta.
        let refused = spine.get_user(&ann, user_of(&bob)).await.unwrap_err();
        assert_eq!(code_and_status(&refused), ("not_a_member", 404), "{name}");
        let refused = spine.get_user(&bob, mo).await.unwrap_err();
        assert_eq!(code_and_status(&refused), ("not_a_member", 404), "{name}");
        assert!(!format!("{refused:?}").contains("mo@example.com"));

        // `read:*` does not cover `users:read`; `users:read` does; machine keys never.
        let reader = key_for(&spine, &ann, &["read:*"]).await;
        let refused = spine.get_user(&reader, mo).await.unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );
        let users = key_for(&spine, &ann, &["users:read"]).await;
        assert_eq!(spine.get_user(&users, mo).await.unwrap().user_id, mo);
        let machine = key_for(&spine, &ann_key, &["users:read"]).await;
        let refused = spine.get_user(&machine, mo).await.unwrap_err();
        assert_eq!(code_and_status(&refused), ("machine_key_not_allowed", 403));
    }
}

fn user_of(principal: &Principal) -> UserId {
    match principal.actor {
        Actor::User { user_id, .. } => user_id,
        Actor::ApiKey { user_id, .. } => user_id.unwrap(),
        ref other => panic!("not a user's principal: {other:?}"),
    }
}

#[tokio::test]
async fn the_support_contact_is_configuration_readable_with_support_read() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let unconfigured = spine(db.conn());
        let (acme, ann, ann_key) = tenant_of(&unconfigured, "ann@example.com", "Acme").await;
        let missing = unconfigured.support_contact(&ann).await.unwrap_err();
        assert_eq!(
            code_and_status(&missing),
            ("support_contact_not_configured", 404),
            "{name}"
        );

        let contact = account_spine::support::SupportContact::new(
            Email::parse("help@example.com").unwrap(),
            "Mon-Fri 09:00-17:00 CET",
            "within one business day",
        );
        let spine = spine(db.conn()).with_support_contact(contact.clone());
        assert_eq!(
            spine.support_contact(&ann).await.unwrap(),
            contact,
            "{name}"
        );
        assert_eq!(spine.support_contact(&ann_key).await.unwrap(), contact);
        let support = key_for(&spine, &ann, &["support:read"]).await;
        assert_eq!(spine.support_contact(&support).await.unwrap(), contact);

        let reader = key_for(&spine, &ann, &["read:*"]).await;
        let refused = spine.support_contact(&reader).await.unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );
        let machine = key_for(&spine, &ann_key, &["support:read"]).await;
        let refused = spine.support_contact(&machine).await.unwrap_err();
        assert_eq!(code_and_status(&refused), ("machine_key_not_allowed", 403));

        // A terminated tenant's members can still reach support.
        for action in [
            account_spine::lifecycle::LifecycleAction::Suspend,
            account_spine::lifecycle::LifecycleAction::Terminate,
        ] {
            spine
                .transition_tenant(&platform(), acme, action, "test")
                .await
                .unwrap();
        }
        assert_eq!(
            spine.support_contact(&ann).await.unwrap(),
            contact,
            "{name}"
        );
    }
}
