//! `invoices` driver tests.

use crate::support::*;
use account_drivers::billing::InvoiceUpsert;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_accounts_facade_driver};

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

fn invoice(tenant: TenantId, external_id: &str, issued_in: i64) -> InvoiceUpsert {
    InvoiceUpsert {
        id: InvoiceId::new(),
        tenant_id: tenant,
        external_id: external_id.into(),
        number: Some(format!("INV-{external_id}")),
        status: InvoiceStatus::Open,
        currency: "eur".into(),
        amount_due_cents: 4_900,
        amount_paid_cents: 0,
        period_start: now(),
        period_end: later(30 * 86_400),
        issued_at: later(issued_in),
        due_at: Some(later(issued_in + 14 * 86_400)),
        paid_at: None,
        hosted_url: Some("https://billing.example.test/i".into()),
    }
}

#[tokio::test]
async fn upsert_is_one_idempotent_statement() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "invoices").await;
        let other = seed_tenant(db, "invoices-other").await;

        let input = invoice(tenant, "in_1", 0);
        let created = driver.upsert_invoice(input.clone(), now()).await.unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(created.id, input.id);
        assert_eq!(created.tenant_id, tenant);
        assert_eq!(created.number.as_deref(), Some("INV-in_1"));
        assert_eq!(created.status, InvoiceStatus::Open);
        assert_eq!(created.currency, "eur");
        assert_eq!(
            (created.amount_due_cents, created.amount_paid_cents),
            (4_900, 0)
        );
        assert_eq!(
            (created.period_start, created.period_end),
            (now(), later(30 * 86_400))
        );
        assert_eq!(created.due_at, Some(later(14 * 86_400)));
        assert_eq!((created.created_at, created.updated_at), (now(), now()));

        let mut paid = invoice(tenant, "in_1", 0);
        paid.status = InvoiceStatus::Paid;
        paid.amount_paid_cents = 4_900;
        paid.paid_at = Some(later(100));
        let updated = driver
            .upsert_invoice(paid.clone(), later(100))
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(updated.id, created.id, "recorded twice, one row");
        assert_eq!(updated.created_at, now());
        assert_eq!(updated.updated_at, later(100));
        assert_eq!(updated.status, InvoiceStatus::Paid);
        assert_eq!(updated.paid_at, Some(later(100)));
        // Replaying the same event changes nothing but updated_at.
        let replayed = driver.upsert_invoice(paid, later(100)).await.unwrap();
        assert_eq!(replayed, updated);

        let elsewhere = driver
            .upsert_invoice(invoice(other, "in_1", 0), now())
            .await
            .unwrap();
        assert_ne!(elsewhere.id, created.id);
        let page = driver.fetch_invoices(tenant, PAGE).await.unwrap();
        assert_eq!(page.items, vec![updated]);
        assert_eq!(page.total, 1);
    })
    .await;
}

#[tokio::test]
async fn listing_is_newest_issue_first_paged_and_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "inv-pages").await;
        let other = seed_tenant(db, "inv-pages-other").await;
        let old = driver
            .upsert_invoice(invoice(tenant, "old", 0), now())
            .await
            .unwrap();
        let tie_a = driver
            .upsert_invoice(invoice(tenant, "a", 50), now())
            .await
            .unwrap();
        let tie_b = driver
            .upsert_invoice(invoice(tenant, "b", 50), now())
            .await
            .unwrap();
        driver
            .upsert_invoice(invoice(other, "x", 999), now())
            .await
            .unwrap();
        assert!(tie_a.id < tie_b.id);
        counter.take();

        let page = driver
            .fetch_invoices(
                tenant,
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
            page.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![tie_b.id, tie_a.id]
        );
        let rest = driver
            .fetch_invoices(
                tenant,
                OffsetPage {
                    limit: 2,
                    offset: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            rest.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![old.id]
        );
        assert!(!rest.has_more);
        let others = driver.fetch_invoices(other, PAGE).await.unwrap();
        assert_eq!(others.total, 1);
        assert_eq!(others.items[0].external_id, "x");
    })
    .await;
}
