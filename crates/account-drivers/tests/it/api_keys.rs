//! `api_keys` driver tests.

use crate::support::*;
use account_drivers::api_keys::{APIKeySnapshot, NewApiKey};
use account_drivers::types::*;
use account_drivers::{DriverError, OffsetPage, StatementCounter, TenantDriver, get_tenant_driver};
use account_testkit::TestDb;
use std::time::Duration;

pub(crate) fn new_key(tenant: TenantId, digest: &str) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        user_id: None,
        name: "ci".into(),
        key_prefix: "acc_live_ab12".into(),
        key_digest: digest.into(),
        permissions: vec!["run:*".into(), "read:*".into()],
        allowed_workers: Some(vec!["business-builder".into()]),
        rate_limit_rpm: Some(60),
        max_concurrent_runs: Some(2),
        expires_at: None,
        rotated_from_id: None,
        metadata: None,
    }
}

/// Inserts `key` as issuance does: the tenant row locked with the key counted in its total,
/// then the key (two statements).
pub(crate) async fn insert_counted(
    driver: &TenantDriver<'_>,
    key: NewApiKey,
) -> Result<APIKeySnapshot, DriverError> {
    driver
        .lock_tenant_for_new_api_key(key.tenant_id)
        .await?
        .expect("the key's tenant exists");
    driver.insert_api_key(key, now()).await
}

/// Inserts a usable key for `tenant` and returns its id.
pub(crate) async fn seed_key(db: &TestDb, tenant: TenantId) -> ApiKeyId {
    seed_key_limited(db, tenant, None).await
}

/// A key of `tenant` with its own concurrent-run limit.
pub(crate) async fn seed_key_limited(
    db: &TestDb,
    tenant: TenantId,
    limit: Option<i32>,
) -> ApiKeyId {
    let digest = ApiKeyId::new().to_string();
    let mut key = new_key(tenant, &digest);
    key.max_concurrent_runs = limit;
    insert_counted(&get_tenant_driver(handle(db)), key)
        .await
        .unwrap()
        .id
}

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

#[tokio::test]
async fn insert_and_lookups_are_single_statements_and_tenant_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "keys").await;
        let other = seed_tenant(db, "keys-other").await;

        let locked = driver
            .lock_tenant_for_new_api_key(tenant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (locked.tenant.id, locked.unrevoked_keys),
            (tenant, 0),
            "the keys before this one"
        );
        let key = driver
            .insert_api_key(new_key(tenant, "digest-1"), now())
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "the lock that counts the key, the insert"
        );
        assert!(
            driver
                .lock_tenant_for_new_api_key(TenantId::new())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(totals_and_counts(db, tenant).await[1], (1, 1));
        counter.take();
        assert_eq!(
            key.permissions,
            vec!["run:*".to_owned(), "read:*".to_owned()]
        );
        assert_eq!(
            key.allowed_workers,
            Some(vec!["business-builder".to_owned()])
        );

        assert_eq!(
            driver.fetch_api_key_by_id(tenant, key.id).await.unwrap(),
            Some(key.clone())
        );
        assert_eq!(counter.take(), 1);
        assert!(
            driver
                .fetch_api_key_by_id(other, key.id)
                .await
                .unwrap()
                .is_none(),
            "another tenant cannot see it"
        );
        counter.take();

        let found = driver
            .fetch_api_key_by_digest("digest-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "key and tenant status in one query");
        assert_eq!(
            (found.key.id, found.tenant_status),
            (key.id, TenantStatus::Active)
        );
        assert!(
            driver
                .fetch_api_key_by_digest("nope")
                .await
                .unwrap()
                .is_none()
        );

        let duplicate = insert_counted(&driver, new_key(other, "digest-1"))
            .await
            .unwrap_err();
        assert_eq!(
            duplicate.conflicting_constraint(),
            Some("uq_api_keys_key_digest")
        );
    })
    .await;
}

