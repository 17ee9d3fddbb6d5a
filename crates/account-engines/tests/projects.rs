//! Projects and members as the customer console reads them, and support tickets by status, on
//! each backend (formerly the accounts facade's tests, now on the engine functions the spine
//! calls).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use account_engines::support::{self, OpenTicket, TicketError};
use account_engines::tenants::{self, Caller, CreateTenant, ProjectFilters, create_tenant};
use account_engines::types::*;
use account_engines::{Db, ErrorCode, OffsetPage, memberships, onboarding};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn page(limit: u64, offset: u64) -> OffsetPage {
    OffsetPage { limit, offset }
}

async fn user(db: Db<'_>, name: &str) -> UserId {
    let id = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id,
                email: format!("{name}@example.com"),
                external_user_id: None,
                name: Some(name.into()),
                avatar_url: None,
                status: UserStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
    id
}

/// A tenant owned by `owner`, created `minutes` after `now()` (so list order is known).
async fn tenant(db: Db<'_>, owner: UserId, slug: &str, minutes: i64) -> TenantId {
    create_tenant(
        db,
        CreateTenant {
            name: format!("Project {slug}"),
            slug: Some(slug.into()),
            plan: PlanCode::pro(),
            owner,
            billing_email: None,
        },
        now() + TimeDelta::minutes(minutes),
    )
    .await
    .unwrap()
    .tenant
    .id
}

async fn join(db: Db<'_>, tenant: TenantId, user: UserId, role: MembershipRole, by: UserId) {
    get_accounts_facade_driver(db)
        .insert_membership(tenant, user, role, Some(by), now() + TimeDelta::minutes(1))
        .await
        .unwrap();
}

fn caller(tenant_id: TenantId, user_id: UserId) -> Caller {
    Caller { tenant_id, user_id }
}

fn code<T: std::fmt::Debug, E: ErrorCode + std::fmt::Debug>(
    result: Result<T, E>,
) -> (&'static str, u16) {
    let error = result.expect_err("the call should be refused");
    (error.code(), error.http_status())
}

#[tokio::test]
async fn projects_list_only_the_callers_tenants_paged_and_filtered() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let ann = user(db, "ann").await;
        let bob = user(db, "bob").await;
        let first = tenant(db, ann, "alpha", 0).await;
        let second = tenant(db, ann, "beta", 1).await;
        let bobs = tenant(db, bob, "bobs", 2).await;
        join(db, bobs, ann, MembershipRole::Viewer, bob).await;
        tenant(db, bob, "not-anns", 3).await;
        get_tenant_driver(db)
            .update_tenant_status(
                second,
                TenantStatus::Active,
                TenantStatus::Suspended,
                Some("unpaid"),
                now(),
            )
            .await
            .unwrap();

        let all = ProjectFilters::default();
        let one = tenants::list_projects(db, ann, all, page(2, 0))
            .await
            .unwrap();
        assert_eq!((one.total, one.has_more), (3, true), "{}", backend.name());
        let ids: Vec<_> = one.items.iter().map(|p| p.project_id).collect();
        assert_eq!(ids, [first, second], "oldest first");
        assert_eq!(one.items[0].name, "Project alpha");
        assert_eq!(one.items[0].plan, PlanCode::pro());
        let two = tenants::list_projects(db, ann, all, page(2, 2))
            .await
            .unwrap();
        assert_eq!(two.items.len(), 1);
        assert_eq!(
            two.items[0].project_id, bobs,
            "membership, not ownership, counts"
        );
        assert!(!two.has_more);

        let suspended = ProjectFilters::default().with_status(TenantStatus::Suspended);
        let filtered = tenants::list_projects(db, ann, suspended, page(10, 0))
            .await
            .unwrap();
        assert_eq!(filtered.total, 1);
        assert_eq!(filtered.items[0].status, TenantStatus::Suspended);
        assert_eq!(filtered.filters_applied, suspended);
        assert_eq!(
            serde_json::to_value(&filtered).unwrap()["filters_applied"],
            json!({"status": "suspended"})
        );
        assert_eq!(
            serde_json::to_value(&one).unwrap()["filters_applied"],
            json!({})
        );

        let nobody = user(db, "nobody").await;
        let none = tenants::list_projects(db, nobody, all, page(10, 0))
            .await
            .unwrap();
        assert_eq!((none.total, none.has_more, none.items.len()), (0, false, 0));
        for bad in [page(0, 0), page(101, 0)] {
            assert_eq!(
                code(tenants::list_projects(db, ann, all, bad).await),
                ("invalid_page", 422)
            );
        }
    }
}

