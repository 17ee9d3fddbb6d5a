//! `tenant_memberships` driver tests.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::{
    OffsetPage, StatementCounter, get_accounts_facade_driver, get_tenant_driver,
};

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

#[tokio::test]
async fn insert_returns_the_member_counts_it_and_conflicts_by_name() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "join").await;
        let inviter = seed_user(db, "inviter@example.test").await;
        let user = seed_user(db, "joiner@example.test").await;

        let membership = driver
            .insert_membership(tenant, user, MembershipRole::Viewer, Some(inviter), now())
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "INSERT ... RETURNING with the user's email, then the tenant's membership total"
        );
        assert_eq!(totals_and_counts(db, tenant).await[0], (1, 1));
        assert_eq!(membership.tenant_id, tenant);
        assert_eq!(membership.user_id, user);
        assert_eq!(membership.email, "joiner@example.test");
        assert_eq!(membership.name.as_deref(), Some("User joiner@example.test"));
        assert_eq!(membership.role, MembershipRole::Viewer);
        assert_eq!(membership.invited_by, Some(inviter));
        assert_eq!(
            (membership.created_at, membership.updated_at),
            (now(), now())
        );

        assert_eq!(
            driver.fetch_membership(tenant, user).await.unwrap(),
            Some(membership)
        );
        assert_eq!(counter.take(), 1);

        let duplicate = driver
            .insert_membership(tenant, user, MembershipRole::Owner, None, now())
            .await
            .unwrap_err();
        assert_eq!(
            duplicate.conflicting_constraint(),
            Some("uq_tenant_memberships_tenant_id_user_id")
        );
        let missing_user = driver
            .insert_membership(tenant, UserId::new(), MembershipRole::Member, None, now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                missing_user,
                account_drivers::DriverError::ForeignKey { .. }
            ),
            "{missing_user:?}"
        );

        // The member by email: one statement, this tenant's members only.
        counter.take();
        let found = driver
            .fetch_membership_by_email(tenant, "joiner@example.test")
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(found.map(|m| m.user_id), Some(user));
        for (tenant, email) in [
            (tenant, "inviter@example.test"),
            (TenantId::new(), "joiner@example.test"),
        ] {
            assert_eq!(
                driver
                    .fetch_membership_by_email(tenant, email)
                    .await
                    .unwrap(),
                None,
                "{email}: not a member there"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn listing_is_ordered_paged_and_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "list").await;
        let other = seed_tenant(db, "list-other").await;
        let first = seed_user(db, "zed@example.test").await;
        let second = seed_user(db, "amy@example.test").await;
        let third = seed_user(db, "kim@example.test").await;
        let outsider = seed_user(db, "out@example.test").await;
        driver
            .insert_membership(tenant, first, MembershipRole::Owner, None, now())
            .await
            .unwrap();
        driver
            .insert_membership(tenant, second, MembershipRole::Member, None, later(1))
            .await
            .unwrap();
        driver
            .insert_membership(tenant, third, MembershipRole::Member, None, later(1))
            .await
            .unwrap();
        driver
            .insert_membership(other, outsider, MembershipRole::Owner, None, now())
            .await
            .unwrap();
        counter.take();

        let page = driver
            .fetch_tenant_memberships(
                tenant,
                OffsetPage {
                    limit: 2,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "the tenant's membership total, and the page"
        );
        assert_eq!(page.total, 3);
        assert!(page.has_more);
        assert_eq!(page.items[0].user_id, first, "oldest first");
        let rest = driver
            .fetch_tenant_memberships(
                tenant,
                OffsetPage {
                    limit: 2,
                    offset: 2,
                },
            )
            .await
            .unwrap();
        assert!(!rest.has_more);
        assert!(
            page.items[1].id < rest.items[0].id,
            "ties broken by membership id"
        );
        assert_eq!(
            (page.items[1].user_id, rest.items[0].user_id),
            (second, third)
        );

        let others = driver.fetch_tenant_memberships(other, PAGE).await.unwrap();
        assert_eq!(
            others.items.iter().map(|m| m.user_id).collect::<Vec<_>>(),
            vec![outsider]
        );
        assert_eq!(
            driver.fetch_membership(tenant, outsider).await.unwrap(),
            None
        );
        assert_eq!(driver.fetch_membership(other, first).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn owners_are_counted_per_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "owners").await;
        let other = seed_tenant(db, "owners-other").await;
        let a = seed_user(db, "a@example.test").await;
        let b = seed_user(db, "b@example.test").await;
        let c = seed_user(db, "c@example.test").await;
        seed_membership(db, tenant, a, MembershipRole::Owner).await;
        seed_membership(db, tenant, b, MembershipRole::Admin).await;
        seed_membership(db, other, c, MembershipRole::Owner).await;
        seed_membership(db, other, b, MembershipRole::Owner).await;

        assert_eq!(driver.count_owners(tenant).await.unwrap(), 1);
        assert_eq!(counter.take(), 1);
        assert_eq!(driver.count_owners(other).await.unwrap(), 2);
        assert_eq!(driver.count_owners(TenantId::new()).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn role_change_is_one_conditional_statement() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "roles").await;
        let other = seed_tenant(db, "roles-other").await;
        let user = seed_user(db, "role@example.test").await;
        seed_membership(db, tenant, user, MembershipRole::Member).await;
        seed_membership(db, other, user, MembershipRole::Member).await;

        // A wrong expected role changes nothing.
        assert_eq!(
            driver
                .update_membership_role(
                    tenant,
                    user,
                    MembershipRole::Admin,
                    Some(MembershipRole::Viewer),
                    later(1),
                )
                .await
                .unwrap(),
            None
        );
        assert_eq!(counter.take(), 1);
        let unchanged = driver
            .fetch_membership(tenant, user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (unchanged.role, unchanged.updated_at),
            (MembershipRole::Member, now())
        );
        counter.take();

        let changed = driver
            .update_membership_role(
                tenant,
                user,
                MembershipRole::Admin,
                Some(MembershipRole::Member),
                later(2),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.take(),
            1,
            "UPDATE ... RETURNING with email and name"
        );
        assert_eq!(changed.role, MembershipRole::Admin);
        assert_eq!(changed.updated_at, later(2));
        assert_eq!(changed.email, "role@example.test");
        assert_eq!(changed.name.as_deref(), Some("User role@example.test"));
        assert_eq!(changed.created_at, now());
        assert_eq!(
            driver.fetch_membership(tenant, user).await.unwrap(),
            Some(changed)
        );
        assert_eq!(
            driver
                .fetch_membership(other, user)
                .await
                .unwrap()
                .unwrap()
                .role,
            MembershipRole::Member,
            "the other tenant's membership is untouched"
        );

        // Without an expected role it applies unconditionally; a non-member gets None.
        let owner = driver
            .update_membership_role(tenant, user, MembershipRole::Owner, None, later(3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owner.role, MembershipRole::Owner);
        let stranger = seed_user(db, "stranger@example.test").await;
        assert_eq!(
            driver
                .update_membership_role(tenant, stranger, MembershipRole::Owner, None, later(3))
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn delete_removes_only_that_membership() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "leave").await;
        let other = seed_tenant(db, "leave-other").await;
        let user = seed_user(db, "leave@example.test").await;
        seed_membership(db, tenant, user, MembershipRole::Member).await;
        seed_membership(db, other, user, MembershipRole::Member).await;

        assert!(driver.delete_membership(tenant, user).await.unwrap());
        assert_eq!(
            counter.take(),
            2,
            "the delete, the tenant's membership total"
        );
        assert_eq!(totals_and_counts(db, tenant).await[0], (0, 0));
        assert_eq!(totals_and_counts(db, other).await[0], (1, 1));
        assert_eq!(driver.fetch_membership(tenant, user).await.unwrap(), None);
        assert!(
            driver
                .fetch_membership(other, user)
                .await
                .unwrap()
                .is_some()
        );
        counter.take();
        assert!(
            !driver.delete_membership(tenant, user).await.unwrap(),
            "nothing left to delete"
        );
        assert_eq!(counter.take(), 1, "nothing deleted, no total to move");
        assert_eq!(totals_and_counts(db, tenant).await[0], (0, 0));
    })
    .await;
}

