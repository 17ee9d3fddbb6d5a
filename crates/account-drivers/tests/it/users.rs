//! `users` driver tests: the user write driver and the facade's user views.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::users::{NewUser, ProfileChanges, UserFilter, UserPosition};
use account_drivers::{
    OffsetPage, StatementCounter, get_accounts_facade_driver, get_user_write_driver,
};
use serde_json::json;

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: email.into(),
        external_user_id: Some(format!("ext-{email}")),
        name: Some("Ada".into()),
        avatar_url: Some("https://example.test/a.png".into()),
        status: UserStatus::Active,
    }
}

#[tokio::test]
async fn create_and_fetch_users_in_one_statement_each() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_user_write_driver(handle(db).counting(&counter));

        let input = new_user("ada@example.test");
        let user = driver.create_user(input.clone(), now()).await.unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(user.id, input.id);
        assert_eq!(user.email, "ada@example.test");
        assert_eq!(
            user.external_user_id.as_deref(),
            Some("ext-ada@example.test")
        );
        assert_eq!(user.name.as_deref(), Some("Ada"));
        assert_eq!(
            user.avatar_url.as_deref(),
            Some("https://example.test/a.png")
        );
        assert_eq!(user.status, UserStatus::Active);
        assert_eq!((user.created_at, user.updated_at), (now(), now()));
        assert_eq!(user.last_login_at, None);

        assert_eq!(
            driver.fetch_user_by_id(user.id).await.unwrap(),
            Some(user.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(
            driver
                .fetch_user_by_email("ada@example.test")
                .await
                .unwrap(),
            Some(user.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(driver.fetch_user_by_id(UserId::new()).await.unwrap(), None);
        assert_eq!(
            driver
                .fetch_user_by_email("nobody@example.test")
                .await
                .unwrap(),
            None
        );

        let mut duplicate = new_user("ada@example.test");
        duplicate.external_user_id = None;
        let error = driver.create_user(duplicate, now()).await.unwrap_err();
        assert_eq!(error.conflicting_constraint(), Some("uq_users_email"));
    })
    .await;
}

#[tokio::test]
async fn login_updates_only_the_given_user() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_user_write_driver(handle(db).counting(&counter));
        let user = seed_user(db, "login@example.test").await;
        let bystander = seed_user(db, "bystander@example.test").await;

        let updated = driver
            .update_user_login(user, later(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(updated.last_login_at, Some(later(60)));
        assert_eq!(updated.updated_at, later(60));
        assert_eq!(driver.fetch_user_by_id(user).await.unwrap(), Some(updated));
        let other = driver.fetch_user_by_id(bystander).await.unwrap().unwrap();
        assert_eq!((other.last_login_at, other.updated_at), (None, now()));
        assert_eq!(
            driver
                .update_user_login(UserId::new(), now())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn fetch_users_joins_filters_orders_and_scopes() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "people").await;
        let other = seed_tenant(db, "people-other").await;
        let carol = seed_user(db, "carol@example.test").await;
        let alice = seed_user(db, "alice@example.test").await;
        let bob = seed_user(db, "bob@example.test").await;
        let outsider = seed_user(db, "aaron@example.test").await;
        seed_membership(db, tenant, carol, MembershipRole::Member).await;
        seed_membership(db, tenant, alice, MembershipRole::Owner).await;
        seed_membership(db, tenant, bob, MembershipRole::Member).await;
        seed_membership(db, other, outsider, MembershipRole::Owner).await;
        seed_membership(db, other, bob, MembershipRole::Admin).await;

        let page = driver
            .fetch_users(tenant, UserFilter::default(), PAGE)
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "the tenant's membership total, and the page"
        );
        let listed: Vec<_> = page.items.iter().map(|u| (u.id, u.role)).collect();
        assert_eq!(
            listed,
            vec![
                (alice, MembershipRole::Owner),
                (bob, MembershipRole::Member),
                (carol, MembershipRole::Member),
            ],
            "by email, with this tenant's role only"
        );
        assert_eq!((page.total, page.has_more), (3, false));
        assert_eq!(page.items[0].email, "alice@example.test");
        assert_eq!(page.items[0].status, UserStatus::Active);

        let members = UserFilter::default().with_role(MembershipRole::Member);
        let first = driver
            .fetch_users(
                tenant,
                members,
                OffsetPage {
                    limit: 1,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            first.items.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![bob]
        );
        assert_eq!((first.total, first.has_more), (2, true));
        counter.take();
        assert_eq!(driver.count_users(tenant, members).await.unwrap(), 2);
        assert_eq!(counter.take(), 1, "count_users is one statement");
        let suspended = UserFilter::default().with_status(UserStatus::Suspended);
        assert_eq!(driver.count_users(tenant, suspended).await.unwrap(), 0);
        assert!(
            driver
                .fetch_users(tenant, suspended, PAGE)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(
            driver
                .count_users(other, UserFilter::default())
                .await
                .unwrap(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn user_detail_and_profile_are_one_tenant_scoped_query() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "detail").await;
        let other = seed_tenant(db, "detail-other").await;
        let user = seed_user(db, "detail@example.test").await;
        let stranger = seed_user(db, "stranger@example.test").await;
        seed_membership(db, tenant, user, MembershipRole::Admin).await;
        seed_membership(db, other, stranger, MembershipRole::Owner).await;

        let detail = driver
            .fetch_user_detail(tenant, user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(detail.id, user);
        assert_eq!(detail.email, "detail@example.test");
        assert_eq!(detail.role, MembershipRole::Admin);
        assert_eq!(detail.membership_created_at, now());
        assert_eq!(detail.invited_by, None);
        assert!(!detail.email_verified);
        assert_eq!(
            driver.fetch_user_detail(tenant, stranger).await.unwrap(),
            None,
            "a member of another tenant is not found here"
        );
        assert_eq!(driver.fetch_user_detail(other, user).await.unwrap(), None);
        counter.take();

        let profile = driver.fetch_profile(tenant, user).await.unwrap().unwrap();
        assert_eq!(counter.take(), 1, "user, role and tenant in one query");
        assert_eq!(profile.user_id, user);
        assert_eq!(profile.tenant_id, tenant);
        assert_eq!(profile.tenant_name, "Tenant detail");
        assert_eq!(profile.role, MembershipRole::Admin);
        assert_eq!(profile.name.as_deref(), Some("User detail@example.test"));
        assert_eq!((profile.time_zone, profile.preferences), (None, None));
        assert_eq!(driver.fetch_profile(other, user).await.unwrap(), None);
        assert_eq!(driver.fetch_profile(tenant, stranger).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn profile_update_writes_what_it_is_given() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "prefs").await;
        let user = seed_user(db, "prefs@example.test").await;
        let bystander = seed_user(db, "prefs-other@example.test").await;
        seed_membership(db, tenant, user, MembershipRole::Member).await;

        let prefs = json!({"theme": "dark", "digest": {"weekly": true}});
        let updated = driver
            .update_user_profile(
                user,
                ProfileChanges {
                    name: Some("Grace".into()),
                    time_zone: Some("Europe/Paris".into()),
                    locale: Some("fr-CA".into()),
                    preferences_merged: Some(prefs.clone()),
                },
                later(5),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(updated.name.as_deref(), Some("Grace"));
        assert_eq!(updated.time_zone.as_deref(), Some("Europe/Paris"));
        assert_eq!(updated.locale.as_deref(), Some("fr-CA"));
        assert_eq!(updated.preferences, Some(prefs.clone()));
        assert_eq!(updated.updated_at, later(5));

        // Only the time zone: the rest stays.
        let updated = driver
            .update_user_profile(
                user,
                ProfileChanges {
                    time_zone: Some("UTC".into()),
                    ..ProfileChanges::default()
                },
                later(10),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated.name.as_deref(), Some("Grace"));
        assert_eq!(updated.time_zone.as_deref(), Some("UTC"));
        assert_eq!(updated.locale.as_deref(), Some("fr-CA"));
        assert_eq!(updated.preferences, Some(prefs.clone()));

        let profile = driver.fetch_profile(tenant, user).await.unwrap().unwrap();
        assert_eq!(profile.preferences, Some(prefs));
        assert_eq!(profile.updated_at, later(10));

        let users = get_user_write_driver(handle(db));
        let untouched = users.fetch_user_by_id(bystander).await.unwrap().unwrap();
        assert_eq!(
            (
                untouched.name.as_deref(),
                untouched.time_zone,
                untouched.updated_at
            ),
            (Some("User prefs-other@example.test"), None, now())
        );
        assert_eq!(
            driver
                .update_user_profile(UserId::new(), ProfileChanges::default(), now())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn the_facade_inserts_and_looks_up_users_in_one_statement_each() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let facade = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "facade-users").await;
        let other = seed_tenant(db, "facade-users-other").await;
        let member = seed_user(db, "member@example.test").await;
        seed_membership(db, tenant, member, MembershipRole::Member).await;
        counter.take();

        let input = new_user("grace@example.test");
        let user = facade.insert_user(input.clone(), now()).await.unwrap();
        assert_eq!(counter.take(), 1, "insert_user is one statement");
        assert_eq!(
            (user.id, user.email.as_str()),
            (input.id, "grace@example.test")
        );
        assert_eq!(
            Some(user.clone()),
            get_user_write_driver(handle(db))
                .fetch_user_by_id(user.id)
                .await
                .unwrap(),
            "the same row the user write driver reads"
        );
        seed_membership(db, other, user.id, MembershipRole::Owner).await;

        assert_eq!(
            facade.fetch_user_by_id(user.id).await.unwrap(),
            Some(user.clone())
        );
        assert_eq!(counter.take(), 1, "fetch_user_by_id is one statement");
        assert_eq!(
            facade
                .fetch_user_by_email("grace@example.test")
                .await
                .unwrap(),
            Some(user.clone())
        );
        assert_eq!(counter.take(), 1, "fetch_user_by_email is one statement");
        assert_eq!(
            facade
                .fetch_user_by_email("GRACE@example.test")
                .await
                .unwrap(),
            None,
            "exact match on the normalised email"
        );
        assert_eq!(facade.fetch_user_by_id(UserId::new()).await.unwrap(), None);

        // Users are global (ARCHITECTURE.md): the account row carries no tenant, and a
        // tenant-scoped read of it still sees only that tenant's members.
        assert_eq!(
            facade
                .fetch_user_by_id(member)
                .await
                .unwrap()
                .map(|u| u.email),
            Some("member@example.test".to_owned())
        );
        assert_eq!(
            facade.fetch_user_detail(tenant, user.id).await.unwrap(),
            None
        );
        assert_eq!(facade.fetch_user_detail(other, member).await.unwrap(), None);

        let mut duplicate = new_user("grace@example.test");
        duplicate.external_user_id = None;
        let error = facade.insert_user(duplicate, now()).await.unwrap_err();
        assert_eq!(error.conflicting_constraint(), Some("uq_users_email"));
    })
    .await;
}

#[tokio::test]
async fn fetch_users_after_reads_every_member_once_in_order_one_statement_a_page() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "keyset").await;
        let other = seed_tenant(db, "keyset-other").await;
        let mut members = Vec::new();
        for name in ["eve", "bob", "dan", "ann", "cat"] {
            let user = seed_user(db, &format!("{name}@example.test")).await;
            seed_membership(db, tenant, user, MembershipRole::Member).await;
            members.push((format!("{name}@example.test"), user));
        }
        // Sorts between this tenant's members: a page must never pick it up.
        let outsider = seed_user(db, "bea@example.test").await;
        seed_membership(db, other, outsider, MembershipRole::Owner).await;
        members.sort();

        counter.take();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = driver
                .fetch_users_after(tenant, UserFilter::default(), after, 2)
                .await
                .unwrap();
            assert_eq!(counter.take(), 1, "fetch_users_after: one statement a page");
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|u| (u.email.clone(), u.id)));
            match page.next {
                Some(next) => {
                    assert_eq!(
                        Some(&next),
                        page.items.last().map(UserPosition::of).as_ref()
                    );
                    after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(
            seen, members,
            "every member once, by email, none of another tenant"
        );

        // A position from another tenant's list is only a place in this one.
        let from_other = UserPosition {
            email: "bea@example.test".into(),
            id: outsider,
        };
        let page = driver
            .fetch_users_after(tenant, UserFilter::default(), Some(from_other), 10)
            .await
            .unwrap();
        let emails: Vec<_> = page.items.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(
            emails,
            [
                "bob@example.test",
                "cat@example.test",
                "dan@example.test",
                "eve@example.test"
            ]
        );
        assert_eq!(page.next, None);

        // The id breaks ties within one email: before the member's id the member follows,
        // at it the member is behind.
        let (ann_email, ann) = members[0].clone();
        let at = |id| UserPosition {
            email: ann_email.clone(),
            id,
        };
        let before = UserId::from_uuid(sea_orm::prelude::Uuid::nil());
        let page = driver
            .fetch_users_after(tenant, UserFilter::default(), Some(at(before)), 1)
            .await
            .unwrap();
        assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), [ann]);
        let page = driver
            .fetch_users_after(tenant, UserFilter::default(), Some(at(ann)), 1)
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|u| u.id).collect::<Vec<_>>(),
            [members[1].1]
        );
        let beyond = UserId::from_uuid(sea_orm::prelude::Uuid::from_u128(u128::MAX));
        let page = driver
            .fetch_users_after(tenant, UserFilter::default(), Some(at(beyond)), 1)
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|u| u.id).collect::<Vec<_>>(),
            [members[1].1]
        );

        let owners = UserFilter::default().with_role(MembershipRole::Owner);
        let page = driver
            .fetch_users_after(tenant, owners, None, 10)
            .await
            .unwrap();
        assert!(
            page.items.is_empty() && page.next.is_none(),
            "filters apply"
        );
    })
    .await;
}

