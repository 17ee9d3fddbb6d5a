//! `audit_log` driver tests: appending, the keyset read with every filter (never another
//! tenant's rows), and the purge (oldest first, bounded, refused outside its own transaction
//! on PostgreSQL).

use crate::support::*;
use account_drivers::audit::{ActionMatch, AuditEntrySnapshot, AuditFilter, NewAuditEntry};
use account_drivers::types::*;
use account_drivers::{Db, DriverError, StatementCounter, get_tenant_driver};
use account_testkit::TestDb;
use sea_orm::{DbBackend, TransactionTrait};
use serde_json::json;

fn entry(tenant: TenantId, action: &str) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: Some(tenant),
        actor_type: ActorType::User,
        user_id: None,
        api_key_id: None,
        action: action.into(),
        resource_type: "api_key".into(),
        resource_id: Some("k1".into()),
        reason: Some("rotation".into()),
        old_value: Some(json!({})),
        new_value: Some(json!({"status": "revoked"})),
        ip_address: Some("192.0.2.1".into()),
        user_agent: Some("tests".into()),
        request_id: Some("req-1".into()),
    }
}

/// Every entry of `tenant` matching `filter`, read in pages of `limit`.
async fn read_all(
    db: &TestDb,
    tenant: TenantId,
    filter: &AuditFilter,
    limit: u64,
) -> Vec<AuditEntrySnapshot> {
    let driver = get_tenant_driver(handle(db));
    let (mut all, mut after) = (Vec::new(), None);
    for _ in 0..1_000 {
        let page = driver
            .fetch_audit_log_after(tenant, filter, after, limit)
            .await
            .unwrap();
        assert!(page.items.len() as u64 <= limit);
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
    panic!("paging never ended: a position that does not move on");
}

#[tokio::test]
async fn entries_are_appended_in_one_statement_and_read_newest_first_per_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "audit").await;
        let other = seed_tenant(db, "audit-other").await;
        let written = driver
            .insert_audit_log(entry(tenant, "api_key.revoked"), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(
            written.old_value, None,
            "an empty object is stored as nothing"
        );
        assert_eq!(written.new_value, Some(json!({"status": "revoked"})));
        assert_eq!(
            (written.ip_address.as_deref(), written.request_id.as_deref()),
            (Some("192.0.2.1"), Some("req-1"))
        );
        driver
            .insert_audit_log(entry(tenant, "api_key.created"), later(1))
            .await
            .unwrap();
        driver
            .insert_audit_log(entry(other, "tenant.created"), later(2))
            .await
            .unwrap();
        counter.take();

        let page = driver
            .fetch_audit_log_after(tenant, &AuditFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(counter.take(), 1, "a page is one statement");
        let actions: Vec<_> = page.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, vec!["api_key.created", "api_key.revoked"]);
        assert_eq!(page.next, None);
    })
    .await;
}

#[tokio::test]
async fn pages_by_keyset_cover_every_row_once_newest_first_even_within_one_instant() {
    each_backend(async |db| {
        let driver = get_tenant_driver(handle(db));
        let tenant = seed_tenant(db, "audit-pages").await;
        let other = seed_tenant(db, "audit-pages-other").await;
        // 25 rows over 5 instants (ties broken by id), and the other tenant's in between.
        for i in 0..25 {
            driver
                .insert_audit_log(entry(tenant, &format!("x.a{i}")), later(i / 5))
                .await
                .unwrap();
            driver
                .insert_audit_log(entry(other, "x.other"), later(i / 5))
                .await
                .unwrap();
        }
        for limit in [1, 4, 5, 7, 25, 100] {
            let all = read_all(db, tenant, &AuditFilter::default(), limit).await;
            assert_eq!(all.len(), 25, "limit {limit}");
            assert!(all.iter().all(|e| e.tenant_id == Some(tenant)));
            for pair in all.windows(2) {
                assert!(
                    (pair[0].created_at, pair[0].id) > (pair[1].created_at, pair[1].id),
                    "limit {limit}: strictly newest first"
                );
            }
        }
        // A position taken from the other tenant's rows still reads this tenant's only.
        let theirs = read_all(db, other, &AuditFilter::default(), 100).await;
        let page = driver
            .fetch_audit_log_after(
                tenant,
                &AuditFilter::default(),
                Some(account_drivers::audit::AuditPosition::of(&theirs[0])),
                100,
            )
            .await
            .unwrap();
        assert!(page.items.iter().all(|e| e.tenant_id == Some(tenant)));
    })
    .await;
}