#[tokio::test]
async fn project_detail_is_for_members_only_and_reads_counters_and_onboarding() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let ann = user(db, "ann").await;
        let eve = user(db, "eve").await;
        let project = tenant(db, ann, "detail", 0).await;
        tenant(db, eve, "eves", 0).await;
        let today = now().date_naive();
        let month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
        get_tenant_driver(db)
            .increment_tenant_usage(project, 2, 500, today, month, now())
            .await
            .unwrap();
        onboarding::advance(db, project, OnboardingState::IdentityVerified, None, now())
            .await
            .unwrap();

        let detail = tenants::get_project_detail(db, caller(project, ann), now())
            .await
            .unwrap();
        assert_eq!(detail.project_id, project, "{}", backend.name());
        assert_eq!(detail.slug, "detail");
        let quotas = account_engines::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap();
        assert_eq!(detail.max_runs_per_day, quotas.max_runs_per_day);
        assert_eq!(detail.max_api_keys, quotas.max_api_keys);
        assert_eq!(detail.max_tokens_per_month, quotas.max_tokens_per_month);
        assert_eq!(
            (
                detail.runs_today,
                detail.runs_this_month,
                detail.tokens_this_month
            ),
            (2, 2, 500)
        );
        assert_eq!(detail.onboarding_state, OnboardingState::IdentityVerified);
        assert!(!detail.onboarding_complete);
        assert_eq!(
            serde_json::to_value(&detail).unwrap()["onboarding_state"],
            json!("IDENTITY_VERIFIED")
        );

        let tomorrow =
            tenants::get_project_detail(db, caller(project, ann), now() + TimeDelta::days(1))
                .await
                .unwrap();
        assert_eq!(tomorrow.runs_today, 0, "yesterday's counter is stale");
        assert_eq!(tomorrow.runs_this_month, 2);
        let next_month =
            tenants::get_project_detail(db, caller(project, ann), now() + TimeDelta::days(10))
                .await
                .unwrap();
        assert_eq!(
            (next_month.runs_this_month, next_month.tokens_this_month),
            (0, 0)
        );

        assert_eq!(
            code(tenants::get_project_detail(db, caller(project, eve), now()).await),
            ("project_not_found", 404),
            "a non-member learns nothing"
        );
        assert_eq!(
            code(tenants::get_project_detail(db, caller(TenantId::new(), ann), now()).await),
            ("project_not_found", 404)
        );
    }
}

#[tokio::test]
async fn tenant_users_list_members_in_join_order() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let zed = user(db, "zed").await;
        let amy = user(db, "amy").await;
        let project = tenant(db, zed, "members", 0).await;
        join(db, project, amy, MembershipRole::Member, zed).await;

        let listed = memberships::list_tenant_users(db, project, page(10, 0))
            .await
            .unwrap();
        assert_eq!(listed.total, 2, "{}", backend.name());
        let ids: Vec<_> = listed.users.iter().map(|u| u.user_id).collect();
        assert_eq!(ids, [zed, amy], "oldest membership first, not by email");
        assert_eq!(listed.users[0].role, MembershipRole::Owner);
        assert_eq!(listed.users[0].joined_at, now());
        assert_eq!(listed.users[1].name.as_deref(), Some("amy"));

        let second = memberships::list_tenant_users(db, project, page(1, 1))
            .await
            .unwrap();
        assert_eq!((second.total, second.users.len()), (2, 1));
        assert_eq!(second.users[0].user_id, amy);
        assert_eq!(
            code(memberships::list_tenant_users(db, project, page(101, 0)).await),
            ("invalid_page", 422)
        );
    }
}

fn ticket(subject: &str) -> OpenTicket {
    OpenTicket {
        subject: subject.into(),
        description: "It broke.".into(),
        category: TicketCategory::Technical,
        priority: TicketPriority::High,
    }
}

