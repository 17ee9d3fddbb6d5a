//! Layer: example — examples. A host's order row and our run admission in one transaction.
//!
//! The host keeps its own `orders` table, created by its own migrations ([`migration`],
//! tracked apart from ours). [`place_order`] opens one transaction on the spine
//! ([`Spine::begin_host_transaction`]) and in it admits the run that fulfils the order (our
//! use case, in a savepoint), inserts the order row (the host's write, on the same
//! connection) and takes the host's payment: it commits both, or neither. The run's events
//! go out only after the commit; a rollback publishes nothing and frees the tenant's
//! concurrency slot the admission had taken.
//!
//! [`open`] is the one place that connects to the database and migrates it (ours, then the
//! host's).

pub mod migration;
pub mod orders;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::{AdmitRun, RunSnapshot};
use account_spine::{DatabaseConfig, Principal, Spine, SpineError};
use migration::HostMigrator;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectOptions, Database, DbErr};
use sea_orm_migration::MigratorTrait;

/// The worker that fulfils orders.
pub const FULFILMENT_WORKER: &str = "fulfilment";

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Connecting, or the host's own migrations.
    #[error("the host's database set-up failed")]
    Host(#[from] DbErr),
    /// Our migrations.
    #[error("the account schema could not be migrated")]
    Account(#[from] SpineError),
}

/// Opens the host's pool on `host_url` with our database reachable from it, applies our
/// migrations and then the host's, and returns the spine over that pool; `pepper` keys the
/// digests of API keys.
///
/// The host opens the pool itself (so its own migrator can run on it) and hands it to the
/// spine ([`Spine::from_connection`]): one pool, and one transaction, for the host's
/// statements and ours. On PostgreSQL `account.url` is the same database (our tables are in
/// schema `account`); on SQLite it is our database file, which every connection of the host's
/// pool attaches ([`DatabaseConfig::attach_to`]).
pub async fn open(
    host_url: &str,
    account: &DatabaseConfig,
    pepper: ApiKeyPepper,
) -> Result<Spine, SetupError> {
    account_spine::migrate(account).await?;
    let mut options = ConnectOptions::new(host_url.to_owned());
    account.attach_to(&mut options);
    let pool = Database::connect(options).await?;
    HostMigrator::up(&pool, None).await?;
    Ok(Spine::from_connection(pool).with_pepper(pepper))
}

/// What the customer orders.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// What to order.
    pub item: String,
    /// How many.
    pub quantity: i32,
}

/// A committed order and the run admitted for it.
#[derive(Debug)]
pub struct PlacedOrder {
    /// The host's row.
    pub order: orders::Model,
    /// Our run.
    pub run: RunSnapshot,
}

/// The host's payment provider said no.
#[derive(Debug, thiserror::Error)]
#[error("payment declined: {0}")]
pub struct PaymentDeclined(pub String);

/// Why an order was not placed. Nothing of it is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The account domain refused or failed: a quota (`quota_concurrent_runs`, ...), the
    /// principal's authority, storage.
    #[error("the run could not be admitted")]
    Account(#[from] SpineError),
    /// The host's own step failed after the admission: both were rolled back.
    #[error(transparent)]
    PaymentDeclined(#[from] PaymentDeclined),
    /// The host's own statement failed (the transaction rolls back as it is dropped).
    #[error("the order could not be stored")]
    Storage(#[from] DbErr),
}

/// Places an order: admits its run, inserts its row and charges it, in one transaction.
///
/// `principal` must come from credentials the spine verified (`Spine::authenticate_api_key`,
/// or the host's own verified sign-in mapped to a member): use cases trust the tenant and
/// the actor it names. `charge` is the host's last step before the commit; when it declines,
/// both rows are rolled back and no event is published.
pub async fn place_order(
    spine: &Spine,
    principal: &Principal,
    new: NewOrder,
    charge: impl FnOnce(&orders::Model) -> Result<(), PaymentDeclined>,
) -> Result<PlacedOrder, OrderError> {
    // On SQLite this begins IMMEDIATE, as our own write transactions do.
    let mut txn = spine.begin_host_transaction().await?;

    // Ours: the run, admitted against the tenant's quotas in a savepoint of the transaction.
    let admit = AdmitRun {
        worker_id: FULFILMENT_WORKER.into(),
        task: format!("fulfil {} x {}", new.quantity, new.item),
        input: None,
        token_estimate: 0,
    };
    let run = match txn.execute(principal, admit).await {
        Ok(run) => run,
        Err(error) => {
            // Nothing of the host's is written yet. A refusal's audit row is in this
            // transaction: committing keeps it; anything else is rolled back.
            if error.is_refusal() {
                txn.commit().await?;
            } else {
                txn.rollback().await?;
            }
            return Err(error.into());
        }
    };

    // The host's: the order row, on the same transaction. Should it fail, `txn` is dropped
    // on the way out, which rolls the admission back too.
    let order = orders::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        tenant_id: Set(principal.tenant_id.to_string()),
        item: Set(new.item),
        quantity: Set(new.quantity),
        run_id: Set(run.id.to_string()),
    }
    .insert(txn.connection())
    .await?;

    // The host's last step: declined, nothing of either is kept.
    if let Err(declined) = charge(&order) {
        txn.rollback().await?;
        return Err(declined.into());
    }

    // Both rows, then `RunAdmitted` is published (once).
    txn.commit().await?;
    Ok(PlacedOrder { order, run })
}