#[tokio::test]
async fn the_tenant_driver_inserts_memberships_with_the_same_statements() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let facade = get_accounts_facade_driver(handle(db));
        let tenant = seed_tenant(db, "tenant-join").await;
        let other = seed_tenant(db, "tenant-join-other").await;
        let user = seed_user(db, "tenant-joiner@example.test").await;
        let bystander = seed_user(db, "tenant-bystander@example.test").await;
        seed_membership(db, other, bystander, MembershipRole::Owner).await;

        let membership = driver
            .insert_membership(tenant, user, MembershipRole::Owner, None, now())
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "TenantDriver::insert_membership: one INSERT ... RETURNING, and the total"
        );
        assert_eq!(
            (membership.tenant_id, membership.user_id, membership.role),
            (tenant, user, MembershipRole::Owner)
        );
        assert_eq!(membership.email, "tenant-joiner@example.test");
        assert_eq!(
            facade.fetch_membership(tenant, user).await.unwrap(),
            Some(membership)
        );
        assert_eq!(
            facade.fetch_membership(other, user).await.unwrap(),
            None,
            "the membership exists in its tenant only"
        );
        assert_eq!(
            facade
                .fetch_tenant_memberships(other, PAGE)
                .await
                .unwrap()
                .items
                .iter()
                .map(|m| m.user_id)
                .collect::<Vec<_>>(),
            vec![bystander],
            "the other tenant's members are unchanged"
        );

        let duplicate = driver
            .insert_membership(tenant, user, MembershipRole::Member, None, now())
            .await
            .unwrap_err();
        assert_eq!(
            duplicate.conflicting_constraint(),
            Some("uq_tenant_memberships_tenant_id_user_id")
        );
    })
    .await;
}

