//! `support_tickets` driver tests.

use crate::support::*;
use account_drivers::support::NewTicket;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_accounts_facade_driver};

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

fn ticket(tenant: TenantId, user: UserId, subject: &str) -> NewTicket {
    NewTicket {
        id: TicketId::new(),
        tenant_id: tenant,
        user_id: user,
        subject: subject.into(),
        description: "It does not work".into(),
        category: TicketCategory::Technical,
        priority: TicketPriority::High,
    }
}

#[tokio::test]
async fn insert_and_fetch_are_single_statements_and_tenant_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "help").await;
        let other = seed_tenant(db, "help-other").await;
        let user = seed_user(db, "help@example.test").await;

        let input = ticket(tenant, user, "Broken");
        let created = driver
            .insert_support_ticket(input.clone(), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(created.id, input.id);
        assert_eq!(created.tenant_id, tenant);
        assert_eq!(created.user_id, user);
        assert_eq!(created.subject, "Broken");
        assert_eq!(created.description, "It does not work");
        assert_eq!(created.category, TicketCategory::Technical);
        assert_eq!(created.priority, TicketPriority::High);
        assert_eq!(created.status, TicketStatus::Open);
        assert_eq!(
            (created.resolution.clone(), created.resolved_at),
            (None, None)
        );
        assert_eq!((created.created_at, created.updated_at), (now(), now()));

        assert_eq!(
            driver
                .fetch_support_ticket(tenant, created.id)
                .await
                .unwrap(),
            Some(created.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(
            driver
                .fetch_support_ticket(other, created.id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            driver
                .fetch_support_ticket(tenant, TicketId::new())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn listing_is_newest_first_filtered_paged_and_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "tickets").await;
        let other = seed_tenant(db, "tickets-other").await;
        let user = seed_user(db, "t@example.test").await;
        let old = driver
            .insert_support_ticket(ticket(tenant, user, "old"), now())
            .await
            .unwrap();
        let tie_a = driver
            .insert_support_ticket(ticket(tenant, user, "a"), later(5))
            .await
            .unwrap();
        let tie_b = driver
            .insert_support_ticket(ticket(tenant, user, "b"), later(5))
            .await
            .unwrap();
        driver
            .insert_support_ticket(ticket(other, user, "elsewhere"), later(10))
            .await
            .unwrap();
        counter.take();

        let page = driver
            .fetch_support_tickets(
                tenant,
                None,
                OffsetPage {
                    limit: 2,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 2, "count and page");
        assert_eq!((page.total, page.has_more), (3, true));
        assert_eq!(
            page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![tie_b.id, tie_a.id],
            "newest first, ties by id"
        );
        let rest = driver
            .fetch_support_tickets(
                tenant,
                None,
                OffsetPage {
                    limit: 2,
                    offset: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            rest.items.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![old.id]
        );
        assert!(!rest.has_more);

        let open = driver
            .fetch_support_tickets(tenant, Some(TicketStatus::Open), PAGE)
            .await
            .unwrap();
        assert_eq!(open.total, 3);
        let closed = driver
            .fetch_support_tickets(tenant, Some(TicketStatus::Closed), PAGE)
            .await
            .unwrap();
        assert_eq!((closed.total, closed.items.len()), (0, 0));
        let others = driver
            .fetch_support_tickets(other, None, PAGE)
            .await
            .unwrap();
        assert_eq!(others.total, 1);
        assert_eq!(others.items[0].subject, "elsewhere");
    })
    .await;
}