#[tokio::test]
async fn revocation_is_scoped_and_idempotent() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "revoke").await;
        let other = seed_tenant(db, "revoke-other").await;
        let key = seed_key(db, tenant).await;

        assert!(
            driver
                .update_api_key_revoked(other, key, "stolen", now())
                .await
                .unwrap()
                .is_none(),
            "cross-tenant revocation is impossible"
        );
        assert_eq!(counter.take(), 1, "a refused revocation is one statement");
        assert_eq!(
            driver
                .fetch_api_key_by_id(tenant, key)
                .await
                .unwrap()
                .unwrap()
                .status,
            ApiKeyStatus::Active
        );

        counter.take();
        let revoked = driver
            .update_api_key_revoked(tenant, key, "leaked", later(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "update_api_key_revoked: the revocation, and the tenant's key total"
        );
        assert_eq!(totals_and_counts(db, tenant).await[1], (0, 0));
        assert_eq!(
            (
                revoked.status,
                revoked.revoked_at,
                revoked.revoked_reason.as_deref()
            ),
            (ApiKeyStatus::Revoked, Some(later(1)), Some("leaked"))
        );
        assert!(
            driver
                .update_api_key_revoked(tenant, key, "again", later(2))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            driver
                .fetch_api_key_by_id(tenant, key)
                .await
                .unwrap()
                .unwrap()
                .revoked_reason
                .as_deref(),
            Some("leaked")
        );
    })
    .await;
}

#[tokio::test]
async fn counting_and_listing_leave_out_what_no_longer_works() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "count").await;
        let other = seed_tenant(db, "count-other").await;
        seed_key(db, other).await;
        let usable = seed_key(db, tenant).await;
        let revoked = seed_key(db, tenant).await;
        driver
            .update_api_key_revoked(tenant, revoked, "x", now())
            .await
            .unwrap();
        let mut expiring = new_key(tenant, "expiring");
        expiring.expires_at = Some(later(60));
        insert_counted(&driver, expiring).await.unwrap();
        counter.take();

        assert_eq!(
            driver.count_active_api_keys(tenant, now()).await.unwrap(),
            2
        );
        assert_eq!(counter.take(), 1, "count_active_api_keys is one statement");
        assert_eq!(
            driver
                .count_active_api_keys(tenant, later(61))
                .await
                .unwrap(),
            1,
            "expired keys do not count"
        );

        counter.take();
        let listed = driver.fetch_api_keys(tenant, false, PAGE).await.unwrap();
        assert_eq!(
            counter.take(),
            2,
            "fetch_api_keys: the tenant's key total and the page"
        );
        assert_eq!(listed.total, 2);
        assert_eq!(totals_and_counts(db, tenant).await[1], (2, 2));
        let later_on = driver
            .fetch_api_keys(
                tenant,
                false,
                OffsetPage {
                    limit: 1,
                    offset: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (later_on.items.len(), later_on.total, later_on.has_more),
            (1, 2, false)
        );
        assert!(listed.items.iter().all(|k| k.tenant_id == tenant));
        assert!(listed.items.iter().all(|k| k.id != revoked));
        assert!(listed.items.iter().any(|k| k.id == usable));
        assert_eq!(
            driver
                .fetch_api_keys(tenant, true, PAGE)
                .await
                .unwrap()
                .total,
            3
        );
    })
    .await;
}

/// Found by schemathesis: `?offset=9223372036854775808` panicked binding the offset.
#[tokio::test]
async fn an_offset_past_what_sql_binds_is_an_empty_page() {
    each_backend(async |db| {
        let driver = get_tenant_driver(handle(db));
        let tenant = seed_tenant(db, "far-offset").await;
        seed_key(db, tenant).await;
        let far = OffsetPage {
            limit: 10,
            offset: u64::MAX,
        };
        let listed = driver.fetch_api_keys(tenant, true, far).await.unwrap();
        assert!(listed.items.is_empty());
        assert_eq!(listed.total, 1);
        assert!(!listed.has_more);
    })
    .await;
}

#[tokio::test]
async fn rotation_grace_only_shortens_a_usable_key() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "rotate").await;
        let other = seed_tenant(db, "rotate-other").await;
        let key = seed_key(db, tenant).await;
        counter.take();
        assert!(
            driver
                .update_api_key_expiry(other, key, later(3600), now())
                .await
                .unwrap()
                .is_none(),
            "another tenant cannot shorten it"
        );
        let shortened = driver
            .update_api_key_expiry(tenant, key, later(3600), now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "update_api_key_expiry: one statement per call"
        );
        assert_eq!(shortened.expires_at, Some(later(3600)));
        assert!(
            driver
                .update_api_key_expiry(tenant, key, later(7200), now())
                .await
                .unwrap()
                .is_none(),
            "never extends"
        );
    })
    .await;
}

