//! The shop's use cases on each backend (SQLite always, PostgreSQL when `ACCOUNT_TEST_PG_URL`
//! names a server), over a database set up by `shop_app::open`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::ApiKeyPepper;
use account_spine::{ErrorCode, OperatorPrincipal, Principal, RequestMeta, Spine};
use account_testkit::{Backend, TestDb, backends, empty_db};
use shop_app::{ShopError, list_orders, open, place_order};
use shop_engines::orders::{NewOrder, OrderError};

/// A set-up database and a tenant's owner, as the principal the spine verified.
async fn shop(backend: &Backend, name: &str) -> (TestDb, Spine, Principal) {
    let db = empty_db(backend).await.unwrap();
    let spine = open(db.url(), ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .await
        .unwrap();
    let operator = OperatorPrincipal {
        operator_id: "test:setup".into(),
        request: RequestMeta::default(),
    };
    let email = format!("owner@{name}.example.com");
    let (_, key) = spine.bootstrap(&operator, &email, name).await.unwrap();
    let owner = spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    (db, spine, owner)
}

fn tea(quantity: i32) -> NewOrder {
    NewOrder {
        sku: "TEA-42".into(),
        quantity,
    }
}

#[tokio::test]
async fn an_order_and_its_run_are_stored_together_and_scoped_to_the_tenant() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine, owner) = shop(&backend, "teashop").await;
        let placed = place_order(&spine, &owner, tea(3)).await.unwrap();
        assert_eq!(placed.order.run_id, placed.run_id, "{name}");
        let run = spine
            .get_run(&owner, placed.run_id.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(run.task, "ship 3 x TEA-42", "{name}");
        assert_eq!(list_orders(&spine, &owner).await.unwrap(), [placed.order]);

        // Another tenant on the same database sees none of them.
        let operator = OperatorPrincipal {
            operator_id: "test:setup".into(),
            request: RequestMeta::default(),
        };
        let (_, key) = spine
            .bootstrap(&operator, "other@example.com", "Other")
            .await
            .unwrap();
        let other = spine
            .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        assert!(
            list_orders(&spine, &other).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_refused_order_stores_nothing() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine, owner) = shop(&backend, "teashop").await;
        // The shop's own rule, before anything is admitted.
        let invalid = place_order(&spine, &owner, tea(0)).await.unwrap_err();
        assert!(
            matches!(invalid, ShopError::Order(OrderError::InvalidQuantity)),
            "{name}: {invalid:?}"
        );
        // Our quota: the free plan runs 5 at once; the sixth is refused and leaves no order.
        for _ in 0..5 {
            place_order(&spine, &owner, tea(1)).await.unwrap();
        }
        let refused = place_order(&spine, &owner, tea(1)).await.unwrap_err();
        let ShopError::Account(refusal) = refused else {
            panic!("{name}: {refused:?}");
        };
        assert_eq!(refusal.code(), "quota_concurrent_runs", "{name}");
        assert_eq!(
            list_orders(&spine, &owner).await.unwrap().len(),
            5,
            "{name}"
        );
    }
}