#[tokio::test]
async fn every_filter_narrows_the_read() {
    each_backend(async |db| {
        let driver = get_tenant_driver(handle(db));
        let tenant = seed_tenant(db, "audit-filters").await;
        let user = seed_user(db, "actor@example.com").await;
        let key = ApiKeyId::new();
        let mut by_user = entry(tenant, "api_key.created");
        by_user.user_id = Some(user);
        driver.insert_audit_log(by_user, later(0)).await.unwrap();
        let mut by_key = entry(tenant, "api_key.revoked");
        (by_key.actor_type, by_key.api_key_id) = (ActorType::ApiKey, Some(key));
        driver.insert_audit_log(by_key, later(10)).await.unwrap();
        let mut run = entry(tenant, "run.admitted");
        (run.actor_type, run.resource_type, run.resource_id) =
            (ActorType::System, "run".into(), Some("r1".into()));
        driver.insert_audit_log(run, later(20)).await.unwrap();
        // A wildcard and the escape character in stored actions are matched literally.
        driver
            .insert_audit_log(entry(tenant, "apiXkey.created"), later(30))
            .await
            .unwrap();
        driver
            .insert_audit_log(entry(tenant, "API_KEY.created"), later(40))
            .await
            .unwrap();

        let actions = async |filter: AuditFilter| -> Vec<String> {
            read_all(db, tenant, &filter, 100)
                .await
                .into_iter()
                .map(|e| e.action)
                .collect()
        };
        let mut f = AuditFilter::default();
        f.user_id = Some(user);
        assert_eq!(actions(f).await, ["api_key.created"]);
        let mut f = AuditFilter::default();
        f.api_key_id = Some(key);
        assert_eq!(actions(f).await, ["api_key.revoked"]);
        let mut f = AuditFilter::default();
        f.actor_type = Some(ActorType::System);
        assert_eq!(actions(f).await, ["run.admitted"]);
        let mut f = AuditFilter::default();
        f.action = Some(ActionMatch::Exact("run.admitted".into()));
        assert_eq!(actions(f).await, ["run.admitted"]);
        let mut f = AuditFilter::default();
        f.action = Some(ActionMatch::Prefix("api_key.".into()));
        assert_eq!(
            actions(f).await,
            ["api_key.revoked", "api_key.created"],
            "a prefix: literal `_`, and case-sensitive on SQLite too"
        );
        let mut f = AuditFilter::default();
        (f.resource_type, f.resource_id) = (Some("run".into()), Some("r1".into()));
        assert_eq!(actions(f).await, ["run.admitted"]);
        let mut f = AuditFilter::default();
        f.resource_type = Some("api_key".into());
        assert_eq!(actions(f).await.len(), 4);
        // The window is half-open: `from` kept, `to` not.
        let mut f = AuditFilter::default();
        (f.from, f.to) = (Some(later(10)), Some(later(30)));
        assert_eq!(actions(f).await, ["run.admitted", "api_key.revoked"]);
        // Filters combine.
        let mut f = AuditFilter::default();
        (f.user_id, f.api_key_id) = (Some(user), Some(key));
        assert!(actions(f).await.is_empty());
    })
    .await;
}

