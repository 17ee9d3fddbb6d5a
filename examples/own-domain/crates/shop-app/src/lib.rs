//! Layer: L4 — app. The shop's use cases, next to the account domain's.
//!
//! Each runs in one transaction the spine begins for the host ([`Spine::begin_host_transaction`]):
//! the shop's engines write through a [`ShopDb`] over it, our use cases run in it, and it
//! commits or rolls back as a whole. The principal is always one the spine verified.
//!
//! [`open`] is the one place that connects to the database and migrates it (ours, then the
//! shop's table).

use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::{DatabaseConfig, HostTransaction, Principal, Spine, SpineError};
use shop_engines::ShopDb;
use shop_engines::orders::{self, NewOrder, Order, OrderError};

/// The worker that ships orders.
pub const SHIPPING_WORKER: &str = "shipping";

/// Why a shop use case failed. Nothing of it is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// The shop's rules refused the order, or its storage failed.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The account domain refused (a quota, the principal's authority) or failed.
    #[error(transparent)]
    Account(#[from] SpineError),
}

/// Connects to `database_url`, applies our migrations, then creates the shop's table;
/// `pepper` keys the digests of API keys.
pub async fn open(database_url: &str, pepper: ApiKeyPepper) -> Result<Spine, ShopError> {
    let config = DatabaseConfig::new(database_url);
    let spine = Spine::connect(&config).await?.with_pepper(pepper);
    account_spine::migrate(&config).await?;
    let txn = spine.begin_host_transaction().await?;
    orders::install(ShopDb::for_transaction(txn.connection())).await?;
    txn.commit().await?;
    Ok(spine)
}

/// An order and the run that ships it.
#[derive(Debug)]
pub struct PlacedOrder {
    /// The shop's row.
    pub order: Order,
    /// Our run's id.
    pub run_id: String,
}

/// Places an order for the principal's tenant: validates it, admits the shipping run and
/// records the order, in one transaction.
pub async fn place_order(
    spine: &Spine,
    principal: &Principal,
    order: NewOrder,
) -> Result<PlacedOrder, ShopError> {
    orders::validate(&order)?;
    let mut txn = spine.begin_host_transaction().await?;
    let admit = AdmitRun {
        worker_id: SHIPPING_WORKER.into(),
        task: orders::fulfilment_task(&order),
        input: None,
        token_estimate: 0,
    };
    let run = match txn.execute(principal, admit).await {
        Ok(run) => run,
        Err(error) => return Err(end_refused(txn, error).await),
    };
    let run_id = run.id.to_string();
    let tenant_id = principal.tenant_id.to_string();
    // Should this fail, `txn` is dropped on the way out and the admission rolls back too.
    let db = ShopDb::for_transaction(txn.connection());
    let order = orders::record(db, &tenant_id, &run_id, order).await?;
    txn.commit().await?;
    Ok(PlacedOrder { order, run_id })
}

/// The orders of the principal's tenant.
pub async fn list_orders(spine: &Spine, principal: &Principal) -> Result<Vec<Order>, ShopError> {
    let txn = spine.begin_host_transaction().await?;
    let db = ShopDb::for_transaction(txn.connection());
    let orders = orders::list(db, &principal.tenant_id.to_string()).await?;
    txn.commit().await?;
    Ok(orders)
}

/// Ends a transaction whose use case failed: nothing of the shop's is written yet, so a
/// refusal commits (keeping its audit row) and anything else rolls back.
async fn end_refused(txn: HostTransaction<'_>, error: SpineError) -> ShopError {
    let ended = if error.is_refusal() {
        txn.commit().await
    } else {
        txn.rollback().await
    };
    match ended {
        Ok(()) => error.into(),
        Err(ending) => ending.into(),
    }
}
