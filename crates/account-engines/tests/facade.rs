//! The accounts facade, method by method, on each backend: what members see, what outsiders
//! are refused, and that every answer comes from the engines' rules and stored rows.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use account_engines::accounts::{
    AccountsError, AccountsErrorResult, AccountsFacade, Caller, ProjectFilters, UserFilters,
    get_accounts_facade,
};
use account_engines::api_keys::ApiKeyPepper;
use account_engines::invitations::{InvitationError, Invitee};
use account_engines::memberships::MembershipError;
use account_engines::support::{self, OpenTicket, SupportContact, TicketError};
use account_engines::tenants::{CreateTenant, create_tenant};
use account_engines::types::*;
use account_engines::users::ProfileUpdate;
use account_engines::{Db, ErrorCode, OffsetPage, onboarding};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn page(limit: u64, offset: u64) -> OffsetPage {
    OffsetPage { limit, offset }
}

fn facade() -> AccountsFacade {
    get_accounts_facade(
        SupportContact {
            email: Email::parse("help@example.com").unwrap(),
            hours: "Mon-Fri 09:00-17:00 CET".into(),
            response_time: "within one business day".into(),
        },
        ApiKeyPepper::from_bytes(&[42; 32]).unwrap(),
    )
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
            plan: Plan::Pro,
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

fn code<T: std::fmt::Debug>(result: Result<T, AccountsError>) -> (&'static str, u16) {
    let error = result.expect_err("the call should be refused");
    (error.code(), error.http_status())
}

#[tokio::test]
async fn projects_list_only_the_callers_tenants_paged_and_filtered() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
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
        let one = f.list_projects(db, ann, all, page(2, 0)).await.unwrap();
        assert_eq!((one.total, one.has_more), (3, true), "{}", backend.name());
        let ids: Vec<_> = one.items.iter().map(|p| p.project_id).collect();
        assert_eq!(ids, [first, second], "oldest first");
        assert_eq!(one.items[0].name, "Project alpha");
        assert_eq!(one.items[0].plan, Plan::Pro);
        let two = f.list_projects(db, ann, all, page(2, 2)).await.unwrap();
        assert_eq!(two.items.len(), 1);
        assert_eq!(
            two.items[0].project_id, bobs,
            "membership, not ownership, counts"
        );
        assert!(!two.has_more);

        let suspended = ProjectFilters {
            status: Some(TenantStatus::Suspended),
        };
        let filtered = f
            .list_projects(db, ann, suspended, page(10, 0))
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
        let none = f.list_projects(db, nobody, all, page(10, 0)).await.unwrap();
        assert_eq!((none.total, none.has_more, none.items.len()), (0, false, 0));
        for bad in [page(0, 0), page(101, 0)] {
            assert_eq!(
                code(f.list_projects(db, ann, all, bad).await),
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
        let f = facade();
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

        let detail = f
            .get_project_detail(db, caller(project, ann), now())
            .await
            .unwrap();
        assert_eq!(detail.project_id, project, "{}", backend.name());
        assert_eq!(detail.slug, "detail");
        let quotas = Plan::Pro.quotas();
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

        let tomorrow = f
            .get_project_detail(db, caller(project, ann), now() + TimeDelta::days(1))
            .await
            .unwrap();
        assert_eq!(tomorrow.runs_today, 0, "yesterday's counter is stale");
        assert_eq!(tomorrow.runs_this_month, 2);
        let next_month = f
            .get_project_detail(db, caller(project, ann), now() + TimeDelta::days(10))
            .await
            .unwrap();
        assert_eq!(
            (next_month.runs_this_month, next_month.tokens_this_month),
            (0, 0)
        );

        assert_eq!(
            code(f.get_project_detail(db, caller(project, eve), now()).await),
            ("project_not_found", 404),
            "a non-member learns nothing"
        );
        assert_eq!(
            code(
                f.get_project_detail(db, caller(TenantId::new(), ann), now())
                    .await
            ),
            ("project_not_found", 404)
        );
    }
}

#[tokio::test]
async fn users_list_filters_pages_and_details_capabilities() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let bob = user(db, "bob").await;
        let cat = user(db, "cat").await;
        let project = tenant(db, ann, "users", 0).await;
        join(db, project, bob, MembershipRole::Admin, ann).await;
        join(db, project, cat, MembershipRole::Viewer, ann).await;
        let me = caller(project, bob);

        let all = f
            .list_users(db, me, UserFilters::default(), page(2, 0))
            .await
            .unwrap();
        assert_eq!((all.total, all.has_more), (3, true), "{}", backend.name());
        let emails: Vec<_> = all.items.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails, ["ann@example.com", "bob@example.com"], "by email");
        let viewers = UserFilters {
            role: Some(MembershipRole::Viewer),
            status: None,
        };
        let found = f.list_users(db, me, viewers, page(10, 0)).await.unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(found.items[0].user_id, cat);
        assert_eq!(found.items[0].role, MembershipRole::Viewer);
        assert_eq!(
            serde_json::to_value(&found).unwrap()["filters_applied"],
            json!({"role": "viewer"})
        );
        assert_eq!(
            code(f.list_users(db, me, viewers, page(0, 0)).await),
            ("invalid_page", 422)
        );

        let detail = f.get_user_detail(db, me, cat).await.unwrap();
        assert_eq!(detail.role, MembershipRole::Viewer);
        assert_eq!(detail.invited_by, Some(ann));
        assert!(detail.can_view_runs && !detail.can_run_workers && !detail.can_manage_keys);
        let owner = f.get_user_detail(db, me, ann).await.unwrap();
        assert!(owner.can_manage_keys && owner.can_run_workers);
        assert_eq!(owner.invited_by, None);

        let stranger = user(db, "stranger").await;
        assert_eq!(
            code(f.get_user_detail(db, me, stranger).await),
            ("not_a_member", 404)
        );
    }
}

