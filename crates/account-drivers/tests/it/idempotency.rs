//! Idempotency keys: a claim is one insert that a held key leaves alone, a response is stored
//! on the claim's row only, an expired key is taken over, and the purge deletes expired keys
//! only, in batches; every statement scoped to its tenant and credential but the purge.

use crate::support::*;
use account_drivers::StatementCounter;
use account_drivers::idempotency::{
    ClaimAttempt, KeyScope, NewClaim, bound_lock_wait, fetch_key, insert_claim, purge_expired_keys,
    release_claim, restore_lock_wait, store_response, take_over_expired,
};
use account_drivers::types::TenantId;
use std::time::Duration;

fn scope(tenant: TenantId, credential: &str, key: &str) -> KeyScope {
    KeyScope {
        tenant_id: tenant,
        credential: credential.to_owned(),
        key: key.to_owned(),
    }
}

/// A claim of `scope` at `later(at)`, expiring a day later, of a request hashed to `hash`.
fn claim(scope: &KeyScope, hash: u8, at: i64) -> NewClaim {
    NewClaim {
        scope: scope.clone(),
        request_hash: vec![hash; 32],
        created_at: later(at),
        expires_at: later(at + 86_400),
    }
}

#[tokio::test]
async fn a_claim_is_one_insert_and_a_held_key_is_left_alone() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "idem").await;
        let other = seed_tenant(db, "idem-other").await;
        let mine = scope(tenant, "key:1", "retry-1");
        let counter = StatementCounter::new();
        let h = handle(db).counting(&counter);

        let first = insert_claim(h, &claim(&mine, 1, 0)).await.unwrap();
        assert_eq!(first, ClaimAttempt::Claimed);
        assert_eq!(counter.take(), 1, "one insert");
        let again = insert_claim(h, &claim(&mine, 2, 10)).await.unwrap();
        assert_eq!(again, ClaimAttempt::Held);
        let stored = fetch_key(h, &mine).await.unwrap().unwrap();
        assert_eq!(
            stored.request_hash,
            vec![1; 32],
            "the first claim's hash stays"
        );
        assert_eq!((stored.status_code, stored.response), (None, None));
        assert_eq!(stored.expires_at, later(86_400));

        // The same key of another credential, or of another tenant, is another key.
        for separate in [
            scope(tenant, "key:2", "retry-1"),
            scope(other, "key:1", "retry-1"),
        ] {
            let attempt = insert_claim(h, &claim(&separate, 3, 0)).await.unwrap();
            assert_eq!(attempt, ClaimAttempt::Claimed, "{separate:?}");
        }
        assert_eq!(
            fetch_key(h, &scope(tenant, "key:1", "retry-2"))
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_response_is_stored_once_on_an_unanswered_claim_and_a_released_claim_is_gone() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "idem-store").await;
        let other = seed_tenant(db, "idem-store-other").await;
        let h = handle(db);
        let answered = scope(tenant, "user:1", "a");
        let released = scope(tenant, "user:1", "b");
        insert_claim(h, &claim(&answered, 1, 0)).await.unwrap();
        insert_claim(h, &claim(&released, 1, 0)).await.unwrap();

        // Another tenant's row of the same credential and key is not touched.
        assert!(
            store_response(h, &scope(other, "user:1", "a"), 201, vec![9])
                .await
                .is_err()
        );
        let sealed: Vec<u8> = (0..=255).collect();
        store_response(h, &answered, 201, sealed.clone())
            .await
            .unwrap();
        let stored = fetch_key(h, &answered).await.unwrap().unwrap();
        assert_eq!(stored.status_code, Some(201));
        assert_eq!(stored.response, Some(sealed));
        assert!(
            store_response(h, &answered, 200, vec![1]).await.is_err(),
            "an answered key keeps its first response"
        );

        release_claim(h, &released).await.unwrap();
        assert_eq!(fetch_key(h, &released).await.unwrap(), None);
        release_claim(h, &answered).await.unwrap();
        assert!(
            fetch_key(h, &answered).await.unwrap().is_some(),
            "an answered key is never released"
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_key_is_taken_over_and_a_live_one_is_not() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "idem-expiry").await;
        let h = handle(db);
        let key = scope(tenant, "key:1", "k");
        insert_claim(h, &claim(&key, 1, 0)).await.unwrap();
        store_response(h, &key, 201, vec![7]).await.unwrap();

        let early = take_over_expired(h, &claim(&key, 2, 100), later(86_399))
            .await
            .unwrap();
        assert_eq!(early, ClaimAttempt::Held, "a second before expiry");
        let taken = take_over_expired(h, &claim(&key, 2, 86_400), later(86_400))
            .await
            .unwrap();
        assert_eq!(taken, ClaimAttempt::Claimed);
        let stored = fetch_key(h, &key).await.unwrap().unwrap();
        assert_eq!(stored.request_hash, vec![2; 32]);
        assert_eq!((stored.status_code, stored.response), (None, None));
        assert_eq!(stored.created_at, later(86_400));
        assert_eq!(stored.expires_at, later(2 * 86_400));
    })
    .await;
}

#[tokio::test]
async fn the_purge_deletes_expired_keys_of_every_tenant_in_batches() {
    each_backend(async |db| {
        let (a, b) = (
            seed_tenant(db, "idem-purge-a").await,
            seed_tenant(db, "idem-purge-b").await,
        );
        let h = handle(db);
        for (tenant, key, at) in [(a, "1", 0), (a, "2", 10), (b, "3", 20), (b, "live", 5_000)] {
            insert_claim(h, &claim(&scope(tenant, "key:1", key), 1, at))
                .await
                .unwrap();
        }
        let counter = StatementCounter::new();
        let counted = handle(db).counting(&counter);
        let cutoff = later(86_400 + 20);
        assert_eq!(purge_expired_keys(counted, cutoff, 2).await.unwrap(), 2);
        assert_eq!(counter.take(), 1, "one statement per batch");
        assert_eq!(purge_expired_keys(counted, cutoff, 2).await.unwrap(), 1);
        assert_eq!(purge_expired_keys(counted, cutoff, 2).await.unwrap(), 0);
        assert!(
            fetch_key(h, &scope(b, "key:1", "live"))
                .await
                .unwrap()
                .is_some(),
            "a key not yet expired stays"
        );
    })
    .await;
}

#[tokio::test]
async fn the_lock_wait_bound_is_set_and_put_back_on_postgres_only() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let h = handle(db).counting(&counter);
        let previous = bound_lock_wait(h, Duration::from_millis(250))
            .await
            .unwrap();
        match db.conn().get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                // On a pool each statement is its own transaction: the local setting is gone
                // again, and the server's default (no bound) is what was replaced.
                assert_eq!(previous.as_deref(), Some("0"));
                assert_eq!(counter.take(), 1);
                restore_lock_wait(h, previous.as_deref()).await.unwrap();
                assert_eq!(counter.take(), 1);
            }
            _ => {
                assert_eq!(previous, None);
                restore_lock_wait(h, None).await.unwrap();
                assert_eq!(counter.take(), 0, "no statement on SQLite");
            }
        }
    })
    .await;
}