#[tokio::test]
async fn membership_with_user_is_one_tenant_scoped_join() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "with-user").await;
        let other = seed_tenant(db, "with-user-other").await;
        let user = seed_user(db, "with-user@example.test").await;
        let stranger = seed_user(db, "with-user-stranger@example.test").await;
        seed_membership(db, tenant, user, MembershipRole::Admin).await;
        seed_membership(db, other, user, MembershipRole::Owner).await;
        seed_membership(db, other, stranger, MembershipRole::Member).await;
        counter.take();

        let found = driver
            .fetch_membership_with_user(tenant, user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "membership and user in one statement");
        assert_eq!(
            (
                found.membership.tenant_id,
                found.membership.user_id,
                found.membership.role
            ),
            (tenant, user, MembershipRole::Admin),
            "this tenant's membership, not the other tenant's"
        );
        assert_eq!(
            Some(found.membership.clone()),
            driver.fetch_membership(tenant, user).await.unwrap(),
            "the same membership snapshot as fetch_membership"
        );
        assert_eq!(found.user.id, user, "the user is the membership's user");
        assert_eq!(found.user.email, "with-user@example.test");
        assert_eq!(
            found.user.name.as_deref(),
            Some("User with-user@example.test")
        );
        assert_eq!(found.user.status, UserStatus::Active);
        assert_eq!(found.user.created_at, now());

        let elsewhere = driver
            .fetch_membership_with_user(other, user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (elsewhere.membership.tenant_id, elsewhere.membership.role),
            (other, MembershipRole::Owner)
        );
        assert_eq!(elsewhere.user, found.user);
        assert_eq!(
            driver
                .fetch_membership_with_user(tenant, stranger)
                .await
                .unwrap(),
            None,
            "a member of another tenant is never returned here"
        );
        assert_eq!(
            driver
                .fetch_membership_with_user(tenant, UserId::new())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}