#[tokio::test]
async fn tenant_users_list_members_in_join_order() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let zed = user(db, "zed").await;
        let amy = user(db, "amy").await;
        let project = tenant(db, zed, "members", 0).await;
        join(db, project, amy, MembershipRole::Member, zed).await;

        let listed = f
            .list_tenant_users(db, caller(project, amy), page(10, 0))
            .await
            .unwrap();
        assert_eq!(listed.total, 2, "{}", backend.name());
        let ids: Vec<_> = listed.users.iter().map(|u| u.user_id).collect();
        assert_eq!(ids, [zed, amy], "oldest membership first, not by email");
        assert_eq!(listed.users[0].role, MembershipRole::Owner);
        assert_eq!(listed.users[0].joined_at, now());
        assert_eq!(listed.users[1].name.as_deref(), Some("amy"));

        let second = f
            .list_tenant_users(db, caller(project, amy), page(1, 1))
            .await
            .unwrap();
        assert_eq!((second.total, second.users.len()), (2, 1));
        assert_eq!(second.users[0].user_id, amy);
        assert_eq!(
            code(
                f.list_tenant_users(db, caller(project, amy), page(101, 0))
                    .await
            ),
            ("invalid_page", 422)
        );
    }
}

#[tokio::test]
async fn roles_change_and_users_leave_by_the_stored_role() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let bob = user(db, "bob").await;
        let cat = user(db, "cat").await;
        let project = tenant(db, ann, "roles", 0).await;
        join(db, project, bob, MembershipRole::Member, ann).await;
        join(db, project, cat, MembershipRole::Viewer, ann).await;
        let owner = caller(project, ann);

        let promoted = f
            .update_user_role(db, owner, bob, MembershipRole::Admin, now())
            .await
            .unwrap();
        assert_eq!(promoted.role, MembershipRole::Admin, "{}", backend.name());
        assert_eq!(promoted.user_id, bob);
        assert_eq!(
            code(
                f.update_user_role(db, caller(project, bob), cat, MembershipRole::Member, now())
                    .await
            ),
            ("only_owners_change_roles", 403),
            "an admin (as stored) changes no roles"
        );
        assert_eq!(
            code(
                f.update_user_role(db, owner, ann, MembershipRole::Admin, now())
                    .await
            ),
            ("own_role", 409)
        );
        assert_eq!(
            code(f.remove_user(db, caller(project, bob), ann, now()).await),
            ("owner_removal_needs_owner", 403)
        );
        assert_eq!(
            code(f.remove_user(db, owner, ann, now()).await),
            ("last_owner", 409)
        );

        let removed = f
            .remove_user(db, caller(project, bob), cat, now())
            .await
            .unwrap();
        assert_eq!(removed.user_id, cat);
        assert_eq!(removed.role, MembershipRole::Viewer);
        let left = f
            .remove_user(db, caller(project, bob), bob, now())
            .await
            .unwrap();
        assert_eq!(left.user_id, bob, "a member may leave");
        let remaining = f.list_tenant_users(db, owner, page(10, 0)).await.unwrap();
        assert_eq!(remaining.total, 1);
        assert_eq!(
            code(
                f.update_user_role(db, caller(project, bob), ann, MembershipRole::Viewer, now())
                    .await
            ),
            ("project_not_found", 404),
            "a former member is an outsider"
        );
    }
}