#[tokio::test]
async fn support_tickets_open_list_and_filter_by_status() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let ann = user(db, "ann").await;
        let project = tenant(db, ann, "support", 0).await;
        let other = tenant(db, ann, "support-other", 0).await;

        let first = support::create_support_ticket(db, project, ann, ticket("First"), now())
            .await
            .unwrap();
        assert_eq!(first.status, TicketStatus::Open, "{}", backend.name());
        assert_eq!(first.category, TicketCategory::Technical);
        assert_eq!(first.priority, TicketPriority::High);
        let second = support::create_support_ticket(
            db,
            project,
            ann,
            ticket("Second"),
            now() + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
        support::create_support_ticket(db, other, ann, ticket("Elsewhere"), now())
            .await
            .unwrap();
        let resolved = support::set_ticket_status(
            db,
            project,
            first.id,
            TicketStatus::Resolved,
            Some("Rotated the key."),
            now() + TimeDelta::hours(1),
        )
        .await
        .unwrap();
        assert_eq!(resolved.resolved_at, Some(now() + TimeDelta::hours(1)));

        let all = support::list_support_tickets(db, project, None, page(10, 0))
            .await
            .unwrap();
        assert_eq!(all.total, 2, "the other tenant's ticket is not listed");
        assert_eq!(all.items[0].id, second.id, "newest first");
        let open =
            support::list_support_tickets(db, project, Some(TicketStatus::Open), page(10, 0))
                .await
                .unwrap();
        assert_eq!(open.total, 1);
        assert_eq!(open.items[0].id, second.id);
        let done =
            support::list_support_tickets(db, project, Some(TicketStatus::Resolved), page(10, 0))
                .await
                .unwrap();
        assert_eq!(done.total, 1);
        assert_eq!(done.items[0].id, first.id);
        assert_eq!(
            done.items[0].resolution.as_deref(),
            Some("Rotated the key.")
        );
        let closed =
            support::list_support_tickets(db, project, Some(TicketStatus::Closed), page(10, 0))
                .await
                .unwrap();
        assert_eq!((closed.total, closed.items.len()), (0, 0));

        assert_eq!(
            code(
                support::create_support_ticket(db, project, ann, ticket(&"x".repeat(201)), now())
                    .await
            ),
            ("invalid_ticket", 422)
        );
        assert_eq!(
            code(support::list_support_tickets(db, project, None, page(0, 0)).await),
            ("invalid_page", 422)
        );
    }
}

#[tokio::test]
async fn ticket_status_changes_keep_the_resolution_rules() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let ann = user(db, "ann").await;
        let project = tenant(db, ann, "tickets", 0).await;
        let other = tenant(db, ann, "tickets-other", 0).await;
        let opened = support::create_support_ticket(db, project, ann, ticket("Help"), now())
            .await
            .unwrap();
        let set = |status, resolution, minutes| {
            support::set_ticket_status(
                db,
                project,
                opened.id,
                status,
                resolution,
                now() + TimeDelta::minutes(minutes),
            )
        };

        assert!(
            matches!(
                set(TicketStatus::InProgress, Some("done"), 1).await,
                Err(TicketError::ResolutionNeedsResolvedStatus)
            ),
            "{}",
            backend.name()
        );
        let resolved = set(TicketStatus::Resolved, Some("Fixed."), 2)
            .await
            .unwrap();
        let closed = set(TicketStatus::Closed, None, 3).await.unwrap();
        assert_eq!(
            closed.resolved_at, resolved.resolved_at,
            "first resolution time kept"
        );
        assert_eq!(closed.resolution.as_deref(), Some("Fixed."));
        assert_eq!(closed.updated_at, now() + TimeDelta::minutes(3));
        let reopened = set(TicketStatus::Open, None, 4).await.unwrap();
        assert_eq!((reopened.resolution, reopened.resolved_at), (None, None));
        assert!(matches!(
            set(TicketStatus::Resolved, Some(" "), 5).await,
            Err(TicketError::InvalidText(_))
        ));
        assert!(matches!(
            support::set_ticket_status(db, other, opened.id, TicketStatus::Closed, None, now())
                .await,
            Err(TicketError::NotFound)
        ));
    }
}
