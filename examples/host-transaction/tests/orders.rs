//! One transaction for the host's order row and our run admission, on each backend (SQLite
//! always, PostgreSQL when `ACCOUNT_TEST_PG_URL` names a server): committed, both rows stay
//! and `RunAdmitted` is published once, after the commit; rolled back, neither stays, nothing
//! is published, and the tenant's concurrency slot is free again.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::ApiKeyPepper;
use account_spine::{
    DatabaseConfig, DomainEvent, ErrorCode, OperatorPrincipal, Principal, RecordedEvents,
    RequestMeta, Spine,
};
use account_testkit::{Backend, TestDb, backends, empty_db};
use example_host_transaction::{NewOrder, OrderError, PaymentDeclined, open, orders, place_order};
use sea_orm::{EntityTrait, PaginatorTrait};
use std::sync::Arc;

/// A fresh database set up by the example's `open`, with one tenant on the free plan (5
/// concurrent runs); its owner, as the principal the spine verified from the owner's key.
struct Shop {
    db: TestDb,
    spine: Spine,
    events: Arc<RecordedEvents>,
    owner: Principal,
}

async fn shop(backend: &Backend) -> Shop {
    let db = empty_db(backend).await.unwrap();
    let pepper = ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap();
    let events = Arc::new(RecordedEvents::default());
    let spine = open(db.host_url(), &DatabaseConfig::new(db.url()), pepper)
        .await
        .unwrap()
        .with_events(events.clone());
    let operator = OperatorPrincipal {
        operator_id: "test:setup".into(),
        request: RequestMeta::default(),
    };
    let (_, key) = spine
        .bootstrap(&operator, "owner@example.com", "Tea shop")
        .await
        .unwrap();
    let owner = spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    Shop {
        db,
        spine,
        events,
        owner,
    }
}

impl Shop {
    /// Orders and runs as another connection sees them (what is committed).
    async fn stored(&self) -> (u64, i64) {
        let orders = orders::Entity::find()
            .count(self.db.host_conn())
            .await
            .unwrap();
        let runs = self.db.row_counts().await.unwrap()["worker_runs"];
        (orders, runs)
    }

    fn admitted_events(&self) -> usize {
        let all = self.events.all();
        let admitted = all
            .iter()
            .filter(|e| matches!(e, DomainEvent::RunAdmitted { .. }));
        admitted.count()
    }

    async fn place(&self, item: &str) -> Result<orders::Model, OrderError> {
        let paid = |_: &orders::Model| Ok(());
        let placed = place_order(&self.spine, &self.owner, tea(item), paid).await?;
        Ok(placed.order)
    }
}

fn tea(item: &str) -> NewOrder {
    NewOrder {
        item: item.into(),
        quantity: 1,
    }
}

#[tokio::test]
async fn a_commit_keeps_both_rows_and_publishes_the_run_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let shop = shop(&backend).await;

        let mut published_before_commit = None;
        let charge = |_: &orders::Model| {
            published_before_commit = Some(shop.admitted_events());
            Ok(())
        };
        let placed = place_order(&shop.spine, &shop.owner, tea("sencha"), charge)
            .await
            .unwrap();
        assert_eq!(
            published_before_commit,
            Some(0),
            "{name}: nothing before the commit"
        );
        assert_eq!(shop.stored().await, (1, 1), "{name}");
        assert_eq!(placed.order.run_id, placed.run.id.to_string(), "{name}");
        assert_eq!(placed.order.tenant_id, shop.owner.tenant_id.to_string());
        assert_eq!(
            shop.admitted_events(),
            1,
            "{name}: published once, on commit"
        );
    }
}

#[tokio::test]
async fn a_rollback_keeps_neither_and_frees_the_concurrency_slot() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let shop = shop(&backend).await;
        // Four of the free plan's five concurrent runs.
        for item in ["a", "b", "c", "d"] {
            shop.place(item).await.unwrap();
        }
        assert_eq!(shop.stored().await, (4, 4), "{name}");

        // The fifth is admitted, then the host's payment fails: both roll back.
        let declined = |_: &orders::Model| Err(PaymentDeclined("card expired".into()));
        let error = place_order(&shop.spine, &shop.owner, tea("e"), declined)
            .await
            .unwrap_err();
        assert!(
            matches!(error, OrderError::PaymentDeclined(_)),
            "{name}: {error:?}"
        );
        assert_eq!(shop.stored().await, (4, 4), "{name}: neither row");
        assert_eq!(
            shop.admitted_events(),
            4,
            "{name}: a rollback publishes nothing"
        );

        // The slot the rolled-back admission took is free: the fifth order goes through, and
        // only a sixth finds the limit (refused before the host writes anything).
        shop.place("e").await.unwrap();
        assert_eq!(shop.stored().await, (5, 5), "{name}");
        let refused = shop.place("f").await.unwrap_err();
        let OrderError::Account(refusal) = refused else {
            panic!("{name}: {refused:?}");
        };
        assert_eq!(refusal.code(), "quota_concurrent_runs", "{name}");
        assert_eq!(shop.stored().await, (5, 5), "{name}");
        assert_eq!(shop.admitted_events(), 5, "{name}");
    }
}