#[tokio::test]
async fn profile_reads_and_updates_through_the_profile_rules() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let project = tenant(db, ann, "profile", 0).await;
        let me = caller(project, ann);

        let before = f.get_profile(db, me).await.unwrap();
        assert_eq!(before.tenant_name, "Project profile", "{}", backend.name());
        assert_eq!(before.role, MembershipRole::Owner);
        assert_eq!(before.preferences, None);

        let later = now() + TimeDelta::hours(1);
        let updated = f
            .update_profile(
                db,
                me,
                ProfileUpdate {
                    display_name: Some(" Ann Lee ".into()),
                    time_zone: Some("Europe/Paris".into()),
                    preferences: Some(json!({"theme": "dark"})),
                },
                later,
            )
            .await
            .unwrap();
        assert_eq!(updated.display_name.as_deref(), Some("Ann Lee"));
        assert_eq!(updated.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(updated.preferences.get("theme"), Some(&json!("dark")));
        assert_eq!(updated.updated_at, later);
        assert_eq!(updated.email, "ann@example.com");

        let after = f.get_profile(db, me).await.unwrap();
        assert_eq!(after.name.as_deref(), Some("Ann Lee"));
        assert_eq!(
            after.preferences.unwrap().get("theme"),
            Some(&json!("dark"))
        );

        let refused = f
            .update_profile(
                db,
                me,
                ProfileUpdate {
                    time_zone: Some("Mars/Base".into()),
                    ..ProfileUpdate::default()
                },
                later,
            )
            .await
            .unwrap_err();
        let body = AccountsErrorResult::from(&refused);
        assert_eq!((body.error, body.status_code), ("invalid_time_zone", 422));

        let eve = user(db, "eve").await;
        assert_eq!(
            code(f.get_profile(db, caller(project, eve)).await),
            ("profile_not_found", 404)
        );
    }
}

#[tokio::test]
async fn billing_summary_and_invoices_come_from_stored_rows() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let project = tenant(db, ann, "billing", 0).await;
        let me = caller(project, ann);

        let empty = f.get_billing_invoices(db, me, page(10, 0)).await.unwrap();
        assert_eq!(empty.total, 0, "{}", backend.name());
        assert!(empty.message.is_some());
        let bare = f.get_billing_summary(db, me, now()).await.unwrap();
        assert_eq!(bare.plan, Plan::Pro);
        assert_eq!((bare.status, bare.billing_period), (None, None));
        assert_eq!(bare.next_invoice_date, None);
        assert_eq!(
            serde_json::to_value(&bare).unwrap()["usage_this_period"]["source"],
            json!("calendar_month")
        );

        let start = now() - TimeDelta::days(5);
        let end = start + TimeDelta::days(30);
        account_engines::billing::record_subscription(
            db,
            account_engines::billing::SubscriptionUpsert {
                id: SubscriptionId::new(),
                tenant_id: project,
                external_id: "sub_1".into(),
                plan: Plan::Pro,
                status: SubscriptionStatus::Active,
                billing_period: BillingPeriod::Annual,
                current_period_start: Some(start),
                current_period_end: Some(end),
                trial_ends_at: None,
                canceled_at: None,
                cancel_at_period_end: false,
            },
            now(),
        )
        .await
        .unwrap();
        account_engines::billing::record_invoice(
            db,
            account_engines::billing::InvoiceUpsert {
                id: InvoiceId::new(),
                tenant_id: project,
                external_id: "in_1".into(),
                number: Some("A-7".into()),
                status: InvoiceStatus::Paid,
                currency: "eur".into(),
                amount_due_cents: 4900,
                amount_paid_cents: 4900,
                period_start: start - TimeDelta::days(30),
                period_end: start,
                issued_at: start,
                due_at: None,
                paid_at: Some(start),
                hosted_url: Some("https://pay.example.com/in_1".into()),
            },
            now(),
        )
        .await
        .unwrap();

        let summary = f.get_billing_summary(db, me, now()).await.unwrap();
        assert_eq!(summary.status, Some(SubscriptionStatus::Active));
        assert_eq!(summary.billing_period, Some(BillingPeriod::Annual));
        assert_eq!(summary.current_period_start, Some(start));
        assert_eq!(summary.current_period_end, Some(end));
        assert_eq!(summary.next_invoice_date, Some(end));
        assert_eq!(summary.usage_this_period.period_start, start);
        assert_eq!(
            summary.max_runs_per_day,
            Plan::Pro.quotas().max_runs_per_day
        );

        let invoices = f.get_billing_invoices(db, me, page(10, 0)).await.unwrap();
        assert_eq!((invoices.total, invoices.message), (1, None));
        let invoice = &invoices.invoices[0];
        assert_eq!(invoice.amount_cents, 4900);
        assert_eq!(invoice.currency, "eur");
        assert_eq!(invoice.status, InvoiceStatus::Paid);
        assert!(
            invoice.description.contains("A-7"),
            "{}",
            invoice.description
        );
        assert_eq!(
            code(f.get_billing_invoices(db, me, page(0, 0)).await),
            ("invalid_page", 422)
        );
    }
}