#[tokio::test]
async fn the_default_tenant_is_set_once_and_cleared_only_by_its_own_tenant() {
    each_backend(async |db| {
        let first = seed_tenant(db, "default-first").await;
        let second = seed_tenant(db, "default-second").await;
        let user = seed_user(db, "dee@example.test").await;
        let counter = StatementCounter::new();
        let facade = get_accounts_facade_driver(handle(db).counting(&counter));
        let default_of = async || {
            get_user_write_driver(handle(db))
                .fetch_user_by_id(user)
                .await
                .unwrap()
                .unwrap()
                .default_tenant_id
        };

        assert!(
            facade
                .update_default_tenant_if_unset(user, first, now())
                .await
                .unwrap()
        );
        assert!(
            !facade
                .update_default_tenant_if_unset(user, second, now())
                .await
                .unwrap()
        );
        assert_eq!(counter.take(), 2, "one statement each");
        assert_eq!(
            default_of().await,
            Some(first),
            "the first tenant stays the default"
        );

        assert!(
            !facade
                .clear_default_tenant(user, second, now())
                .await
                .unwrap()
        );
        assert_eq!(
            default_of().await,
            Some(first),
            "leaving another tenant changes nothing"
        );
        assert!(
            facade
                .clear_default_tenant(user, first, now())
                .await
                .unwrap()
        );
        assert_eq!(counter.take(), 2, "one statement each");
        assert_eq!(default_of().await, None);
        assert!(
            facade
                .update_default_tenant_if_unset(user, second, now())
                .await
                .unwrap()
        );
        assert_eq!(default_of().await, Some(second));
    })
    .await;
}
