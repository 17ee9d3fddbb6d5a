//! `invitations` driver tests.

use crate::support::*;
use account_drivers::invitations::NewInvitation;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_accounts_facade_driver};

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

fn invitation(tenant: TenantId, email: &str, digest: &str, by: UserId) -> NewInvitation {
    NewInvitation {
        id: InvitationId::new(),
        tenant_id: tenant,
        email: email.into(),
        role: MembershipRole::Member,
        token_digest: digest.into(),
        invited_by: by,
        expires_at: later(3600),
    }
}

#[tokio::test]
async fn insert_and_lookups_are_single_statements_and_tenant_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "inv").await;
        let other = seed_tenant(db, "inv-other").await;
        let owner = seed_user(db, "owner@example.test").await;

        let input = invitation(tenant, "new@example.test", "digest-1", owner);
        assert!(
            !format!("{input:?}").contains("digest-1"),
            "digest redacted"
        );
        let inv = driver
            .insert_invitation(input.clone(), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(inv.id, input.id);
        assert_eq!(inv.status, InvitationStatus::Pending);
        assert_eq!(inv.email, "new@example.test");
        assert_eq!(inv.role, MembershipRole::Member);
        assert_eq!(inv.invited_by, owner);
        assert_eq!((inv.created_at, inv.expires_at), (now(), later(3600)));
        assert_eq!(
            (inv.accepted_at, inv.accepted_by, inv.revoked_at),
            (None, None, None)
        );
        assert!(!format!("{inv:?}").contains("digest-1"));

        assert_eq!(
            driver.fetch_invitation(tenant, inv.id).await.unwrap(),
            Some(inv.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(driver.fetch_invitation(other, inv.id).await.unwrap(), None);
        counter.take();

        assert_eq!(
            driver
                .fetch_invitation_by_id_and_token(tenant, inv.id, "digest-1")
                .await
                .unwrap(),
            Some(inv.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(
            driver
                .fetch_invitation_by_id_and_token(tenant, inv.id, "digest-2")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            driver
                .fetch_invitation_by_id_and_token(other, inv.id, "digest-1")
                .await
                .unwrap(),
            None
        );
        counter.take();

        assert_eq!(
            driver
                .fetch_invitation_by_email(tenant, "new@example.test", InvitationStatus::Pending)
                .await
                .unwrap(),
            Some(inv.clone())
        );
        assert_eq!(counter.take(), 1);
        assert_eq!(
            driver
                .fetch_invitation_by_email(tenant, "new@example.test", InvitationStatus::Accepted)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            driver
                .fetch_invitation_by_email(other, "new@example.test", InvitationStatus::Pending)
                .await
                .unwrap(),
            None
        );

        // One pending invitation per (tenant, email), whatever the case of the address.
        let error = driver
            .insert_invitation(
                invitation(tenant, "NEW@example.test", "digest-3", owner),
                now(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.conflicting_constraint(),
            Some("uq_invitations_pending_email")
        );
        // Another tenant may invite the same address.
        driver
            .insert_invitation(
                invitation(other, "new@example.test", "digest-4", owner),
                now(),
            )
            .await
            .unwrap();
        // Once the first is no longer pending, a new one may be sent.
        assert!(
            driver
                .update_invitation_revoked(tenant, inv.id, later(1))
                .await
                .unwrap()
        );
        driver
            .insert_invitation(
                invitation(tenant, "new@example.test", "digest-5", owner),
                later(2),
            )
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn listing_is_newest_first_filtered_paged_and_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "inv-list").await;
        let other = seed_tenant(db, "inv-list-other").await;
        let owner = seed_user(db, "owner@example.test").await;
        let a = driver
            .insert_invitation(invitation(tenant, "a@example.test", "d-a", owner), now())
            .await
            .unwrap();
        let b = driver
            .insert_invitation(invitation(tenant, "b@example.test", "d-b", owner), later(1))
            .await
            .unwrap();
        let c = driver
            .insert_invitation(invitation(tenant, "c@example.test", "d-c", owner), later(1))
            .await
            .unwrap();
        driver
            .insert_invitation(invitation(other, "x@example.test", "d-x", owner), later(9))
            .await
            .unwrap();
        assert!(
            driver
                .update_invitation_revoked(tenant, b.id, later(2))
                .await
                .unwrap()
        );
        counter.take();

        let page = driver
            .fetch_invitations(
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
        // b and c share created_at: the larger id first.
        assert_eq!(
            page.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![c.id, b.id]
        );
        let rest = driver
            .fetch_invitations(
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
            rest.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![a.id]
        );
        assert!(!rest.has_more);

        let pending = driver
            .fetch_invitations(tenant, Some(InvitationStatus::Pending), PAGE)
            .await
            .unwrap();
        assert_eq!(
            pending.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![c.id, a.id]
        );
        assert_eq!(pending.total, 2);
        let others = driver.fetch_invitations(other, None, PAGE).await.unwrap();
        assert_eq!(others.total, 1);
        assert_eq!(others.items[0].email, "x@example.test");
    })
    .await;
}

#[tokio::test]
async fn acceptance_is_conditional_and_happens_once() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "accept").await;
        let other = seed_tenant(db, "accept-other").await;
        let owner = seed_user(db, "owner@example.test").await;
        let invitee = seed_user(db, "invitee@example.test").await;
        let late = seed_user(db, "late@example.test").await;
        let inv = driver
            .insert_invitation(
                invitation(tenant, "invitee@example.test", "d1", owner),
                now(),
            )
            .await
            .unwrap();
        counter.take();

        assert!(
            !driver
                .update_invitation_accepted(other, inv.id, invitee, later(10))
                .await
                .unwrap(),
            "another tenant cannot accept it"
        );
        assert!(
            !driver
                .update_invitation_accepted(tenant, inv.id, invitee, later(3600))
                .await
                .unwrap(),
            "not at or after expiry"
        );
        assert_eq!(counter.take(), 2);
        assert_eq!(
            driver
                .fetch_invitation(tenant, inv.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            InvitationStatus::Pending
        );
        counter.take();

        assert!(
            driver
                .update_invitation_accepted(tenant, inv.id, invitee, later(10))
                .await
                .unwrap()
        );
        assert_eq!(counter.take(), 1);
        assert!(
            !driver
                .update_invitation_accepted(tenant, inv.id, late, later(20))
                .await
                .unwrap(),
            "a double accept changes nothing"
        );
        let accepted = driver
            .fetch_invitation(tenant, inv.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(accepted.status, InvitationStatus::Accepted);
        assert_eq!(accepted.accepted_by, Some(invitee));
        assert_eq!(accepted.accepted_at, Some(later(10)));
        assert_eq!(accepted.updated_at, later(10));

        // Accepted invitations can no longer expire, be revoked or be resent.
        assert!(
            !driver
                .update_invitation_expired(tenant, inv.id, later(30))
                .await
                .unwrap()
        );
        assert!(
            !driver
                .update_invitation_revoked(tenant, inv.id, later(30))
                .await
                .unwrap()
        );
        assert_eq!(
            driver
                .update_invitation_token(tenant, inv.id, "d2", later(9999), later(30))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            driver.fetch_invitation(tenant, inv.id).await.unwrap(),
            Some(accepted)
        );
    })
    .await;
}

#[tokio::test]
async fn expire_and_revoke_only_touch_the_tenants_pending_invitation() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "expire").await;
        let other = seed_tenant(db, "expire-other").await;
        let owner = seed_user(db, "owner@example.test").await;
        let first = driver
            .insert_invitation(invitation(tenant, "one@example.test", "d1", owner), now())
            .await
            .unwrap();
        let second = driver
            .insert_invitation(invitation(tenant, "two@example.test", "d2", owner), now())
            .await
            .unwrap();
        counter.take();

        assert!(
            !driver
                .update_invitation_expired(other, first.id, later(1))
                .await
                .unwrap()
        );
        assert!(
            !driver
                .update_invitation_revoked(other, second.id, later(1))
                .await
                .unwrap()
        );
        assert!(
            driver
                .update_invitation_expired(tenant, first.id, later(2))
                .await
                .unwrap()
        );
        assert!(
            driver
                .update_invitation_revoked(tenant, second.id, later(3))
                .await
                .unwrap()
        );
        assert_eq!(counter.take(), 4);
        assert!(
            !driver
                .update_invitation_expired(tenant, first.id, later(4))
                .await
                .unwrap()
        );
        assert!(
            !driver
                .update_invitation_revoked(tenant, first.id, later(4))
                .await
                .unwrap()
        );
        assert!(
            !driver
                .update_invitation_expired(tenant, second.id, later(4))
                .await
                .unwrap()
        );

        let expired = driver
            .fetch_invitation(tenant, first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (expired.status, expired.updated_at, expired.revoked_at),
            (InvitationStatus::Expired, later(2), None)
        );
        let revoked = driver
            .fetch_invitation(tenant, second.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (revoked.status, revoked.updated_at, revoked.revoked_at),
            (InvitationStatus::Revoked, later(3), Some(later(3)))
        );
    })
    .await;
}

#[tokio::test]
async fn resend_replaces_the_token_of_a_pending_invitation() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "resend").await;
        let other = seed_tenant(db, "resend-other").await;
        let owner = seed_user(db, "owner@example.test").await;
        let inv = driver
            .insert_invitation(
                invitation(tenant, "again@example.test", "old", owner),
                now(),
            )
            .await
            .unwrap();
        counter.take();

        assert_eq!(
            driver
                .update_invitation_token(other, inv.id, "stolen", later(9999), later(1))
                .await
                .unwrap(),
            None
        );
        let resent = driver
            .update_invitation_token(tenant, inv.id, "new", later(7200), later(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 2);
        assert_eq!(resent.expires_at, later(7200));
        assert_eq!(
            (resent.created_at, resent.updated_at),
            (later(60), later(60))
        );
        assert_eq!(resent.status, InvitationStatus::Pending);
        assert_eq!(
            driver
                .fetch_invitation_by_id_and_token(tenant, inv.id, "old")
                .await
                .unwrap(),
            None,
            "the old token no longer matches"
        );
        assert_eq!(
            driver
                .fetch_invitation_by_id_and_token(tenant, inv.id, "new")
                .await
                .unwrap(),
            Some(resent)
        );
    })
    .await;
}