#[test]
fn support_contact_comes_from_configuration() {
    let contact = facade().get_support_contact();
    assert_eq!(contact.email.as_str(), "help@example.com");
    assert_eq!(contact.hours, "Mon-Fri 09:00-17:00 CET");
    assert_eq!(contact.response_time, "within one business day");
    assert_eq!(
        serde_json::to_value(&contact).unwrap(),
        json!({
            "email": "help@example.com",
            "hours": "Mon-Fri 09:00-17:00 CET",
            "response_time": "within one business day"
        })
    );
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
        let f = facade();
        let ann = user(db, "ann").await;
        let project = tenant(db, ann, "support", 0).await;
        let other = tenant(db, ann, "support-other", 0).await;
        let me = caller(project, ann);

        let first = f
            .create_support_ticket(db, me, ticket("First"), now())
            .await
            .unwrap();
        assert_eq!(first.status, TicketStatus::Open, "{}", backend.name());
        assert_eq!(first.category, TicketCategory::Technical);
        assert_eq!(first.priority, TicketPriority::High);
        let second = f
            .create_support_ticket(db, me, ticket("Second"), now() + TimeDelta::minutes(1))
            .await
            .unwrap();
        f.create_support_ticket(db, caller(other, ann), ticket("Elsewhere"), now())
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

        let all = f
            .list_support_tickets(db, me, None, page(10, 0))
            .await
            .unwrap();
        assert_eq!(all.total, 2, "the other tenant's ticket is not listed");
        assert_eq!(all.tickets[0].id, second.id, "newest first");
        let open = f
            .list_support_tickets(db, me, Some(TicketStatus::Open), page(10, 0))
            .await
            .unwrap();
        assert_eq!(open.total, 1);
        assert_eq!(open.tickets[0].id, second.id);
        let done = f
            .list_support_tickets(db, me, Some(TicketStatus::Resolved), page(10, 0))
            .await
            .unwrap();
        assert_eq!(done.total, 1);
        assert_eq!(done.tickets[0].id, first.id);
        assert_eq!(
            done.tickets[0].resolution.as_deref(),
            Some("Rotated the key.")
        );
        let closed = f
            .list_support_tickets(db, me, Some(TicketStatus::Closed), page(10, 0))
            .await
            .unwrap();
        assert_eq!((closed.total, closed.tickets.len()), (0, 0));

        assert_eq!(
            code(
                f.create_support_ticket(db, me, ticket(&"x".repeat(201)), now())
                    .await
            ),
            ("invalid_ticket", 422)
        );
        assert_eq!(
            code(f.list_support_tickets(db, me, None, page(0, 0)).await),
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
        let opened = support::open_ticket(db, project, ann, ticket("Help"), now())
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

#[tokio::test]
async fn invitations_issue_list_and_accept_once() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let vic = user(db, "vic").await;
        let project = tenant(db, ann, "invites", 0).await;
        join(db, project, vic, MembershipRole::Viewer, ann).await;
        let owner = caller(project, ann);

        let invited = f
            .invite_user(
                db,
                owner,
                "New.Person@Example.com",
                MembershipRole::Member,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(
            invited.invitation.email,
            "new.person@example.com",
            "{}",
            backend.name()
        );
        assert_eq!(invited.invitation.status, InvitationStatus::Pending);
        assert_eq!(invited.invitation.invited_by, ann);
        assert_eq!(invited.invitation.expires_at, now() + TimeDelta::days(7));
        assert_eq!(
            code(
                f.invite_user(
                    db,
                    caller(project, vic),
                    "x@example.com",
                    MembershipRole::Viewer,
                    now()
                )
                .await
            ),
            ("cannot_manage_users", 403),
            "a viewer (as stored) invites nobody"
        );
        assert_eq!(
            code(
                f.invite_user(
                    db,
                    owner,
                    "new.person@example.com",
                    MembershipRole::Member,
                    now()
                )
                .await
            ),
            ("invitation_pending", 409)
        );

        let listed = f
            .list_invitations(db, owner, None, page(10, 0), now())
            .await
            .unwrap();
        assert_eq!(listed.total, 1);
        assert_eq!(listed.invitations[0], invited.invitation);
        let later = f
            .list_invitations(db, owner, None, page(10, 0), now() + TimeDelta::days(8))
            .await
            .unwrap();
        assert_eq!(later.invitations[0].status, InvitationStatus::Expired);
        let accepted_only = f
            .list_invitations(
                db,
                owner,
                Some(InvitationStatus::Accepted),
                page(10, 0),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(accepted_only.total, 0);

        let wrong = f
            .accept_invitation(
                db,
                project,
                invited.invitation.id,
                "inv_wrong",
                Invitee::default(),
                now(),
            )
            .await;
        assert_eq!(code(wrong), ("invalid_invitation", 404));
        let accepted = f
            .accept_invitation(
                db,
                project,
                invited.invitation.id,
                invited.token.expose(),
                Invitee {
                    external_user_id: None,
                    name: Some("New Person".into()),
                },
                now() + TimeDelta::hours(1),
            )
            .await
            .unwrap();
        assert!(accepted.success);
        assert_eq!(accepted.tenant_id, Some(project));
        assert_eq!(accepted.role, Some(MembershipRole::Member));
        let again = f
            .accept_invitation(
                db,
                project,
                invited.invitation.id,
                invited.token.expose(),
                Invitee::default(),
                now() + TimeDelta::hours(2),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            again,
            AccountsError::Invitation(InvitationError::AlreadyAccepted)
        ));
        let refused = account_engines::accounts::AcceptInvitationResult::refused(&again);
        assert!(!refused.success && refused.tenant_id.is_none());
        assert_eq!(
            f.list_tenant_users(db, owner, page(10, 0))
                .await
                .unwrap()
                .total,
            3
        );
    }
}

#[tokio::test]
async fn outsiders_are_refused_by_every_tenant_method() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let f = facade();
        let ann = user(db, "ann").await;
        let eve = user(db, "eve").await;
        let project = tenant(db, ann, "private", 0).await;
        tenant(db, eve, "eves-own", 0).await;
        let eve_there = caller(project, eve);
        let p = page(10, 0);
        let not_found = ("project_not_found", 404);
        let name = backend.name();

        assert_eq!(
            code(f.list_users(db, eve_there, UserFilters::default(), p).await),
            not_found,
            "{name}"
        );
        assert_eq!(code(f.get_user_detail(db, eve_there, ann).await), not_found);
        assert_eq!(code(f.list_tenant_users(db, eve_there, p).await), not_found);
        assert_eq!(
            code(
                f.update_user_role(db, eve_there, ann, MembershipRole::Viewer, now())
                    .await
            ),
            not_found
        );
        assert_eq!(
            code(f.remove_user(db, eve_there, ann, now()).await),
            not_found
        );
        assert_eq!(
            code(f.get_billing_summary(db, eve_there, now()).await),
            not_found
        );
        assert_eq!(
            code(f.get_billing_invoices(db, eve_there, p).await),
            not_found
        );
        assert_eq!(
            code(
                f.create_support_ticket(db, eve_there, ticket("Hi"), now())
                    .await
            ),
            not_found
        );
        assert_eq!(
            code(f.list_support_tickets(db, eve_there, None, p).await),
            not_found
        );
        assert_eq!(
            code(
                f.invite_user(
                    db,
                    eve_there,
                    "x@example.com",
                    MembershipRole::Viewer,
                    now()
                )
                .await
            ),
            not_found
        );
        assert_eq!(
            code(f.list_invitations(db, eve_there, None, p, now()).await),
            not_found
        );
        assert_eq!(
            code(f.get_profile(db, eve_there).await),
            ("profile_not_found", 404)
        );
        assert_eq!(
            code(
                f.update_profile(db, eve_there, ProfileUpdate::default(), now())
                    .await
            ),
            ("profile_not_found", 404)
        );
        // Nothing was written on her behalf.
        assert_eq!(
            support::list_tickets(db, project, None, p)
                .await
                .unwrap()
                .total,
            0
        );
        assert!(matches!(
            f.remove_user(db, caller(project, ann), eve, now()).await,
            Err(AccountsError::Membership(MembershipError::NotAMember))
        ));
    }
}