/// The actions of `tenant`'s rows, oldest first.
async fn remaining(db: &TestDb, tenant: TenantId) -> Vec<String> {
    let mut rows = read_all(db, tenant, &AuditFilter::default(), 100).await;
    rows.reverse();
    rows.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn the_purge_deletes_the_oldest_rows_before_the_cutoff_in_bounded_batches() {
    each_backend(async |db| {
        let pool = get_tenant_driver(handle(db));
        let tenant = seed_tenant(db, "audit-purge").await;
        let other = seed_tenant(db, "audit-purge-other").await;
        for i in 0..7 {
            pool.insert_audit_log(entry(tenant, &format!("x.{i}")), later(i))
                .await
                .unwrap();
            pool.insert_audit_log(entry(other, &format!("x.{i}")), later(i))
                .await
                .unwrap();
        }
        let postgres = db.conn().get_database_backend() == DbBackend::Postgres;
        let counter = StatementCounter::new();
        let purge = async |before, limit| -> Result<u64, DriverError> {
            let txn = db.conn().begin().await.unwrap();
            let handle = Db::for_transaction(&txn).counting(&GUARD);
            let driver = get_tenant_driver(handle.counting(&counter));
            let removed = driver.purge_audit_log_before(tenant, before, limit).await;
            txn.commit().await.unwrap();
            removed
        };
        // Rows before later(5): x.0 .. x.4, two at a time, oldest first.
        assert_eq!(purge(later(5), 2).await.unwrap(), 2);
        assert_eq!(
            counter.take(),
            if postgres { 2 } else { 1 },
            "one statement, and the permission on PostgreSQL"
        );
        assert_eq!(
            remaining(db, tenant).await,
            ["x.2", "x.3", "x.4", "x.5", "x.6"]
        );
        assert_eq!(purge(later(5), 2).await.unwrap(), 2);
        assert_eq!(
            purge(later(5), 2).await.unwrap(),
            1,
            "fewer: nothing older left"
        );
        assert_eq!(purge(later(5), 2).await.unwrap(), 0);
        assert_eq!(remaining(db, tenant).await, ["x.5", "x.6"]);
        assert_eq!(
            remaining(db, other).await.len(),
            7,
            "another tenant's rows stay"
        );

        if postgres {
            // Outside a transaction the permission ends with its own statement: the guard
            // refuses the delete, and nothing is deleted.
            let refused = pool
                .purge_audit_log_before(tenant, later(100), 10)
                .await
                .unwrap_err();
            assert!(
                matches!(&refused, DriverError::Rejected { constraint: Some(c), .. }
                    if c == "tg_audit_log_append_only"),
                "{refused:?}"
            );
            assert_eq!(remaining(db, tenant).await, ["x.5", "x.6"]);
        }
    })
    .await;
}

#[tokio::test]
async fn retentions_are_read_per_tenant_and_walked_by_id() {
    each_backend(async |db| {
        let driver = get_tenant_driver(handle(db));
        let kept = seed_tenant(db, "audit-kept-forever").await;
        let mut with = Vec::new();
        for i in 0..3 {
            let tenant = seed_tenant(db, &format!("audit-retained-{i}")).await;
            set_audit_retention(db, tenant, Some(30 + i)).await;
            with.push(tenant);
        }
        assert_eq!(driver.fetch_audit_retention(kept).await.unwrap(), None);
        assert_eq!(
            driver.fetch_audit_retention(with[1]).await.unwrap(),
            Some(31)
        );
        assert_eq!(
            driver.fetch_audit_retention(TenantId::new()).await.unwrap(),
            None
        );
        with.sort();
        let first = driver.fetch_audit_retentions(None, 2).await.unwrap();
        let rest = driver
            .fetch_audit_retentions(Some(first[1].tenant_id), 2)
            .await
            .unwrap();
        let walked: Vec<_> = first.iter().chain(&rest).map(|r| r.tenant_id).collect();
        assert_eq!(walked, with, "every tenant with a retention once, by id");
    })
    .await;
}