#[tokio::test]
async fn last_use_is_written_at_most_once_per_interval() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "touch").await;
        let other = seed_tenant(db, "touch-other").await;
        let key = seed_key(db, tenant).await;
        let minute = Duration::from_secs(60);
        counter.take();
        assert!(
            !driver
                .touch_api_key_last_used(other, key, now(), minute)
                .await
                .unwrap(),
            "another tenant cannot touch it"
        );
        assert!(
            driver
                .touch_api_key_last_used(tenant, key, now(), minute)
                .await
                .unwrap()
        );
        assert_eq!(
            counter.take(),
            2,
            "touch_api_key_last_used: one statement per call"
        );
        assert!(
            !driver
                .touch_api_key_last_used(tenant, key, later(30), minute)
                .await
                .unwrap()
        );
        assert_eq!(counter.take(), 1, "a skipped touch is one statement too");
        assert!(
            driver
                .touch_api_key_last_used(tenant, key, later(61), minute)
                .await
                .unwrap()
        );
        assert_eq!(
            driver
                .fetch_api_key_by_id(tenant, key)
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(later(61))
        );
    })
    .await;
}

#[tokio::test]
async fn batched_usage_is_one_statement_scoped_by_tenant_and_only_moves_forward() {
    use account_drivers::api_keys::KeyUsage;
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "usage").await;
        let other = seed_tenant(db, "usage-other").await;
        let (first, second) = (seed_key(db, tenant).await, seed_key(db, tenant).await);
        let use_of = |tenant_id, key_id, at, requests| KeyUsage {
            tenant_id,
            key_id,
            last_used_at: at,
            requests,
        };
        counter.take();
        assert_eq!(driver.update_api_keys_usage(&[]).await.unwrap(), 0);
        assert_eq!(counter.take(), 0, "an empty batch runs nothing");
        let updated = driver
            .update_api_keys_usage(&[
                use_of(tenant, first, later(60), 3),
                use_of(tenant, second, later(30), 1),
                // Another tenant's id for this key: matches no row.
                use_of(other, first, later(900), 100),
            ])
            .await
            .unwrap();
        assert_eq!(updated, 2);
        assert_eq!(counter.take(), 1, "update_api_keys_usage: one statement");
        let key = |id| async move {
            let k = get_tenant_driver(handle(db))
                .fetch_api_key_by_id(tenant, id)
                .await
                .unwrap()
                .unwrap();
            k.last_used_at
        };
        assert_eq!(key(first).await, Some(later(60)));
        assert_eq!(key(second).await, Some(later(30)));
        // An older use (a late flush) adds its count but never moves last use back.
        driver
            .update_api_keys_usage(&[use_of(tenant, first, later(10), 2)])
            .await
            .unwrap();
        assert_eq!(key(first).await, Some(later(60)));
        let too_many = vec![use_of(tenant, first, later(1), 1); 501];
        assert!(driver.update_api_keys_usage(&too_many).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn a_users_personal_keys_are_revoked_together_within_one_tenant() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "personal").await;
        let other = seed_tenant(db, "personal-other").await;
        let user = seed_user(db, "pat@example.test").await;
        let driver = get_tenant_driver(handle(db));
        let personal = |tenant, digest: &str| NewApiKey {
            user_id: Some(user),
            ..new_key(tenant, digest)
        };
        let first = insert_counted(&driver, personal(tenant, "p-1"))
            .await
            .unwrap();
        let second = insert_counted(&driver, personal(tenant, "p-2"))
            .await
            .unwrap();
        let elsewhere = insert_counted(&driver, personal(other, "p-3"))
            .await
            .unwrap();
        let machine = seed_key(db, tenant).await;

        let counter = StatementCounter::new();
        let revoked = get_tenant_driver(handle(db).counting(&counter))
            .update_user_api_keys_revoked(tenant, user, "member removed", later(1))
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "one statement for all of them, one for the tenant's key total"
        );
        assert_eq!(totals_and_counts(db, tenant).await[1], (1, 1));
        assert_eq!(totals_and_counts(db, other).await[1], (1, 1));
        let mut ids: Vec<_> = revoked.iter().map(|k| k.id).collect();
        ids.sort();
        let mut expected = vec![first.id, second.id];
        expected.sort();
        assert_eq!(ids, expected);
        assert!(revoked.iter().all(|k| k.status == ApiKeyStatus::Revoked
            && k.revoked_at == Some(later(1))
            && k.revoked_reason.as_deref() == Some("member removed")));
        for (tenant, key) in [(other, elsewhere.id), (tenant, machine)] {
            let kept = driver
                .fetch_api_key_by_id(tenant, key)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                kept.status,
                ApiKeyStatus::Active,
                "other tenants' and machine keys stay"
            );
        }
        assert!(
            driver
                .update_user_api_keys_revoked(tenant, user, "again", later(2))
                .await
                .unwrap()
                .is_empty(),
            "already revoked keys are left as they were"
        );
    })
    .await;
}
