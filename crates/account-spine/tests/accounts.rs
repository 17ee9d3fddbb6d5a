//! Account and API-key use cases through the spine, on each backend: each write is visible
//! from a second connection with its audit row.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_engines::api_keys::ApiKeyPepper;
use account_engines::invitations::Invitee;
use account_spine::api_keys::IssueKey;
use account_spine::types::*;
use account_spine::{Actor, FixedClock, OffsetPage, Principal, RequestMeta, Spine, SpineError};
use account_testkit::{backends, fresh_db};
use chrono::{TimeDelta, TimeZone, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use std::sync::Arc;

async fn insert(
    conn: &impl ConnectionTrait,
    table: &'static str,
    values: Vec<(&'static str, Value)>,
) {
    let mut query = Query::insert();
    query
        .into_table(table)
        .columns(values.iter().map(|(c, _)| *c));
    query
        .values(values.into_iter().map(|(_, v)| Expr::val(v)))
        .unwrap();
    conn.execute(&query).await.unwrap();
}

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
    let (tenant, owner) = (TenantId::new(), UserId::new());
    let q = Plan::Free.quotas();
    insert(
        conn,
        "tenants",
        vec![
            ("id", tenant.as_uuid().into()),
            ("name", "Acme".into()),
            ("slug", "acme".into()),
            ("plan", "free".into()),
            ("max_workers", q.max_workers.into()),
            ("max_runs_per_day", q.max_runs_per_day.into()),
            ("max_concurrent_runs", q.max_concurrent_runs.into()),
            ("max_tokens_per_month", q.max_tokens_per_month.into()),
            ("max_api_keys", q.max_api_keys.into()),
            ("status", "active".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    insert(
        conn,
        "users",
        vec![
            ("id", owner.as_uuid().into()),
            ("email", "owner@example.com".into()),
            ("status", "active".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    insert(
        conn,
        "tenant_memberships",
        vec![
            ("id", uuid::Uuid::now_v7().into()),
            ("tenant_id", tenant.as_uuid().into()),
            ("user_id", owner.as_uuid().into()),
            ("role", "owner".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    (tenant, owner)
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
        let spine = spine(db.conn());
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
    }
}

#[tokio::test]
async fn api_keys_issue_authenticate_and_revoke() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let (tenant, owner_id) = seed(db.conn()).await;
        let spine = spine(db.conn());
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
        let spine = spine(db.conn());
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
        let spine = spine(db.conn());
        let owner = as_user(tenant, owner_id, MembershipRole::Owner);
        let issued = spine
            .invite_user(&owner, "late@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let signup = db.second_connection().await.unwrap();
        let txn = signup.begin().await.unwrap();
        let account = UserId::new();
        insert(
            &txn,
            "users",
            vec![
                ("id", account.as_uuid().into()),
                ("email", "late@example.com".into()),
                ("status", "active".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
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
